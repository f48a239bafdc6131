"""Events a consumer would ignore are skipped before any database work."""

import asyncio
import uuid
from typing import Any

import orjson

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from fulfilkit.inbox import Inbox
from fulfilkit.received import Event, decode_event, read_envelope, type_hint
from fulfilment.handlers import moves_fulfillments
from stock.handlers import changes_stock


def sale_event(type_: str, status: str) -> CloudEvent:
    now = utcnow()
    data = c.SaleStatusChanged(
        id=uuid.uuid4(),
        sale_id="S-1",
        status=status,  # type: ignore[arg-type]
        previous_status="pending",
        version=2,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id="wh-1",
        lines=[c.SaleLine(sku="A", quantity=1)],
        created_at=now,
        updated_at=now,
    )
    snapshot = c.SaleSnapshot(**data.model_dump()) if type_ == c.SALE_CREATED else data
    return c.make_event(
        source="/orders", type=type_, tenant_id=uuid.uuid4(), subject="sale/1", data=snapshot
    )


def decoded(event: CloudEvent) -> Event[Any]:
    """As a typed consumer's inbox hands it over."""
    return decode_event(event.to_bytes())


class Record:
    def __init__(self, event: CloudEvent) -> None:
        self.value = event.to_bytes()
        self.headers, self.topic, self.partition, self.offset, self.key = (
            [],
            c.SALES_TOPIC,
            0,
            0,
            b"k",
        )


class NoDatabase:
    """Any use of the pool fails the test: skipped events must not reach the database."""

    def acquire(self) -> None:
        raise AssertionError("the inbox touched the database for an irrelevant event")


def test_stock_acts_only_on_creation_cancellation_and_shipping() -> None:
    assert changes_stock(decoded(sale_event(c.SALE_CREATED, "awaiting_stock")))
    assert changes_stock(decoded(sale_event(c.SALE_CANCELED, "canceled")))
    assert changes_stock(decoded(sale_event(c.SALE_STATUS_CHANGED, "shipped")))
    for status in ("pending", "backordered", "in_fulfillment", "delivered", "canceled"):
        assert not changes_stock(decoded(sale_event(c.SALE_STATUS_CHANGED, status)))


def test_fulfilment_acts_only_on_claims_shipments_and_cancellations() -> None:
    assert moves_fulfillments(decoded(sale_event(c.SALE_STATUS_CHANGED, "in_fulfillment")))
    assert moves_fulfillments(decoded(sale_event(c.SALE_STATUS_CHANGED, "shipped")))
    assert moves_fulfillments(decoded(sale_event(c.SALE_CANCELED, "canceled")))
    for status in ("pending", "backordered", "delivered"):
        assert not moves_fulfillments(decoded(sale_event(c.SALE_STATUS_CHANGED, status)))


def test_irrelevant_events_cost_no_transaction() -> None:
    applied: list[CloudEvent] = []

    async def apply(conn: object, batch: list[CloudEvent]) -> None:
        applied.extend(batch)

    inbox = Inbox(
        NoDatabase(),
        "stock",
        "stock",
        None,
        apply,  # type: ignore[arg-type]
        event_types=[c.SALE_STATUS_CHANGED],
        relevant=changes_stock,
    )
    records = [Record(sale_event(c.SALE_STATUS_CHANGED, s)) for s in ("pending", "delivered")]
    records.append(Record(sale_event(c.SALE_CREATED, "awaiting_stock")))  # not its types
    asyncio.run(inbox.handle(records))
    assert applied == []


class Validated(Exception):
    """Raised by a stand-in for `decode_event`: the inbox validated this record."""


def test_a_type_it_does_not_handle_is_skipped_without_validating_it(monkeypatch) -> None:
    def refuse(raw: bytes) -> Event[Any]:
        raise Validated(raw)

    monkeypatch.setattr("fulfilkit.inbox.decode_event", refuse)
    inbox = Inbox(
        NoDatabase(),
        "fulfilment",
        "fulfilment",
        None,
        None,  # type: ignore[arg-type]
        event_types=[c.SALE_STATUS_CHANGED],
    )
    asyncio.run(inbox.handle([Record(sale_event(c.SALE_CREATED, "awaiting_stock"))]))


def test_a_hint_is_not_taken_for_the_type() -> None:
    """A `"type"` inside `data` that comes before the envelope's, or an envelope from another
    source: the record is decoded as before (applied, or dead-lettered as foreign)."""
    applied: list[Event[Any]] = []

    async def apply(conn: object, batch: list[Event[Any]]) -> None:
        applied.extend(batch)

    class Pool:
        def acquire(self) -> "Pool":
            return self

        async def __aenter__(self) -> "Pool":
            return self

        async def __aexit__(self, *_: object) -> None:
            return None

        def transaction(self) -> "Pool":
            return self

        async def fetch(self, sql: str, consumer: str, ids: list[Any], outcome: str) -> list:
            return [{"event_id": i} for i in ids]

    event = sale_event(c.SALE_STATUS_CHANGED, "shipped")
    fields = event.model_dump(mode="json")
    # the same event with `data` first, and a "type" in it before the envelope's
    reordered = {"data": {"type": c.SALE_CREATED, **fields.pop("data")}, **fields}
    record = Record(event)
    record.value = orjson.dumps(reordered)
    assert type_hint(record.value) == c.SALE_CREATED
    inbox = Inbox(
        Pool(),  # type: ignore[arg-type]
        "fulfilment",
        "fulfilment",
        None,
        apply,  # type: ignore[arg-type]
        event_types=[c.SALE_STATUS_CHANGED],
    )
    asyncio.run(inbox.handle([record]))
    assert [e.id for e in applied] == [event.id]


def test_the_hint_names_the_type_of_every_event_the_platform_writes() -> None:
    for type_ in (c.SALE_CREATED, c.SALE_STATUS_CHANGED, c.SALE_CANCELED):
        raw = sale_event(type_, "canceled").to_bytes()
        assert type_hint(raw) == decode_event(raw).type == read_envelope(raw).type  # type: ignore[union-attr]
    assert read_envelope(b"not json") is None
    assert read_envelope(b'["a list"]') is None
    assert read_envelope(b'{"type": 1, "source": "/orders"}') is None
    assert type_hint(b'{"type": "a\\"b"}') is None
