"""Iterators over the platform's lists.

Most lists page by `limit`/`offset` and answer `{"data": [...], "pagination": {"total_count",
"offset", "limit"}}`; the dead letters page by cursor (`pagination.next_cursor`). Iterating a
`Paginator` (or `async for` over an `AsyncPaginator`) yields every item, asking for the
next page only when the previous one is used up; `.pages()` yields whole pages and
`.first_page()` asks for one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from fulfil_client._core import Call

T = TypeVar("T", bound=BaseModel)


@dataclass
class Page(Generic[T]):
    items: list[T]
    total_count: int | None = None
    offset: int | None = None
    limit: int | None = None
    next_cursor: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def parse_page(body: Any, model: type[T], items_key: str = "data") -> Page[T]:
    body = body if isinstance(body, dict) else {}
    pagination = body.get("pagination") or {}
    return Page(
        items=[model.model_validate(item) for item in body.get(items_key) or []],
        total_count=pagination.get("total_count"),
        offset=pagination.get("offset"),
        limit=pagination.get("limit"),
        next_cursor=pagination.get("next_cursor"),
        raw=body,
    )


def next_call(call: Call, page: Page[Any]) -> Call | None:
    """The call for the page after `page`, or None when it was the last."""
    params = dict(call.params or {})
    if "cursor" in params or page.next_cursor is not None or page.total_count is None:
        if page.next_cursor is None:
            return None
        params["cursor"] = page.next_cursor
        return dataclasses.replace(call, params=params)
    offset = (page.offset or 0) + len(page.items)
    if not page.items or offset >= page.total_count:
        return None
    params.pop("pageNumber", None)
    params.pop("pageSize", None)
    params["offset"] = offset
    params["limit"] = page.limit or len(page.items)
    return dataclasses.replace(call, params=params)


class Paginator(Generic[T]):
    """Every item of a list, page by page, as it is used."""

    def __init__(self, fetch: Callable[[Call], Page[T]], call: Call) -> None:
        self._fetch = fetch
        self._call = call

    def first_page(self) -> Page[T]:
        return self._fetch(self._call)

    def pages(self) -> Iterator[Page[T]]:
        call: Call | None = self._call
        while call is not None:
            page = self._fetch(call)
            yield page
            call = next_call(call, page)

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def to_list(self, limit: int | None = None) -> list[T]:
        """Every item (or the first `limit`)."""
        out: list[T] = []
        for item in self:
            if limit is not None and len(out) >= limit:
                break
            out.append(item)
        return out


class AsyncPaginator(Generic[T]):
    """Every item of a list, page by page, as it is used: `async for item in ...`."""

    def __init__(self, fetch: Callable[[Call], Awaitable[Page[T]]], call: Call) -> None:
        self._fetch = fetch
        self._call = call

    async def first_page(self) -> Page[T]:
        return await self._fetch(self._call)

    async def pages(self) -> AsyncIterator[Page[T]]:
        call: Call | None = self._call
        while call is not None:
            page = await self._fetch(call)
            yield page
            call = next_call(call, page)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def to_list(self, limit: int | None = None) -> list[T]:
        out: list[T] = []
        async for item in self:
            if limit is not None and len(out) >= limit:
                break
            out.append(item)
        return out
