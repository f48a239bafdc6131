"""The synchronous asks to `orders`, which alone decides a sale's status."""

from typing import Any
from uuid import UUID

import aiohttp

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import CODE_OF_STATUS, Problem
from fulfilkit.logs import request_id_var

_CLIENT_ERRORS = (400, 404, 409, 413, 422)


class OrdersClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token

    async def _post(
        self, path: str, tenant_id: UUID, actor: str, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            INTERNAL_TOKEN_HEADER: self._token,
            TENANT_HEADER: str(tenant_id),
            ACTOR_HEADER: actor,
            "X-Request-Id": request_id_var.get(),
        }
        try:
            async with self._session.post(
                f"{self._base_url}{path}", json=body, headers=headers
            ) as response:
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Problem(
                "unavailable", "The orders service cannot be reached.", headers={"Retry-After": "1"}
            ) from None

    async def claim(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> dict[str, Any]:
        """Claim pending sales for shipping: `{"claimed": [snapshots], "errors": [...]}`."""
        return await self._for_sales("/internal/sales/claim", tenant_id, actor, sale_ids, "claim")

    async def ship_many(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> dict[str, Any]:
        """Ship up to 100 sales: `{"shipped": [sale_ids], "errors": [{sale_id, code, ...}]}`."""
        return await self._for_sales("/internal/sales/ship", tenant_id, actor, sale_ids, "shipment")

    async def _for_sales(
        self, path: str, tenant_id: UUID, actor: str, sale_ids: list[str], what: str
    ) -> dict[str, Any]:
        status, body = await self._post(path, tenant_id, actor, {"sale_ids": sale_ids})
        if status != 200:
            raise refusal(status, body, what)
        return body

    async def ship(self, tenant_id: UUID, actor: str, sale_id: str) -> dict[str, Any]:
        """Move the sale to `shipped`; a canceled sale is refused with 409 `conflict`."""
        status, body = await self._post(f"/internal/sales/{sale_id}/ship", tenant_id, actor)
        if status == 409:
            raise Problem(
                "conflict",
                f"The sale cannot ship: {body.get('detail')}",
                sale_status=body.get("sale_status"),
            )
        if status != 200:
            raise refusal(status, body, "shipment")
        return body


def refusal(status: int, body: Any, what: str) -> Problem:
    """What to answer when orders does not answer 200: its refusals of what was asked are
    this request's client errors (never a 503, which invites the same request again); an
    authentication failure between services or a server error means orders could not do it."""
    if status in _CLIENT_ERRORS:
        code = CODE_OF_STATUS[status]
        detail = body.get("detail") if isinstance(body, dict) else None
        return Problem(code, f"orders refused the {what}: {detail or 'no reason given'}")
    return Problem(
        "unavailable", f"orders answered {status} to a {what}", headers={"Retry-After": "1"}
    )
