"""A sale's details as the request model reads them and as events carry them."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from fulfilkit.bounds import pointer
from orders import events
from orders.api import new_sale
from orders.domain import open_sale
from orders.schemas import SaleIn

BASE = {
    "sale_id": "S-1",
    "shop": {"channel": "web", "shop_name": "Shop"},
    "location_id": "wh-1",
    "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2, "properties": {"x": 1}}],
}


def errors(**fields) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as refused:
        SaleIn.model_validate(BASE | fields)
    return [(pointer(e["loc"]), e["msg"]) for e in refused.value.errors()]


def test_each_legacy_address_key_maps_onto_its_field():
    sale = SaleIn.model_validate(
        BASE
        | {
            "shipping_address": {
                "contact_name": "Ada",
                "company_name": "Engines",
                "address_line1": "1 Main St",
                "address_line2": "Floor 2",
                "address3": "Door B",
                "locality": "Oslo",
                "province": "Oslo",
                "postal_code": "0150",
                "country_code": "no",
            }
        }
    )
    assert new_sale(sale).shipping_address == {
        "name": "Ada",
        "company": "Engines",
        "lines": ["1 Main St", "Floor 2", "Door B"],
        "city": "Oslo",
        "region": "Oslo",
        "postcode": "0150",
        "country": "NO",
    }


def test_an_address_refuses_what_does_not_map():
    assert errors(shipping_address={"zip": "1", "zipcode": "2"}) == [
        ("/shipping_address", "Value error, zip and zipcode are the same field: send one")
    ]
    assert errors(shipping_address={"floor": "2"}) == [
        ("/shipping_address/floor", "Extra inputs are not permitted")
    ]


def test_a_sale_without_details_publishes_its_lines_as_before():
    sale = open_sale(uuid.uuid4(), new_sale(SaleIn.model_validate(BASE)), datetime.now(UTC))
    _, event = events.sale_created(sale)
    data = orjson.loads(event.to_bytes())["data"]
    assert data["lines"] == [
        {"sku": "A", "quantity": 1},
        {"sku": "B", "quantity": 2, "properties": {"x": 1}},
    ]
    assert (data["priority"], data["required_dates"], data["properties"]) == ("normal", None, None)


def test_the_details_travel_in_the_snapshot():
    body = BASE | {
        "priority": "urgent",
        "instructions": "Fragile",
        "required_dates": {"deliver_by": "2026-12-03T20:00:00+02:00"},
        "invoice_value": {"amount": "10.00", "currency": "NOK"},
        "cash_on_delivery": {"amount": "10", "currency": "NOK"},
        "properties": {"gift": False},
    }
    sale = open_sale(uuid.uuid4(), new_sale(SaleIn.model_validate(body)), datetime.now(UTC))
    data = orjson.loads(events.sale_created(sale)[1].to_bytes())["data"]
    assert data["priority"] == "urgent"
    assert data["instructions"] == "Fragile"
    assert data["required_dates"] == {"ship_by": None, "deliver_by": "2026-12-03T18:00:00Z"}
    assert data["invoice_value"] == {"amount": "10.00", "currency": "NOK"}
    assert data["cash_on_delivery"] == {"amount": "10", "currency": "NOK"}
    assert data["properties"] == {"gift": False}
