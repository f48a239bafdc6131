"""Iterators over the platform's lists: offset pages until `total_count`, cursor pages until
`next_cursor` is null; the next page is asked for only when needed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

import fulfil_client as fc

URL = "http://fulfil.test"


def offset_pages(
    total: int, pending: dict[str, Any]
) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        offset = int(request.url.params.get("offset") or 0)
        limit = int(request.url.params.get("limit") or 100)
        data = [
            {**pending, "sale_id": f"SO-{n}"} for n in range(offset, min(total, offset + limit))
        ]
        return httpx.Response(
            200,
            json={
                "data": data,
                "pagination": {"total_count": total, "offset": offset, "limit": limit},
            },
        )

    return seen, httpx.MockTransport(handle)


def test_an_offset_list_is_followed_page_by_page_to_the_end(pending_sale: dict[str, Any]) -> None:
    seen, transport = offset_pages(5, pending_sale)
    client = fc.Client(URL, api_key="fk", transport=transport)

    ids = [s.sale_id for s in client.sales.list(status="pending", limit=2)]

    assert ids == [f"SO-{n}" for n in range(5)]
    assert [(r.url.params.get("offset"), r.url.params["limit"]) for r in seen] == [
        (None, "2"),
        ("2", "2"),
        ("4", "2"),
    ]
    assert all(r.url.params.get_list("status") == ["pending"] for r in seen)


def test_pages_are_asked_for_only_when_used(pending_sale: dict[str, Any]) -> None:
    seen, transport = offset_pages(10, pending_sale)
    client = fc.Client(URL, api_key="fk", transport=transport)
    listing = client.sales.list(limit=3)
    assert seen == []
    assert [s.sale_id for s in listing.to_list(limit=4)] == ["SO-0", "SO-1", "SO-2", "SO-3"]
    assert len(seen) == 2
    page = listing.first_page()
    assert (page.total_count, page.offset, page.limit, len(page)) == (10, 0, 3, 3)


def test_an_empty_list_is_one_request(pending_sale: dict[str, Any]) -> None:
    seen, transport = offset_pages(0, pending_sale)
    assert list(fc.Client(URL, api_key="fk", transport=transport).sales.list()) == []
    assert len(seen) == 1


def test_a_cursor_list_follows_next_cursor() -> None:
    seen: list[httpx.Request] = []
    letter = {
        "consumer": "orders",
        "event_id": None,
        "event_type": "sale.created",
        "topic": "sales",
        "partition": 0,
        "offset": 1,
        "key": None,
        "error": "bad",
        "replayable": True,
        "failed_at": "2026-11-30T10:00:00Z",
        "state": "dead",
        "replayed_at": None,
    }

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        cursor = request.url.params.get("cursor")
        start, following = (1, "c2") if cursor is None else (3, None)
        data = [{**letter, "id": start}, {**letter, "id": start + 1}]
        return httpx.Response(
            200, json={"data": data, "pagination": {"limit": 2, "next_cursor": following}}
        )

    client = fc.Client(URL, admin_token="adm", transport=httpx.MockTransport(handle))
    ids = [d.id for d in client.admin.dead_letters.list("orders", state="dead", limit=2)]

    assert ids == [1, 2, 3, 4]
    assert [dict(r.url.params) for r in seen] == [
        {"service": "orders", "state": "dead", "limit": "2"},
        {"service": "orders", "state": "dead", "limit": "2", "cursor": "c2"},
    ]
    assert all(r.headers["Authorization"] == "Bearer adm" for r in seen)


def test_async_iteration_follows_the_pages_too(pending_sale: dict[str, Any]) -> None:
    seen, transport = offset_pages(3, pending_sale)

    async def run() -> list[str]:
        async with fc.AsyncClient(URL, api_key="fk", transport=transport) as client:
            return [s.sale_id async for s in client.sales.list(limit=2)]

    assert asyncio.run(run()) == ["SO-0", "SO-1", "SO-2"]
    assert len(seen) == 2
