"""`API-Version` is added outside every other middleware of the gateway, so even the 500
the unhandled-error middleware answers carries it."""

import asyncio
from typing import Any

from fulfilkit.http.middleware import RequestIdMiddleware, UnhandledErrorMiddleware
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.versions import ApiVersionCheckMiddleware, ApiVersionHeaderMiddleware
from services.gateway.tests.harness import ADMIN_TOKEN, INTERNAL_TOKEN


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"api.test"), *headers],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def fails(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("a bug")


def test_the_header_middleware_is_the_outermost_and_the_check_wraps_both_doors() -> None:
    app = create_app(
        GatewaySettings(
            environment="production",
            database_url="postgresql://gateway@127.0.0.1:1/gateway",
            admin_token=ADMIN_TOKEN,
            internal_token=INTERNAL_TOKEN,
        )
    )
    names = [m.cls.__name__ for m in app.user_middleware]  # outermost first

    assert names[0] == ApiVersionHeaderMiddleware.__name__
    check = names.index(ApiVersionCheckMiddleware.__name__)
    assert names[check + 1 : check + 3] == ["AdminGuardMiddleware", "ForwardingMiddleware"]
    assert names.index(UnhandledErrorMiddleware.__name__) < check
    assert names.index(RequestIdMiddleware.__name__) < check


def test_a_500_carries_api_version() -> None:
    app = ApiVersionHeaderMiddleware(UnhandledErrorMiddleware(fails))

    start, body = asyncio.run(call(app, "/api/v1/sales", [(b"accept-version", b"1")]))

    assert start["status"] == 500
    assert (b"api-version", b"v1") in start["headers"]
    assert b'"code":"internal"' in body["body"]


def test_a_refused_version_is_answered_with_the_current_one_and_goes_no_further() -> None:
    app = ApiVersionHeaderMiddleware(ApiVersionCheckMiddleware(fails))

    start, body = asyncio.run(call(app, "/api/v1/sales", [(b"x-api-version", b"v2")]))

    assert start["status"] == 400
    assert (b"api-version", b"v1") in start["headers"]
    assert b'"supported_versions":["v1"]' in body["body"]
