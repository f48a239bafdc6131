"""The Python client (`fulfil_client`) against the real platform: a sale's life, the typed
problems (404, 409 on a stale If-Match, 422, 428), pages, OAuth2 client credentials, the
admin API, a real webhook verified and parsed, 429s retried with one Idempotency-Key, and
the client's models checked against the OpenAPI and AsyncAPI documents the gateway
serves."""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import fulfil_client as fc
from deploy.local.services import Platform, ServiceProcess, free_ports, python_path
from fulfil_client import events
from fulfil_client.webhooks import InvalidWebhook, WebhookVerifier
from tests.client_contract import drift, event_drift
from tests.e2e.webhook_tools import started
from tests.support import Client, eventually, ref


def client_for(platform: Platform, tenant: Client, **kwargs: Any) -> fc.AsyncClient:
    return fc.AsyncClient(platform.gateway_url, api_key=tenant.key, **kwargs)


async def stocked(client: fc.AsyncClient, quantity: int = 10) -> tuple[str, str]:
    sku, location = ref("SKU"), ref("wh")
    await client.products.create({"sku": sku, "name": "Mug", "min_level": 1})
    await client.locations.create({"location_id": location, "name": "Main warehouse"})
    record = await client.stock.create_record(
        {"sku": sku, "location_id": location, "quantity": quantity}
    )
    assert (record.sku, record.location_id, record.quantity) == (sku, location, quantity)
    return sku, location


def sale(sale_id: str, location: str, sku: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "sale_id": sale_id,
        "shop": {"channel": "web", "shop_name": "Test shop"},
        "location_id": location,
        "lines": [{"sku": sku, "quantity": quantity}],
        "customer": {"name": "Ada"},
        "shipping_address": {"city": "Oslo", "country": "NO"},
    }


async def test_the_client_and_the_served_documents_agree(platform: Platform, http: Any) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url) as raw:
        openapi = (await raw.get("/openapi.json")).raise_for_status().json()
        asyncapi = (await raw.get("/asyncapi.json")).raise_for_status().json()
    assert drift(openapi) == []
    assert event_drift(asyncapi) == []


async def test_a_sale_becomes_pending_is_canceled_and_a_stale_version_is_a_conflict(
    platform: Platform, tenant: Client
) -> None:
    async with client_for(platform, tenant) as client:
        sku, location = await stocked(client)
        sale_id = ref("SO")
        created = await client.sales.create(sale(sale_id, location, sku, 2), respond_async=True)
        assert (created.sale_id, created.status) == (sale_id, "awaiting_stock")

        pending = await eventually(
            lambda: client.sales.get(sale_id),
            lambda s: s.status == "pending",
            what="the sale pending",
        )
        assert pending.version > created.version
        assert pending.lines[0]["sku"] == sku and pending.lines[0]["quantity"] == 2

        with pytest.raises(fc.Conflict) as stale:
            await client.sales.cancel(sale_id, "customer_request", version=created.version)
        assert (stale.value.status, stale.value.code) == (409, "conflict")

        with pytest.raises(fc.PreconditionRequired) as unmatched:
            await client.request("PATCH", f"/api/v1/sales/{sale_id}", json={"priority": "urgent"})
        assert (unmatched.value.status, unmatched.value.code) == (428, "precondition_required")

        canceled = await client.sales.cancel(sale_id, "customer_request", version=pending.version)
        assert (canceled.sale_id, canceled.status, canceled.id) == (sale_id, "canceled", created.id)
        again = await client.sales.get(sale_id)
        assert (again.status, again.cancel_reason) == ("canceled", "customer_request")


async def test_problems_are_typed(platform: Platform, tenant: Client) -> None:
    async with client_for(platform, tenant) as client:
        with pytest.raises(fc.NotFound) as missing:
            await client.sales.get(ref("nope"))
        assert (missing.value.status, missing.value.code) == (404, "no_content")
        assert missing.value.request_id and missing.value.title == "Not found"

        sku, location = await stocked(client)
        with pytest.raises(fc.ValidationFailed) as invalid:
            await client.sales.create(sale(ref("SO"), location, sku, 0))
        error = invalid.value
        assert (error.status, error.code) == (422, "validation")
        assert [e["field"] for e in error.errors] == ["/lines/0/quantity"]
        assert all(e["message"] for e in error.errors)

        sale_id = ref("SO")
        await client.sales.create(sale(sale_id, location, sku))
        with pytest.raises(fc.Duplicated) as duplicated:
            await client.sales.create(sale(sale_id, location, sku))
        assert (duplicated.value.status, duplicated.value.code) == (409, "duplicated")

    async with fc.AsyncClient(platform.gateway_url, api_key="fk_not_a_key") as stranger:
        with pytest.raises(fc.AuthFailed) as refused:
            await stranger.sales.get("SO-1")
        assert (refused.value.status, refused.value.code) == (401, "invalid_token")


