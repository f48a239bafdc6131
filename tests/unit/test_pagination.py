"""Links to the next and previous pages never lead beyond the largest offset."""

from starlette.requests import Request

from fulfilkit.http.pagination import MAX_OFFSET, PageParams, link_header


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/api/v1/sales",
            "query_string": query.encode(),
            "headers": [(b"host", b"api.test")],
            "server": ("api.test", 80),
        }
    )


def test_next_and_previous_pages_are_linked():
    link = link_header(request("limit=10&offset=10"), PageParams(limit=10, offset=10), 100)
    assert link == (
        '<http://api.test/api/v1/sales?limit=10&offset=20>; rel="next", '
        '<http://api.test/api/v1/sales?limit=10&offset=0>; rel="prev"'
    )


def test_no_next_page_beyond_the_largest_offset():
    last = MAX_OFFSET - 5
    link = link_header(
        request(f"limit=10&offset={last}"), PageParams(limit=10, offset=last), MAX_OFFSET * 2
    )
    assert link == (f'<http://api.test/api/v1/sales?limit=10&offset={last - 10}>; rel="prev"')
    at_max = link_header(
        request(f"limit=10&offset={MAX_OFFSET - 10}"),
        PageParams(limit=10, offset=MAX_OFFSET - 10),
        MAX_OFFSET * 2,
    )
    assert at_max is not None and f'offset={MAX_OFFSET}>; rel="next"' in at_max
