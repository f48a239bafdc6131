"""Trust between services: who is calling (one credential per calling service, recognised by
its SHA-256 digest) and the tenant that caller vouches for.

A called service holds only digests (INTERNAL_CALLERS), never a token it could call with;
each route names the callers it answers. Tenant and actor headers count only once the
caller is known and allowed.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from fulfilkit.http.problems import Problem
from fulfilkit.logs import tenant_var
from fulfilkit.settings import ServiceSettings

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
TENANT_HEADER = "X-Tenant-Id"
ACTOR_HEADER = "X-Actor"


def verify_caller(request: Request, allowed: frozenset[str]) -> str:
    """The calling service's name; 401 when the credential is unknown, 403 when that caller
    may not call this route."""
    settings: ServiceSettings = request.app.state.settings
    caller = settings.internal_caller(request.headers.get(INTERNAL_TOKEN_HEADER))
    if caller is None:
        raise Problem("invalid_token", "This service only answers the platform's own services.")
    if caller not in allowed:
        raise Problem("no_permission", f"The {caller} service may not call this.")
    return caller


def tenant_vouched_by(*callers: str) -> Callable[[Request], Awaitable[UUID]]:
    """A dependency: the tenant in X-Tenant-Id, when one of `callers` sent the request. The
    request's log lines say it from here on (`RequestIdMiddleware` forgets it after)."""
    allowed = frozenset(callers)

    # Read from `request.headers` rather than declared as `Header()` parameters: these headers
    # are internal (not in the public API document), and FastAPI's per-parameter handling of
    # declared headers is a measurable share of a small request's CPU time.
    async def tenant(request: Request) -> UUID:
        verify_caller(request, allowed)
        try:
            tenant_id = UUID(request.headers.get(TENANT_HEADER) or "")
        except ValueError:
            raise Problem("invalid_token", "No tenant was given by the caller.") from None
        tenant_var.set(tenant_id)
        return tenant_id

    return tenant


async def _actor(request: Request) -> str:
    return request.headers.get(ACTOR_HEADER) or "api"


# Public routes: only the gateway calls them, for the tenant whose API key it checked.
TenantId = Annotated[UUID, Depends(tenant_vouched_by("gateway"))]
Actor = Annotated[str, Depends(_actor)]
