"""The API's resources for `AsyncClient`. `_sync_resources.py` is generated from this file
by `clients/python/tools/unasync.py` (a test checks it is current): edit this one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

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
        page size). `sale_id` needs a platform that has the sale_id search."""
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


# --- admin (the admin token) ---------------------------------------------------------------


class AsyncTenants(AsyncResource):
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


class AsyncAdmin:
    """Operator calls, with the admin token."""

    def __init__(self, client: AsyncClient) -> None:
        self.tenants = AsyncTenants(client)
        self.dead_letters = AsyncDeadLetters(client)
