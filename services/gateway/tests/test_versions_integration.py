"""API versions at the gateway, on a real uvicorn server with real PostgreSQL and fake
services: the three version headers, the 400 for an unknown version before anything else is
checked, and `API-Version` on every answer, whichever door gives it."""

import asyncio
from typing import Any

import pytest
from aiohttp import web

from services.gateway.tests.harness import (
    ADMIN_TOKEN,
    FakeService,
    RunningGateway,
    StartGateway,
    closed_port_url,
)
from tests.support import ref

pytestmark = pytest.mark.integration
PROBLEM_JSON = "application/problem+json"
VERSION_HEADERS = ("X-API-Version", "Accept-Version", "X-OAKRA-API-VERSION")


def assert_unknown_version(status: int, body: Any, headers: Any, detail_starts: str) -> None:
    assert status == 400, body
    assert headers["Content-Type"].startswith(PROBLEM_JSON)
    assert headers["API-Version"] == "v1"
    assert len(headers["X-Request-Id"]) >= 16
    assert set(body) == {"type", "title", "status", "detail", "code", "supported_versions"}
    assert body["type"] == "urn:fulfil:problem:invalid_request"
    assert body["title"] == "Invalid request"
    assert body["status"] == 400
    assert body["code"] == "invalid_request"
    assert body["supported_versions"] == ["v1"]
    assert body["detail"].startswith(detail_starts), body["detail"]
    assert "supported: v1" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Version": "v1"},
        {"Accept-Version": "1"},
        {"X-OAKRA-API-VERSION": "v1"},
        {"Accept-Version": "v1", "X-API-Version": "1", "X-OAKRA-API-VERSION": "V1"},
    ],
)
async def test_each_version_header_is_accepted_and_the_answer_names_v1(
    gateway: RunningGateway, fakes: dict[str, FakeService], headers: dict[str, str]
) -> None:
    tenant = await gateway.new_tenant()

    status, body, answered = await gateway.call(
        "GET", "/api/v1/sales", key=tenant["api_key"], headers=headers
    )

    assert (status, body) == (200, {"echo": "/api/v1/sales"})
    assert answered["API-Version"] == "v1"
    assert len(fakes["orders"].requests_to("/api/v1/sales")) == 1


@pytest.mark.parametrize("name", VERSION_HEADERS)
async def test_an_unknown_version_is_400_and_never_reaches_the_service(
    gateway: RunningGateway, fakes: dict[str, FakeService], name: str
) -> None:
    tenant = await gateway.new_tenant()

    answer = await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"], headers={name: "v2"})

    assert_unknown_version(*answer, f"Unknown API version 'v2' in {name}; ")
    assert fakes["orders"].requests_to("/api/v1/sales") == []


async def test_one_wrong_header_among_right_ones_is_refused(gateway: RunningGateway) -> None:
    tenant = await gateway.new_tenant()
    headers = {"X-API-Version": "v1", "Accept-Version": "2", "X-OAKRA-API-VERSION": "v1"}

    answer = await gateway.call("GET", "/api/v1/products", key=tenant["api_key"], headers=headers)

    assert_unknown_version(*answer, "Unknown API version '2' in Accept-Version; ")


async def test_the_version_is_checked_before_the_key_and_on_the_admin_api(
    gateway: RunningGateway,
) -> None:
    without_key = await gateway.call("GET", "/api/v1/sales", headers={"Accept-Version": "0"})
    assert_unknown_version(*without_key, "Unknown API version '0' in Accept-Version; ")

    admin = await gateway.call(
        "POST",
        "/api/v1/admin/tenants",
        key=ADMIN_TOKEN,
        json={"name": ref("gw-tenant")},
        headers={"X-OAKRA-API-VERSION": "v3"},
    )
    assert_unknown_version(*admin, "Unknown API version 'v3' in X-OAKRA-API-VERSION; ")

    status, body, headers = await gateway.call(
        "POST",
        "/api/v1/admin/tenants",
        key=ADMIN_TOKEN,
        json={"name": ref("gw-tenant")},
        headers={"Accept-Version": "1"},
    )
    assert status == 201 and headers["API-Version"] == "v1", body


