"""The gateway's queries on the real PostgreSQL: tenants, API keys, idempotency records."""

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from gateway import store
from gateway.domain import (
    IdempotencyRecord,
    RequestFingerprint,
    StoredResponse,
    Tenant,
    new_api_key,
)
from tests.support import ref

pytestmark = pytest.mark.integration

TTL = timedelta(hours=24)
AGAIN_AFTER = timedelta(hours=1)
FIRST = RequestFingerprint.of("POST", "/api/v1/sales", "", b'{"n":1}')
OTHER = RequestFingerprint.of("POST", "/api/v1/sales", "", b'{"n":2}')
ANSWER = StoredResponse(201, {"content-type": "application/json"}, b'{"id":1}')


async def new_tenant(pool: asyncpg.Pool) -> Tenant:
    tenant = await store.insert_tenant(pool, uuid4(), ref("store-tenant"))
    assert tenant is not None
    return tenant


async def claim(
    pool: asyncpg.Pool,
    tenant_id: UUID,
    key: str,
    fingerprint: RequestFingerprint = FIRST,
    ttl: timedelta = TTL,
    again_after: timedelta = AGAIN_AFTER,
) -> IdempotencyRecord | None:
    return await store.claim_idempotency_key(pool, tenant_id, key, fingerprint, ttl, again_after)


async def test_a_tenant_name_is_taken_once(pool: asyncpg.Pool) -> None:
    name = ref("store-tenant")
    tenant = await store.insert_tenant(pool, uuid4(), name)
    assert tenant is not None and tenant.name == name and tenant.created_at is not None

    assert await store.insert_tenant(pool, uuid4(), name) is None
    assert await store.find_tenant_by_id(pool, tenant.id) == tenant
    assert await store.find_tenant_by_name(pool, name) == tenant
    assert await store.find_tenant_by_id(pool, uuid4()) is None
    assert await store.find_tenant_by_name(pool, ref("nobody")) is None


async def test_a_key_is_stored_by_hash_for_a_tenant_that_exists(pool: asyncpg.Pool) -> None:
    tenant = await new_tenant(pool)
    issued = new_api_key(["sales:read", "stock:write"])

    stored = await store.insert_key(pool, tenant.id, issued)

    assert stored is not None and stored.id == issued.id and stored.tenant_id == tenant.id
    assert stored.prefix == issued.prefix and stored.scopes == ("sales:read", "stock:write")
    assert stored.revoked_at is None
    assert await store.find_active_key(pool, issued.key_hash) == stored
    secret_kept = await pool.fetchval(
        "SELECT count(*) FROM gateway.api_keys WHERE key_hash = $1 OR prefix = $2",
        issued.secret.encode(),
        issued.secret,
    )
    assert secret_kept == 0
    assert await store.insert_key(pool, uuid4(), new_api_key(["sales:read"])) is None


async def test_keys_are_listed_oldest_first_revoked_ones_included(pool: asyncpg.Pool) -> None:
    tenant = await new_tenant(pool)
    issued = [new_api_key(["sales:read"]) for _ in range(3)]
    for key in issued:
        await store.insert_key(pool, tenant.id, key)
    await store.revoke_key(pool, issued[1].id)

    listed = await store.list_keys(pool, tenant.id)

    assert [k.id for k in listed] == [k.id for k in issued]
    assert [k.revoked_at is not None for k in listed] == [False, True, False]
    assert await store.list_keys(pool, uuid4()) == []


async def test_a_revoked_key_is_found_no_more_and_keeps_its_first_revocation(
    pool: asyncpg.Pool,
) -> None:
    tenant = await new_tenant(pool)
    issued = new_api_key(["sales:read"])
    await store.insert_key(pool, tenant.id, issued)

    first = await store.revoke_key(pool, issued.id)
    again = await store.revoke_key(pool, issued.id)

    assert first is not None and first.revoked_at is not None
    assert again is not None and again.revoked_at == first.revoked_at
    assert await store.find_active_key(pool, issued.key_hash) is None
    assert await store.revoke_key(pool, uuid4()) is None


