"""Creating an endpoint and rotating its secret are idempotent in the service itself: a retry
with the same `Idempotency-Key` answers what the first request produced (the secret
included) without acting again, and the key is stored with the effect, never the secret.

Called on the service directly, as the gateway forwards the key, and once through the gateway;
answers carrying a secret are marked `Cache-Control: no-store` so that nothing on the way keeps
them (the gateway forwards their retries, and the service replays).
"""

import asyncio
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.webhook_tools import StockRecord, received_count, started
from tests.support import Answer, Client, ref


class ServiceCaller:
    """One tenant's calls to the webhooks service, as the gateway makes them."""

    def __init__(self, http: aiohttp.ClientSession, platform: Any, tenant: Client) -> None:
        self._client = Client(http, platform["webhooks"].url, None)
        self._headers = {
            "X-Internal-Token": platform.internal_token,
            "X-Tenant-Id": str(tenant.tenant_id),
            "X-Actor": "test",
        }

    async def post(self, path: str, json: Any = None, key: str | None = None) -> Answer:
        headers = dict(self._headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self._client.call("POST", f"/webhooks{path}", json=json, headers=headers)

    async def get(self, path: str) -> Answer:
        return await self._client.call("GET", f"/webhooks{path}", headers=self._headers)

    async def delete(self, path: str) -> Answer:
        return await self._client.call("DELETE", f"/webhooks{path}", headers=self._headers)


@pytest.fixture
def service(http, platform, tenant) -> ServiceCaller:
    return ServiceCaller(http, platform, tenant)


def endpoint_body(**fields: Any) -> dict[str, Any]:
    return {
        "url": "http://127.0.0.1:9/hooks",
        "event_types": ["stock.changed"],
        "headers": {"Authorization": "Bearer receiver-credential"},
        **fields,
    }


async def stored_keys(dsn: str, tenant: Client) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT concat_ws(' ', key, encode(fingerprint, 'escape'), status_code, headers,"
            " convert_from(body, 'UTF8')) AS row"
            " FROM webhooks.idempotent_requests WHERE tenant_id = $1",
            UUID(tenant.tenant_id),
        )
        return [r["row"] for r in rows]
    finally:
        await conn.close()


async def test_a_retried_create_answers_the_same_endpoint_and_secret(
    service: ServiceCaller,
    tenant: Client,
    other_tenant: Client,
    http,
    platform,
    infrastructure,
):
    key = ref("create")
    first = await service.post("/endpoints", endpoint_body(), key=key)
    again = await service.post("/endpoints", endpoint_body(), key=key)

    assert first.status == 201 and again.status == 201, (first, again)
    assert first.headers["Cache-Control"] == "no-store"
    assert again.headers["Cache-Control"] == "no-store"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body == first.body, "same endpoint, same secret, same fields"
    assert first.body["secret"].startswith("whsec_")
    assert first.body["headers"] == {"Authorization": "***"}
    assert again.headers["Location"] == first.headers["Location"]
    listed = await service.get("/endpoints")
    assert [e["id"] for e in listed.body["data"]] == [first.body["id"]]

    [record] = await stored_keys(infrastructure.database_url, tenant)
    assert key in record and first.body["id"] in record
    assert first.body["secret"] not in record and "receiver-credential" not in record

    other = await ServiceCaller(http, platform, other_tenant).post(
        "/endpoints", endpoint_body(), key=key
    )
    assert other.status == 201 and other.body["id"] != first.body["id"], "keys are per tenant"


async def test_a_key_reused_for_another_request_is_refused(service: ServiceCaller):
    key = ref("create")
    assert (await service.post("/endpoints", endpoint_body(), key=key)).status == 201

    changed = await service.post("/endpoints", endpoint_body(description="other"), key=key)
    rotate = await service.post(f"/endpoints/{UUID(int=1)}/rotate-secret", key=key)

    for answer in (changed, rotate):
        assert answer.status == 409, answer
        assert answer.body["code"] == "conflict"
        assert "already used with a different request" in answer.body["detail"]
    assert (await service.get("/endpoints")).body["pagination"]["total_count"] == 1


async def test_concurrent_creates_with_one_key_make_one_endpoint(service: ServiceCaller):
    key = ref("create")
    answers = await asyncio.gather(
        *(service.post("/endpoints", endpoint_body(), key=key) for _ in range(6))
    )

    assert {a.status for a in answers} == {201}, answers
    assert len({a.body["id"] for a in answers}) == 1
    assert len({a.body["secret"] for a in answers}) == 1
    assert (await service.get("/endpoints")).body["pagination"]["total_count"] == 1


async def test_a_retried_create_of_a_deleted_endpoint_is_refused(service: ServiceCaller):
    key = ref("create")
    created = await service.post("/endpoints", endpoint_body(), key=key)
    assert created.status == 201, created
    assert (await service.delete(f"/endpoints/{created.body['id']}")).status == 204

    again = await service.post("/endpoints", endpoint_body(), key=key)

    assert again.status == 409, again
    assert again.body["code"] == "conflict"
    assert "deleted since" in again.body["detail"]
    assert (await service.get("/endpoints")).body["pagination"]["total_count"] == 0


async def test_a_retried_rotation_answers_its_secret_without_rotating_again(
    service: ServiceCaller,
    tenant: Client,
    infrastructure,
):
    hook = await started()
    try:
        created = await service.post("/endpoints", endpoint_body(url=hook.url))
        assert created.status == 201, created
        path = f"/endpoints/{created.body['id']}/rotate-secret"
        key = ref("rotate")

        first = await service.post(path, key=key)
        again = await service.post(path, key=key)

        assert first.status == 200 and again.status == 200, (first, again)
        assert first.headers["Cache-Control"] == "no-store"
        assert again.headers["Cache-Control"] == "no-store"
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.body == first.body
        assert first.body["secret"] != created.body["secret"]
        assert first.body["version"] == 2, "rotated once"
        records = await stored_keys(infrastructure.database_url, tenant)
        assert [r for r in records if key in r] and all(
            first.body["secret"] not in r and created.body["secret"] not in r for r in records
        )
        assert (await service.get(f"/endpoints/{created.body['id']}")).body["version"] == 2

        await StockRecord.create(tenant, quantity=1)
        await received_count(hook, 1)
        Webhook(first.body["secret"]).verify(hook.received[0].body, hook.received[0].headers)

        later = await service.post(path, key=ref("rotate"))
        assert later.status == 200 and later.body["secret"] != first.body["secret"]
        stale = await service.post(path, key=key)
        assert stale.status == 409, stale
        assert "rotated again since" in stale.body["detail"]
        assert (await service.get(f"/endpoints/{created.body['id']}")).body["version"] == 3
    finally:
        await hook.stop()


async def test_through_the_gateway_a_retry_is_replayed_by_the_service(tenant: Client):
    key = ref("create")
    headers = {"Idempotency-Key": key}
    first = await tenant.post("/webhooks/endpoints", endpoint_body(), headers=headers)
    again = await tenant.post("/webhooks/endpoints", endpoint_body(), headers=headers)
    other = await tenant.post(
        "/webhooks/endpoints", endpoint_body(description="other"), headers=headers
    )

    assert first.status == 201 and again.status == 201, (first, again)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Cache-Control"] == "no-store"
    assert again.body == first.body and again.body["secret"].startswith("whsec_")
    assert other.status == 409 and other.body["code"] == "conflict", other
    listed = await tenant.get("/webhooks/endpoints")
    assert [e["id"] for e in listed.body["data"]] == [first.body["id"]]
