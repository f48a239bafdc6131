"""The largest sale the API accepts makes events far below what Kafka takes (1 MiB by
default): one tenant's sale can never be too big to publish."""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fulfilkit import contracts as c
from fulfilkit.bounds import FREE_FORM
from fulfilkit.models import CODE_MAX_LENGTH
from orders import events
from orders.domain import Sale, StatusChange
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


def largest_sale() -> SaleIn:
    return SaleIn.model_validate(
        {
            "sale_id": code("S"),
            "shop": {"channel": WIDEST * 64, "shop_name": WIDEST * 200},
            "location_id": code("L"),
            "lines": [{"sku": code(f"K{i}-"), "quantity": MAX_QUANTITY} for i in range(MAX_LINES)],
            "customer": largest_free_form(),
            "shipping_address": largest_free_form(),
        }
    )


def as_sale(body: SaleIn) -> Sale:
    dump = body.model_dump()
    now = datetime.now(UTC)
    return Sale(
        uuid.uuid4(),
        uuid.uuid4(),
        body.sale_id,
        "awaiting_stock",
        1,
        dump["shop"],
        body.location_id,
        dump["lines"],
        body.customer,
        body.shipping_address,
        None,
        None,
        created_at=now,
        updated_at=now,
    )


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
    # 32 KiB of free-form objects, 500 lines of ~95 bytes, the rest small: about 82 KB
    assert 80_000 < size < 96 * 1024, size
    assert size < KAFKA_DEFAULT_MAX_BYTES / 10


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
    # KB at most): about 184 KB
    assert all(size < 208 * 1024 for size in sizes), sizes
    assert max(sizes) < KAFKA_DEFAULT_MAX_BYTES / 5
