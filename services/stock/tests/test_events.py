"""The events stock writes straight to JSON are the bytes their contract models give: same
fields, same order, same formats, and every consumer decodes them."""

import uuid
from datetime import datetime

import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as RowUUID
from pydantic import BaseModel

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.received import decode_event
from stock import events
from stock.domain import LedgerEntry, Place, Reservation, StockRecord

TENANT = uuid.uuid4()
RECORD = RowUUID(str(uuid.uuid4()))  # as read from the database: asyncpg's own UUID type
OTHER = uuid.uuid4()


def as_models(encoded: events.Encoded, data: BaseModel) -> bytes:
    """What `CloudEvent.to_bytes()` gives for the same event: its id and times taken from
    the encoded one, everything else from the contract models."""
    sent = orjson.loads(encoded.payload)
    event = c.make_event(
        source=events.SOURCE,
        type=encoded.type,
        tenant_id=TENANT,
        subject=sent["subject"],
        data=data,
    )
    return CloudEvent(
        **{**event.model_dump(), "id": encoded.id, "time": datetime.fromisoformat(sent["time"])}
    ).to_bytes()


def updated_at(encoded: events.Encoded) -> datetime:
    return datetime.fromisoformat(orjson.loads(encoded.payload)["data"]["updated_at"])


@pytest.mark.parametrize("reference", ["S-1", None])
def test_stock_changed_is_what_its_model_writes(reference):
    entry = LedgerEntry(RECORD, TENANT, "wh-1", "A", "reservation", 0, 2, 10, 7, 12, reference)
    key, encoded = events.stock_changed(entry)
    assert isinstance(encoded, events.Encoded)
    data = c.StockChanged(
        id=RECORD,
        location_id="wh-1",
        sku="A",
        quantity=10,
        reserved=7,
        available=3,
        version=12,
        updated_at=updated_at(encoded),
        quantity_change=0,
        reserved_change=2,
        reason="reservation",
        reference=reference,
    )
    assert encoded.payload == as_models(encoded, data)
    assert key == c.stock_level_key(TENANT, "wh-1", "A")
    assert decode_event(encoded.payload).data == data


def test_stock_low_is_what_its_model_writes():
    record = StockRecord(RECORD, TENANT, "wh-1", "A", 5, 4, 9, min_level=2, low=True)
    key, encoded = events.stock_low(record)
    assert isinstance(encoded, events.Encoded)
    data = c.StockLow(
        id=RECORD,
        location_id="wh-1",
        sku="A",
        quantity=5,
        reserved=4,
        available=1,
        version=9,
        updated_at=updated_at(encoded),
        min_level=2,
    )
    assert encoded.payload == as_models(encoded, data)
    assert key == c.stock_level_key(TENANT, "wh-1", "A")


ADDRESS = {"street": "Grüne Straße 1", "lines": ["a", 2, 3.5, None, True], "zip": {"x": 1e16}}


@pytest.mark.parametrize(
    ("status", "place", "at", "elsewhere", "sale_version", "bulky"),
    [
        ("active", Place("Main", ADDRESS), {}, [], 3, set()),
        ("active", None, {}, [], None, {RECORD}),
        ("released", Place("Main", None), {}, [], 1, set()),
        ("committed", Place("Main", ADDRESS), {}, [], 2, {OTHER}),
        # a split sale: one line elsewhere, named there, and that location's place (or none)
        ("active", Place("Main", None), {OTHER: "wh-2"}, [("wh-2", Place("Two", None))], 1, set()),
        ("active", Place("Main", None), {OTHER: "wh-2"}, [("wh-2", None)], 1, set()),
    ],
)
def test_reservation_events_are_what_their_model_writes(
    status, place, at, elsewhere, sale_version, bulky
):
    sale = uuid.uuid4()
    row = Reservation(
        uuid.uuid4(),
        TENANT,
        sale,
        "S-1",
        "wh-1",
        status,
        2,
        [("A", 2, RECORD), ("B", 1, OTHER)],
        at,
        sale_version,
    )
    key, encoded = events.reservation(row, bulky, place, elsewhere)
    assert isinstance(encoded, events.Encoded)
    location = lambda p: None if p is None else c.ReservationLocation(**vars(p))  # noqa: E731
    data = c.ReservationSnapshot(
        id=row.id,
        sale=sale,
        sale_id="S-1",
        location_id="wh-1",
        location=location(place),
        status=status,
        version=2,
        updated_at=updated_at(encoded),
        lines=[
            c.ReservationLine(
                sku=s, quantity=q, stock_record_id=r, is_bulky=r in bulky, location_id=at.get(r)
            )
            for s, q, r in row.lines
        ],
        other_locations=[
            c.ReservationPlace(location_id=loc, location=location(p)) for loc, p in elsewhere
        ],
        sale_version=sale_version,
    )
    assert encoded.type == events.RESERVATION_TYPES[status]
    assert encoded.payload == as_models(encoded, data)
    assert key == c.sale_key(TENANT, sale)
    assert decode_event(encoded.payload).data == data