async def test_the_token_endpoint_refuses_an_unknown_version_in_its_own_error_format(
    gateway: RunningGateway,
) -> None:
    """OAuth2 client libraries read RFC 6749 errors only: the token endpoint's 400 is one."""
    status, body, headers = await gateway.call(
        "POST", "/api/v1/oauth/token", headers={"X-OAKRA-API-VERSION": "AAA"}
    )

    assert status == 400, body
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    assert headers["API-Version"] == "v1"
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith(
        "Unknown API version 'AAA' in X-OAKRA-API-VERSION; supported: v1"
    )


async def test_outside_the_api_the_version_headers_are_not_read(
    gateway: RunningGateway,
) -> None:
    for path in ("/health", "/openapi.json"):
        status, _, headers = await gateway.call("GET", path, headers={"Accept-Version": "9"})
        assert status == 200, path
        assert headers["API-Version"] == "v1", path


async def test_every_refusal_carries_api_version(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def conflict(request: web.Request) -> web.Response:
        return web.json_response({"code": "duplicated"}, status=409, content_type=PROBLEM_JSON)

    fakes["orders"].respond = conflict
    tenant = await gateway.new_tenant()
    reader = await gateway.new_key(tenant["tenant"]["id"], ["sales:read"])
    answers = {
        401: await gateway.call("GET", "/api/v1/sales"),
        403: await gateway.call("POST", "/api/v1/sales", key=reader["api_key"], json={}),
        409: await gateway.call("POST", "/api/v1/sales", key=tenant["api_key"], json={}),
    }
    answers[404] = await gateway.call("GET", "/api/v1/nothing-here", key=tenant["api_key"])
    outside_the_api = await gateway.call("GET", "/nothing-here")

    for expected, (status, body, headers) in [*answers.items(), (404, outside_the_api)]:
        assert status == expected, body
        assert headers["API-Version"] == "v1", expected
        assert headers["Content-Type"].startswith(PROBLEM_JSON), expected


async def test_a_replayed_answer_carries_api_version(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def created(request: web.Request) -> web.Response:
        return web.json_response({"sale_id": "S-1"}, status=201)

    fakes["orders"].respond = created
    tenant = await gateway.new_tenant()
    post = {"key": tenant["api_key"], "json": {"n": 1}, "headers": {"Idempotency-Key": ref("k")}}

    first = await gateway.call("POST", "/api/v1/sales", **post)
    again = await gateway.call("POST", "/api/v1/sales", **post)

    assert (first[0], again[0]) == (201, 201)
    assert again[2]["Idempotent-Replayed"] == "true"
    assert first[2]["API-Version"] == again[2]["API-Version"] == "v1"


async def test_429_503_and_504_carry_api_version(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    never = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    fakes["stock"].respond = stuck
    gateway = await start_gateway(
        rate_limit_per_second=0.01,
        rate_limit_burst=2,
        orders_url=closed_port_url(),
        upstream_timeout_seconds=0.3,
    )
    tenant = await gateway.new_tenant()
    try:
        unavailable = await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"])
        timeout = await gateway.call("GET", "/api/v1/products", key=tenant["api_key"])
    finally:
        never.set()
    limited = await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"])

    for expected, (status, body, headers) in ((503, unavailable), (504, timeout), (429, limited)):
        assert status == expected, body
        assert headers["API-Version"] == "v1", expected
        assert body["status"] == expected and body["code"], body
    assert int(limited[2]["Retry-After"]) >= 1


async def test_the_page_headers_of_a_list_reach_the_client(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.json_response(
            {"data": [], "pagination": {"total_count": 25, "offset": 10, "limit": 10}},
            headers={
                "Link": f"<{request.url.origin()}/api/v1/products?pageNumber=3&pageSize=10>;"
                ' rel="next"',
                "Total-Count": "25",
                "Total-Elements": "25",
                "Total-Pages": "3",
                "Page-Number": "2",
                "Page-Size": "10",
            },
        )

    fakes["stock"].respond = page
    tenant = await gateway.new_tenant()

    status, _, headers = await gateway.call(
        "GET", "/api/v1/products?pageNumber=2&pageSize=10", key=tenant["api_key"]
    )

    assert status == 200
    assert headers["Link"] == '</api/v1/products?pageNumber=3&pageSize=10>; rel="next"'
    assert [headers[n] for n in ("Total-Count", "Total-Elements", "Total-Pages")] == [
        "25",
        "25",
        "3",
    ]
    assert (headers["Page-Number"], headers["Page-Size"]) == ("2", "10")
    assert fakes["stock"].received[-1].query == "pageNumber=2&pageSize=10"
