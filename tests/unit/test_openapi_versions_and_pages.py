"""The merged OpenAPI document declares the three version headers on every operation,
`API-Version` on every answer, and the page parameters and headers on every list."""

from typing import Any

from fulfilkit.http.openapi import API_VERSION_HEADER, PAGINATION_HEADERS
from gateway.openapi import merge_openapi

PAGE_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "integer"}}
    for name in ("limit", "offset", "pageNumber", "pageSize")
]


def _doc(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "0"}, "paths": paths}


def _merged() -> dict[str, Any]:
    stock = _doc(
        {
            "/api/v1/products": {
                "get": {
                    "parameters": PAGE_PARAMETERS,
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/api/v1/products/{sku}": {
                "get": {
                    "parameters": [
                        {"name": "sku", "in": "path", "required": True, "schema": {}},
                        {"name": "x-api-version", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            },
        }
    )
    return merge_openapi(_doc({}), {"stock": stock})


def _headers(operation: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}


def test_every_operation_takes_each_version_header_once() -> None:
    for operation in (
        _merged()["paths"]["/api/v1/products"]["get"],
        _merged()["paths"]["/api/v1/products/{sku}"]["get"],
    ):
        headers = _headers(operation)
        assert {name.lower() for name in headers} == {
            "x-api-version",
            "accept-version",
            "x-oakra-api-version",
        }
        schemas = {name.lower(): h["schema"] for name, h in headers.items()}
        assert schemas == {
            "x-api-version": {"type": "string", "enum": ["v1"]},
            "accept-version": {"type": "string", "enum": ["1"]},
            "x-oakra-api-version": {"type": "string", "enum": ["v1"]},
        }
        assert all(h["required"] is False for h in headers.values() if "required" in h)


def test_every_answer_declares_api_version_problems_included() -> None:
    document = _merged()
    for response in document["components"]["responses"].values():
        assert response["headers"] == {"API-Version": API_VERSION_HEADER}
    ok = document["paths"]["/api/v1/products/{sku}"]["get"]["responses"]["200"]
    assert ok["headers"] == {"API-Version": API_VERSION_HEADER}
    assert API_VERSION_HEADER["required"] is True


def test_a_list_answer_declares_the_page_headers() -> None:
    ok = _merged()["paths"]["/api/v1/products"]["get"]["responses"]["200"]

    assert set(ok["headers"]) == {
        "API-Version",
        "Total-Count",
        "Total-Elements",
        "Total-Pages",
        "Page-Number",
        "Page-Size",
        "Link",
    }
    assert ok["headers"]["Total-Pages"] == PAGINATION_HEADERS["Total-Pages"]
    assert ok["headers"]["Total-Elements"]["schema"] == {"type": "integer", "minimum": 0}
    assert ok["headers"]["Link"]["required"] is False
