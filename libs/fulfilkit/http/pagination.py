"""List pagination: `{"data": [...], "pagination": {...}}` plus `Total-Count`,
`Total-Elements`, `Total-Pages`, `Page-Number`, `Page-Size` and a `Link` header.

A list takes either `limit`/`offset` or `pageNumber`/`pageSize` (as warehouse integrations
page); both styles name the same slice (`offset = (pageNumber - 1) * pageSize`), and the
links lead on in the style the request used. Both at once is 400.
"""

import math
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from fulfilkit.http.problems import Problem
from fulfilkit.models import DecimalDigits

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Deep offsets cost the database a scan of everything before them; narrow with filters.
MAX_OFFSET = 1_000_000
MAX_PAGE_NUMBER = MAX_OFFSET + 1  # with pageSize 1; larger pages reach fewer


class PageParams(BaseModel):
    limit: int
    offset: int
    style: Literal["offset", "page"] = "offset"

    @property
    def number(self) -> int:
        """The page answered, from 1: the one `offset` falls on."""
        return self.offset // self.limit + 1


async def _page_params(
    request: Request,
    limit: Annotated[
        int,
        Field(ge=1, le=MAX_LIMIT),
        DecimalDigits,
        Query(description="Items per page; not with `pageNumber`/`pageSize`."),
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int,
        Field(ge=0, le=MAX_OFFSET),
        DecimalDigits,
        Query(description="Items to skip; not with `pageNumber`/`pageSize`."),
    ] = 0,
    page_number: Annotated[
        int,
        Field(ge=1, le=MAX_PAGE_NUMBER),
        DecimalDigits,
        Query(
            alias="pageNumber",
            description="The page to answer, from 1: the alternative to `offset` (not with"
            f" `limit`/`offset`). A page may start at most at item {MAX_OFFSET}; past the last"
            " page the list is empty.",
        ),
    ] = 1,
    page_size: Annotated[
        int,
        Field(ge=1, le=MAX_LIMIT),
        DecimalDigits,
        Query(
            alias="pageSize",
            description="Items per page: the alternative to `limit` (not with `limit`/`offset`).",
        ),
    ] = DEFAULT_LIMIT,
) -> PageParams:
    given = request.query_params
    paged = "pageNumber" in given or "pageSize" in given
    if not paged:
        return PageParams(limit=limit, offset=offset)
    if "limit" in given or "offset" in given:
        raise Problem(
            "invalid_request",
            "Page with either limit/offset or pageNumber/pageSize, not both.",
        )
    start = (page_number - 1) * page_size
    if start > MAX_OFFSET:
        last = MAX_OFFSET // page_size + 1
        raise Problem(
            "validation",
            "The request has invalid fields.",
            errors=[
                {
                    "field": "/pageNumber",
                    "message": f"Input should be less than or equal to {last} with pageSize"
                    f" {page_size}: a page may start at most at item {MAX_OFFSET}.",
                    "in": "query",
                }
            ],
        )
    return PageParams(limit=page_size, offset=start, style="page")


Page = Annotated[PageParams, Depends(_page_params)]


def total_pages(page: PageParams, total: int) -> int:
    return math.ceil(total / page.limit)


def link_header(request: Request, page: PageParams, total: int) -> str | None:
    def url(offset: int) -> str:
        if page.style == "page":
            return str(
                request.url.include_query_params(
                    pageNumber=offset // page.limit + 1, pageSize=page.limit
                )
            )
        return str(request.url.include_query_params(limit=page.limit, offset=offset))

    links = []
    if page.offset + page.limit < total and page.offset + page.limit <= MAX_OFFSET:
        links.append(f'<{url(page.offset + page.limit)}>; rel="next"')
    if page.offset > 0:
        if page.style == "page":  # past the end, the previous page is the last one
            previous = min(
                page.offset - page.limit, max(total_pages(page, total) - 1, 0) * page.limit
            )
        else:
            previous = max(page.offset - page.limit, 0)
        links.append(f'<{url(previous)}>; rel="prev"')
    return ", ".join(links) or None


def paginated(
    request: Request, response: Response, page: PageParams, items: list[Any], total: int
) -> dict[str, Any]:
    if link := link_header(request, page, total):
        response.headers["Link"] = link
    response.headers["Total-Count"] = str(total)
    response.headers["Total-Elements"] = str(total)
    response.headers["Total-Pages"] = str(total_pages(page, total))
    response.headers["Page-Number"] = str(page.number)
    response.headers["Page-Size"] = str(page.limit)
    return {
        "data": items,
        "pagination": {"total_count": total, "offset": page.offset, "limit": page.limit},
    }
