"""Each of the gateway's use cases on the real PostgreSQL: what a caller would notice (keys
that work or not, answers replayed or forwarded again, records kept) and the domain errors."""

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from fulfilkit.errors import Conflict, Duplicated, NotFound
from gateway import store, usecases
from gateway.auth import KeyCache
from gateway.domain import (
    DEFAULT_SCOPES,
    REPLAYED_HEADER,
    IdempotencyPolicy,
    InProgress,
    StoredResponse,
    UpstreamCall,
    hash_api_key,
)
from tests.support import ref

pytestmark = pytest.mark.integration

POLICY = IdempotencyPolicy(ttl=timedelta(hours=24), forward_again_after=timedelta(hours=1))
CREATED = StoredResponse(201, {"content-type": "application/json"}, b'{"id":1}')


async def tenant_id(pool: asyncpg.Pool) -> UUID:
    return (await usecases.create_tenant(pool, ref("uc-tenant"), ["sales:read"])).tenant.id


# --- tenants and keys ---------------------------------------------------------------------------


async def test_create_tenant_issues_a_first_key_that_authenticates(pool: asyncpg.Pool) -> None:
    name = ref("uc-tenant")

    created = await usecases.create_tenant(pool, name, ["sales:read", "sales:read", "stock:read"])

    assert created.tenant.name == name
    key = created.first_key
    assert key.key.tenant_id == created.tenant.id and key.secret.startswith(key.key.prefix)
    assert key.key.scopes == ("sales:read", "stock:read")
    assert await store.find_active_key(pool, hash_api_key(key.secret)) == key.key


async def test_create_tenant_refuses_a_taken_name_and_stores_nothing(pool: asyncpg.Pool) -> None:
    name = ref("uc-tenant")
    first = await usecases.create_tenant(pool, name, DEFAULT_SCOPES)

    with pytest.raises(Duplicated) as refused:
        await usecases.create_tenant(pool, name, DEFAULT_SCOPES)

    assert refused.value.code == "duplicated" and name in refused.value.detail
    assert await store.list_keys(pool, first.tenant.id) == [first.first_key.key]
    count = await pool.fetchval("SELECT count(*) FROM gateway.tenants WHERE name = $1", name)
    assert count == 1


async def test_find_tenant_by_id_or_name(pool: asyncpg.Pool) -> None:
    created = await usecases.create_tenant(pool, ref("uc-tenant"), DEFAULT_SCOPES)
    tenant = created.tenant

    assert await usecases.find_tenant(pool, str(tenant.id)) == tenant
    assert await usecases.find_tenant(pool, tenant.name) == tenant
    for unknown in (str(uuid4()), ref("nobody")):
        with pytest.raises(NotFound):
            await usecases.find_tenant(pool, unknown)


async def test_issue_key_adds_a_key_with_its_scopes(pool: asyncpg.Pool) -> None:
    tenant = await tenant_id(pool)

    issued = await usecases.issue_key(pool, tenant, ["webhooks:write"])

    assert issued.key.tenant_id == tenant and issued.key.scopes == ("webhooks:write",)
    assert await store.find_active_key(pool, hash_api_key(issued.secret)) == issued.key
    assert issued.key in await usecases.list_keys(pool, tenant)


async def test_issue_key_for_an_unknown_tenant_is_not_found(pool: asyncpg.Pool) -> None:
    unknown = uuid4()
    with pytest.raises(NotFound) as refused:
        await usecases.issue_key(pool, unknown, ["sales:read"])
    assert refused.value.detail == "No such tenant."
    assert await store.list_keys(pool, unknown) == []


async def test_list_keys_shows_every_key_of_the_tenant_only(pool: asyncpg.Pool) -> None:
    tenant, other = await tenant_id(pool), await tenant_id(pool)
    second = await usecases.issue_key(pool, tenant, ["sales:write"])
    await usecases.revoke_key(pool, second.key.id)

    listed = await usecases.list_keys(pool, tenant)

    assert [k.tenant_id for k in listed] == [tenant, tenant]
    assert listed[1].id == second.key.id and listed[1].revoked_at is not None
    assert all(k.tenant_id == other for k in await usecases.list_keys(pool, other))


async def test_list_keys_of_an_unknown_tenant_is_not_found(pool: asyncpg.Pool) -> None:
    with pytest.raises(NotFound):
        await usecases.list_keys(pool, uuid4())


async def test_revoke_key_stops_it_at_once_in_this_process(pool: asyncpg.Pool) -> None:
    issued = await usecases.issue_key(pool, await tenant_id(pool), ["sales:read"])
    keys = KeyCache(pool, ttl_seconds=60)
    assert await keys.caller(issued.secret) is not None

    revoked = await usecases.revoke_key(pool, issued.key.id, keys)

    assert revoked.id == issued.key.id and revoked.revoked_at is not None
    assert await keys.caller(issued.secret) is None
    assert await store.find_active_key(pool, hash_api_key(issued.secret)) is None


async def test_revoke_key_of_an_unknown_key_is_not_found(pool: asyncpg.Pool) -> None:
    with pytest.raises(NotFound) as refused:
        await usecases.revoke_key(pool, uuid4())
    assert refused.value.detail == "No such API key."


# --- forwarding once per Idempotency-Key ----------------------------------------------------------


class Service:
    """Stands in for the upstream: answers with `answer` and counts the calls it got."""

    def __init__(self, answer: StoredResponse = CREATED) -> None:
        self.answer = answer
        self.calls: list[UpstreamCall] = []
        self.release: asyncio.Event | None = None
        self.fail: BaseException | None = None

    async def send(self, call: UpstreamCall) -> StoredResponse:
        self.calls.append(call)
        if self.release is not None:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return self.answer


