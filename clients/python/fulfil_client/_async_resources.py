"""The API's resources for `AsyncClient`. `_sync_resources.py` is generated from this file
by `clients/python/tools/unasync.py` (a test checks it is current): edit this one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from fulfil_client import list_models as lm
from fulfil_client import models as m
from fulfil_client._core import Auth, Call, QueryValue, if_match
from fulfil_client._operations import operation
from fulfil_client._transport import json_body
from fulfil_client.pagination import AsyncPaginator, Page, parse_page

if TYPE_CHECKING:
    from fulfil_client._async_client import AsyncClient

T = TypeVar("T", bound=BaseModel)
Body = BaseModel | Mapping[str, Any]
DeadLetterService = Literal["orders", "stock", "fulfilment", "webhooks"]
P = "/api/v1"


def _seg(value: object) -> str:
    """One path segment, escaped."""
    return quote(str(value), safe="")


def _body(body: Body | None) -> Any:
    if body is None:
        return None
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dict(body)


def _many(value: str | list[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else value


def _pages(
    limit: int | None, offset: int | None, **filters: QueryValue | datetime
) -> dict[str, Any]:
    return {**filters, "limit": limit, "offset": offset}


class AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _send(self, call: Call) -> httpx.Response:
        return await self._client.send(call)

    async def _model(self, call: Call, model: type[T]) -> T:
        return model.model_validate(json_body(await self._send(call)))

    async def _dict(self, call: Call) -> dict[str, Any]:
        body = json_body(await self._send(call))
        return body if isinstance(body, dict) else {}

    async def _none(self, call: Call) -> None:
        await self._send(call)

    def _list(self, call: Call, model: type[T]) -> AsyncPaginator[T]:
        async def fetch(page_call: Call) -> Page[T]:
            return parse_page(json_body(await self._send(page_call)), model)

        return AsyncPaginator(fetch, call)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Auth = "tenant",
        idempotency_key: str | None = None,
    ) -> Call:
        return Call(method, path, params, json, headers, auth, idempotency_key)


# --- sales -------------------------------------------------------------------------------


class AsyncSales(AsyncResource):
    @operation("POST", P + "/sales")
    async def create(
        self,
        sale: m.SaleIn | Mapping[str, Any],
        *,
        respond_async: bool = False,
        idempotency_key: str | None = None,
    ) -> m.SaleOut:
        """Creates a sale; unless `respond_async`, the platform waits (boundedly) for stock's
        reservation outcome, so the answer's `status` is usually `pending` or
        `backordered` already."""
        headers = {"Prefer": "respond-async"} if respond_async else None
        call = self._call(
            "POST", P + "/sales", json=_body(sale), headers=headers, idempotency_key=idempotency_key
        )
        return await self._model(call, m.SaleOut)

    @operation("POST", P + "/sales/batch")
    async def create_batch(
        self,
        sales: m.SalesIn | Mapping[str, Any],
        *,
        respond_async: bool = False,
        idempotency_key: str | None = None,
    ) -> m.SalesOut:
        """Up to 100 sales; the answer names the ones created and the `errors` of the others."""
        headers = {"Prefer": "respond-async"} if respond_async else None
        call = self._call(
            "POST",
            P + "/sales/batch",
            json=_body(sales),
            headers=headers,
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.SalesOut)

    @operation("GET", P + "/sales/{sale_id}")
    async def get(self, sale_id: str) -> m.SaleOut:
        return await self._model(self._call("GET", f"{P}/sales/{_seg(sale_id)}"), m.SaleOut)

    @operation("GET", P + "/sales")
    def list(
        self,
        *,
        status: str | list[str] | None = None,
        channel: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        priority: Literal["normal", "urgent"] | None = None,
        ship_by_before: datetime | None = None,
        ship_by_after: datetime | None = None,
        sale_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[m.SaleOut]:
        """The tenant's sales, oldest first, as an iterator over every page (`limit` is the
        page size); `sale_id` finds the sales whose `sale_id` starts with it."""
        params = _pages(
            limit,
            offset,
            status=[status] if isinstance(status, str) else status,
            channel=channel,
            created_from=created_from,
            created_to=created_to,
            priority=priority,
            ship_by_before=ship_by_before,
            ship_by_after=ship_by_after,
            sale_id=sale_id,
        )
        return self._list(self._call("GET", P + "/sales", params=params), m.SaleOut)

    @operation("PATCH", P + "/sales/{sale_id}")
    async def edit(
        self,
        sale_id: str,
        changes: m.SaleEdit | Mapping[str, Any],
        *,
        version: int | str,
        respond_async: bool = False,
    ) -> m.SaleOut:
        """Changes a sale not yet in fulfilment; `version` (the sale's `version` or `ETag`)
        is sent as `If-Match`, so a sale that moved meanwhile raises `Conflict`."""
        headers = if_match(version)
        if respond_async:
            headers["Prefer"] = "respond-async"
        call = self._call(
            "PATCH", f"{P}/sales/{_seg(sale_id)}", json=_body(changes), headers=headers
        )
        return await self._model(call, m.SaleOut)

    @operation("POST", P + "/sales/cancel")
    async def cancel(
        self,
        sale_id: str,
        reason: Literal["out_of_stock", "customer_request", "other"] = "other",
        *,
        version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> m.CancelOut:
        """Cancels a sale and releases its reservation; with `version`, only if the sale is
        still at that version (`If-Match`), else `Conflict`."""
        call = self._call(
            "POST",
            P + "/sales/cancel",
            json={"sale_id": sale_id, "cancel_reason": reason},
            headers=if_match(version),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.CancelOut)


# --- returns ---------------------------------------------------------------------------


class AsyncReturns(AsyncResource):
    @operation("POST", P + "/returns")
    async def create(
        self, body: m.ReturnIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.ReturnOut:
        call = self._call("POST", P + "/returns", json=_body(body), idempotency_key=idempotency_key)
        return await self._model(call, m.ReturnOut)

    @operation("GET", P + "/returns")
    def list(
        self,
        *,
        status: str | list[str] | None = None,
        sale_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[m.ReturnOut]:
        params = _pages(limit, offset, status=_many(status), sale_id=sale_id)
        return self._list(self._call("GET", P + "/returns", params=params), m.ReturnOut)

    @operation("GET", P + "/returns/{return_id}")
    async def get(self, return_id: str) -> m.ReturnOut:
        return await self._model(self._call("GET", f"{P}/returns/{_seg(return_id)}"), m.ReturnOut)

    @operation("POST", P + "/returns/{return_id}/receive")
    async def receive(self, return_id: str, body: m.ReceiveIn | Mapping[str, Any]) -> m.ReturnOut:
        call = self._call("POST", f"{P}/returns/{_seg(return_id)}/receive", json=_body(body))
        return await self._model(call, m.ReturnOut)

    @operation("POST", P + "/returns/{return_id}/close")
    async def close(self, return_id: str) -> m.ReturnOut:
        call = self._call("POST", f"{P}/returns/{_seg(return_id)}/close")
        return await self._model(call, m.ReturnOut)

    @operation("POST", P + "/returns/{return_id}/cancel")
    async def cancel(self, return_id: str) -> m.ReturnOut:
        call = self._call("POST", f"{P}/returns/{_seg(return_id)}/cancel")
        return await self._model(call, m.ReturnOut)


# --- catalogue ---------------------------------------------------------------------------


class AsyncProducts(AsyncResource):
    @operation("POST", P + "/products")
    async def create(
        self, body: m.ProductIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Product:
        call = self._call(
            "POST", P + "/products", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.Product)

    @operation("GET", P + "/products")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.Product]:
        return self._list(
            self._call("GET", P + "/products", params=_pages(limit, offset)), m.Product
        )

    @operation("GET", P + "/products/{sku}")
    async def get(self, sku: str) -> m.ProductWithStock:
        """The product with its stock level, in all and per location."""
        call = self._call("GET", f"{P}/products/{_seg(sku)}")
        return await self._model(call, m.ProductWithStock)

    @operation("PATCH", P + "/products/{sku}")
    async def update(
        self,
        sku: str,
        changes: m.ProductPatch | Mapping[str, Any],
        *,
        version: int | str | None = None,
    ) -> m.Product:
        call = self._call(
            "PATCH", f"{P}/products/{_seg(sku)}", json=_body(changes), headers=if_match(version)
        )
        return await self._model(call, m.Product)


class AsyncLocations(AsyncResource):
    @operation("POST", P + "/locations")
    async def create(
        self, body: m.LocationIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Location:
        call = self._call(
            "POST", P + "/locations", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.Location)

    @operation("GET", P + "/locations")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.Location]:
        return self._list(
            self._call("GET", P + "/locations", params=_pages(limit, offset)), m.Location
        )

    @operation("GET", P + "/locations/{location_id}")
    async def get(self, location_id: str) -> m.Location:
        call = self._call("GET", f"{P}/locations/{_seg(location_id)}")
        return await self._model(call, m.Location)

    @operation("PATCH", P + "/locations/{location_id}")
    async def update(
        self,
        location_id: str,
        changes: m.LocationPatch | Mapping[str, Any],
        *,
        version: int | str | None = None,
    ) -> m.Location:
        call = self._call(
            "PATCH",
            f"{P}/locations/{_seg(location_id)}",
            json=_body(changes),
            headers=if_match(version),
        )
        return await self._model(call, m.Location)


# --- stock -------------------------------------------------------------------------------


class AsyncStock(AsyncResource):
    @operation("POST", P + "/stock/stock-records")
    async def create_record(
        self, body: m.StockRecordIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.StockRecordOut:
        call = self._call(
            "POST", P + "/stock/stock-records", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.StockRecordOut)

    @operation("GET", P + "/stock/stock-records")
    def records(
        self,
        *,
        sku: str | list[str] | None = None,
        location_id: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[lm.StockRow]:
        """Records by location and SKU, then an unassembled bundle's derived rows."""
        params = _pages(limit, offset, sku=_many(sku), location_id=_many(location_id))
        call = self._call("GET", P + "/stock/stock-records", params=params)
        return self._list(call, lm.StockRow)

    @operation("GET", P + "/stock/stock-records/{record_id}")
    async def get_record(self, record_id: str) -> m.StockRecordOut:
        call = self._call("GET", f"{P}/stock/stock-records/{_seg(record_id)}")
        return await self._model(call, m.StockRecordOut)

    @operation("POST", P + "/stock/stock-records/change")
    async def change_records(
        self, body: m.RecordsChangeIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.RecordsOut:
        """Relative changes to several records, all or nothing."""
        call = self._call(
            "POST",
            P + "/stock/stock-records/change",
            json=_body(body),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.RecordsOut)

    @operation("POST", P + "/stock/stock-records/update")
    async def update_records(
        self,
        body: m.RecordsUpdateIn | Mapping[str, Any],
        *,
        version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> m.RecordsOut:
        """Absolute quantities for several records, all or nothing; `version` (`If-Match`)
        only with a single record."""
        call = self._call(
            "POST",
            P + "/stock/stock-records/update",
            json=_body(body),
            headers=if_match(version),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.RecordsOut)

    @operation("POST", P + "/stock/stock-level-updates")
    async def update_level(
        self, body: m.LevelUpdateIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.StockRecordOut:
        """An audit, restock or loss of one SKU at one location, with notes."""
        call = self._call(
            "POST",
            P + "/stock/stock-level-updates",
            json=_body(body),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.StockRecordOut)

    @operation("GET", P + "/stock/movements")
    def movements(
        self,
        *,
        sku: str | list[str] | None = None,
        location_id: str | list[str] | None = None,
        reason: str | list[str] | None = None,
        reference: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[lm.Movement]:
        """The append-only ledger, oldest first."""
        params = _pages(
            limit,
            offset,
            sku=_many(sku),
            location_id=_many(location_id),
            reason=_many(reason),
            reference=reference,
            created_from=created_from,
            created_to=created_to,
        )
        return self._list(self._call("GET", P + "/stock/movements", params=params), lm.Movement)

    @operation("POST", P + "/stock/transfers")
    async def transfer(
        self, body: m.TransferIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.TransferOut:
        call = self._call(
            "POST", P + "/stock/transfers", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.TransferOut)

    @operation("POST", P + "/stock/builds")
    async def build(
        self, body: m.BuildIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.BuildOut:
        """Assembles bundles from their components at a location."""
        call = self._call(
            "POST", P + "/stock/builds", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.BuildOut)

    @operation("GET", P + "/stock/integrity")
    async def check_integrity(self) -> m.IntegrityReport:
        """Does every record's `reserved` equal its reservations, and its ledger sum? (The
        `admin` scope.)"""
        return await self._model(self._call("GET", P + "/stock/integrity"), m.IntegrityReport)

    @operation("POST", P + "/stock/integrity/rebuild")
    async def rebuild_integrity(self) -> m.IntegrityReport:
        call = self._call("POST", P + "/stock/integrity/rebuild")
        return await self._model(call, m.IntegrityReport)


class AsyncInboundOrders(AsyncResource):
    @operation("POST", P + "/inbound-orders")
    async def create(
        self, body: m.InboundOrderIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.InboundOrderOut:
        call = self._call(
            "POST", P + "/inbound-orders", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.InboundOrderOut)

    @operation("GET", P + "/inbound-orders")
    def list(
        self,
        *,
        status: str | list[str] | None = None,
        location_id: str | list[str] | None = None,
        sku: str | list[str] | None = None,
        expected_from: datetime | None = None,
        expected_to: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[m.InboundOrderOut]:
        params = _pages(
            limit,
            offset,
            status=_many(status),
            location_id=_many(location_id),
            sku=_many(sku),
            expected_from=expected_from,
            expected_to=expected_to,
        )
        call = self._call("GET", P + "/inbound-orders", params=params)
        return self._list(call, m.InboundOrderOut)

    @operation("GET", P + "/inbound-orders/{order_id}")
    async def get(self, order_id: str) -> m.InboundOrderOut:
        call = self._call("GET", f"{P}/inbound-orders/{_seg(order_id)}")
        return await self._model(call, m.InboundOrderOut)

    @operation("PATCH", P + "/inbound-orders/{order_id}")
    async def update(
        self,
        order_id: str,
        changes: m.InboundOrderPatch | Mapping[str, Any],
        *,
        version: int | str | None = None,
    ) -> m.InboundOrderOut:
        call = self._call(
            "PATCH",
            f"{P}/inbound-orders/{_seg(order_id)}",
            json=_body(changes),
            headers=if_match(version),
        )
        return await self._model(call, m.InboundOrderOut)

    @operation("POST", P + "/inbound-orders/{order_id}/cancel")
    async def cancel(self, order_id: str, *, version: int | str | None = None) -> m.InboundOrderOut:
        call = self._call(
            "POST", f"{P}/inbound-orders/{_seg(order_id)}/cancel", headers=if_match(version)
        )
        return await self._model(call, m.InboundOrderOut)

    @operation("POST", P + "/inbound-orders/{order_id}/close")
    async def close(
        self, order_id: str, reason: str, *, version: int | str | None = None
    ) -> m.InboundOrderOut:
        call = self._call(
            "POST",
            f"{P}/inbound-orders/{_seg(order_id)}/close",
            json={"reason": reason},
            headers=if_match(version),
        )
        return await self._model(call, m.InboundOrderOut)

    @operation("POST", P + "/inbound-orders/{order_id}/receipts")
    async def receive(
        self,
        order_id: str,
        body: m.ReceiptIn | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> m.ReceiptOut:
        call = self._call(
            "POST",
            f"{P}/inbound-orders/{_seg(order_id)}/receipts",
            json=_body(body),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.ReceiptOut)

    @operation("GET", P + "/inbound-orders/{order_id}/receipts")
    def receipts(
        self, order_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[lm.Receipt]:
        call = self._call(
            "GET", f"{P}/inbound-orders/{_seg(order_id)}/receipts", params=_pages(limit, offset)
        )
        return self._list(call, lm.Receipt)


# --- fulfilment --------------------------------------------------------------------------


class AsyncFulfillment(AsyncResource):
    @operation("POST", P + "/fulfillment/shipping/init")
    async def init_shipping(
        self, body: m.ShippingInitIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.ShippingInitOut:
        """Creates fulfillments for up to 100 sales; `errors` names the ones that failed."""
        call = self._call(
            "POST",
            P + "/fulfillment/shipping/init",
            json=_body(body),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.ShippingInitOut)

    @operation("GET", P + "/fulfillment/fulfillments/{fulfillment_id}")
    async def get(self, fulfillment_id: str) -> m.FulfillmentSnapshot:
        call = self._call("GET", f"{P}/fulfillment/fulfillments/{_seg(fulfillment_id)}")
        return await self._model(call, m.FulfillmentSnapshot)

    @operation("GET", P + "/fulfillment/fulfillments/{fulfillment_id}/label")
    async def label(self, fulfillment_id: str) -> bytes:
        """The shipping label, a PDF."""
        call = self._call(
            "GET",
            f"{P}/fulfillment/fulfillments/{_seg(fulfillment_id)}/label",
            headers={"Accept": "application/pdf"},
        )
        return (await self._send(call)).content

    @operation("POST", P + "/fulfillment/fulfillments/{fulfillment_id}/status")
    async def set_status(
        self, fulfillment_id: str, status: Literal["picking", "packed", "shipped", "delivered"]
    ) -> m.FulfillmentSnapshot:
        call = self._call(
            "POST",
            f"{P}/fulfillment/fulfillments/{_seg(fulfillment_id)}/status",
            json={"status": status},
        )
        return await self._model(call, m.FulfillmentSnapshot)

    @operation("POST", P + "/fulfillment/fulfillments/status")
    async def set_statuses(
        self, body: m.StatusUpdatesIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.StatusUpdatesOut:
        call = self._call(
            "POST",
            P + "/fulfillment/fulfillments/status",
            json=_body(body),
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.StatusUpdatesOut)


# --- webhooks ----------------------------------------------------------------------------


class AsyncWebhookEndpoints(AsyncResource):
    @operation("POST", P + "/webhooks/endpoints")
    async def create(
        self, body: m.EndpointIn | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.EndpointCreated:
        """An endpoint and its signing `secret` (`whsec_...`), shown only in this answer."""
        call = self._call(
            "POST", P + "/webhooks/endpoints", json=_body(body), idempotency_key=idempotency_key
        )
        return await self._model(call, m.EndpointCreated)

    @operation("GET", P + "/webhooks/endpoints")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.EndpointOut]:
        call = self._call("GET", P + "/webhooks/endpoints", params=_pages(limit, offset))
        return self._list(call, m.EndpointOut)

    @operation("GET", P + "/webhooks/endpoints/{endpoint_id}")
    async def get(self, endpoint_id: str) -> m.EndpointOut:
        call = self._call("GET", f"{P}/webhooks/endpoints/{_seg(endpoint_id)}")
        return await self._model(call, m.EndpointOut)

    @operation("PATCH", P + "/webhooks/endpoints/{endpoint_id}")
    async def update(
        self,
        endpoint_id: str,
        changes: m.EndpointPatch | Mapping[str, Any],
        *,
        version: int | str | None = None,
    ) -> m.EndpointOut:
        call = self._call(
            "PATCH",
            f"{P}/webhooks/endpoints/{_seg(endpoint_id)}",
            json=_body(changes),
            headers=if_match(version),
        )
        return await self._model(call, m.EndpointOut)

    @operation("DELETE", P + "/webhooks/endpoints/{endpoint_id}")
    async def delete(self, endpoint_id: str) -> None:
        await self._none(self._call("DELETE", f"{P}/webhooks/endpoints/{_seg(endpoint_id)}"))

    @operation("GET", P + "/webhooks/endpoints/{endpoint_id}/deliveries")
    def deliveries(
        self,
        endpoint_id: str,
        *,
        status: Literal["pending", "succeeded", "failed"] | None = None,
        event_type: str | None = None,
        subject: str | None = None,
        event_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[m.DeliveryOut]:
        """The endpoint's deliveries; `subject` is the sale's key for sale events."""
        params = _pages(
            limit,
            offset,
            status=status,
            event_type=event_type,
            subject=subject,
            event_id=event_id,
            since=since,
            until=until,
        )
        call = self._call(
            "GET", f"{P}/webhooks/endpoints/{_seg(endpoint_id)}/deliveries", params=params
        )
        return self._list(call, m.DeliveryOut)

    @operation("POST", P + "/webhooks/endpoints/{endpoint_id}/recover")
    async def recover(
        self, endpoint_id: str, since: datetime, until: datetime | None = None
    ) -> m.Recovered:
        """Sends again every failed delivery created since `since` (and before `until`)."""
        body: dict[str, Any] = {"since": since.isoformat()}
        if until is not None:
            body["until"] = until.isoformat()
        call = self._call("POST", f"{P}/webhooks/endpoints/{_seg(endpoint_id)}/recover", json=body)
        return await self._model(call, m.Recovered)

    @operation("POST", P + "/webhooks/endpoints/{endpoint_id}/rotate-secret")
    async def rotate_secret(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> m.SecretRotated:
        """A new signing secret; the previous one keeps signing until
        `previous_secret_expires_at`."""
        call = self._call(
            "POST",
            f"{P}/webhooks/endpoints/{_seg(endpoint_id)}/rotate-secret",
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.SecretRotated)

    @operation("POST", P + "/webhooks/endpoints/{endpoint_id}/test")
    async def test(self, endpoint_id: str) -> m.PingResult:
        """Sends a test event now and says how the endpoint answered."""
        call = self._call("POST", f"{P}/webhooks/endpoints/{_seg(endpoint_id)}/test")
        return await self._model(call, m.PingResult)


class AsyncWebhookDeliveries(AsyncResource):
    @operation("GET", P + "/webhooks/deliveries")
    def list(
        self,
        *,
        endpoint_id: str | None = None,
        status: Literal["pending", "succeeded", "failed"] | None = None,
        event_type: str | None = None,
        subject: str | None = None,
        event_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[m.DeliveryOut]:
        """Deliveries across the tenant's endpoints; `subject` is the sale's key for sale
        events, so this lists every delivery one sale caused."""
        params = _pages(
            limit,
            offset,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            subject=subject,
            event_id=event_id,
            since=since,
            until=until,
        )
        return self._list(
            self._call("GET", P + "/webhooks/deliveries", params=params), m.DeliveryOut
        )

    @operation("GET", P + "/webhooks/deliveries/{delivery_id}")
    async def get(self, delivery_id: str) -> m.DeliveryOut:
        """A delivery with its payload and every attempt."""
        call = self._call("GET", f"{P}/webhooks/deliveries/{_seg(delivery_id)}")
        return await self._model(call, m.DeliveryOut)

    @operation("POST", P + "/webhooks/deliveries/{delivery_id}/resend")
    async def resend(self, delivery_id: str) -> m.DeliveryOut:
        call = self._call("POST", f"{P}/webhooks/deliveries/{_seg(delivery_id)}/resend")
        return await self._model(call, m.DeliveryOut)


class AsyncWebhooks:
    def __init__(self, client: AsyncClient) -> None:
        self.endpoints = AsyncWebhookEndpoints(client)
        self.deliveries = AsyncWebhookDeliveries(client)


# --- a tenant's own credentials (the `admin` scope) ----------------------------------------


class AsyncApiKeys(AsyncResource):
    @operation("POST", P + "/api-keys")
    async def create(
        self,
        name: str,
        scopes: list[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.CreatedKey:
        """A new key for the caller's tenant; its secret (`api_key`) is shown only here."""
        body: dict[str, Any] = {"name": name}
        if scopes is not None:
            body["scopes"] = scopes
        call = self._call("POST", P + "/api-keys", json=body, idempotency_key=idempotency_key)
        return await self._model(call, m.CreatedKey)

    @operation("GET", P + "/api-keys")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.KeyOut]:
        return self._list(
            self._call("GET", P + "/api-keys", params=_pages(limit, offset)), m.KeyOut
        )

    @operation("DELETE", P + "/api-keys/{key_id}")
    async def revoke(self, key_id: str) -> None:
        await self._none(self._call("DELETE", f"{P}/api-keys/{_seg(key_id)}"))


class AsyncOAuthClients(AsyncResource):
    @operation("POST", P + "/oauth/clients")
    async def create(
        self,
        name: str,
        scopes: list[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.CreatedClient:
        """A new OAuth2 client; its `client_secret` is shown only here."""
        body: dict[str, Any] = {"name": name}
        if scopes is not None:
            body["scopes"] = scopes
        call = self._call("POST", P + "/oauth/clients", json=body, idempotency_key=idempotency_key)
        return await self._model(call, m.CreatedClient)

    @operation("GET", P + "/oauth/clients")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.ClientOut]:
        call = self._call("GET", P + "/oauth/clients", params=_pages(limit, offset))
        return self._list(call, m.ClientOut)

    @operation("DELETE", P + "/oauth/clients/{client_id}")
    async def revoke(self, client_id: str) -> None:
        await self._none(self._call("DELETE", f"{P}/oauth/clients/{_seg(client_id)}"))

    @operation("POST", P + "/oauth/token")
    async def token(
        self, client_id: str, client_secret: str, scope: str | None = None
    ) -> m.TokenOut:
        """Asks the token endpoint directly (the client does this itself when given
        client credentials)."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        request = httpx.Request(
            "POST",
            self._client._core.url(P + "/oauth/token"),
            data=form,
            headers={"Accept": "application/json"},
            extensions={"timeout": self._client._core.timeouts()},
        )
        request = next(httpx.BasicAuth(client_id, client_secret).auth_flow(request))
        response = await self._client._http.send(request)
        return m.TokenOut.model_validate(self._client._core.check(response).json())


# --- admin (the admin token) ---------------------------------------------------------------


class AsyncTenants(AsyncResource):
    @operation("GET", P + "/admin/tenants")
    def list(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> AsyncPaginator[m.TenantDetail]:
        """Every tenant, oldest first, with its keys counted (active and revoked)."""
        call = self._call("GET", P + "/admin/tenants", params=_pages(limit, offset), auth="admin")
        return self._list(call, m.TenantDetail)

    @operation("GET", P + "/admin/tenants/{tenant_id}")
    async def get(self, tenant_id: str) -> m.TenantDetail:
        call = self._call("GET", f"{P}/admin/tenants/{_seg(tenant_id)}", auth="admin")
        return await self._model(call, m.TenantDetail)

    @operation("POST", P + "/admin/tenants")
    async def create(
        self, name: str, scopes: list[str] | None = None, *, idempotency_key: str | None = None
    ) -> m.CreatedTenant:
        """A tenant and its first API key (`api_key`, shown only in this answer)."""
        body: dict[str, Any] = {"name": name}
        if scopes is not None:
            body["scopes"] = scopes
        call = self._call(
            "POST", P + "/admin/tenants", json=body, auth="admin", idempotency_key=idempotency_key
        )
        return await self._model(call, m.CreatedTenant)

    @operation("POST", P + "/admin/tenants/{tenant_id}/keys")
    async def create_key(
        self,
        tenant_id: str,
        scopes: list[str],
        name: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.CreatedKey:
        body: dict[str, Any] = {"scopes": scopes}
        if name is not None:
            body["name"] = name
        call = self._call(
            "POST",
            f"{P}/admin/tenants/{_seg(tenant_id)}/keys",
            json=body,
            auth="admin",
            idempotency_key=idempotency_key,
        )
        return await self._model(call, m.CreatedKey)

    @operation("GET", P + "/admin/tenants/{tenant_id}/keys")
    async def keys(self, tenant_id: str) -> list[m.KeyOut]:
        """The tenant's keys, revoked ones included (never their secrets)."""
        call = self._call("GET", f"{P}/admin/tenants/{_seg(tenant_id)}/keys", auth="admin")
        return (await self._model(call, m.KeyList)).data

    @operation("DELETE", P + "/admin/keys/{key_id}")
    async def revoke_key(self, key_id: str) -> None:
        """Revokes a key on every gateway process, from its next request on."""
        await self._none(self._call("DELETE", f"{P}/admin/keys/{_seg(key_id)}", auth="admin"))


class AsyncDeadLetters(AsyncResource):
    @operation("GET", P + "/admin/dead-letters")
    def list(
        self,
        service: DeadLetterService,
        *,
        consumer: str | None = None,
        topic: str | None = None,
        type: str | None = None,
        state: Literal["dead", "replayed"] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncPaginator[m.DeadLetterOut]:
        """The events `service`'s consumers gave up on, oldest first, page after page."""
        params = {
            "service": service,
            "consumer": consumer,
            "topic": topic,
            "type": type,
            "state": state,
            "limit": limit,
            "cursor": cursor,
        }
        call = self._call("GET", P + "/admin/dead-letters", params=params, auth="admin")
        return self._list(call, m.DeadLetterOut)

    @operation("GET", P + "/admin/dead-letters/{dead_letter_id}")
    async def get(self, service: DeadLetterService, dead_letter_id: int) -> m.DeadLetterDetailOut:
        call = self._call(
            "GET",
            f"{P}/admin/dead-letters/{int(dead_letter_id)}",
            params={"service": service},
            auth="admin",
        )
        return await self._model(call, m.DeadLetterDetailOut)

    @operation("POST", P + "/admin/dead-letters/{dead_letter_id}/replay")
    async def replay(self, service: DeadLetterService, dead_letter_id: int) -> m.DeadLetterOut:
        """Puts the record back on its topic; `Conflict` when replayed already or
        unreadable."""
        call = self._call(
            "POST",
            f"{P}/admin/dead-letters/{int(dead_letter_id)}/replay",
            params={"service": service},
            auth="admin",
        )
        return await self._model(call, m.DeadLetterOut)

    @operation("POST", P + "/admin/dead-letters/replay")
    async def replay_many(self, service: DeadLetterService, ids: list[int]) -> m.ReplayResults:
        """Up to 500 in one transaction; says for each id whether it was replayed."""
        call = self._call(
            "POST",
            P + "/admin/dead-letters/replay",
            params={"service": service},
            json={"ids": [int(i) for i in ids]},
            auth="admin",
        )
        return await self._model(call, m.ReplayResults)

    @operation("POST", P + "/admin/dead-letters/purge")
    async def purge(
        self,
        service: DeadLetterService,
        *,
        ids: list[int] | None = None,
        older_than: datetime | None = None,
    ) -> m.Purged:
        """Deletes the dead letters `ids`, or every one that failed before `older_than`."""
        body: dict[str, Any] = {}
        if ids is not None:
            body["ids"] = [int(i) for i in ids]
        if older_than is not None:
            body["older_than"] = older_than.isoformat()
        call = self._call(
            "POST",
            P + "/admin/dead-letters/purge",
            params={"service": service},
            json=body,
            auth="admin",
        )
        return await self._model(call, m.Purged)

    @operation("DELETE", P + "/admin/dead-letters/{dead_letter_id}")
    async def delete(self, service: DeadLetterService, dead_letter_id: int) -> None:
        call = self._call(
            "DELETE",
            f"{P}/admin/dead-letters/{int(dead_letter_id)}",
            params={"service": service},
            auth="admin",
        )
        await self._none(call)


class AsyncAdminStock(AsyncResource):
    @operation("GET", P + "/admin/stock/integrity")
    async def check_integrity(self, tenant_id: str | None = None) -> m.IntegrityReportOut:
        """Stock's integrity check over every tenant, or one."""
        call = self._call(
            "GET", P + "/admin/stock/integrity", params={"tenant_id": tenant_id}, auth="admin"
        )
        return await self._model(call, m.IntegrityReportOut)

    @operation("POST", P + "/admin/stock/integrity/rebuild")
    async def rebuild_integrity(self, tenant_id: str | None = None) -> m.IntegrityReportOut:
        """Rebuilds `reserved` from the active reservations, over every tenant or one."""
        call = self._call(
            "POST",
            P + "/admin/stock/integrity/rebuild",
            params={"tenant_id": tenant_id},
            auth="admin",
        )
        return await self._model(call, m.IntegrityReportOut)


class AsyncAdmin(AsyncResource):
    """Operator calls, with the admin token."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.tenants = AsyncTenants(client)
        self.dead_letters = AsyncDeadLetters(client)
        self.stock = AsyncAdminStock(client)

    @operation("GET", P + "/admin/overview")
    async def overview(self) -> m.OverviewOut:
        """Every service at a glance: readiness, consumer lag, outbox backlog, dead letters
        (a service that does not answer in time shows as unreachable)."""
        return await self._model(
            self._call("GET", P + "/admin/overview", auth="admin"), m.OverviewOut
        )
