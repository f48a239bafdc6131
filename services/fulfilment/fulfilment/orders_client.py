"""The synchronous asks to `orders`, which alone decides a sale's status.

Both are batches of up to 100 sales (shipments: parts of sales). When orders does not do
what was asked at all, the client raises `OrdersRefused` or `OrdersUnavailable`; the routes
say how each is answered.
"""

from typing import Any, TypeVar
from uuid import UUID

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError

from fulfilkit import contracts as c
from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.logs import request_id_var
from fulfilkit.tracing import SpanKind, span, trace_headers

_CLIENT_ERRORS = (400, 404, 409, 413, 422)


class OrdersError(Exception):
    """orders did not do what was asked, for none of the sales."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OrdersRefused(OrdersError):
    """orders refused the request itself (`status` is its 4xx answer): asking again the same
    way gets the same answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class OrdersUnavailable(OrdersError):
    """orders could not be asked, or could not answer: asking again later may work."""


class ClaimRefusal(BaseModel):
    sale_id: str
    code: str  # not_found, invalid_status
    detail: str
    status: str | None = None  # the sale's, when it is not pending


class Claimed(BaseModel):
    claimed: list[c.SaleSnapshot]
    errors: list[ClaimRefusal]


class ShipRefusal(BaseModel):
    sale_id: str
    location_id: str | None = None  # the part refused, when a part was asked for
    code: str  # not_found, conflict
    detail: str
    sale_status: str | None = None


class Shipped(BaseModel):
    shipped: list[str]  # sale_ids whose part asked for shipped (now or before)
    errors: list[ShipRefusal]


M = TypeVar("M", bound=BaseModel)


class OrdersClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token

    async def claim(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> Claimed:
        """Claim pending sales for shipping (`pending -> in_fulfillment`), each at most once."""
        body = {"sale_ids": sale_ids}
        raw = await self._for_sales("/internal/sales/claim", tenant_id, actor, body, "claim")
        return _parsed(Claimed, raw, "claim")

    async def ship_parts(
        self, tenant_id: UUID, actor: str, parts: list[tuple[str, str]]
    ) -> Shipped:
        """Ship parts of sales in fulfillment, each a (sale_id, location_id): a sale ships
        when every location it ships from has; a part that cannot ship (its sale canceled,
        say) is reported."""
        body = {"parts": [{"sale_id": sale_id, "location_id": where} for sale_id, where in parts]}
        raw = await self._for_sales("/internal/sales/ship", tenant_id, actor, body, "shipment")
        return _parsed(Shipped, raw, "shipment")

    async def _for_sales(
        self, path: str, tenant_id: UUID, actor: str, body: dict[str, Any], what: str
    ) -> bytes:
        """The body of orders' 200 answer, parsed by the caller straight into its model."""
        with span(f"POST {path}", kind=SpanKind.CLIENT, attributes={"server.address": "orders"}):
            headers = {
                INTERNAL_TOKEN_HEADER: self._token,
                TENANT_HEADER: str(tenant_id),
                ACTOR_HEADER: actor,
                "X-Request-Id": request_id_var.get(),
                **trace_headers(),
            }
            try:
                async with self._session.post(
                    f"{self._base_url}{path}", json=body, headers=headers
                ) as response:
                    status, raw = response.status, await response.read()
                body = orjson.loads(raw) if status != 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                raise OrdersUnavailable("The orders service cannot be reached.") from None
        if status != 200:
            raise refusal(status, body, what)
        return raw


def _parsed(model: type[M], raw: bytes, what: str) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        raise OrdersUnavailable(f"orders answered a {what} with an unreadable body") from None


def refusal(status: int, body: Any, what: str) -> OrdersError:
    """What a non-200 answer of orders means: its refusals of what was asked are the
    request's own client errors (never worth repeating); an authentication failure between
    services or a server error means orders could not do it now."""
    if status in _CLIENT_ERRORS:
        detail = body.get("detail") if isinstance(body, dict) else None
        return OrdersRefused(status, f"orders refused the {what}: {detail or 'no reason given'}")
    return OrdersUnavailable(f"orders answered {status} to a {what}")
