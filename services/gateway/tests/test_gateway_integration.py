"""The gateway end to end: real PostgreSQL, a real uvicorn server, fake services over HTTP."""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services.gateway.tests.harness import (
    ADMIN_TOKEN,
    INTERNAL_TOKEN,
    FakeService,
    RunningGateway,
    StartGateway,
    closed_port_url,
    wait_until,
)
from tests.support import eventually, ref

pytestmark = pytest.mark.integration
PROBLEM_JSON = "application/problem+json"


def assert_problem(status: int, body: Any, headers: Any, expected: int, code: str) -> None:
    assert status == expected, body
    assert headers["Content-Type"].startswith(PROBLEM_JSON)
    assert body["code"] == code and body["status"] == expected
    assert "Traceback" not in str(body)


async def test_admin_creates_a_tenant_whose_first_key_has_every_scope_but_admin(
    gateway: RunningGateway,
) -> None:
    name = ref("gw-tenant")
    status, body, _ = await gateway.call(
        "POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name}
    )

    assert status == 201, body
    assert body["tenant"]["name"] == name and body["tenant"]["id"] and body["tenant"]["created_at"]
    assert body["api_key"].startswith("fk_")
    assert body["scopes"] == [
        "sales:read",
        "sales:write",
        "stock:read",
        "stock:write",
        "fulfillment:read",
        "fulfillment:write",
        "webhooks:read",
        "webhooks:write",
    ]
    status, _, _ = await gateway.call("GET", "/api/v1/sales", key=body["api_key"])
    assert status == 200
    status, problem, headers = await gateway.call(
        "GET", "/api/v1/stock/integrity", key=body["api_key"]
    )
    assert_problem(status, problem, headers, 403, "no_permission")


async def test_the_first_key_gets_the_scopes_asked_for(gateway: RunningGateway) -> None:
    status, body, _ = await gateway.call(
        "POST",
        "/api/v1/admin/tenants",
        key=ADMIN_TOKEN,
        json={"name": ref("gw-tenant"), "scopes": ["sales:read", "admin"]},
    )

    assert status == 201, body
    assert body["scopes"] == ["sales:read", "admin"]
    assert (await gateway.call("GET", "/api/v1/sales", key=body["api_key"]))[0] == 200
    assert (await gateway.call("GET", "/api/v1/stock/integrity", key=body["api_key"]))[0] == 200
    status, problem, headers = await gateway.call(
        "POST", "/api/v1/sales", key=body["api_key"], json={}
    )
    assert_problem(status, problem, headers, 403, "no_permission")
    for scopes in ([], ["sales:read", "everything"]):
        status, problem, headers = await gateway.call(
            "POST",
            "/api/v1/admin/tenants",
            key=ADMIN_TOKEN,
            json={"name": ref("gw-tenant"), "scopes": scopes},
        )
        assert_problem(status, problem, headers, 422, "validation")
        assert problem["errors"][0]["field"].startswith("/scopes"), problem


async def test_admin_routes_refuse_a_wrong_or_missing_admin_token(
    gateway: RunningGateway,
) -> None:
    tenant = await gateway.new_tenant()
    for key in (None, "not-the-admin-token", tenant["api_key"]):
        status, body, headers = await gateway.call(
            "POST", "/api/v1/admin/tenants", key=key, json={"name": ref("gw-tenant")}
        )
        assert_problem(status, body, headers, 401, "invalid_token")
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_duplicate_tenant_name_is_409(gateway: RunningGateway) -> None:
    name = ref("gw-tenant")
    first, *_ = await gateway.call(
        "POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name}
    )
    status, body, headers = await gateway.call(
        "POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name}
    )
    assert first == 201
    assert_problem(status, body, headers, 409, "duplicated")


