"""Where the Python client (`fulfil_client`) and the OpenAPI document the gateway serves
disagree: an operation without a client method, a schema without a model, a field missing,
extra, of another type or required-ness, a method answering another model than the
operation's. Each disagreement is one line naming it; no lines, no drift."""

from __future__ import annotations

import importlib.util
import inspect
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from fulfil_client import _sync_resources, events, list_models, models
from fulfil_client._operations import OPERATIONS
from fulfil_client.pagination import Paginator

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
GENERATOR = Path(__file__).resolve().parents[1] / "clients/python/tools/generate_models.py"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("fulfil_generate_models", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _generator()


def _render(kind: Any) -> str:
    """A runtime annotation as the generator writes it, members of unions sorted."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(sorted(_render(a) for a in typing.get_args(kind)))
    if origin is typing.Literal:
        return "Literal[" + ", ".join(sorted(repr(a) for a in typing.get_args(kind))) + "]"
    if origin is list:
        return f"list[{_render(typing.get_args(kind)[0])}]"
    if origin is dict:
        key, value = typing.get_args(kind)
        return f"dict[{_render(key)}, {_render(value)}]"
    if kind is type(None):
        return "None"
    if kind is Any:
        return "Any"
    simple = {str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes"}
    simple |= {datetime: "datetime", date: "date", UUID: "UUID"}
    if kind in simple:
        return simple[kind]
    return getattr(kind, "__name__", repr(kind))


def _normal(text: str, module: Any) -> str:
    """The generator's text for a schema, with union members and literals sorted as
    `_render` writes them."""
    namespace = {**vars(module), "Any": Any, "Literal": typing.Literal}
    return _render(eval(text, namespace))  # the generator's own output, no input of ours


def model_drift(
    document: dict[str, Any], module: Any = models, schemas: dict[str, Any] | None = None
) -> list[str]:
    found: list[str] = []
    if schemas is None:
        schemas = document.get("components", {}).get("schemas", {})
    for name, schema in sorted(schemas.items()):
        model = getattr(module, generator.class_name(name), None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            found.append(f"schema {name}: no model in {module.__name__}")
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        for prop in sorted(set(properties) - set(fields)):
            found.append(f"schema {name}: field {prop!r} missing from the model")
        for prop in sorted(set(fields) - set(properties)):
            found.append(f"schema {name}: the model has {prop!r}, the schema does not")
        for prop in sorted(set(properties) & set(fields)):
            field = fields[prop]
            if field.is_required() != (prop in required):
                want = "required" if prop in required else "optional"
                found.append(f"schema {name}: field {prop!r} is {want} in the schema")
            text = generator.annotation(properties[prop])
            if prop not in required and "None" not in text.split(" | "):
                text += " | None"
            expected, actual = _normal(text, module), _render(field.annotation)
            if expected != actual:
                found.append(f"schema {name}: field {prop!r} is {actual}, the schema {expected}")
    return found


def _ref(schema: dict[str, Any] | None) -> str | None:
    ref = (schema or {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _success_model(operation: dict[str, Any]) -> str | None:
    for status, answer in sorted(operation.get("responses", {}).items()):
        if status.startswith("2"):
            content = answer.get("content", {}).get("application/json")
            if content:
                return _ref(content.get("schema"))
    return None


def _method(qualname: str) -> Any:
    cls, name = qualname.split(".")
    return getattr(getattr(_sync_resources, cls.removeprefix("Async")), name)


def operation_drift(document: dict[str, Any]) -> list[str]:
    found: list[str] = []
    served: dict[tuple[str, str], dict[str, Any]] = {
        (method.upper(), path): operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    for key in sorted(set(served) - set(OPERATIONS)):
        found.append(f"operation {key[0]} {key[1]}: no client method")
    for key in sorted(set(OPERATIONS) - set(served)):
        found.append(f"operation {key[0]} {key[1]}: the client calls it, the API has none")
    for key in sorted(set(served) & set(OPERATIONS)):
        wanted = _success_model(served[key])
        answer = typing.get_type_hints(_method(OPERATIONS[key])).get("return")
        if typing.get_origin(answer) is list:  # a list the method unwraps from `data`
            continue
        if typing.get_origin(answer) is Paginator:
            item = typing.get_args(answer)[0]
            page = getattr(models, wanted or "", None)
            if page is not None and "data" in page.model_fields:
                inner = typing.get_args(page.model_fields["data"].annotation)[0]
                if inner is not item:
                    found.append(f"operation {key[0]} {key[1]}: items are {inner.__name__}")
            continue
        if wanted is not None and getattr(answer, "__name__", None) != wanted:
            found.append(
                f"operation {key[0]} {key[1]}: answers {wanted}, the client reads"
                f" {getattr(answer, '__name__', answer)}"
            )
    return found


def drift(document: dict[str, Any]) -> list[str]:
    return operation_drift(document) + model_drift(document)


def event_drift(document: dict[str, Any]) -> list[str]:
    """Where `fulfil_client.events` and the AsyncAPI document disagree: an event type
    without a model, a model reading another `data` or data version, a data schema's
    fields."""
    found: list[str] = []
    served = generator.event_types(document)
    for event_type in sorted(set(served) - set(events.EVENT_TYPES)):
        found.append(f"event {event_type}: no model in fulfil_client.events")
    for event_type in sorted(set(events.EVENT_TYPES) - set(served)):
        found.append(f"event {event_type}: the client reads it, the AsyncAPI has none")
    for event_type in sorted(set(served) & set(events.EVENT_TYPES)):
        data, version = served[event_type]
        model, known_version = events.EVENT_TYPES[event_type]
        if known_version != version:
            found.append(
                f"event {event_type}: data version {version}, the client reads {known_version}"
            )
        annotation = model.model_fields["data"].annotation
        if getattr(annotation, "__name__", None) != generator.class_name(data):
            found.append(f"event {event_type}: data is {data}, the client reads {annotation}")
    schemas = generator.data_schemas(document)
    return found + model_drift(document, events, schemas)


HAND_WRITTEN = tuple(
    cls
    for _, cls in inspect.getmembers(list_models, inspect.isclass)
    if issubclass(cls, BaseModel) and cls.__module__ == list_models.__name__
)
