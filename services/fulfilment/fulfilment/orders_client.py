"""The synchronous asks to `orders`, which alone decides a sale's status."""

from typing import Any
from uuid import UUID

import aiohttp

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import CODE_OF_STATUS, TITLES, Problem
from fulfilkit.logs import request_id_var


def refusal(status: int, body: Any, what: str) -> Problem:
    """The problem for an answer other than 200: a client error stays the caller's client
    error (never a 503, which says "try again later"); anything else is orders failing."""
    if 400 <= status < 500 and status in CODE_OF_STATUS and isinstance(body, dict):
        code = body.get("code")
        if code not in TITLES or TITLES[code][0] != status:
            code = CODE_OF_STATUS[status]
        return Problem(code, f"orders refused the {what}: {body.get('detail', '')}",
                       errors=body.get("errors"))
    return Problem("unavailable", f"orders answered {status} to a {what}",
                   headers={"Retry-After": "1"})


class OrdersClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token

    async def _post(self, path: str, tenant_id: UUID, actor: str,
                    body: Any = None) -> tuple[int, dict[str, Any]]:
        headers = {
            INTERNAL_TOKEN_HEADER: self._token, TENANT_HEADER: str(tenant_id),
            ACTOR_HEADER: actor, "X-Request-Id": request_id_var.get(),
        }
        try:
            async with self._session.post(f"{self._base_url}{path}", json=body,
                                          headers=headers) as response:
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Problem("unavailable", "The orders service cannot be reached.") from None

    async def claim(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> dict[str, Any]:
        """Claim pending sales for shipping: `{"claimed": [snapshots], "errors": [...]}`."""
        return await self._for_sales("/internal/sales/claim", tenant_id, actor, sale_ids, "claim")

    async def ship_many(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> dict[str, Any]:
        """Ship up to 100 sales: `{"shipped": [sale_ids], "errors": [{sale_id, code, ...}]}`."""
        return await self._for_sales("/internal/sales/ship", tenant_id, actor, sale_ids,
                                     "shipment")

    async def _for_sales(self, path: str, tenant_id: UUID, actor: str, sale_ids: list[str],
                         what: str) -> dict[str, Any]:
        status, body = await self._post(path, tenant_id, actor, {"sale_ids": sale_ids})
        if status != 200:
            raise refusal(status, body, what)
        return body

    async def ship(self, tenant_id: UUID, actor: str, sale_id: str) -> dict[str, Any]:
        """Move the sale to `shipped`; a canceled sale is refused with 409 `conflict`."""
        status, body = await self._post(f"/internal/sales/{sale_id}/ship", tenant_id, actor)
        if status == 409:
            raise Problem("conflict", f"The sale cannot ship: {body.get('detail')}",
                          sale_status=body.get("sale_status"))
        if status != 200:
            raise refusal(status, body, "shipment")
        return body
