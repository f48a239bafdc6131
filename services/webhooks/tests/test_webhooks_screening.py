"""An event no endpoint wants costs the consumer one read outside any transaction: it is
never validated and opens no transaction. What some endpoint wants is applied as before, and
an endpoint subscribed before an event committed always gets it, whichever replica consumes
it."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Inbox, Screening
from fulfilkit.received import Envelope, Event, decode_event, read_envelope
from webhooks.domain import NewEndpoint
from webhooks.handlers import DeliveriesFromEvents
from webhooks.resources import Resources
from webhooks.store import SCHEMA
from webhooks.usecases import deliveries, endpoints


def stock_event(tenant: UUID, source: str = "/stock") -> CloudEvent:
    data = c.StockChanged(
        id=uuid4(),
        location_id="main",
        sku="sku-1",
        quantity=1,
        reserved=0,
        available=1,
        version=1,
        updated_at=datetime.now(UTC),
        quantity_change=1,
        reserved_change=0,
        reason="received",
    )
    return c.make_event(
        source=source, type=c.STOCK_CHANGED, tenant_id=tenant, subject="stock/1", data=data
    )


class Record:
    def __init__(self, value: bytes, offset: int = 0, topic: str = c.STOCK_TOPIC) -> None:
        self.value = value
        self.topic, self.partition, self.offset, self.key = topic, 0, offset, b"k"
        self.headers: list[tuple[str, bytes]] = []


class NoDatabase:
    """Any use of the pool beyond the screen fails the test."""

    def acquire(self) -> None:
        raise AssertionError("the inbox opened a transaction")


class Screen:
    """An apply wanting the events of `tenants` only, telling what it was asked and given."""

    def __init__(self, *tenants: UUID) -> None:
        self.tenants = set(tenants)
        self.asked: list[UUID | None] = []
        self.applied: list[Event[Any]] = []

    async def __call__(self, conn: Any, events: list[Event[Any]]) -> None:
        self.applied.extend(events)

    async def wanted(self, pool: Any, envelopes: Sequence[Envelope]) -> list[bool]:
        self.asked.extend(e.tenantid for e in envelopes)
        return [e.tenantid in self.tenants for e in envelopes]


def counting_decoder(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Event[Any]:
        decoded.append(raw)
        return decode_event(raw)

    monkeypatch.setattr("fulfilkit.inbox.decode_event", decode)
    return decoded


def test_a_batch_no_endpoint_wants_is_neither_validated_nor_transacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = counting_decoder(monkeypatch)
    screen = Screen()
    assert isinstance(screen, Screening)
    quiet = [stock_event(uuid4()) for _ in range(3)]
    inbox = Inbox(NoDatabase(), SCHEMA, "webhooks", None, screen, event_types=c.EVENT_TYPES)  # type: ignore[arg-type]
    asyncio.run(inbox.handle([Record(e.to_bytes(), n) for n, e in enumerate(quiet)]))
    assert screen.asked == [e.tenantid for e in quiet], "one screen for the whole batch"
    assert decoded == [] and screen.applied == []


def test_only_the_wanted_events_are_validated_and_applied_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = counting_decoder(monkeypatch)
    tenant = uuid4()
    screen = Screen(tenant)
    batch = [stock_event(tenant), stock_event(uuid4()), stock_event(tenant)]

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

    inbox = Inbox(Pool(), SCHEMA, "webhooks", None, screen, event_types=c.EVENT_TYPES)  # type: ignore[arg-type]
    asyncio.run(inbox.handle([Record(e.to_bytes(), n) for n, e in enumerate(batch)]))
    assert [e.id for e in screen.applied] == [batch[0].id, batch[2].id]
    assert decoded == [batch[0].to_bytes(), batch[2].to_bytes()]


def test_what_the_envelope_cannot_vouch_for_is_not_screened_but_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A foreign source, a type of another topic, a missing or broken tenant, no JSON: the
    record is decoded as before, to be dead-lettered with its reason."""
    decoded = counting_decoder(monkeypatch)
    letters: list[str] = []

    async def dead_letter(record: Any, error: str, *_: Any, **__: Any) -> None:
        letters.append(error)

    screen = Screen()
    inbox = Inbox(NoDatabase(), SCHEMA, "webhooks", None, screen, event_types=c.EVENT_TYPES)  # type: ignore[arg-type]
    monkeypatch.setattr(inbox, "_dead_letter", dead_letter)
    foreign = stock_event(uuid4(), source="/orders").to_bytes()
    other_topic = Record(stock_event(uuid4()).to_bytes(), topic=c.SALES_TOPIC)
    fields = orjson.loads(stock_event(uuid4()).to_bytes())
    no_tenant = orjson.dumps({**fields, "tenantid": None})
    broken_tenant = orjson.dumps({**fields, "tenantid": "not-a-uuid"})
    records = [Record(foreign), other_topic, Record(no_tenant), Record(broken_tenant)]
    asyncio.run(inbox.handle([*records, Record(b"not json")]))
    assert screen.asked == [], "nothing here could be screened"
    assert len(decoded) == 5 and len(letters) == 5
    assert all(e.startswith("foreign event") for e in letters[:2])
    assert all(e.startswith("unparseable event") for e in letters[2:])


