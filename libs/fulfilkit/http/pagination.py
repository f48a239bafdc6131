"""limit/offset pagination: `{"data": [...], "pagination": {...}}` plus a `Link` header."""

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from fulfilkit.models import DecimalDigits

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Deep offsets cost the database a scan of everything before them; narrow with filters.
MAX_OFFSET = 1_000_000


class PageParams(BaseModel):
    limit: int
    offset: int


async def _page_params(
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), DecimalDigits, Query()] = DEFAULT_LIMIT,
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET), DecimalDigits, Query()] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Page = Annotated[PageParams, Depends(_page_params)]


def link_header(request: Request, page: PageParams, total: int) -> str | None:
    def url(offset: int) -> str:
        return str(request.url.include_query_params(limit=page.limit, offset=offset))

    links = []
    if page.offset + page.limit < total and page.offset + page.limit <= MAX_OFFSET:
        links.append(f'<{url(page.offset + page.limit)}>; rel="next"')
    if page.offset > 0:
        links.append(f'<{url(max(page.offset - page.limit, 0))}>; rel="prev"')
    return ", ".join(links) or None


def paginated(
    request: Request, response: Response, page: PageParams, items: list[Any], total: int
) -> dict[str, Any]:
    if link := link_header(request, page, total):
        response.headers["Link"] = link
    response.headers["Total-Count"] = str(total)
    return {
        "data": items,
        "pagination": {"total_count": total, "offset": page.offset, "limit": page.limit},
    }