def post(tenant: UUID, key: str | None, body: bytes = b'{"n":1}', method: str = "POST"):
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key
    return UpstreamCall("orders", method, "/api/v1/sales", "", headers, body, tenant, "key:x")


async def records(pool: asyncpg.Pool, tenant: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT key, status_code, completed_at FROM gateway.idempotency_keys WHERE tenant_id = $1",
        tenant,
    )


async def test_forward_once_replays_the_first_answer_to_a_retry(pool: asyncpg.Pool) -> None:
    tenant, service = uuid4(), Service()

    first = await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)
    again = await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)

    assert first == CREATED and len(service.calls) == 1
    assert again.status_code == 201 and again.body == CREATED.body
    assert again.headers == {**CREATED.headers, REPLAYED_HEADER: "true"}
    assert [(r["key"], r["status_code"]) for r in await records(pool, tenant)] == [("k1", 201)]


async def test_forward_once_sends_calls_without_a_key_or_not_posts_every_time(
    pool: asyncpg.Pool,
) -> None:
    tenant, service = uuid4(), Service()
    for call in (post(tenant, None), post(tenant, None), post(tenant, "k1", method="PUT")) * 2:
        assert await usecases.forward_once(pool, POLICY, call, service.send) == CREATED

    assert len(service.calls) == 6
    assert await records(pool, tenant) == []


async def test_forward_once_refuses_the_key_for_another_request(pool: asyncpg.Pool) -> None:
    tenant, service = uuid4(), Service()
    await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)

    with pytest.raises(Conflict) as refused:
        await usecases.forward_once(pool, POLICY, post(tenant, "k1", b'{"n":2}'), service.send)

    assert not isinstance(refused.value, InProgress)
    assert "different request" in refused.value.detail and len(service.calls) == 1


async def test_forward_once_refuses_a_retry_while_the_first_is_in_progress(
    pool: asyncpg.Pool,
) -> None:
    tenant, service = uuid4(), Service()
    service.release = asyncio.Event()
    first = asyncio.create_task(
        usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)
    )
    while not service.calls:
        await asyncio.sleep(0.01)

    with pytest.raises(InProgress) as refused:
        await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)

    assert refused.value.code == "conflict" and refused.value.retry_after_seconds == 1
    service.release.set()
    assert await first == CREATED and len(service.calls) == 1


async def test_forward_once_forwards_again_a_retry_of_a_request_in_progress_too_long(
    pool: asyncpg.Pool,
) -> None:
    tenant, service = uuid4(), Service()
    impatient = IdempotencyPolicy(ttl=POLICY.ttl, forward_again_after=timedelta(0))
    service.release = asyncio.Event()
    first = asyncio.create_task(
        usecases.forward_once(pool, impatient, post(tenant, "k1"), service.send)
    )
    while not service.calls:
        await asyncio.sleep(0.01)

    second = asyncio.create_task(
        usecases.forward_once(pool, impatient, post(tenant, "k1"), service.send)
    )
    while len(service.calls) < 2:
        await asyncio.sleep(0.01)

    service.release.set()
    assert await first == CREATED and await second == CREATED


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_forward_once_keeps_nothing_of_a_server_error(pool: asyncpg.Pool, status) -> None:
    tenant, service = uuid4(), Service(StoredResponse(status, {}, b"down"))

    assert (
        await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)
    ).status_code == status

    assert await records(pool, tenant) == []
    service.answer = CREATED
    assert await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send) == CREATED
    assert len(service.calls) == 2


@pytest.mark.parametrize("failure", [TimeoutError(), asyncio.CancelledError()])
async def test_forward_once_frees_the_key_when_the_service_was_not_reached(
    pool: asyncpg.Pool, failure: BaseException
) -> None:
    tenant, service = uuid4(), Service()
    service.fail = failure

    with pytest.raises(type(failure)):
        await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)

    assert await records(pool, tenant) == []
    service.fail = None
    assert await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send) == CREATED


async def test_forward_once_never_stores_an_answer_marked_no_store(pool: asyncpg.Pool) -> None:
    secret = StoredResponse(201, {"cache-control": "no-store"}, b'{"secret":"s"}')
    tenant, service = uuid4(), Service(secret)

    await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)
    again = await usecases.forward_once(pool, POLICY, post(tenant, "k1"), service.send)

    assert again == secret and len(service.calls) == 2, "the service replays it, not the gateway"
    [record] = await records(pool, tenant)
    assert record["status_code"] is None and record["completed_at"] is not None
    stored = await pool.fetchval(
        "SELECT body FROM gateway.idempotency_keys WHERE tenant_id = $1", tenant
    )
    assert stored is None


async def test_prune_idempotency_records_forgets_only_expired_ones(pool: asyncpg.Pool) -> None:
    tenant, service = uuid4(), Service()
    for key in ("old", "new"):
        await usecases.forward_once(pool, POLICY, post(tenant, key), service.send)
    await pool.execute(
        "UPDATE gateway.idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE tenant_id = $1 AND key = 'old'",
        tenant,
    )

    assert await usecases.prune_idempotency_records(pool, POLICY.ttl) >= 1

    assert [r["key"] for r in await records(pool, tenant)] == ["new"]
    await usecases.forward_once(pool, POLICY, post(tenant, "old", b"{}"), service.send)
    assert len(service.calls) == 3, "a pruned key is a new request"
