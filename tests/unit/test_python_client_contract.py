"""The Python client agrees with the OpenAPI document the gateway would serve, built here
from the services' own documents as the gateway merges them (the e2e twin,
tests/e2e/test_python_client.py, reads the one the running gateway serves). Each
disagreement is named: regenerate the models with clients/python/tools/generate_models.py
and add a client method for a new operation."""

import copy
import importlib
from typing import Any

import pytest

from gateway.api import _admin_document
from gateway.openapi import merge_openapi
from tests.client_contract import drift, event_drift

SERVICES = ("fulfilment", "orders", "stock", "webhooks")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ENVIRONMENT", "development")
        env.setenv("ADMIN_TOKEN", "a" * 40)
        documents = {
            name: importlib.import_module(f"{name}.app").create_app().openapi() for name in SERVICES
        }
    return merge_openapi(_admin_document(), documents)


def test_the_client_covers_every_operation_and_schema(document: dict[str, Any]) -> None:
    assert drift(document) == []


def test_a_new_operation_is_named(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    changed["paths"]["/api/v1/sales/{sale_id}/notes"] = {"get": {"responses": {}}}
    assert drift(changed) == ["operation GET /api/v1/sales/{sale_id}/notes: no client method"]


def test_a_new_schema_and_field_changes_are_named(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    schemas = changed["components"]["schemas"]
    schemas["Invoice"] = {"type": "object", "properties": {}}
    sale = schemas["SaleOut"]
    sale["properties"]["channel_ref"] = {"type": "string"}
    del sale["properties"]["priority"]
    sale["properties"]["version"] = {"type": "string"}
    sale["required"].remove("customer")
    assert drift(changed) == [
        "schema Invoice: no model in fulfil_client.models",
        "schema SaleOut: field 'channel_ref' missing from the model",
        "schema SaleOut: the model has 'priority', the schema does not",
        "schema SaleOut: field 'customer' is optional in the schema",
        "schema SaleOut: field 'version' is int, the schema str",
    ]


def test_a_different_answer_is_named(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    answer = changed["paths"]["/api/v1/sales/{sale_id}"]["get"]["responses"]["200"]
    answer["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/CancelOut"}
    assert drift(changed) == [
        "operation GET /api/v1/sales/{sale_id}: answers CancelOut, the client reads SaleOut"
    ]


@pytest.fixture(scope="module")
def events_document() -> dict[str, Any]:
    from fulfilkit.asyncapi import events_document as build

    return build("localhost:9092", "v1")


def test_the_client_reads_every_event_the_asyncapi_document_names(
    events_document: dict[str, Any],
) -> None:
    assert event_drift(events_document) == []


def test_an_event_change_is_named(events_document: dict[str, Any]) -> None:
    changed = copy.deepcopy(events_document)
    schemas = changed["components"]["schemas"]
    schemas["SaleCreatedEvent"]["properties"]["dataversion"]["const"] = "3"
    schemas["SaleSnapshot"]["properties"]["channel_ref"] = {"type": "string"}
    assert event_drift(changed) == [
        "event sale.created: data version 3, the client reads 2",
        "schema SaleSnapshot: field 'channel_ref' missing from the model",
    ]