# --- against the real PostgreSQL ----------------------------------------------------------


def endpoint(event_types: list[str]) -> NewEndpoint:
    return NewEndpoint(url="http://127.0.0.1:9/hook", event_types=event_types, headers={})


async def subscribe(
    pool: asyncpg.Pool, resources: Resources, tenant: UUID, types: list[str]
) -> Any:
    async with pool.acquire() as conn, conn.transaction():
        return await endpoints.create_endpoint(conn, resources, tenant, endpoint(types))


def envelope(event: CloudEvent) -> Envelope:
    return Envelope(event.type, event.source, event.tenantid, event.id)


@pytest.mark.integration
async def test_the_screen_reads_the_enabled_subscriptions_of_the_batchs_tenants(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    stock, sales, paused, none = tenants(), tenants(), tenants(), tenants()
    await subscribe(pool, resources, stock, ["stock.*"])
    await subscribe(pool, resources, sales, ["sale.created", "sale.canceled"])
    off = await subscribe(pool, resources, paused, ["*"])
    await pool.execute(
        "UPDATE webhooks.endpoints SET enabled = false WHERE id = $1", off.endpoint.id
    )
    batch = [stock_event(t) for t in (stock, sales, paused, none)]
    screened = await deliveries.screen(pool, [envelope(e) for e in batch])
    assert screened.wanted == [True, False, False, False]
    assert {s.tenant_id for s in screened.subscriptions} == {stock, sales}
    assert screened.subscriptions_for([decode_event(batch[0].to_bytes())]) is not None
    assert screened.subscriptions_for([decode_event(stock_event(stock).to_bytes())]) is None
    no_tenant = Envelope(c.STOCK_CHANGED, "/stock", None)
    assert (await deliveries.screen(pool, [no_tenant])).wanted == [False]


def consumer(pool: asyncpg.Pool, resources: Resources) -> Inbox:
    """The webhooks consumer as a replica runs it (no dispatcher to hand deliveries to)."""
    runtime = SimpleNamespace(resources=SimpleNamespace(handoff=None))
    apply = DeliveriesFromEvents(runtime)  # type: ignore[arg-type]
    return Inbox(
        pool, SCHEMA, "webhooks", None, apply, event_types=c.EVENT_TYPES, records_inbox=True
    )  # type: ignore[arg-type]


async def delivered(pool: asyncpg.Pool, ids: list[UUID]) -> list[tuple[UUID, UUID]]:
    rows = await pool.fetch(
        "SELECT event_id, endpoint_id FROM webhooks.deliveries WHERE event_id = ANY($1::uuid[])",
        ids,
    )
    return sorted((r["event_id"], r["endpoint_id"]) for r in rows)


@pytest.mark.integration
async def test_the_consumer_records_only_what_an_endpoint_wants(
    pool: asyncpg.Pool, tenants: Any, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = counting_decoder(monkeypatch)
    tenant, quiet = tenants(), tenants()
    hook = (await subscribe(pool, resources, tenant, ["stock.*"])).endpoint.id
    await pool.execute("UPDATE webhooks.endpoints SET enabled = false WHERE id = $1", hook)
    wanted, unwanted = stock_event(tenant), stock_event(quiet)
    records = [Record(unwanted.to_bytes(), 0), Record(wanted.to_bytes(), 1)]
    inbox = consumer(pool, resources)
    await inbox.handle(records)
    assert decoded == [] and await delivered(pool, [wanted.id, unwanted.id]) == []
    await pool.execute("UPDATE webhooks.endpoints SET enabled = true WHERE id = $1", hook)
    reads = []
    read = deliveries.store.subscriptions

    async def counted(db: Any, tenant_ids: Any) -> Any:
        reads.append(db)
        return await read(db, tenant_ids)

    monkeypatch.setattr(deliveries.store, "subscriptions", counted)
    await inbox.handle(records)  # consumed again (a replay): planned for today's endpoints
    assert reads == [pool], "one read, by the screen, outside the transaction"
    assert decoded == [wanted.to_bytes()]
    assert await delivered(pool, [wanted.id, unwanted.id]) == [(wanted.id, hook)]
    inboxed = await pool.fetch(
        "SELECT event_id FROM webhooks.inbox WHERE event_id = ANY($1::uuid[])",
        [wanted.id, unwanted.id],
    )
    assert [r["event_id"] for r in inboxed] == [wanted.id]


@pytest.mark.integration
async def test_an_event_committed_after_a_subscription_reaches_it_on_any_replica(
    infrastructure: Any, pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    """Endpoints are created while two replicas (pools of their own) consume, each event
    handed over only once it was published: every event published once its tenant's
    endpoint committed is delivered to it, whichever replica takes it (one published before
    may be too, if it is consumed after the endpoint committed)."""
    from fulfilkit.db import create_pool

    pools = [await create_pool(infrastructure.database_url, 1, 2) for _ in range(2)]
    try:
        replicas = [consumer(p, resources) for p in pools]
        queue: asyncio.Queue[Record | None] = asyncio.Queue()
        expected: list[tuple[UUID, UUID]] = []

        async def publish() -> None:
            for n in range(40):
                tenant = tenants()
                await queue.put(Record(stock_event(tenant).to_bytes(), 2 * n))
                hook = (await subscribe(pool, resources, tenant, ["*"])).endpoint.id
                after = stock_event(tenant)  # committed once the endpoint was
                expected.append((after.id, hook))
                await queue.put(Record(after.to_bytes(), 2 * n + 1))
            for _ in replicas:
                await queue.put(None)

        async def consume(inbox: Inbox) -> None:
            while (record := await queue.get()) is not None:
                batch = [record]
                while not queue.empty() and len(batch) < 5:
                    if (more := queue.get_nowait()) is None:
                        await queue.put(None)
                        break
                    batch.append(more)
                await inbox.handle(batch)

        await asyncio.gather(publish(), *(consume(r) for r in replicas))
        assert await delivered(pool, [e for e, _ in expected]) == sorted(expected)
    finally:
        for p in pools:
            await p.close()


def test_the_envelope_carries_the_tenant_and_id_only_when_asked() -> None:
    event = stock_event(uuid4())
    asked = read_envelope(event.to_bytes(), ids=True)
    assert asked is not None and (asked.tenantid, asked.id) == (event.tenantid, event.id)
    plain = read_envelope(event.to_bytes())
    assert plain is not None and (plain.type, plain.tenantid, plain.id) == (event.type, None, None)
