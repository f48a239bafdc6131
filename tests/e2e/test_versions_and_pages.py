"""Through the gateway, on the real platform: the three version headers, 400 for an unknown
version, `API-Version` on every answer, and pageNumber/pageSize paging with its headers on
every list."""

import re
from typing import Any

import pytest

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import register
from tests.support import Answer, Client, ref

PROBLEM = "application/problem+json"
PAGE_HEADERS = ("Total-Count", "Total-Elements", "Total-Pages", "Page-Number", "Page-Size")


def page_headers(answer: Answer) -> dict[str, str]:
    return {name: answer.headers[name] for name in PAGE_HEADERS}


def links(answer: Answer) -> dict[str, str]:
    """rel -> the link's path under /api/v1."""
    found = re.findall(r'<([^>]+)>; rel="(\w+)"', answer.headers.get("Link", ""))
    return {rel: url.removeprefix("/api/v1") for url, rel in found}


def assert_problem(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    assert answer.headers["API-Version"] == "v1"
    assert answer.body["type"] == f"urn:fulfil:problem:{code}"
    assert (answer.body["status"], answer.body["code"]) == (status, code)
    return answer.body


async def five_locations(tenant: Client) -> list[str]:
    ids = sorted(ref("wh") for _ in range(5))
    for location in ids:
        created = await tenant.post("/locations", {"location_id": location, "name": "W"})
        assert created.status == 201, created
    return ids


# --- versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Version": "v1"},
        {"Accept-Version": "1"},
        {"X-OAKRA-API-VERSION": "v1"},
        {"Accept-Version": "1", "X-API-Version": "v1", "X-OAKRA-API-VERSION": "v1"},
    ],
)
async def test_each_version_header_reaches_the_service_and_the_answer_names_v1(
    tenant: Client, headers: dict[str, str]
):
    location = ref("wh")
    created = await tenant.call(
        "POST", "/locations", json={"location_id": location, "name": "W"}, headers=headers
    )
    read = await tenant.call("GET", f"/locations/{location}", headers=headers)

    assert created.status == 201, created
    assert created.headers["API-Version"] == read.headers["API-Version"] == "v1"
    assert (read.status, read.body["location_id"], read.body["name"]) == (200, location, "W")


@pytest.mark.parametrize(
    ("name", "value"),
    [("Accept-Version", "2"), ("X-API-Version", "v9"), ("X-OAKRA-API-VERSION", "v0")],
)
async def test_an_unknown_version_is_400_naming_the_supported_ones_and_changes_nothing(
    tenant: Client, name: str, value: str
):
    location = ref("wh")
    refused = await tenant.call(
        "POST", "/locations", json={"location_id": location, "name": "W"}, headers={name: value}
    )

    body = assert_problem(refused, 400, "invalid_request")
    assert set(body) == {"type", "title", "status", "detail", "code", "supported_versions"}
    assert body["title"] == "Invalid request"
    assert body["supported_versions"] == ["v1"]
    assert body["detail"].startswith(f"Unknown API version {value!r} in {name}; supported: v1 (")
    assert len(refused.headers["X-Request-Id"]) >= 16
    missing = await tenant.get(f"/locations/{location}")
    assert_problem(missing, 404, "no_content")


async def test_errors_carry_api_version_too(tenant: Client):
    answers = [
        (401, "invalid_token", await Client(tenant.session, tenant.base_url, None).get("/sales")),
        (404, "no_content", await tenant.get(f"/sales/{ref('S')}")),
        (422, "validation", await tenant.get("/sales", limit=0)),
        (400, "invalid_request", await tenant.call("POST", "/sales", data=b'{"sale_id": ')),
    ]
    for status, code, answer in answers:
        assert_problem(answer, status, code)


# --- pages -------------------------------------------------------------------------------------


async def test_pages_by_number_walk_the_list_with_their_headers_and_links(tenant: Client):
    ids = await five_locations(tenant)

    first = await tenant.get("/locations", pageNumber=1, pageSize=2)
    assert first.status == 200
    assert [loc["location_id"] for loc in first.body["data"]] == ids[:2]
    assert first.body["pagination"] == {"total_count": 5, "offset": 0, "limit": 2}
    assert page_headers(first) == {
        "Total-Count": "5",
        "Total-Elements": "5",
        "Total-Pages": "3",
        "Page-Number": "1",
        "Page-Size": "2",
    }
    assert links(first) == {"next": "/locations?pageNumber=2&pageSize=2"}

    second = await tenant.get(links(first)["next"])
    assert [loc["location_id"] for loc in second.body["data"]] == ids[2:4]
    assert (second.headers["Page-Number"], second.headers["Total-Pages"]) == ("2", "3")
    assert links(second) == {
        "next": "/locations?pageNumber=3&pageSize=2",
        "prev": "/locations?pageNumber=1&pageSize=2",
    }
    same_by_offset = await tenant.get("/locations", limit=2, offset=2)
    assert same_by_offset.body["data"] == second.body["data"]
    assert page_headers(same_by_offset) == page_headers(second)
    assert links(same_by_offset) == {
        "next": "/locations?limit=2&offset=4",
        "prev": "/locations?limit=2&offset=0",
    }

    last = await tenant.get(links(second)["next"])
    assert [loc["location_id"] for loc in last.body["data"]] == ids[4:]
    assert last.headers["Page-Number"] == "3"
    assert links(last) == {"prev": "/locations?pageNumber=2&pageSize=2"}