async def test_lists_are_followed_over_pages_blocking_and_async(
    platform: Platform, tenant: Client
) -> None:
    sent: list[httpx.URL] = []

    async def seen(request: httpx.Request) -> None:
        sent.append(request.url)

    http = httpx.AsyncClient(event_hooks={"request": [seen]})
    async with client_for(platform, tenant, http_client=http) as client:
        skus = sorted([ref("P") for _ in range(5)])
        for sku in skus:
            await client.products.create({"sku": sku, "name": "Plate"})
        listed = [p.sku async for p in client.products.list(limit=2)]
    await http.aclose()
    assert sorted(listed) == skus
    pages = [u for u in sent if u.path == "/api/v1/products" and u.params.get("limit")]
    assert [u.params.get("offset") for u in pages] == [None, "2", "4"]

    def blocking() -> list[str]:
        with fc.Client(platform.gateway_url, api_key=tenant.key) as client:
            first = client.products.list(limit=3).first_page()
            assert (first.total_count, first.offset, first.limit, len(first)) == (5, 0, 3, 3)
            return [p.sku for p in client.products.list(limit=3)]

    assert sorted(await asyncio.to_thread(blocking)) == skus


async def test_oauth2_client_credentials_get_a_token_once_and_reuse_it(
    platform: Platform, tenant: Client
) -> None:
    async with client_for(platform, tenant) as owner:
        made = await owner.oauth_clients.create(ref("importer"), ["sales:read", "stock:read"])
        assert set(made.scopes) == {"sales:read", "stock:read"}
        listed = [c.client_id async for c in owner.oauth_clients.list()]
        assert made.client_id in listed

    paths: list[str] = []

    async def seen(request: httpx.Request) -> None:
        paths.append(request.url.path)

    http = httpx.AsyncClient(event_hooks={"request": [seen]})
    async with fc.AsyncClient(
        platform.gateway_url,
        client_id=str(made.client_id),
        client_secret=made.client_secret,
        scope="sales:read",
        http_client=http,
    ) as client:
        assert [s async for s in client.sales.list()] == []
        with pytest.raises(fc.NotFound):
            await client.sales.get(ref("nope"))
        with pytest.raises(fc.PermissionDenied) as scoped:
            await client.products.list().first_page()  # stock:read was not asked for
        assert (scoped.value.status, scoped.value.code) == (403, "no_permission")
    await http.aclose()
    assert paths.count("/api/v1/oauth/token") == 1 and len(paths) == 4

    async with fc.AsyncClient(
        platform.gateway_url, client_id=str(made.client_id), client_secret="wrong"
    ) as wrong:
        with pytest.raises(fc.AuthFailed) as refused:
            await wrong.sales.get("SO-1")
        assert (refused.value.status, refused.value.code) == (401, "invalid_client")


async def test_the_admin_api_through_the_client(platform: Platform) -> None:
    async with fc.AsyncClient(platform.gateway_url, admin_token=platform.admin_token) as admin:
        name = ref("tenant")
        created = await admin.admin.tenants.create(name, ["sales:read"])
        assert (created.tenant.name, created.scopes) == (name, ["sales:read"])
        assert created.api_key.startswith("fk_")
        tenant_id = str(created.tenant.id)
        key = await admin.admin.tenants.create_key(tenant_id, ["stock:read"], "reporting")
        keys = await admin.admin.tenants.keys(tenant_id)
        assert {(str(k.id), k.revoked_at is None) for k in keys} == {
            (str(created.key_id), True),
            (str(key.id), True),
        }
        await admin.admin.tenants.revoke_key(str(key.id))
        revoked = {str(k.id): k.revoked_at for k in await admin.admin.tenants.keys(tenant_id)}
        assert revoked[str(key.id)] is not None

        shown = await admin.admin.tenants.get(tenant_id)
        assert (str(shown.id), shown.name) == (tenant_id, name)
        assert (shown.keys.active, shown.keys.revoked) == (1, 1)
        listed = [t async for t in admin.admin.tenants.list(limit=50)]
        assert tenant_id in {str(t.id) for t in listed}
        assert len(listed) == (await admin.admin.tenants.list(limit=1).first_page()).total_count

        overview = await admin.admin.overview()
        assert {s.service for s in overview.services} >= {"orders", "stock", "webhooks"}
        integrity = await admin.admin.stock.check_integrity(tenant_id)
        assert integrity.ok and integrity.discrepancies == []

        page = await admin.admin.dead_letters.list("orders", state="dead", limit=5).first_page()
        assert page.limit == 5 and all(d.state == "dead" for d in page.items)
        with pytest.raises(fc.NotFound):
            await admin.admin.dead_letters.get("orders", 2**62)

    async with fc.AsyncClient(platform.gateway_url, admin_token="not-the-token") as stranger:
        with pytest.raises(fc.AuthFailed):
            await stranger.admin.tenants.keys(tenant_id)


