"""pageNumber/pageSize pagination: the same slices as limit/offset, links in the request's
style, and the page headers every list answer carries."""

from starlette.requests import Request
from starlette.responses import Response

from fulfilkit.http.pagination import MAX_OFFSET, PageParams, link_header, paginated


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/api/v1/products",
            "query_string": query.encode(),
            "headers": [(b"host", b"api.test")],
            "server": ("api.test", 80),
        }
    )


def page(number: int, size: int) -> PageParams:
    return PageParams(limit=size, offset=(number - 1) * size, style="page")


def headers_of(response: Response) -> dict[str, str]:
    return {
        name: response.headers[name]
        for name in ("Total-Count", "Total-Elements", "Total-Pages", "Page-Number", "Page-Size")
    }


def test_page_links_keep_the_page_style() -> None:
    link = link_header(request("pageNumber=2&pageSize=10"), page(2, 10), 25)
    assert link == (
        '<http://api.test/api/v1/products?pageNumber=3&pageSize=10>; rel="next", '
        '<http://api.test/api/v1/products?pageNumber=1&pageSize=10>; rel="prev"'
    )


def test_past_the_last_page_the_previous_link_is_the_last_page() -> None:
    link = link_header(request("pageNumber=9&pageSize=10"), page(9, 10), 25)
    assert link == '<http://api.test/api/v1/products?pageNumber=3&pageSize=10>; rel="prev"'
    empty = link_header(request("pageNumber=4&pageSize=10"), page(4, 10), 0)
    assert empty == '<http://api.test/api/v1/products?pageNumber=1&pageSize=10>; rel="prev"'


def test_no_next_page_beyond_the_largest_offset() -> None:
    size = 1000
    last = MAX_OFFSET // size + 1
    link = link_header(request(f"pageNumber={last}&pageSize={size}"), page(last, size), 10**9)
    assert link == (
        f'<http://api.test/api/v1/products?pageNumber={last - 1}&pageSize={size}>; rel="prev"'
    )


def test_every_page_sends_the_page_headers_beside_the_body() -> None:
    response = Response()
    body = paginated(request("pageNumber=3&pageSize=10"), response, page(3, 10), ["x"] * 5, 25)

    assert body == {"data": ["x"] * 5, "pagination": {"total_count": 25, "offset": 20, "limit": 10}}
    assert headers_of(response) == {
        "Total-Count": "25",
        "Total-Elements": "25",
        "Total-Pages": "3",
        "Page-Number": "3",
        "Page-Size": "10",
    }


def test_limit_and_offset_name_the_page_their_offset_falls_on() -> None:
    response = Response()
    paginated(request("limit=10&offset=15"), response, PageParams(limit=10, offset=15), [], 0)

    assert headers_of(response) == {
        "Total-Count": "0",
        "Total-Elements": "0",
        "Total-Pages": "0",
        "Page-Number": "2",
        "Page-Size": "10",
    }
    assert "Link" in response.headers  # rel="prev": offset 5
