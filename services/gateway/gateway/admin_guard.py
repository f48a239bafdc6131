"""The admin API's door: failed admin-token attempts are throttled per client address, and the
token and the body's size are checked before FastAPI reads or parses anything."""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.http.problems import Problem, problem_response
from gateway.api import STATE_KEY, GatewayState
from gateway.auth import invalid_token, is_admin
from gateway.forwarding import ADMIN_PREFIX, ClientGone, read_body
from gateway.ratelimit import client_address, retry_after


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class AdminGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        state: GatewayState = scope["app"].state.runtime.extras[STATE_KEY]
        headers = Headers(scope=scope)
        try:
            check_admin(state, scope, headers.get("authorization"))
            body = await read_body(receive, headers, state.settings.admin_max_body_bytes)
        except ClientGone:
            return
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


def check_admin(state: GatewayState, scope: Scope, authorization: str | None) -> None:
    address = client_address(scope)
    wait = state.admin_failures.blocked_seconds(address)
    if wait > 0:
        raise Problem(
            "rate_limit",
            "Too many failed admin attempts from this address.",
            headers={"Retry-After": retry_after(wait)},
        )
    if not is_admin(authorization, state.settings.admin_token):
        state.admin_failures.wait_seconds(address)
        raise invalid_token("This needs the admin token.", missing=authorization is None)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits as the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