async def test_admin_issues_lists_and_revokes_keys(gateway: RunningGateway) -> None:
    tenant = await gateway.new_tenant()
    key = await gateway.new_key(tenant["tenant"]["id"], ["sales:read"])
    assert key["scopes"] == ["sales:read"] and key["api_key"].startswith(key["prefix"])
    assert (await gateway.call("GET", "/api/v1/sales", key=key["api_key"]))[0] == 200

    status, listing, _ = await gateway.call(
        "GET", f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys", key=ADMIN_TOKEN
    )
    assert status == 200
    assert {k["id"] for k in listing["data"]} == {tenant["key_id"], key["id"]}
    assert all("api_key" not in k for k in listing["data"])

    status, *_ = await gateway.call("DELETE", f"/api/v1/admin/keys/{key['id']}", key=ADMIN_TOKEN)
    assert status == 204
    status, body, headers = await gateway.call("GET", "/api/v1/sales", key=key["api_key"])
    assert_problem(status, body, headers, 401, "invalid_token")


async def test_keys_for_an_unknown_tenant_or_bad_scopes_are_refused(
    gateway: RunningGateway,
) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    status, body, headers = await gateway.call(
        "POST",
        f"/api/v1/admin/tenants/{unknown}/keys",
        key=ADMIN_TOKEN,
        json={"scopes": ["sales:read"]},
    )
    assert_problem(status, body, headers, 404, "no_content")
    tenant = await gateway.new_tenant()
    status, body, headers = await gateway.call(
        "POST",
        f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys",
        key=ADMIN_TOKEN,
        json={"scopes": ["everything"]},
    )
    assert_problem(status, body, headers, 422, "validation")