async def test_the_first_claim_wins_and_the_others_see_its_record(pool: asyncpg.Pool) -> None:
    tenant_id, key = uuid4(), ref("key")

    assert await claim(pool, tenant_id, key) is None
    in_progress = await claim(pool, tenant_id, key)
    assert in_progress is not None and in_progress.fingerprint == FIRST
    assert in_progress.response is None

    await store.save_idempotent_response(pool, tenant_id, key, ANSWER)
    done = await claim(pool, tenant_id, key, OTHER)
    assert done is not None and done.fingerprint == FIRST and done.response == ANSWER
    assert await claim(pool, uuid4(), key) is None, "keys are per tenant"


async def test_concurrent_claims_of_one_key_let_exactly_one_through(pool: asyncpg.Pool) -> None:
    tenant_id, key = uuid4(), ref("key")
    claims = await asyncio.gather(*(claim(pool, tenant_id, key) for _ in range(4)))
    assert sum(c is None for c in claims) == 1


async def test_a_released_claim_can_be_claimed_again(pool: asyncpg.Pool) -> None:
    tenant_id, key = uuid4(), ref("key")
    await claim(pool, tenant_id, key)

    await store.release_idempotency_key(pool, tenant_id, key)

    assert await claim(pool, tenant_id, key, OTHER) is None


async def test_a_completed_record_is_never_released(pool: asyncpg.Pool) -> None:
    tenant_id, key = uuid4(), ref("key")
    await claim(pool, tenant_id, key)
    await store.save_idempotent_response(pool, tenant_id, key, ANSWER)

    await store.release_idempotency_key(pool, tenant_id, key)

    record = await claim(pool, tenant_id, key)
    assert record is not None and record.response == ANSWER


async def test_a_record_without_its_answer_is_taken_over_by_the_same_request_only(
    pool: asyncpg.Pool,
) -> None:
    tenant_id, key = uuid4(), ref("key")
    await claim(pool, tenant_id, key)
    await store.save_idempotent_response(pool, tenant_id, key, None)

    other = await claim(pool, tenant_id, key, OTHER)
    assert other is not None and other.fingerprint == FIRST and other.response is None
    assert await claim(pool, tenant_id, key) is None


async def test_a_request_in_progress_too_long_is_taken_over_by_its_retry(
    pool: asyncpg.Pool,
) -> None:
    tenant_id, key = uuid4(), ref("key")
    await claim(pool, tenant_id, key)
    await pool.execute(
        "UPDATE gateway.idempotency_keys SET created_at = now() - interval '2 hours'"
        " WHERE tenant_id = $1",
        tenant_id,
    )

    assert await claim(pool, tenant_id, key, OTHER) is not None, "another request is refused"
    assert await claim(pool, tenant_id, key) is None


async def test_an_expired_record_is_claimed_as_if_absent(pool: asyncpg.Pool) -> None:
    tenant_id, key = uuid4(), ref("key")
    await claim(pool, tenant_id, key)
    await store.save_idempotent_response(pool, tenant_id, key, ANSWER)
    await pool.execute(
        "UPDATE gateway.idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE tenant_id = $1",
        tenant_id,
    )

    assert await claim(pool, tenant_id, key, OTHER) is None
    record = await claim(pool, tenant_id, key, OTHER)
    assert record is not None and record.fingerprint == OTHER and record.response is None


async def test_pruning_deletes_expired_records_in_batches_and_keeps_the_rest(
    pool: asyncpg.Pool,
) -> None:
    tenant_id = uuid4()
    keys = [ref("key") for _ in range(5)]
    for key in keys:
        await claim(pool, tenant_id, key)
    await pool.execute(
        "UPDATE gateway.idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE tenant_id = $1 AND key = ANY($2::text[])",
        tenant_id,
        keys[:3],
    )

    assert await store.prune_idempotency_keys(pool, TTL, batch=2) >= 3

    left = await pool.fetch(
        "SELECT key FROM gateway.idempotency_keys WHERE tenant_id = $1", tenant_id
    )
    assert {r["key"] for r in left} == set(keys[3:])