async def test_a_real_webhook_is_verified_and_parsed(platform: Platform, tenant: Client) -> None:
    hook = await started()
    try:
        async with client_for(platform, tenant) as client:
            endpoint = await client.webhooks.endpoints.create(
                {"url": hook.url, "event_types": ["sale.created"]}
            )
            assert endpoint.secret.startswith("whsec_")
            sku, location = await stocked(client)
            sale_id = ref("SO")
            made = await client.sales.create(sale(sale_id, location, sku))

            async def arrivals() -> list[Any]:
                return list(hook.received)

            [arrival] = await eventually(arrivals, lambda a: len(a) >= 1, what="a delivery")
            event = WebhookVerifier(endpoint.secret).verify(arrival.body, arrival.headers)
            assert isinstance(event, events.SaleCreatedEvent)
            assert (event.type, event.dataversion) == ("sale.created", "2")
            assert (event.data.sale_id, event.data.id) == (sale_id, made.id)
            assert event.data.lines[0].sku == sku

            with pytest.raises(InvalidWebhook):
                WebhookVerifier(endpoint.secret).verify(arrival.body + b" ", arrival.headers)

            delivered = await eventually(
                lambda: client.webhooks.endpoints.deliveries(
                    str(endpoint.id), status="succeeded"
                ).to_list(),
                lambda found: len(found) == 1,
                what="the delivery succeeded",
            )
            across = await client.webhooks.deliveries.list(subject=delivered[0].subject).to_list()
            assert [d.id for d in across] == [delivered[0].id]
            one = await client.webhooks.deliveries.get(str(delivered[0].id))
            assert (one.event_type, one.webhook_id) == ("sale.created", arrival.webhook_id)
            assert one.attempts and one.attempts[0].status_code == 200
    finally:
        await hook.stop()


@contextlib.asynccontextmanager
async def strict_gateway(platform: Platform) -> AsyncIterator[str]:
    """One more gateway on the platform's services that allows each key 2 requests a
    second (a burst of 2), so a quick run of calls trips its rate limit."""
    [port] = free_ports(1)
    env = {
        **platform.service_env("gateway"),
        "RATE_LIMIT_PER_SECOND": "2",
        "RATE_LIMIT_BURST": "2",
    }
    env["PYTHONPATH"] = python_path("gateway", env.get("PYTHONPATH"))
    process = ServiceProcess(
        "gateway-strict", "gateway.app:create_app", port, env, platform["gateway"].log_file.parent
    )
    try:
        await asyncio.to_thread(process.start)
        await asyncio.to_thread(process.wait_ready, 60)
        yield process.url
    finally:
        await asyncio.to_thread(process.stop)


async def test_429s_are_retried_after_retry_after_with_the_same_idempotency_key(
    platform: Platform, tenant: Client
) -> None:
    answers: list[tuple[str, str | None, int, str | None]] = []

    async def seen(response: httpx.Response) -> None:
        request = response.request
        answers.append(
            (
                request.method,
                request.headers.get("Idempotency-Key"),
                response.status_code,
                response.headers.get("Retry-After"),
            )
        )

    async with strict_gateway(platform) as url:
        http = httpx.AsyncClient(event_hooks={"response": [seen]})
        retry = fc.RetryPolicy(max_attempts=6, max_total_seconds=30)
        async with fc.AsyncClient(url, api_key=tenant.key, retry=retry, http_client=http) as client:
            skus = [ref("R") for _ in range(5)]
            for sku in skus:  # in a row: the third trips the limit
                made = await client.products.create({"sku": sku, "name": "Bowl"})
                assert made.sku == sku
        await http.aclose()

    limited = [a for a in answers if a[2] == 429]
    assert limited, answers
    assert all(a[3] is not None and int(a[3]) >= 1 for a in limited)
    by_key: dict[str | None, list[int]] = {}
    for method, key, status, _ in answers:
        assert method == "POST" and key
        by_key.setdefault(key, []).append(status)
    assert len(by_key) == 5  # one key per call, kept over its retries
    assert all(statuses[-1] == 201 for statuses in by_key.values())
    assert any(statuses[:-1] and set(statuses[:-1]) == {429} for statuses in by_key.values())


WALKTHROUGH = Path(__file__).resolve().parents[2] / "clients/python/examples/walkthrough.py"


async def test_the_readme_walkthrough_runs_with_the_client(
    platform: Platform, tenant: Client
) -> None:
    env = {**os.environ, "FULFIL_URL": platform.gateway_url, "FULFIL_API_KEY": tenant.key or ""}
    env.pop("FULFIL_ADMIN_TOKEN", None)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(WALKTHROUGH)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("webhook secret, shown once: whsec_")
    assert lines[1:6] == [
        "SO-1001 pending",
        "warehouse-1 2 48",
        "backordered [('MUG-01', 60, 48)]",
        "409 conflict",
        "canceled",
    ]
    assert lines[6].startswith("waiting_for_picking ")
    assert lines[7] == "b'%PDF-'"
    assert "pending" in lines[8]  # then in_fulfillment, shipped as the events arrive
    assert lines[9].startswith("[") and "reservation" in lines[9]
    assert lines[10].startswith("404 no_content ")
