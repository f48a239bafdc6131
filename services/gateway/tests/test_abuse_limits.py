"""Fail closed at the gateway: requests without a valid key and failed admin attempts are
limited per client address, and the admin API refuses oversized bodies before parsing."""

import asyncio
from typing import Any

import pytest

from services.gateway.tests.harness import ADMIN_TOKEN, RunningGateway, StartGateway
from tests.support import ref

pytestmark = pytest.mark.integration
PROBLEM_JSON = "application/problem+json"


def assert_problem(answer: tuple[int, Any, Any], expected: int, code: str) -> None:
    status, body, headers = answer
    assert status == expected, body
    assert headers["Content-Type"].startswith(PROBLEM_JSON)
    assert body["code"] == code and body["status"] == expected, body


async def test_requests_without_a_valid_key_are_limited_per_address(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(
        unauthenticated_rate_limit_per_second=0.01, unauthenticated_rate_limit_burst=3
    )
    tenant, later = await gateway.new_tenant(), await gateway.new_tenant()
    # a valid key's first lookup takes nothing from the address's allowance
    assert (await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]))[0] == 200

    for n in range(3):
        answer = await gateway.call("GET", "/api/v1/sales", key=f"fk_unknown-{ref('k')}-{n}")
        assert_problem(answer, 401, "invalid_token")
    for key in (f"fk_unknown-{ref('k')}", None, "not-even-a-key"):
        answer = await gateway.call("GET", "/api/v1/sales", key=key)
        assert_problem(answer, 429, "rate_limit")
        assert int(answer[2]["Retry-After"]) >= 1

    # a key already known to this gateway is never held back by the address's failures;
    # one not looked up yet waits like any other until the address may try again
    assert (await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]))[0] == 200
    assert_problem(
        await gateway.call("GET", "/api/v1/sales", key=later["api_key"]), 429, "rate_limit"
    )


async def test_a_valid_key_used_on_many_connections_at_once_is_not_refused(
    start_gateway: StartGateway,
) -> None:
    """A client opening many connections at once with a key this gateway has not looked up yet
    (its first requests, or the moment its cache entry expires) is one look-up, not a burst of
    requests "without a valid API key" from its address."""
    gateway = await start_gateway(
        unauthenticated_rate_limit_per_second=0.01, unauthenticated_rate_limit_burst=1
    )
    tenant = await gateway.new_tenant()

    answers = await asyncio.gather(
        *(gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]) for _ in range(40))
    )

    assert [status for status, _, _ in answers] == [200] * 40, [
        body for status, body, _ in answers if status != 200
    ]
    # the address's allowance is untouched: one wrong key is still answered as such
    assert_problem(
        await gateway.call("GET", "/api/v1/sales", key=f"fk_unknown-{ref('k')}"),
        401,
        "invalid_token",
    )


async def test_failed_admin_attempts_are_throttled_per_address(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(admin_failures_per_minute=0.5, admin_failures_burst=2)
    assert (
        await gateway.call("GET", "/api/v1/admin/tenants/" + "0" * 32 + "/keys", key=ADMIN_TOKEN)
    )[0] == 404  # successes are not counted
    for key in ("wrong-admin-token", None):
        answer = await gateway.call(
            "POST", "/api/v1/admin/tenants", key=key, json={"name": ref("gw-tenant")}
        )
        assert_problem(answer, 401, "invalid_token")

    name = ref("gw-tenant")
    answer = await gateway.call(
        "POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name}
    )
    assert_problem(answer, 429, "rate_limit")
    assert 1 <= int(answer[2]["Retry-After"]) <= 120

    other = await start_gateway()  # another gateway (as after the wait) shows nothing was made
    assert (
        await other.call("POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name})
    )[0] == 201


async def test_the_admin_api_refuses_a_large_body_before_parsing_it(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(admin_max_body_bytes=1024)
    name = ref("gw-tenant")
    big = {"name": name, "padding": "x" * 2000}

    assert_problem(
        await gateway.call("POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json=big),
        413,
        "too_large",
    )
    # not JSON at all: still 413, the body was never parsed
    status, body, headers = await raw_post(gateway, b"{" * 5000, chunked=False)
    assert_problem((status, body, headers), 413, "too_large")
    status, body, headers = await raw_post(gateway, b"[" * 5000, chunked=True)
    assert_problem((status, body, headers), 413, "too_large")
    # the token is checked first: a stranger's large body is refused unread
    assert_problem(
        await gateway.call("POST", "/api/v1/admin/tenants", key="wrong", json=big),
        401,
        "invalid_token",
    )
    assert (
        await gateway.call("POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": name})
    )[0] == 201


async def raw_post(gateway: RunningGateway, body: bytes, *, chunked: bool) -> tuple[int, Any, Any]:
    async def chunks() -> Any:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    async with gateway.http.post(
        gateway.url + "/api/v1/admin/tenants",
        data=chunks() if chunked else body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json(content_type=None), response.headers
