"""Trust between the gateway and the services: a shared secret and the tenant it vouches for."""

import hmac
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from fulfilkit.http.problems import Problem

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
TENANT_HEADER = "X-Tenant-Id"
ACTOR_HEADER = "X-Actor"


def verify_internal_token(request: Request, token: str | None) -> None:
    expected: str = request.app.state.settings.internal_token
    # As bytes: compare_digest refuses str with characters beyond ASCII.
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem("invalid_token", "This service only answers the gateway.")


# Read from `request.headers` rather than declared as `Header()` parameters: these headers
# are internal (not in the public API document), and FastAPI's per-parameter handling of
# declared headers is a measurable share of a small request's CPU time.
async def _tenant(request: Request) -> UUID:
    headers = request.headers
    verify_internal_token(request, headers.get(INTERNAL_TOKEN_HEADER))
    try:
        return UUID(headers.get(TENANT_HEADER) or "")
    except ValueError:
        raise Problem("invalid_token", "No tenant was given by the gateway.") from None


async def _actor(request: Request) -> str:
    return request.headers.get(ACTOR_HEADER) or "api"


TenantId = Annotated[UUID, Depends(_tenant)]
Actor = Annotated[str, Depends(_actor)]
