"""The transport: retries with backoff and `Retry-After`, bounded attempts and time, one
`Idempotency-Key` per call, OAuth2 token reuse, typed problems. HTTP is answered by httpx's
own `MockTransport`; time is a fake clock the sleeps advance."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import fulfil_client as fc
from fulfil_client._core import RetryPolicy

URL = "http://fulfil.test"
SALE = {
    "id": "5d1c0000-0000-0000-0000-000000000001",
    "sale_id": "SO-1",
    "status": "canceled",
}
PENDING = {
    **SALE,
    "status": "pending",
    "version": 2,
    "shop": {"id": "shop-1"},
    "location_id": None,
    "lines": [{"sku": "MUG-1", "quantity": 1}],
    "customer": None,
    "shipping_address": None,
    "cancel_reason": None,
    "reservation": None,
    "fulfillments": [],
    "created_at": "2026-11-30T10:00:00Z",
    "updated_at": "2026-11-30T10:00:01Z",
}


def problem(status: int, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:fulfil:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": f"{code} detail",
        "code": code,
        **extra,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


Handler = Callable[[httpx.Request], httpx.Response]


def recorder(answers: list[httpx.Response | Exception]) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, handle


def client(handler: Handler, clock: Clock, **kwargs: Any) -> fc.Client:
    kwargs.setdefault("api_key", "fk_test")
    kwargs.setdefault("retry", RetryPolicy(random=lambda: 1.0))
    c = fc.Client(URL, transport=httpx.MockTransport(handler), **kwargs)
    c._transport.sleep = clock.sleep
    c._transport.clock = clock
    return c


def async_client(handler: Handler, clock: Clock, **kwargs: Any) -> fc.AsyncClient:
    kwargs.setdefault("api_key", "fk_test")
    kwargs.setdefault("retry", RetryPolicy(random=lambda: 1.0))
    c = fc.AsyncClient(URL, transport=httpx.MockTransport(handler), **kwargs)
    c._transport.sleep = clock.asleep
    c._transport.clock = clock
    return c


def test_503_then_success_retries_with_exponential_backoff_and_one_idempotency_key() -> None:
    clock = Clock()
    seen, handle = recorder(
        [
            httpx.Response(503, json=problem(503, "unavailable")),
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, json=SALE),
        ]
    )
    answer = client(handle, clock).sales.cancel("SO-1", "other")

    assert answer.status == "canceled"
    assert [r.method for r in seen] == ["POST"] * 3
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(keys) == 1 and len(keys.pop()) == 36
    assert clock.sleeps == [0.25, 0.5]  # base 0.25 s, doubled; jitter pinned to its top


def test_each_call_gets_its_own_idempotency_key_and_gets_none() -> None:
    clock = Clock()
    seen, handle = recorder([httpx.Response(200, json=SALE)])
    c = client(handle, clock)
    c.sales.cancel("SO-1")
    c.sales.cancel("SO-1")
    c.request("GET", "/api/v1/sales/SO-1")
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]
    assert "Idempotency-Key" not in seen[2].headers


def test_a_given_idempotency_key_is_sent_as_is() -> None:
    clock = Clock()
    seen, handle = recorder([httpx.Response(200, json=SALE)])
    client(handle, clock).sales.cancel("SO-1", idempotency_key="mine-1")
    assert seen[0].headers["Idempotency-Key"] == "mine-1"


def test_jitter_stays_between_half_and_all_of_the_backoff() -> None:
    low = RetryPolicy(random=lambda: 0.0)
    high = RetryPolicy(random=lambda: 1.0)
    assert [low.backoff(n) for n in (1, 2, 3)] == [0.125, 0.25, 0.5]
    assert [high.backoff(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert high.backoff(20) == high.max_delay


def test_429_waits_for_retry_after_when_it_is_longer_than_the_backoff() -> None:
    clock = Clock()
    seen, handle = recorder(
        [
            httpx.Response(429, headers={"Retry-After": "2"}, json=problem(429, "rate_limit")),
            httpx.Response(200, json=SALE),
        ]
    )
    client(handle, clock).sales.cancel("SO-1")
    assert clock.sleeps == [2.0]
    assert len(seen) == 2


def test_attempts_are_bounded_then_the_typed_problem_is_raised() -> None:
    clock = Clock()
    seen, handle = recorder(
        [httpx.Response(429, headers={"Retry-After": "1"}, json=problem(429, "rate_limit"))]
    )
    with pytest.raises(fc.RateLimited) as caught:
        client(handle, clock, retry=RetryPolicy(max_attempts=3, random=lambda: 1.0)).sales.get(
            "SO-1"
        )
    assert len(seen) == 3
    assert caught.value.status == 429 and caught.value.code == "rate_limit"
    assert caught.value.retry_after == 1.0


def test_total_time_is_bounded_even_with_attempts_left() -> None:
    clock = Clock()
    seen, handle = recorder(
        [httpx.Response(503, headers={"Retry-After": "20"}, json=problem(503, "unavailable"))]
    )
    policy = RetryPolicy(max_attempts=10, max_total_seconds=30.0, random=lambda: 1.0)
    with pytest.raises(fc.Unavailable):
        client(handle, clock, retry=policy).sales.get("SO-1")
    assert clock.sleeps == [20.0]  # a second wait of 20 s would pass 30 s in all
    assert len(seen) == 2


def test_every_attempt_has_timeouts_within_what_is_left_of_the_budget() -> None:
    clock = Clock()
    seen, handle = recorder(
        [
            httpx.Response(503, headers={"Retry-After": "20"}, json=problem(503, "unavailable")),
            httpx.Response(200, json=SALE),
        ]
    )
    policy = RetryPolicy(max_total_seconds=30.0, random=lambda: 1.0)
    client(handle, clock, retry=policy, timeout=httpx.Timeout(25.0, connect=5.0)).sales.cancel(
        "SO-1"
    )
    first, second = (r.extensions["timeout"] for r in seen)
    assert first == {"connect": 5.0, "read": 25.0, "write": 25.0, "pool": 25.0}
    assert second == {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}


def test_connection_errors_are_retried_then_raised_as_connection_failed() -> None:
    clock = Clock()
    seen, handle = recorder([httpx.ConnectError("refused")])
    with pytest.raises(fc.ConnectionFailed) as caught:
        client(handle, clock).sales.cancel("SO-1")
    assert len(seen) == 4
    assert isinstance(caught.value, fc.Unavailable)
    assert caught.value.status == 0 and caught.value.code == "connection_failed"
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500, 504])
def test_other_statuses_are_not_retried(status: int) -> None:
    clock = Clock()
    seen, handle = recorder([httpx.Response(status, json=problem(status, "x"))])
    with pytest.raises(fc.ProblemError):
        client(handle, clock).sales.get("SO-1")
    assert len(seen) == 1 and clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", fc.BadRequest),
        (401, "invalid_token", fc.AuthFailed),
        (403, "no_permission", fc.PermissionDenied),
        (404, "no_content", fc.NotFound),
        (409, "conflict", fc.Conflict),
        (409, "duplicated", fc.Duplicated),
        (413, "too_large", fc.TooLarge),
        (422, "validation", fc.ValidationFailed),
        (428, "precondition_required", fc.PreconditionRequired),
        (429, "rate_limit", fc.RateLimited),
        (500, "internal", fc.ServerError),
        (503, "unavailable", fc.Unavailable),
        (504, "timeout", fc.Unavailable),
    ],
)
def test_problems_become_typed_errors(status: int, code: str, cls: type[Exception]) -> None:
    errors = [{"field": "/lines/0/quantity", "message": "must be positive", "in": "body"}]
    answer = httpx.Response(
        status,
        json=problem(status, code, errors=errors),
        headers={"Content-Type": "application/problem+json", "X-Request-Id": "r-1"},
    )
    _seen, handle = recorder([answer])
    with pytest.raises(cls) as caught:
        client(handle, Clock(), retry=fc.RetryPolicy(max_attempts=1)).sales.get("SO-1")
    error = caught.value
    assert isinstance(error, fc.ProblemError)
    assert (error.status, error.code, error.detail) == (status, code, f"{code} detail")
    assert error.title and error.errors == errors and error.request_id == "r-1"
    assert "/lines/0/quantity: must be positive" in str(error)


def test_an_answer_that_is_not_a_problem_still_gets_a_typed_error() -> None:
    _seen, handle = recorder([httpx.Response(502, text="<html>nginx</html>")])
    with pytest.raises(fc.Unavailable) as caught:
        client(handle, Clock(), retry=fc.RetryPolicy(max_attempts=1)).sales.get("SO-1")
    assert caught.value.code == "bad_gateway" and "nginx" in caught.value.detail


def test_if_match_is_sent_quoted() -> None:
    seen, handle = recorder([httpx.Response(200, json=SALE)])
    c = client(handle, Clock())
    c.sales.cancel("SO-1", version=4)
    c.sales.cancel("SO-1", version='"5"')
    c.sales.cancel("SO-1")
    assert seen[0].headers["If-Match"] == '"4"'
    assert seen[1].headers["If-Match"] == '"5"'
    assert "If-Match" not in seen[2].headers


def test_path_segments_are_escaped_and_the_version_header_sent() -> None:
    seen, handle = recorder([httpx.Response(200, json=PENDING)])
    client(handle, Clock()).sales.get("SO 1/2")
    assert seen[0].url.raw_path == b"/api/v1/sales/SO%201%2F2"
    assert seen[0].headers["X-API-Version"] == "v1"
    assert seen[0].headers["User-Agent"].startswith("fulfil-client-python/")


def test_admin_calls_use_the_admin_token_and_tenant_calls_the_key() -> None:
    seen, handle = recorder([httpx.Response(204)])
    c = client(handle, Clock(), admin_token="admin-secret")
    c.admin.tenants.revoke_key("k-1")
    assert seen[0].headers["Authorization"] == "Bearer admin-secret"
    with pytest.raises(fc.ConfigurationError):
        client(handle, Clock(), admin_token=None).admin.tenants.revoke_key("k-1")


def test_the_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFIL_URL", "http://env.test/")
    monkeypatch.setenv("FULFIL_API_KEY", "fk_env")
    monkeypatch.setenv("FULFIL_ADMIN_TOKEN", "adm_env")
    seen, handle = recorder([httpx.Response(200, json=PENDING)])
    c = fc.Client(transport=httpx.MockTransport(handle))
    c.sales.get("SO-1")
    assert str(seen[0].url) == "http://env.test/api/v1/sales/SO-1"
    assert seen[0].headers["Authorization"] == "Bearer fk_env"
    monkeypatch.delenv("FULFIL_URL")
    with pytest.raises(fc.ConfigurationError):
        fc.Client()


# --- OAuth2 client credentials ---------------------------------------------------------------


def token(value: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": value,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": "sales:read",
        },
    )


def oauth_client(handle: Handler, clock: Clock) -> fc.Client:
    credentials = fc.ClientCredentials("cid", "csecret", scope=["sales:read"], clock=clock)
    c = fc.Client(URL, credentials=credentials, transport=httpx.MockTransport(handle))
    c._transport.sleep = clock.sleep
    c._transport.clock = clock
    return c


def test_a_token_is_fetched_once_and_reused_until_it_nearly_expires() -> None:
    clock = Clock()
    seen: list[httpx.Request] = []
    tokens = iter(["fkt_1", "fkt_2"])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/oauth/token":
            return token(next(tokens), expires_in=300)
        return httpx.Response(200, json=PENDING)

    c = oauth_client(handle, clock)
    c.sales.get("SO-1")
    c.sales.get("SO-1")
    clock.now += 269  # 30 s before expiry: still used
    c.sales.get("SO-1")
    clock.now += 2  # within the margin: renewed
    c.sales.get("SO-1")

    paths = [r.url.path for r in seen]
    assert paths.count("/api/v1/oauth/token") == 2
    request = seen[0]
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.content == b"grant_type=client_credentials&scope=sales%3Aread"
    bearers = [r.headers["Authorization"] for r in seen if r.url.path != "/api/v1/oauth/token"]
    assert bearers == ["Bearer fkt_1"] * 3 + ["Bearer fkt_2"]


def test_a_token_refused_by_the_api_is_renewed_once() -> None:
    clock = Clock()
    seen: list[httpx.Request] = []
    tokens = iter(["fkt_old", "fkt_new"])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/oauth/token":
            return token(next(tokens))
        if request.headers["Authorization"] == "Bearer fkt_old":
            return httpx.Response(401, json=problem(401, "invalid_token"))
        return httpx.Response(200, json=PENDING)

    assert oauth_client(handle, clock).sales.get("SO-1").status == "pending"
    assert [r.url.path.rsplit("/", 1)[-1] for r in seen] == ["token", "SO-1", "token", "SO-1"]


def test_a_refused_client_raises_auth_failed_with_the_oauth_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "Unknown client."}
        )

    with pytest.raises(fc.AuthFailed) as caught:
        oauth_client(handle, Clock()).sales.get("SO-1")
    assert caught.value.code == "invalid_client" and caught.value.detail == "Unknown client."


def test_credentials_never_show_their_secret() -> None:
    assert "csecret" not in repr(fc.ClientCredentials("cid", "csecret"))


# --- asyncio ---------------------------------------------------------------------------------


def test_the_async_client_retries_the_same_way() -> None:
    clock = Clock()
    seen, handle = recorder(
        [
            httpx.ConnectError("refused"),
            httpx.Response(429, headers={"Retry-After": "3"}, json=problem(429, "rate_limit")),
            httpx.Response(200, json=SALE),
        ]
    )

    async def run() -> Any:
        async with async_client(handle, clock) as c:
            return await c.sales.cancel("SO-1", "customer_request", version=2)

    answer = asyncio.run(run())
    assert answer.status == "canceled"
    assert clock.sleeps == [0.25, 3.0]
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1
    assert seen[-1].read() == b'{"sale_id":"SO-1","cancel_reason":"customer_request"}'


def test_async_oauth_tokens_are_shared_by_concurrent_calls() -> None:
    clock = Clock()
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/api/v1/oauth/token":
            return token("fkt_1")
        return httpx.Response(200, json=PENDING)

    async def run() -> None:
        credentials = fc.ClientCredentials("cid", "csecret", clock=clock)
        async with fc.AsyncClient(
            URL, credentials=credentials, transport=httpx.MockTransport(handle)
        ) as c:
            await asyncio.gather(*(c.sales.get("SO-1") for _ in range(5)))

    asyncio.run(run())
    assert seen.count("/api/v1/oauth/token") == 1 and len(seen) == 6


def test_a_server_that_never_answers_costs_a_bounded_time() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        policy = RetryPolicy(max_attempts=10, base_delay=0.05, max_total_seconds=1.0)
        with fc.Client(f"http://127.0.0.1:{port}", api_key="fk", retry=policy) as c:
            started = time.monotonic()
            with pytest.raises(fc.ConnectionFailed) as caught:
                c.sales.get("SO-1")
            elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    assert "ReadTimeout" in caught.value.detail
