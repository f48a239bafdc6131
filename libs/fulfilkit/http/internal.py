"""Trust between the gateway and the services: a shared secret and the tenant it vouches for."""

import hmac
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request

from fulfilkit.http.problems import Problem

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
TENANT_HEADER = "X-Tenant-Id"
ACTOR_HEADER = "X-Actor"


def verify_internal_token(request: Request, token: str | None) -> None:
    expected: str = request.app.state.settings.internal_token
    if token is None or not hmac.compare_digest(token, expected):
        raise Problem("invalid_token", "This service only answers the gateway.")


async def _tenant(
    request: Request,
    x_internal_token: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_tenant_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> UUID:
    verify_internal_token(request, x_internal_token)
    try:
        return UUID(x_tenant_id or "")
    except ValueError:
        raise Problem("invalid_token", "No tenant was given by the gateway.") from None


async def _actor(x_actor: Annotated[str | None, Header(include_in_schema=False)] = None) -> str:
    return x_actor or "api"


TenantId = Annotated[UUID, Depends(_tenant)]
Actor = Annotated[str, Depends(_actor)]
