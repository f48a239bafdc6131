"""The admin API's door: failed admin-token attempts are throttled per client address, and the
token and the body's size are checked before FastAPI reads or parses anything."""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fulfilkit.http.problems import Problem, problem_response
from gateway.checks import ClientGone, invalid_token, read_body, replaying
from gateway.domain import client_address, is_admin, is_admin_path, retry_after
from gateway.resources import GatewayResources


class AdminGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        resources: GatewayResources = scope["app"].state.runtime.resources
        headers = Headers(scope=scope)
        try:
            check_admin(resources, scope, headers.get("authorization"))
            body = await read_body(receive, headers, resources.settings.admin_max_body_bytes)
        except ClientGone:
            return
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


def check_admin(resources: GatewayResources, scope: Scope, authorization: str | None) -> None:
    address = client_address(scope)
    wait = resources.admin_failures.blocked_seconds(address)
    if wait > 0:
        raise Problem(
            "rate_limit",
            "Too many failed admin attempts from this address.",
            headers={"Retry-After": retry_after(wait)},
        )
    if not is_admin(authorization, resources.settings.admin_token):
        resources.admin_failures.wait_seconds(address)
        raise invalid_token("This needs the admin token.", missing=authorization is None)
