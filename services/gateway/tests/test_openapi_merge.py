from typing import Any

from gateway.openapi import merge_openapi


def _ok(schema_ref: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "ok"}
    if schema_ref:
        response["content"] = {"application/json": {"schema": {"$ref": schema_ref}}}
    return {"responses": {"200": response}}


def _doc(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "0"},
        "paths": paths,
        "components": {"schemas": schemas or {}},
    }


GATEWAY = _doc(
    {"/api/v1/admin/tenants": {"post": _ok("#/components/schemas/NewTenant")}},
    {"NewTenant": {"type": "object"}},
)


def test_only_public_paths_are_kept_and_admin_paths_need_the_admin_token() -> None:
    stock = _doc(
        {
            "/api/v1/products": {"get": _ok()},
            "/internal/reserve": {"post": _ok()},
            "/health": {"get": _ok()},
        }
    )

    merged = merge_openapi(GATEWAY, {"stock": stock})

    assert set(merged["paths"]) == {"/api/v1/admin/tenants", "/api/v1/products"}
    assert merged["info"]["title"] == "Fulfil API" and merged["info"]["version"] == "v1"
    assert merged["security"] == [{"apiKey": []}]
    assert set(merged["components"]["securitySchemes"]) == {
        "apiKey",
        "adminToken",
        "oauth2",
        "clientBasic",
    }
    admin = merged["paths"]["/api/v1/admin/tenants"]["post"]
    assert admin["security"] == [{"adminToken": []}]
    products = merged["paths"]["/api/v1/products"]["get"]
    assert "security" not in products and products["tags"] == ["stock"]
    assert {"401", "403", "429"} <= set(products["responses"])


def test_equal_schemas_are_shared_and_different_ones_renamed_per_service() -> None:
    address = {"type": "object", "properties": {"city": {"type": "string"}}}
    orders = _doc(
        {"/api/v1/sales": {"post": _ok("#/components/schemas/Sale")}},
        {
            "Sale": {
                "type": "object",
                "properties": {"to": {"$ref": "#/components/schemas/Address"}},
            },
            "Address": address,
            "Page": {"type": "object"},
        },
    )
    stock = _doc(
        {
            "/api/v1/locations": {"post": _ok("#/components/schemas/Address")},
            "/api/v1/products": {"get": _ok("#/components/schemas/Page")},
        },
        {
            "Address": {"type": "object", "properties": {"line1": {"type": "string"}}},
            "Page": {"type": "object"},
        },
    )

    merged = merge_openapi(GATEWAY, {"stock": stock, "orders": orders})
    schemas = merged["components"]["schemas"]

    assert schemas["Address"] == address  # orders comes first (name order) and keeps the name
    assert schemas["StockAddress"]["properties"] == {"line1": {"type": "string"}}
    assert "StockPage" not in schemas and "Page" in schemas
    assert (
        (
            merged["paths"]["/api/v1/locations"]["post"]["responses"]["200"]["content"][
                "application/json"
            ]["schema"]["$ref"]
        )
        == "#/components/schemas/StockAddress"
    )
    assert schemas["Sale"]["properties"]["to"]["$ref"] == "#/components/schemas/Address"
    assert "NewTenant" in schemas and "Problem" in schemas


def test_a_schema_referring_to_a_renamed_schema_is_renamed_too() -> None:
    first = _doc(
        {"/api/v1/a": {"get": _ok("#/components/schemas/Outer")}},
        {"Outer": {"$ref": "#/components/schemas/Inner"}, "Inner": {"type": "string"}},
    )
    second = _doc(
        {"/api/v1/b": {"get": _ok("#/components/schemas/Outer")}},
        {"Outer": {"$ref": "#/components/schemas/Inner"}, "Inner": {"type": "integer"}},
    )

    schemas = merge_openapi(GATEWAY, {"a": first, "b": second})["components"]["schemas"]

    assert schemas["BInner"] == {"type": "integer"}
    assert schemas["BOuter"] == {"$ref": "#/components/schemas/BInner"}
    assert schemas["Outer"] == {"$ref": "#/components/schemas/Inner"}


def test_the_first_definition_of_an_operation_wins() -> None:
    first = _doc({"/api/v1/x": {"get": {**_ok(), "summary": "first"}}})
    second = _doc(
        {"/api/v1/x": {"get": {**_ok(), "summary": "second"}, "post": {**_ok(), "summary": "post"}}}
    )

    paths = merge_openapi(GATEWAY, {"a": first, "b": second})["paths"]

    assert paths["/api/v1/x"]["get"]["summary"] == "first"
    assert paths["/api/v1/x"]["post"]["summary"] == "post"


def test_validation_errors_are_documented_as_problems() -> None:
    fastapi_like = _doc(
        {
            "/api/v1/sales": {
                "post": {
                    "responses": {
                        "201": {"description": "ok"},
                        "422": {
                            "description": "Validation Error",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                                }
                            },
                        },
                    }
                }
            }
        },
        {
            "HTTPValidationError": {
                "properties": {
                    "detail": {"items": {"$ref": "#/components/schemas/ValidationError"}}
                }
            },
            "ValidationError": {"type": "object"},
        },
    )

    merged = merge_openapi(GATEWAY, {"orders": fastapi_like})

    responses = merged["paths"]["/api/v1/sales"]["post"]["responses"]
    assert responses["422"] == {"$ref": "#/components/responses/ValidationFailed"}
    assert "HTTPValidationError" not in merged["components"]["schemas"]
    assert "ValidationError" not in merged["components"]["schemas"]


def test_merging_leaves_the_inputs_untouched() -> None:
    stock = _doc({"/api/v1/products": {"get": _ok()}})
    before = repr(stock)
    merge_openapi(GATEWAY, {"stock": stock})
    assert repr(stock) == before
