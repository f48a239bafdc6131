"""The public API's hot path: every `/api/v1/...` request outside the admin API is checked
(key, rate limit, scope; its version is checked by `gateway.versions` before it gets here)
and forwarded here, at the ASGI level.

FastAPI's routing, exception middleware and request objects cost about as much CPU as the
forwarding itself, and this path needs none of them: it has no parameters to parse, and its
only errors are problems it raises itself and the domain errors of `usecases.forward_once`.
Everything else (admin API, docs, health) goes on to the FastAPI app. Request ids and
trailing slashes are handled by the middleware around this one, as for every route.
"""

import logging
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fulfilkit.errors import DomainError
from fulfilkit.http.problems import Problem, dependency_outage, problem_response
from fulfilkit.idempotency import check_key
from fulfilkit.logs import tenant_var
from fulfilkit.metrics import name_route
from fulfilkit.tracing import set_route
from gateway import usecases
from gateway.checks import ClientGone, caller_of, problem_of, read_body
from gateway.domain import (
    API_PREFIX,
    ROUTES,
    StoredResponse,
    UpstreamCall,
    idempotency_key_of,
    is_forwarded,
    required_scope,
    retry_after,
    route_for,
    route_template,
    upstream_path,
)
from gateway.resources import GatewayResources

log = logging.getLogger(__name__)

REQUEST_HEADERS = ("content-type", "accept", "if-match", "prefer", "idempotency-key")


class ForwardingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_forwarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        if (template := forwarded_route(scope["path"])) is not None:
            name_route(scope, template)
        try:
            status, headers, body = await self._answer(scope, receive)
        except ClientGone:
            return
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        except DomainError as error:
            await problem_response(problem_of(error))(scope, receive, send)
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
        runtime = scope["app"].state.runtime
        resources: GatewayResources = runtime.resources
        caller = await caller_of(resources, scope, headers.get("authorization"))
        tenant_var.set(caller.tenant_id)  # for the request's log lines, until it ends
        wait = resources.limiter.wait_seconds(caller.key_id)
        if wait > 0:
            raise Problem(
                "rate_limit",
                "Too many requests for this API key.",
                headers={"Retry-After": retry_after(wait)},
            )
        route = route_for(path)
        if route is None:
            raise Problem("no_content", "No such resource.")
        set_route(method, route_template(path))
        needed = required_scope(route.area, method, path.rstrip("/"))
        if needed not in caller.scopes:
            raise Problem("no_permission", f"This API key lacks the {needed!r} scope.")
        call = UpstreamCall(
            service=route.service,
            method=method,
            path=upstream_path(scope.get("raw_path"), path),
            query=scope["query_string"].decode("latin-1"),
            headers=forwarded_headers(scope["headers"]),
            body=await read_body(receive, headers, resources.settings.max_request_body_bytes),
            tenant_id=caller.tenant_id,
            actor=caller.actor,
        )
        if (idempotency_key := idempotency_key_of(call)) is not None:
            check_key(idempotency_key)
        return raw(
            await usecases.forward_once(
                runtime.pool, resources.idempotency, call, resources.forwarder.forward
            )
        )


def forwarded_route(path: str) -> str | None:
    """The metrics' route label of a forwarded path: `/api/v1/sales` or `/api/v1/sales/{path}`
    (the service that answers it labels it by its own route template); None when no service
    serves it."""
    segment = path[len(API_PREFIX) + 1 :].partition("/")[0]
    return route_template(path) if segment in ROUTES else None


def forwarded_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The client's headers that the service needs, byte for byte, or a 400.

    aiohttp writes header values as UTF-8, so a value passes unchanged when its bytes are
    UTF-8; any other bytes are refused rather than re-encoded.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name not in REQUEST_HEADERS:
            continue
        try:
            headers[name] = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise Problem("invalid_request", f"The {name} header must be UTF-8 text.") from None
    return headers


def raw(answer: StoredResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, ASGI headers and body; no Content-Length where HTTP forbids one."""
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.items()
    ]
    if answer.status_code >= 200 and answer.status_code not in (204, 304):
        headers.append((b"content-length", str(len(answer.body)).encode()))
    return answer.status_code, headers, answer.body