async def test_a_missing_or_unknown_api_key_is_401(gateway: RunningGateway) -> None:
    for key in (None, "fk_unknown", "not-even-a-key"):
        status, body, headers = await gateway.call("GET", "/api/v1/sales", key=key)
        assert_problem(status, body, headers, 401, "invalid_token")
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_missing_scope_is_403_and_never_reaches_the_service(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    tenant = await gateway.new_tenant()
    reader = await gateway.new_key(tenant["tenant"]["id"], ["sales:read"])

    for method, path in (
        ("POST", "/api/v1/sales"),
        ("GET", "/api/v1/products"),
        ("DELETE", "/api/v1/webhooks/endpoints/1"),
    ):
        status, body, headers = await gateway.call(method, path, key=reader["api_key"], json={})
        assert_problem(status, body, headers, 403, "no_permission")
    assert (await gateway.call("GET", "/api/v1/sales", key=reader["api_key"]))[0] == 200
    assert [(r.method, r.path) for f in fakes.values() for r in f.received] == [
        ("GET", "/api/v1/sales")
    ]


async def test_an_unknown_resource_is_404(gateway: RunningGateway) -> None:
    tenant = await gateway.new_tenant()
    for path in ("/api/v1/nothing-here", "/api/v1"):
        status, body, headers = await gateway.call("GET", path, key=tenant["api_key"])
        assert_problem(status, body, headers, 404, "no_content")
    status, body, headers = await gateway.call("GET", "/api/v1/admin/unknown", key=ADMIN_TOKEN)
    assert_problem(status, body, headers, 404, "no_content")


async def test_each_resource_goes_to_the_service_that_owns_it(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    tenant = await gateway.new_tenant()
    owners = {
        "/api/v1/sales/S-1": "orders",
        "/api/v1/products": "stock",
        "/api/v1/locations": "stock",
        "/api/v1/stock/stock-records": "stock",
        "/api/v1/fulfillment/fulfillments/7": "fulfilment",
        "/api/v1/webhooks/endpoints": "webhooks",
    }
    for path, service in owners.items():
        status, body, _ = await gateway.call("GET", path + "/", key=tenant["api_key"])
        assert status == 200 and body == {"echo": path}, (path, body)
        assert fakes[service].requests_to(path), f"{path} did not reach {service}"

    await gateway.call("GET", "/api/v1/products/A%2FB?x=%20", key=tenant["api_key"])
    assert (fakes["stock"].received[-1].raw_path) == "/api/v1/products/A%2FB?x=%20"


async def test_a_405_comes_from_the_owning_service_with_its_allow(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def not_allowed(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "method_not_allowed"}, status=405, headers={"Allow": "GET, HEAD, POST"}
        )

    fakes["orders"].respond = not_allowed
    tenant = await gateway.new_tenant()
    status, body, headers = await gateway.call(
        "OPTIONS", "/api/v1/sales", key=tenant["api_key"], headers={"X-Request-Id": "req-405"}
    )
    assert status == 405 and body == {"code": "method_not_allowed"}
    assert headers["Allow"] == "GET, HEAD, POST"
    assert headers["X-Request-Id"] == "req-405"
    assert [r.method for r in fakes["orders"].received] == ["OPTIONS"]


async def test_an_empty_answer_is_forwarded_without_a_body(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    fakes["webhooks"].respond = no_content
    tenant = await gateway.new_tenant()
    status, body, headers = await gateway.call(
        "DELETE", "/api/v1/webhooks/endpoints/E-1", key=tenant["api_key"]
    )
    assert status == 204 and body == b"" and "Content-Length" not in headers
    status, body, headers = await gateway.call("HEAD", "/api/v1/sales", key=tenant["api_key"])
    assert status == 200 and body == b""


async def test_a_body_over_the_limit_is_413_and_never_reaches_the_service(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    gateway = await start_gateway(max_request_body_bytes=1000)
    tenant = await gateway.new_tenant()
    fakes["orders"].received.clear()
    auth = {"Authorization": f"Bearer {tenant['api_key']}"}
    at_limit = b'{"note":"' + b"x" * (1000 - len(b'{"note":""}')) + b'"}'
    async with gateway.http.post(
        gateway.url + "/api/v1/sales", data=at_limit, headers=auth
    ) as response:
        assert response.status == 200
    status, body, headers = await gateway.call(
        "POST", "/api/v1/sales", key=tenant["api_key"], json={"note": "x" * 1000}
    )
    assert_problem(status, body, headers, 413, "too_large")

    async def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(4):
            yield b"x" * 400

    async with gateway.http.post(
        gateway.url + "/api/v1/sales", data=chunks(), headers=auth
    ) as response:
        assert response.status == 413
        assert (await response.json(content_type=None))["code"] == "too_large"
    assert len(fakes["orders"].received) == 1, "only the request at the limit went through"


async def test_a_forwarded_request_carries_the_tenant_and_only_chosen_headers(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def created(request: web.Request) -> web.Response:
        return web.json_response(
            {"sale_id": "S-1"},
            status=201,
            headers={
                "Link": f'<{request.url.origin()}/api/v1/sales?offset=100>; rel="next"',
                "Total-Count": "250",
                "Location": "/api/v1/sales/S-1",
                "ETag": '"3"',
                "Preference-Applied": "respond-async",
                "X-Upstream-Secret": "hidden",
            },
        )

    fakes["orders"].respond = created
    tenant = await gateway.new_tenant()
    status, body, headers = await gateway.call(
        "POST",
        "/api/v1/sales/?wait=1",
        key=tenant["api_key"],
        json={"sale_id": "S-1"},
        headers={
            "Prefer": "respond-async",
            "If-Match": "2",
            "X-Request-Id": "req-123",
            "X-Forwarded-Evil": "1",
            "Cookie": "a=b",
            "Idempotency-Key": "k-1",
        },
    )

    assert status == 201 and body == {"sale_id": "S-1"}
    assert headers["Link"] == '</api/v1/sales?offset=100>; rel="next"'
    assert headers["Total-Count"] == "250" and headers["Location"] == "/api/v1/sales/S-1"
    assert headers["ETag"] == '"3"' and headers["Preference-Applied"] == "respond-async"
    assert "X-Upstream-Secret" not in headers
    [seen] = fakes["orders"].received
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v1/sales", "wait=1")
    assert json.loads(seen.body) == {"sale_id": "S-1"}
    assert seen.headers["X-Tenant-Id"] == tenant["tenant"]["id"]
    assert seen.headers["X-Internal-Token"] == INTERNAL_TOKEN
    assert seen.headers["X-Actor"] == f"key:{tenant['key_id']}"
    assert seen.headers["X-Request-Id"] == "req-123"
    assert seen.headers["Prefer"] == "respond-async" and seen.headers["If-Match"] == "2"
    assert seen.headers["Idempotency-Key"] == "k-1"
    assert seen.headers["Content-Type"] == "application/json"
    for hidden in ("Authorization", "X-Forwarded-Evil", "Cookie"):
        assert hidden not in seen.headers


async def test_upstream_errors_come_back_as_they_are(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def conflict(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "duplicated", "status": 409},
            status=409,
            content_type="application/problem+json",
        )

    fakes["orders"].respond = conflict
    tenant = await gateway.new_tenant()
    status, body, headers = await gateway.call(
        "POST", "/api/v1/sales", key=tenant["api_key"], json={}
    )
    assert status == 409 and body["code"] == "duplicated"
    assert headers["Content-Type"].startswith(PROBLEM_JSON)


async def test_only_api_version_v1_is_accepted(gateway: RunningGateway) -> None:
    tenant = await gateway.new_tenant()
    ok, *_ = await gateway.call(
        "GET", "/api/v1/sales", key=tenant["api_key"], headers={"X-API-Version": "v1"}
    )
    status, body, headers = await gateway.call(
        "GET", "/api/v1/sales", key=tenant["api_key"], headers={"X-API-Version": "v2"}
    )
    assert ok == 200
    assert_problem(status, body, headers, 400, "invalid_request")


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(rate_limit_per_second=0.01, rate_limit_burst=2)
    tenant, other = await gateway.new_tenant(), await gateway.new_tenant()

    statuses = [
        (await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]))[0] for _ in range(2)
    ]
    status, body, headers = await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"])

    assert statuses == [200, 200]
    assert_problem(status, body, headers, 429, "rate_limit")
    assert int(headers["Retry-After"]) >= 1
    assert (await gateway.call("GET", "/api/v1/sales", key=other["api_key"]))[0] == 200


async def test_an_idempotent_retry_replays_the_first_answer(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    answers = iter(range(1, 100))

    async def numbered(request: web.Request) -> web.Response:
        return web.json_response(
            {"answer": next(answers)}, status=201, headers={"Location": "/api/v1/sales/S-9"}
        )

    fakes["orders"].respond = numbered
    tenant = await gateway.new_tenant()
    post = {
        "key": tenant["api_key"],
        "json": {"sale_id": "S-9"},
        "headers": {"Idempotency-Key": ref("idem")},
    }

    first = await gateway.call("POST", "/api/v1/sales", **post)
    again = await gateway.call("POST", "/api/v1/sales/", **post)

    assert first[:2] == again[:2] == (201, {"answer": 1})
    assert again[2]["Location"] == "/api/v1/sales/S-9"
    assert again[2]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first[2]
    assert len(fakes["orders"].received) == 1


async def test_the_same_idempotency_key_with_another_body_or_path_is_409(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    tenant = await gateway.new_tenant()
    headers = {"Idempotency-Key": ref("idem")}
    first, *_ = await gateway.call(
        "POST", "/api/v1/sales", key=tenant["api_key"], json={"sale_id": "A"}, headers=headers
    )
    other_body = await gateway.call(
        "POST", "/api/v1/sales", key=tenant["api_key"], json={"sale_id": "B"}, headers=headers
    )
    other_path = await gateway.call(
        "POST",
        "/api/v1/sales/cancel",
        key=tenant["api_key"],
        json={"sale_id": "A"},
        headers=headers,
    )

    assert first == 200
    assert_problem(*other_body, 409, "conflict")
    assert_problem(*other_path, 409, "conflict")
    assert len(fakes["orders"].received) == 1


async def test_idempotency_keys_belong_to_one_tenant(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    headers = {"Idempotency-Key": ref("idem")}
    for tenant in (await gateway.new_tenant(), await gateway.new_tenant()):
        status, _, response_headers = await gateway.call(
            "POST", "/api/v1/sales", key=tenant["api_key"], json={"n": 1}, headers=headers
        )
        assert status == 200 and "Idempotent-Replayed" not in response_headers
    assert len(fakes["orders"].received) == 2


async def test_a_retry_while_the_first_is_in_progress_is_409(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"done": True}, status=201)

    fakes["orders"].respond = slow
    tenant = await gateway.new_tenant()
    post = {
        "key": tenant["api_key"],
        "json": {"sale_id": "S-2"},
        "headers": {"Idempotency-Key": ref("idem")},
    }

    first = asyncio.create_task(gateway.call("POST", "/api/v1/sales", **post))
    await wait_until(lambda: len(fakes["orders"].received) == 1, "first request upstream")
    status, body, headers = await gateway.call("POST", "/api/v1/sales", **post)
    release.set()

    assert_problem(status, body, headers, 409, "conflict")
    assert "in progress" in body["detail"]
    assert (await first)[:2] == (201, {"done": True})
    assert (await gateway.call("POST", "/api/v1/sales", **post))[:2] == (201, {"done": True})
    assert len(fakes["orders"].received) == 1


async def test_a_server_error_is_not_kept_so_the_retry_goes_through(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    statuses = iter([500, 201])

    async def flaky(request: web.Request) -> web.Response:
        return web.json_response({}, status=next(statuses))

    fakes["orders"].respond = flaky
    tenant = await gateway.new_tenant()
    post = {"key": tenant["api_key"], "json": {}, "headers": {"Idempotency-Key": ref("idem")}}

    assert (await gateway.call("POST", "/api/v1/sales", **post))[0] == 500
    assert (await gateway.call("POST", "/api/v1/sales", **post))[0] == 201
    assert len(fakes["orders"].received) == 2


async def test_an_over_long_idempotency_key_is_400(gateway: RunningGateway) -> None:
    tenant = await gateway.new_tenant()
    answer = await gateway.call(
        "POST",
        "/api/v1/sales",
        key=tenant["api_key"],
        json={},
        headers={"Idempotency-Key": "k" * 256},
    )
    assert_problem(*answer, 400, "invalid_request")


async def test_a_service_that_is_down_is_503_and_frees_the_idempotency_key(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(orders_url=closed_port_url())
    tenant = await gateway.new_tenant()
    post = {"key": tenant["api_key"], "json": {}, "headers": {"Idempotency-Key": ref("idem")}}

    for _ in range(2):  # the second is a retry: 503 again, not 409
        status, body, headers = await gateway.call("POST", "/api/v1/sales", **post)
        assert_problem(status, body, headers, 503, "unavailable")


async def test_a_service_that_does_not_answer_in_time_is_504(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    never = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    fakes["stock"].respond = stuck
    gateway = await start_gateway(upstream_timeout_seconds=0.3)
    tenant = await gateway.new_tenant()
    try:
        answer = await gateway.call("GET", "/api/v1/products", key=tenant["api_key"])
    finally:
        never.set()
    assert_problem(*answer, 504, "timeout")


async def test_asyncapi_describes_the_events_on_the_configured_broker(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(kafka_bootstrap_servers="broker-a:9092")
    status, document, headers = await gateway.call("GET", "/asyncapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert "sale.status_changed" in document["channels"]
    assert document["channels"]["stock.low"]["address"] == "stock.events"
    assert "broker-a:9092" in str(document["servers"])


async def test_openapi_merges_the_services_documents(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    for name, fake in fakes.items():
        fake.openapi = {
            "openapi": "3.1.0",
            "info": {"title": name, "version": "1"},
            "paths": {
                f"/api/v1/{name}-things": {
                    "get": {
                        "responses": {
                            "200": {
                                "description": "ok",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Thing"}
                                    }
                                },
                            }
                        }
                    }
                },
                "/internal/secret": {"post": {"responses": {}}},
            },
            "components": {"schemas": {"Thing": {"type": "object", "title": name}}},
        }
    gateway = await start_gateway()

    status, doc, _ = await gateway.call("GET", "/openapi.json")

    assert status == 200
    assert doc["info"]["title"] == "Fulfil API" and doc["info"]["version"] == "v1"
    assert "/api/v1/admin/tenants" in doc["paths"]
    assert {f"/api/v1/{name}-things" for name in fakes} <= set(doc["paths"])
    assert not any(path.startswith("/internal") for path in doc["paths"])
    assert doc["security"] == [{"apiKey": []}]
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    stock_ref = doc["paths"]["/api/v1/stock-things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert doc["components"]["schemas"][stock_ref.rsplit("/", 1)[1]]["title"] == "stock"
    status, page, headers = await gateway.call("GET", "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"/openapi.json" in page


async def test_openapi_shows_a_redeployed_services_new_routes_after_the_cache_time(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    def document(path: str) -> dict:
        return {
            "openapi": "3.1.0",
            "info": {"title": "orders", "version": "1"},
            "paths": {path: {"get": {"responses": {"200": {"description": "ok"}}}}},
        }

    for fake in fakes.values():
        fake.openapi = document(f"/api/v1/{fake.name}-things")
    gateway = await start_gateway(openapi_cache_seconds=0.5)
    assert "/api/v1/orders-things" in (await gateway.call("GET", "/openapi.json"))[1]["paths"]
    fakes["orders"].openapi = document("/api/v1/orders-new-things")

    async def paths() -> set[str]:
        return set((await gateway.call("GET", "/openapi.json"))[1]["paths"])

    shown = await eventually(
        paths,
        lambda p: "/api/v1/orders-new-things" in p,
        what="the new route in the merged document",
    )
    assert "/api/v1/orders-things" not in shown


async def test_openapi_serves_what_it_has_when_a_service_is_down(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(webhooks_url=closed_port_url())
    status, doc, _ = await gateway.call("GET", "/openapi.json")
    assert status == 200 and "/api/v1/admin/tenants" in doc["paths"]


async def test_ready_checks_the_database(gateway: RunningGateway) -> None:
    status, body, _ = await gateway.call("GET", "/ready")
    assert status == 200 and body["checks"]["database"] is True


async def test_the_cli_creates_a_tenant_whose_key_works(
    gateway: RunningGateway,
) -> None:
    service_root = Path(__file__).resolve().parents[1]
    repo = service_root.parents[1]
    env = {
        **os.environ,
        "DATABASE_URL": gateway.settings.database_url,
        "PYTHONPATH": os.pathsep.join([str(service_root), str(repo / "libs"), str(repo)]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "create-tenant",
        ref("gw-cli"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    key = out.decode().strip()
    assert key.startswith("fk_")
    assert (await gateway.call("GET", "/api/v1/sales", key=key))[0] == 200
    assert (await gateway.call("GET", "/api/v1/stock/integrity", key=key))[0] == 403

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--json",
        "create-tenant",
        ref("gw-cli"),
        "--scope",
        "stock:read",
        "--scope",
        "admin",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    record = json.loads(out)
    assert record["scopes"] == ["stock:read", "admin"]
    assert (await gateway.call("GET", "/api/v1/stock/integrity", key=record["api_key"]))[0] == 200
    assert (await gateway.call("GET", "/api/v1/sales", key=record["api_key"]))[0] == 403
