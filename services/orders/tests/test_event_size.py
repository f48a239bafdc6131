"""The largest sale the API accepts makes events far below what Kafka takes (1 MiB by
default): one tenant's sale can never be too big to publish."""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fulfilkit import contracts as c
from fulfilkit.bounds import FREE_FORM
from fulfilkit.models import CODE_MAX_LENGTH
from orders import details as d
from orders import events
from orders.api import new_sale
from orders.domain import Sale, StatusChange, open_sale
from orders.schemas import MAX_LINES, MAX_QUANTITY, SaleIn

KAFKA_DEFAULT_MAX_BYTES = 1024 * 1024
WIDEST = "\x01"  # a legal character orjson writes in the most bytes: `\u0001`


def code(prefix: str) -> str:
    return prefix + "x" * (CODE_MAX_LENGTH - len(prefix))


def largest_free_form() -> dict[str, Any]:
    """A legal free-form object of exactly FREE_FORM.max_bytes bytes as the events write it,
    mostly of numbers that grow when written (`1e5` becomes `100000.0`)."""
    value: dict[str, Any] = {"ids": [[1e5] * FREE_FORM.max_entries for _ in range(24)]}
    while (room := FREE_FORM.max_bytes - len(orjson.dumps(value))) > 0:
        key = f"p{len(value)}"
        text = room - len(f',"{key}":""')
        value[key] = "x" * min(max(text, 0), FREE_FORM.max_string_length)
    assert len(orjson.dumps(value)) == FREE_FORM.max_bytes
    return value


def largest_properties() -> dict[str, Any]:
    """Sale properties of exactly MAX_SALE_PROPERTIES_BYTES as the events write them."""
    value: dict[str, Any] = {}
    while (room := d.MAX_SALE_PROPERTIES_BYTES - len(orjson.dumps(value))) > 0:
        key = f"p{len(value)}"
        text = (room - len(f',"{key}":""')) // 6  # WIDEST takes 6 bytes
        value[key] = WIDEST * min(max(text, 0), d.MAX_PROPERTY_TEXT) + "x" * (
            (room - len(f',"{key}":""')) % 6 if text < d.MAX_PROPERTY_TEXT else 0
        )
    assert len(orjson.dumps(value)) == d.MAX_SALE_PROPERTIES_BYTES
    return value


def largest_lines() -> list[dict[str, Any]]:
    """500 lines, the first ones with as many properties as all lines may carry together."""
    lines: list[dict[str, Any]] = [
        {"sku": code(f"K{i}-"), "quantity": MAX_QUANTITY} for i in range(MAX_LINES)
    ]
    room = d.MAX_LINES_PROPERTIES_BYTES
    for line in lines:
        properties: dict[str, Any] = {}
        for key in range(d.MAX_LINE_PROPERTIES):
            # as many characters as fit the room left, `{"k":"..."}` written out
            text = min(d.MAX_PROPERTY_TEXT, (room - 16) // 6)
            if text <= 0:
                break
            properties[f"{key:02}"] = WIDEST * text
            room -= len(orjson.dumps({f"{key:02}": WIDEST * text})) - (1 if properties else 0)
        if not properties:
            break
        line["properties"] = properties
    return lines


def largest_address() -> dict[str, Any]:
    text = WIDEST * d.MAX_ADDRESS_TEXT
    return {
        "name": text,
        "company": text,
        "lines": [text] * d.MAX_ADDRESS_LINES,
        "city": text,
        "region": text,
        "postcode": WIDEST * 32,
        "country": "NO",
        "phone": "+" + "1" * 31,
        "email": "x" * 64 + "@" + "y" * 185 + ".no",
    }


def largest_sale() -> SaleIn:
    money = {"amount": "9" * 15 + ".9999", "currency": "EUR"}
    return SaleIn.model_validate(
        {
            "sale_id": code("S"),
            "shop": {"channel": WIDEST * 64, "shop_name": WIDEST * 200},
            "location_id": code("L"),
            "lines": largest_lines(),
            "customer": largest_free_form(),
            "shipping_address": largest_address(),
            "priority": "urgent",
            "instructions": WIDEST * d.MAX_INSTRUCTIONS,
            "required_dates": {
                "ship_by": "2026-01-31T12:00:00.123456+14:00",
                "deliver_by": "2026-02-28T12:00:00.123456+14:00",
            },
            "invoice_value": money,
            "cash_on_delivery": money,
            "properties": largest_properties(),
        }
    )


def as_sale(body: SaleIn) -> Sale:
    return open_sale(uuid.uuid4(), new_sale(body), datetime.now(UTC))


def largest_reservation(sale: Sale) -> dict[str, Any]:
    return c.ReservationSnapshot(
        id=uuid.uuid4(),
        sale=sale.id,
        sale_id=sale.sale_id,
        location_id=sale.location_id,
        location=c.ReservationLocation(name=WIDEST * 200, address=largest_free_form()),
        status="active",
        version=2**31 - 1,
        updated_at=datetime.now(UTC),
        lines=[
            c.ReservationLine(
                sku=line["sku"],
                quantity=line["quantity"],
                stock_record_id=uuid.uuid4(),
                is_bulky=True,
            )
            for line in sale.lines
        ],
    ).model_dump(mode="json")


def test_the_largest_legal_sale_is_a_small_event():
    sale = as_sale(largest_sale())
    _, event = events.sale_created(sale)
    size = len(event.to_bytes())
    # 16 KiB of customer, 9 KB of address, 8 KiB of sale and 16 KiB of line properties,
    # 6 KB of instructions, 500 lines of ~95 bytes, the rest small: about 106 KB
    assert 100_000 < size < 112 * 1024, size
    assert size < KAFKA_DEFAULT_MAX_BYTES / 8


def test_the_largest_legal_sale_stays_small_as_it_moves_on():
    """A status change carries the sale with its reservation and fulfillments as well."""
    sale = as_sale(largest_sale())
    sale.reservation = largest_reservation(sale)
    sale.fulfillments = [
        {
            "id": str(uuid.uuid4()),
            "fulfillment_id": code("F"),
            "status": "waiting_for_picking",
            "tracking_number": code("T"),
        }
    ]
    sale.status, sale.version = "canceled", 2**31 - 1
    sale.cancel_reason = "customer_request"
    keyed = events.status_changed(StatusChange(sale, "pending", "customer_request"))
    sizes = [len(event.to_bytes()) for _, event in keyed]
    assert [event.type for _, event in keyed] == [c.SALE_STATUS_CHANGED, c.SALE_CANCELED]
    # and a reservation of 500 lines of ~165 bytes and its location (name and address, 18
    # KB at most): about 208 KB
    assert all(size < 224 * 1024 for size in sizes), sizes
    assert max(sizes) < KAFKA_DEFAULT_MAX_BYTES / 5
