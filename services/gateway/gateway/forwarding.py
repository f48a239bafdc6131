"""The public API's hot path: every `/api/v1/...` request outside the admin API is checked
(version, key, rate limit, scope) and forwarded here, at the ASGI level.

FastAPI's routing, exception middleware and request objects cost about as much CPU as the
forwarding itself, and this path needs none of them: it has no parameters to parse, and its
only errors are problems it raises itself. Everything else (admin API, docs, health) goes
on to the FastAPI app. Request ids and trailing slashes are handled by the middleware
around this one, as for every route.
"""

import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.http.problems import Problem, dependency_outage, problem_response
from gateway import store
from gateway.api import STATE_KEY, GatewayState, check_api_version
from gateway.auth import Caller, bearer_token, invalid_token, required_scope
from gateway.proxy import (
    API_PREFIX,
    UpstreamCall,
    forward_once,
    forwarded_headers,
    route_for,
    upstream_path,
)
from gateway.ratelimit import client_address, retry_after

log = logging.getLogger(__name__)

ADMIN_PREFIX = API_PREFIX + "/admin"


def is_forwarded(path: str) -> bool:
    """Paths under /api/v1 belong to the services, except the gateway's own admin API."""
    return path.startswith(API_PREFIX + "/") and not (
        path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
    )


class ForwardingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_forwarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            status, headers, body = await self._answer(scope, receive)
        except ClientGone:
            return
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        except Exception as exc:
            if (outage := dependency_outage(exc)) is None:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            else:
                log.warning("%s %s answered 503: %r", scope["method"], scope["path"], exc)
            problem = outage or Problem("internal", "An unexpected error occurred.")
            await problem_response(problem)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # Every method goes on: the service that owns the path answers 405 with its `Allow`.
        method: str = scope["method"]
        path: str = scope["path"]
        headers = Headers(scope=scope)
        state: GatewayState = scope["app"].state.runtime.extras[STATE_KEY]
        await check_api_version(headers.get("x-api-version"))
        caller = await caller_of(state, scope, headers.get("authorization"))
        wait = state.limiter.wait_seconds(caller.key_id)
        if wait > 0:
            raise Problem(
                "rate_limit",
                "Too many requests for this API key.",
                headers={"Retry-After": retry_after(wait)},
            )
        route = route_for(path)
        if route is None:
            raise Problem("no_content", "No such resource.")
        needed = required_scope(route.area, method, path.rstrip("/"))
        if needed not in caller.scopes:
            raise Problem("no_permission", f"This API key lacks the {needed!r} scope.")
        call = UpstreamCall(
            service=route.service,
            method=method,
            path=upstream_path(scope.get("raw_path"), path),
            query=scope["query_string"].decode("latin-1"),
            headers=forwarded_headers(scope["headers"]),
            body=await read_body(receive, headers, state.settings.max_request_body_bytes),
            tenant_id=caller.tenant_id,
            actor=caller.actor,
        )
        idempotency_key = call.headers.get("idempotency-key")
        if method != "POST" or idempotency_key is None:
            return raw(await state.forwarder.forward(call))
        fingerprint = store.RequestFingerprint.of(call.method, call.path, call.query, call.body)
        return raw(
            await forward_once(
                state.pool,
                state.idempotency,
                caller.tenant_id,
                idempotency_key,
                fingerprint,
                lambda: state.forwarder.forward(call),
            )
        )


async def caller_of(state: GatewayState, scope: Scope, authorization: str | None) -> Caller:
    """The key's caller. Requests without a valid key are limited per client address before
    any database work; a key found in the cache costs nothing more."""
    token = bearer_token(authorization)
    known, caller = state.keys.cached(token) if token is not None else (True, None)
    if caller is not None:
        return caller
    address = client_address(scope)
    wait = state.unauthenticated.wait_seconds(address)
    if wait > 0:
        raise Problem(
            "rate_limit",
            "Too many requests without a valid API key from this address.",
            headers={"Retry-After": retry_after(wait)},
        )
    if token is None:
        raise invalid_token("Send an API key as `Authorization: Bearer <key>`.", missing=True)
    if not known:
        caller = await state.keys.caller(token)
    if caller is None:
        raise invalid_token("The API key is unknown or revoked.")
    state.unauthenticated.give_back(address)  # a valid key not cached yet
    return caller


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large(limit: int) -> Problem:
    return Problem("too_large", f"The request body is larger than {limit} bytes.")


class ClientGone(Exception):
    """The client hung up before its request body arrived; nobody is left to answer."""


def raw(answer: store.StoredResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, ASGI headers and body; no Content-Length where HTTP forbids one."""
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.items()
    ]
    if answer.status_code >= 200 and answer.status_code not in (204, 304):
        headers.append((b"content-length", str(len(answer.body)).encode()))
    return answer.status_code, headers, answer.body
