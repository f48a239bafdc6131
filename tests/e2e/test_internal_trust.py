"""Internal calls authenticate the calling service: each service answers only the callers it
needs (the gateway everywhere, fulfilment on orders' claim and ship), and a tenant header
counts only with a valid caller credential."""

from typing import Any

import aiohttp

from deploy.local.services import Platform
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, ref

PROBLEM_JSON = "application/problem+json"
PUBLIC_PATHS = {
    "orders": "/api/v1/sales",
    "stock": "/api/v1/products",
    "fulfilment": "/api/v1/fulfillment/fulfillments/F-none",
    "webhooks": "/api/v1/webhooks/endpoints",
}


async def call(
    http: aiohttp.ClientSession,
    url: str,
    method: str,
    *,
    token: str | None,
    tenant: Client,
    json: Any = None,
) -> tuple[int, Any, Any]:
    headers = {"X-Tenant-Id": str(tenant.tenant_id), "X-Actor": "key:forged"}
    if token is not None:
        headers["X-Internal-Token"] = token
    async with http.request(method, url, json=json, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


def assert_refused(answer: tuple[int, Any, Any], status: int, code: str) -> None:
    got, body, headers = answer
    assert got == status, body
    assert headers["Content-Type"].startswith(PROBLEM_JSON)
    assert body["code"] == code and body["status"] == status and body["detail"], body


async def pending_sale(tenant: Client) -> str:
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert (created.status, created.body["status"]) == (201, "pending"), created
    return sale_id


async def test_tenant_headers_without_a_valid_caller_credential_are_ignored(
    platform: Platform, http: aiohttp.ClientSession, tenant: Client
) -> None:
    sale_id = await pending_sale(tenant)
    for service, path in {**PUBLIC_PATHS, "orders": f"/api/v1/sales/{sale_id}"}.items():
        url = platform[service].url + path
        for token in (None, "", "x" * 43, platform.internal_token + "x", "tök€n"):
            assert_refused(
                await call(http, url, "GET", token=token, tenant=tenant), 401, "invalid_token"
            )
        status, body, _ = await call(http, url, "GET", token=platform.internal_token, tenant=tenant)
        assert status == (404 if service == "fulfilment" else 200), (service, body)


async def test_fulfilments_credential_works_on_orders_claim_and_ship_only(
    platform: Platform, http: aiohttp.ClientSession, tenant: Client
) -> None:
    sale_id = await pending_sale(tenant)
    fulfilment = platform.internal_tokens["fulfilment"]
    orders = platform["orders"].url

    # fulfilment may not act as the gateway on any public route
    assert_refused(
        await call(
            http, f"{orders}/api/v1/sales/{sale_id}", "GET", token=fulfilment, tenant=tenant
        ),
        403,
        "no_permission",
    )
    assert_refused(
        await call(
            http,
            f"{orders}/api/v1/sales/cancel",
            "POST",
            token=fulfilment,
            tenant=tenant,
            json={"sale_id": sale_id, "cancel_reason": "other"},
        ),
        403,
        "no_permission",
    )
    for service, path in PUBLIC_PATHS.items():  # the others do not even know it
        if service != "orders":
            assert_refused(
                await call(
                    http, platform[service].url + path, "GET", token=fulfilment, tenant=tenant
                ),
                401,
                "invalid_token",
            )
    # and the gateway may not claim or ship: only fulfilment does
    for path in ("/internal/sales/claim", "/internal/sales/ship"):
        assert_refused(
            await call(
                http,
                orders + path,
                "POST",
                token=platform.internal_token,
                tenant=tenant,
                json={"sale_ids": [sale_id]},
            ),
            403,
            "no_permission",
        )
    assert_refused(
        await call(
            http,
            orders + "/internal/sales/ship",
            "POST",
            token=None,
            tenant=tenant,
            json={"sale_ids": [sale_id]},
        ),
        401,
        "invalid_token",
    )
    # one ship path: the batch; there is no single-sale one, not even for fulfilment
    assert_refused(
        await call(
            http, f"{orders}/internal/sales/{sale_id}/ship", "POST", token=fulfilment, tenant=tenant
        ),
        404,
        "no_content",
    )
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "pending"

    status, claimed, _ = await call(
        http,
        orders + "/internal/sales/claim",
        "POST",
        token=fulfilment,
        tenant=tenant,
        json={"sale_ids": [sale_id]},
    )
    assert status == 200, claimed
    assert [sale["sale_id"] for sale in claimed["claimed"]] == [sale_id]
    assert claimed["errors"] == []
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "in_fulfillment"

    status, shipped, _ = await call(
        http,
        orders + "/internal/sales/ship",
        "POST",
        token=fulfilment,
        tenant=tenant,
        json={"sale_ids": [sale_id]},
    )
    assert (status, shipped) == (200, {"shipped": [sale_id], "errors": []})
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "shipped"


def test_the_webhooks_service_holds_no_credential(platform: Platform) -> None:
    env = platform["webhooks"].env
    held = set(env.values())
    assert "INTERNAL_TOKEN" not in env and "ADMIN_TOKEN" not in env
    assert not {platform.admin_token, *platform.internal_tokens.values()} & held
    assert platform["fulfilment"].env["INTERNAL_TOKEN"] == platform.internal_tokens["fulfilment"]
