"""API versions at the gateway: every `/api/...` request naming a version must name one that
exists (else 400 before anything else is checked), and every answer says which version it
speaks in `API-Version`.

Two middleware, because they sit at two depths: the check inside the request id and the
unhandled-error middleware (so its 400 carries `X-Request-Id` and is traced like any other
answer), the header outside everything (so the 500 the unhandled-error middleware answers,
and every 404, 429 or 503 from any door, carries it too).
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.http.problems import Problem, problem_response
from gateway.checks import check_api_version
from gateway.domain import (
    CURRENT_VERSION,
    TOKEN_PATH,
    VERSION_HEADERS,
    VERSION_RESPONSE_HEADER,
    served_version,
)

_VERSION_HEADERS = frozenset(name.encode() for name in VERSION_HEADERS)
_RESPONSE_HEADER = VERSION_RESPONSE_HEADER.encode()
_CURRENT = CURRENT_VERSION.encode()


def version_headers(scope: Scope) -> list[tuple[str, str]]:
    """The request's version headers as (name, value); most requests have none. ASGI servers
    give header names in lower case."""
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope["headers"]
        if name in _VERSION_HEADERS
    ]


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class ApiVersionCheckMiddleware:
    """Refuses an `/api/...` request whose version headers name an unknown version (or two
    different ones) with 400 `invalid_request`, whichever door (forwarding, admin API, the
    gateway's own routes) would have answered it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api_path(scope["path"]):
            try:
                if sent := version_headers(scope):
                    check_api_version(sent)
            except Problem as problem:
                await refusal(scope["path"], problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refusal(path: str, problem: Problem) -> ASGIApp:
    """A problem document, except on the OAuth2 token endpoint, whose errors follow RFC 6749
    (the client libraries that call it read nothing else)."""
    if path == TOKEN_PATH:
        return JSONResponse(
            {"error": "invalid_request", "error_description": problem.detail},
            status_code=400,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
    return problem_response(problem)


class ApiVersionHeaderMiddleware:
    """Adds `API-Version` to every answer: the version asked for, or the current one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = version_headers(scope)
        version = served_version(sent).encode() if sent else _CURRENT

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Nothing inside sets it (the gateway does not pass a service's on): append.
                message["headers"] = [*message.get("headers", ()), (_RESPONSE_HEADER, version)]
            await send(message)

        await self.app(scope, receive, send_with_version)