async def test_a_page_past_the_end_is_empty_and_leads_back_to_the_last_page(tenant: Client):
    await five_locations(tenant)

    beyond = await tenant.get("/locations", pageNumber=7, pageSize=2)

    assert beyond.status == 200
    assert beyond.body == {"data": [], "pagination": {"total_count": 5, "offset": 12, "limit": 2}}
    assert page_headers(beyond) == {
        "Total-Count": "5",
        "Total-Elements": "5",
        "Total-Pages": "3",
        "Page-Number": "7",
        "Page-Size": "2",
    }
    assert links(beyond) == {"prev": "/locations?pageNumber=3&pageSize=2"}


async def test_a_page_size_alone_starts_at_page_one(tenant: Client):
    ids = await five_locations(tenant)

    answer = await tenant.get("/locations", pageSize=4)

    assert [loc["location_id"] for loc in answer.body["data"]] == ids[:4]
    assert (answer.headers["Page-Number"], answer.headers["Total-Pages"]) == ("1", "2")
    assert links(answer) == {"next": "/locations?pageNumber=2&pageSize=4"}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 2, "pageNumber": 1},
        {"offset": 0, "pageSize": 2},
        {"limit": 2, "offset": 2, "pageNumber": 2, "pageSize": 2},
    ],
)
async def test_both_paging_styles_at_once_are_400(tenant: Client, query: dict[str, int]):
    answer = await tenant.get("/locations", **query)

    body = assert_problem(answer, 400, "invalid_request")
    assert body["detail"] == "Page with either limit/offset or pageNumber/pageSize, not both."
    assert set(body) == {"type", "title", "status", "detail", "code"}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"pageNumber": 0}, "/pageNumber", "Input should be greater than or equal to 1"),
        ({"pageSize": 0}, "/pageSize", "Input should be greater than or equal to 1"),
        ({"pageSize": 1001}, "/pageSize", "Input should be less than or equal to 1000"),
        ({"pageNumber": "two"}, "/pageNumber", "must be a whole number"),
        (
            {"pageNumber": 1002, "pageSize": 1000},
            "/pageNumber",
            "Input should be less than or equal to 1001 with pageSize 1000",
        ),
    ],
)
async def test_an_out_of_range_page_is_422_pointing_at_it(
    tenant: Client, query: dict[str, Any], field: str, message: str
):
    answer = await tenant.get("/locations", **query)

    body = assert_problem(answer, 422, "validation")
    [error] = body["errors"]
    assert (error["field"], error["in"]) == (field, "query")
    assert message in error["message"], error


async def test_every_list_takes_page_numbers_and_sends_the_page_headers(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    for _ in range(3):
        sale = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
        assert sale.status in (201, 202, 228), sale
    endpoint = await register(tenant, "http://127.0.0.1:9/hooks")
    lists = [
        "/products",
        "/locations",
        "/stock/stock-records",
        "/stock/movements",
        "/sales",
        "/webhooks/endpoints",
        f"/webhooks/endpoints/{endpoint['id']}/deliveries",
    ]
    for path in lists:
        by_page = await tenant.get(path, pageNumber=1, pageSize=1)
        by_offset = await tenant.get(path, limit=1, offset=0)
        assert by_page.status == by_offset.status == 200, (path, by_page, by_offset)
        total = by_page.body["pagination"]["total_count"]
        assert page_headers(by_page) == {
            "Total-Count": str(total),
            "Total-Elements": str(total),
            "Total-Pages": str(total),
            "Page-Number": "1",
            "Page-Size": "1",
        }, path
        assert by_page.headers["API-Version"] == "v1", path
        assert page_headers(by_offset) == page_headers(by_page), path
        if path != f"/webhooks/endpoints/{endpoint['id']}/deliveries":
            assert by_page.body["data"] == by_offset.body["data"], path
        if total > 1:
            assert links(by_page)["next"] == f"{path}?pageNumber=2&pageSize=1", path
    assert (await tenant.get("/sales")).body["pagination"]["total_count"] == 3


async def test_the_public_document_declares_versions_and_pages(platform, http):
    async with http.get(f"{platform.gateway_url}/openapi.json") as response:
        document = await response.json()
    shared = document["components"]["responses"]
    lists = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parameters = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
            for name in ("X-API-Version", "Accept-Version", "X-OAKRA-API-VERSION"):
                assert ("header", name) in parameters, (method, path, name)
                assert parameters["header", name]["required"] is False
            for status, response_doc in operation["responses"].items():
                ref = response_doc.get("$ref")
                declared = shared[ref.rsplit("/", 1)[-1]] if ref else response_doc
                assert declared["headers"]["API-Version"]["required"] is True, (path, status)
            if ("query", "pageNumber") in parameters:
                lists.append(path)
                assert ("query", "pageSize") in parameters, path
                assert set(operation["responses"]["200"]["headers"]) >= {
                    "Total-Count",
                    "Total-Elements",
                    "Total-Pages",
                    "Page-Number",
                    "Page-Size",
                    "Link",
                }, path
    assert set(lists) >= {
        "/api/v1/locations",
        "/api/v1/products",
        "/api/v1/sales",
        "/api/v1/stock/movements",
        "/api/v1/stock/stock-records",
        "/api/v1/webhooks/endpoints",
        "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries",
    }
