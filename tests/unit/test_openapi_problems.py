"""The merged OpenAPI document names every problem status an operation can answer and the
real formats of the shared headers."""

import re
from typing import Any

from fulfilkit.http.openapi import IF_MATCH_SCHEMA, problems
from gateway.openapi import merge_openapi

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _doc(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "0"}, "paths": paths}


def _ok(**extra: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **extra}


IF_MATCH = {
    "name": "if-match",
    "in": "header",
    "required": False,
    "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
}
BODY = {"content": {"application/json": {"schema": {"type": "object"}}}}
GATEWAY = _doc(
    {
        "/api/v1/admin/tenants": {
            "post": _ok(
                requestBody=BODY, responses={"201": {"description": "created"}, **problems(409)}
            )
        },
        "/api/v1/admin/keys/{key_id}": {
            "delete": _ok(
                parameters=[
                    {
                        "name": "key_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "x-api-version", "in": "header", "schema": {"type": "string"}},
                ]
            )
        },
    }
)
STOCK = _doc(
    {
        "/api/v1/products": {"get": _ok()},
        "/api/v1/products/{sku}": {
            "patch": _ok(
                requestBody=BODY,
                parameters=[
                    {"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}},
                    IF_MATCH,
                ],
            )
        },
        "/api/v1/sales": {"post": _ok(requestBody=BODY)},
    }
)


def _merged() -> dict[str, Any]:
    return merge_openapi(GATEWAY, {"stock": STOCK})


def _statuses(operation: dict[str, Any]) -> set[str]:
    return set(operation["responses"])


def test_each_operation_lists_the_problem_statuses_its_shape_can_answer() -> None:
    paths = _merged()["paths"]

    assert _statuses(paths["/api/v1/products"]["get"]) == {
        "200",
        "400",
        "401",
        "403",
        "422",
        "429",
        "503",
        "504",
    }
    assert _statuses(paths["/api/v1/products/{sku}"]["patch"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
        "503",
        "504",
    }
    assert _statuses(paths["/api/v1/sales"]["post"]) == {  # an Idempotency-Key can collide
        "200",
        "400",
        "401",
        "403",
        "409",
        "413",
        "422",
        "429",
        "503",
        "504",
    }
    # the gateway's own operations: no scopes and no upstream, so no 403 and no 504
    assert _statuses(paths["/api/v1/admin/keys/{key_id}"]["delete"]) == {
        "200",
        "400",
        "401",
        "404",
        "422",
        "429",
        "503",
    }
    assert _statuses(paths["/api/v1/admin/tenants"]["post"]) == {
        "201",
        "400",
        "401",
        "409",
        "413",
        "422",
        "429",
        "503",
    }


def test_every_problem_status_is_problem_json_with_the_shared_schema() -> None:
    merged = _merged()
    shared = merged["components"]["responses"]
    for path in merged["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    name = response["$ref"].removeprefix("#/components/responses/")
                    assert shared[name]["content"] == {
                        "application/problem+json": {"schema": PROBLEM}
                    }, (status, name)
    assert merged["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "code",
    ]


def _header(operation: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p for p in operation["parameters"] if p["name"].lower() == name]
    return found


def test_the_version_headers_have_their_real_formats() -> None:
    paths = _merged()["paths"]
    patch = paths["/api/v1/products/{sku}"]["patch"]

    assert _header(patch, "if-match")["schema"] == IF_MATCH_SCHEMA
    for operation in (
        patch,
        paths["/api/v1/admin/keys/{key_id}"]["delete"],
        paths["/api/v1/products"]["get"],
    ):
        assert _header(operation, "x-api-version")["schema"] == {"type": "string", "enum": ["v1"]}


def test_the_if_match_format_takes_an_etag_or_any_and_nothing_else() -> None:
    pattern = re.compile(IF_MATCH_SCHEMA["pattern"])

    for accepted in ('"7"', 'W/"7"', "7", "*", '"999999999"'):
        assert pattern.search(accepted), accepted
    for refused in ("", '"0"', "007", '"7', "7 7", "²", "-1", '"1.0"', "W/*", '"1234567890"', "**"):
        assert not pattern.search(refused), refused
