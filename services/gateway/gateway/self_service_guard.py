"""The door of a tenant's own API keys and OAuth2 clients (`/api/v1/api-keys`,
`/api/v1/oauth/clients`): the caller's key or access token, its rate limit and its `admin`
scope are checked, and the body read up to `ADMIN_MAX_BODY_BYTES`, before FastAPI reads or
parses anything. The route finds the caller in the request's state (`caller`)."""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fulfilkit.http.problems import Problem, problem_response
from fulfilkit.logs import tenant_var
from gateway.checks import ClientGone, caller_of, read_body, replaying
from gateway.domain import SELF_SERVICE_SCOPE, Caller, is_self_service_path, retry_after
from gateway.resources import GatewayResources


class SelfServiceGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_self_service_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        resources: GatewayResources = scope["app"].state.runtime.resources
        headers = Headers(scope=scope)
        try:
            caller = await tenant_admin(resources, scope, headers)
            body = await read_body(receive, headers, resources.settings.admin_max_body_bytes)
        except ClientGone:
            return
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        scope = {**scope, "state": {**scope.get("state", {}), "caller": caller}}
        await self.app(scope, replaying(body, receive), send)


async def tenant_admin(resources: GatewayResources, scope: Scope, headers: Headers) -> Caller:
    caller = await caller_of(resources, scope, headers.get("authorization"))
    tenant_var.set(caller.tenant_id)  # for the request's log lines, until it ends
    wait = resources.limiter.wait_seconds(caller.key_id)
    if wait > 0:
        raise Problem(
            "rate_limit",
            "Too many requests for this API key.",
            headers={"Retry-After": retry_after(wait)},
        )
    if SELF_SERVICE_SCOPE not in caller.scopes:
        raise Problem(
            "no_permission", f"Managing keys and clients needs the {SELF_SERVICE_SCOPE!r} scope."
        )
    return caller
