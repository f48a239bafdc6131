"""An event a consumer gives up on is kept in `<schema>.dead_letters` with the record and the
error; an operator lists, shows, replays (once) and purges it, and a replayed event is
applied when it comes back. Keeping a dead letter never stops the consumer."""

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit import deadletters as dl
from fulfilkit.db import create_pool, migrate
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Inbox
from fulfilkit.kafka import make_producer
from tests.e2e.sale_events import event, snapshot
from tests.kafka_tools import read_all
from tests.support import ref

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONSUMER = "stock"


@dataclass
class Record:
    """What the inbox reads of a Kafka ConsumerRecord."""

    value: bytes | None
    key: bytes | None
    offset: int
    topic: str = c.SALES_TOPIC
    partition: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def sale_created(tenant: uuid.UUID, sku: str) -> CloudEvent:
    return event(c.SALE_CREATED, str(tenant), snapshot(ref("wh"), (sku, 1)))


def record_of(e: CloudEvent, offset: int, **kwargs: Any) -> Record:
    key = c.sale_key(e.tenantid, uuid.UUID(e.data["id"])).encode()
    return Record(e.to_bytes(), key, offset, **kwargs)


class Refusing:
    """Applies sale.created by remembering its id, except for the SKUs in `refused`."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.refused: set[str] = set()

    async def __call__(self, conn: Any, events: list[Any]) -> None:
        for e in events:
            skus = {line.sku for line in e.data.lines}
            if skus & self.refused:
                raise RuntimeError(f"no reservation for {sorted(skus & self.refused)}")
            await conn.execute(f"INSERT INTO {self.schema}.applied VALUES ($1)", e.id)


@pytest.fixture
async def setup(infrastructure, tmp_path: Path):
    schema = ref("dl").replace("-", "_")
    (tmp_path / "001_applied.sql").write_text(f"CREATE TABLE {schema}.applied (event_id uuid);")
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers, max_request_size=1048576)
    await producer.start()
    await migrate(pool, schema, tmp_path)
    apply = Refusing(schema)
    inbox = Inbox(pool, schema, CONSUMER, producer, apply, max_attempts=1)
    try:
        yield schema, pool, inbox, apply
    finally:
        await producer.stop()
        await pool.close()


async def applied(pool, schema: str) -> list[uuid.UUID]:
    return [r["event_id"] for r in await pool.fetch(f"SELECT event_id FROM {schema}.applied")]


async def test_a_refused_event_is_kept_replayed_once_and_then_applied(setup):
    schema, pool, inbox, apply = setup
    tenant = uuid.uuid4()
    bad_sku = ref("SKU")
    good, bad = sale_created(tenant, ref("SKU")), sale_created(tenant, bad_sku)
    apply.refused.add(bad_sku)
    bad_record = record_of(bad, 11, partition=2, headers=[("trace", b"t-1"), ("bin", b"\xff\x00")])
    before = datetime.now(UTC)

    await inbox.handle([record_of(good, 10), bad_record])
    await inbox.handle([bad_record])  # consumed again (a crash before the commit): one row

    assert await applied(pool, schema) == [good.id]
    page = await dl.list_dead_letters(pool, schema)
    [kept] = page.data
    assert page.next_cursor is None
    assert kept.consumer == CONSUMER
    assert kept.event_id == bad.id
    assert kept.event_type == c.SALE_CREATED
    assert (kept.topic, kept.partition, kept.offset) == (c.SALES_TOPIC, 2, 11)
    assert kept.key == bad_record.key.decode()
    assert kept.error == f"RuntimeError: no reservation for ['{bad_sku}']"
    assert kept.replayable is True
    assert kept.state == "dead"
    assert kept.replayed_at is None
    assert before <= kept.failed_at <= datetime.now(UTC)
    mark = await pool.fetchval(
        f"SELECT outcome FROM {schema}.inbox WHERE consumer = $1 AND event_id = $2",
        CONSUMER,
        bad.id,
    )
    assert mark == "dead_lettered"

    shown = await dl.get_dead_letter(pool, schema, kept.id)
    assert shown is not None
    assert shown.value is not None and orjson.loads(shown.value)["id"] == str(bad.id)
    assert shown.value_base64  # byte for byte, whatever the value
    assert shown.headers == [
        {"key": "trace", "value": "t-1"},
        {"key": "bin", "value_base64": "/wA="},
    ]
    assert await dl.get_dead_letter(pool, schema, kept.id + 10_000) is None

    # The cause is fixed; the replay clears the mark and queues the record in the outbox
    apply.refused.clear()
    [outcome] = await dl.replay(pool, schema, [kept.id])
    assert (outcome.id, outcome.outcome) == (kept.id, "replayed")
    assert (
        await pool.fetchval(f"SELECT count(*) FROM {schema}.inbox WHERE event_id = $1", bad.id) == 0
    )
    [queued] = await pool.fetch(f"SELECT event_id, topic, key, payload FROM {schema}.outbox")
    assert dict(queued) == {
        "event_id": bad.id,
        "topic": c.SALES_TOPIC,
        "key": bad_record.key.decode(),
        "payload": bad_record.value,
    }
    again = (await dl.list_dead_letters(pool, schema)).data[0]
    assert (again.id, again.state) == (kept.id, "replayed")
    assert again.replayed_at is not None

    # Replaying again, or what does not exist, is answered, and queues nothing more
    missing = kept.id + 10_000
    outcomes = await dl.replay(pool, schema, [kept.id, missing])
    assert [(o.id, o.outcome) for o in outcomes] == [
        (kept.id, "already_replayed"),
        (missing, "not_found"),
    ]
    assert "replayed already" in outcomes[0].detail
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 1

    # The relay publishes it; the consumer now applies it (a new offset: a new record)
    await inbox.handle([record_of(bad, 12, partition=2)])
    assert sorted(await applied(pool, schema)) == sorted([good.id, bad.id])
    assert len((await dl.list_dead_letters(pool, schema)).data) == 1


async def test_unreadable_and_foreign_records_are_kept_but_not_replayable(setup, infrastructure):
    schema, pool, inbox, _ = setup
    foreign = c.make_event(
        source="/stock",  # sales.events belongs to orders
        type=c.SALE_CREATED,
        tenant_id=uuid.uuid4(),
        subject="sale/x",
        data=snapshot("wh", ("A", 1)),
    )
    marker = ref("garbage").encode()
    await inbox.handle(
        [
            Record(b"not json \x00" + marker, None, 1),
            Record(foreign.to_bytes(), b"k", 2),
        ]
    )

    garbage, forged = (await dl.list_dead_letters(pool, schema)).data
    assert (garbage.event_id, garbage.event_type, garbage.key) == (None, None, None)
    assert garbage.error.startswith("unparseable event:"), garbage.error
    assert garbage.replayable is False
    shown = await dl.get_dead_letter(pool, schema, garbage.id)
    assert shown is not None and shown.value == "not json \x00" + marker.decode()
    assert (forged.event_id, forged.event_type) == (foreign.id, c.SALE_CREATED)
    assert forged.error.startswith("foreign event: source '/stock'"), forged.error
    assert forged.replayable is False

    outcomes = await dl.replay(pool, schema, [garbage.id, forged.id])
    assert [o.outcome for o in outcomes] == ["not_replayable", "not_replayable"]
    assert "Purge it instead" in outcomes[0].detail
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
    # still sent to the dead-letter topic, as before
    on_dlq = await read_all(infrastructure.bootstrap_servers, c.dlq_topic(c.SALES_TOPIC))
    assert any(marker in (r.value or b"") for r in on_dlq)


async def test_list_filters_and_pages_with_a_cursor(setup):
    schema, pool, inbox, apply = setup
    tenant = uuid.uuid4()
    apply.refused.add(sku := ref("SKU"))
    events = [sale_created(tenant, sku) for _ in range(5)]
    await inbox.handle([record_of(e, n) for n, e in enumerate(events)])
    await inbox.handle([Record(b"{}", None, 99, topic=c.STOCK_TOPIC)])

    first = await dl.list_dead_letters(pool, schema, topic=c.SALES_TOPIC, limit=2)
    assert [d.event_id for d in first.data] == [e.id for e in events[:2]]
    assert first.next_cursor is not None
    second = await dl.list_dead_letters(
        pool, schema, topic=c.SALES_TOPIC, limit=2, cursor=first.next_cursor
    )
    third = await dl.list_dead_letters(
        pool, schema, topic=c.SALES_TOPIC, limit=2, cursor=second.next_cursor
    )
    assert [d.event_id for d in second.data + third.data] == [e.id for e in events[2:]]
    assert third.next_cursor is None
    assert [
        d.offset for d in (await dl.list_dead_letters(pool, schema, topic=c.STOCK_TOPIC)).data
    ] == [99]
    typed = await dl.list_dead_letters(pool, schema, event_type=c.SALE_CREATED, consumer=CONSUMER)
    assert len(typed.data) == 5
    assert (await dl.list_dead_letters(pool, schema, consumer="nobody")).data == []
    assert (await dl.list_dead_letters(pool, schema, state="replayed")).data == []
    for bad in ("abc", "-1", "0", "1" * 30):
        with pytest.raises(dl.InvalidCursor):
            await dl.list_dead_letters(pool, schema, cursor=bad)


async def test_purge_by_id_and_by_age(setup):
    schema, pool, inbox, _ = setup
    await inbox.handle([Record(b"x", None, n) for n in range(4)])
    ids = [d.id for d in (await dl.list_dead_letters(pool, schema)).data]
    await pool.execute(
        f"UPDATE {schema}.dead_letters SET failed_at = now() - interval '8 days' WHERE id = $1",
        ids[1],
    )

    assert await dl.purge(pool, schema, ids=[ids[0], ids[0] + 10_000]) == 1
    cut = datetime.now(UTC) - timedelta(days=7)
    assert await dl.purge(pool, schema, older_than=cut) == 1
    assert [d.id for d in (await dl.list_dead_letters(pool, schema)).data] == ids[2:]
    with pytest.raises(ValueError):
        await dl.purge(pool, schema)


async def test_a_dead_letter_the_table_refuses_is_logged_and_the_consumer_goes_on(setup, caplog):
    schema, pool, inbox, apply = setup
    await pool.execute(
        f"ALTER TABLE {schema}.dead_letters ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"
    )
    apply.refused.add(sku := ref("SKU"))
    tenant = uuid.uuid4()
    bad, good = sale_created(tenant, sku), sale_created(tenant, ref("SKU"))

    await inbox.handle([record_of(bad, 1)])  # does not raise: the batch is not retried
    await inbox.handle([record_of(good, 2)])

    assert await applied(pool, schema) == [good.id]
    assert "not kept in" in caplog.text
    mark = await pool.fetchval(f"SELECT outcome FROM {schema}.inbox WHERE event_id = $1", bad.id)
    assert mark == "dead_lettered", "the event is still not applied twice"


async def test_the_library_lists_shows_replays_and_purges(setup):
    """What `fulfil dead-letters` reaches through the admin API, called directly."""
    schema, pool, inbox, apply = setup
    apply.refused.add(sku := ref("SKU"))
    bad = sale_created(uuid.uuid4(), sku)
    await inbox.handle([record_of(bad, 7)])
    await inbox.handle([Record(b"junk", None, 8)])

    page = await dl.list_dead_letters(pool, schema, limit=1)
    [row] = page.data
    assert (row.event_id, row.event_type, row.offset, row.state) == (
        bad.id,
        c.SALE_CREATED,
        7,
        "dead",
    )
    assert row.error == f"RuntimeError: no reservation for ['{sku}']"
    assert page.next_cursor is not None
    shown = await dl.get_dead_letter(pool, schema, row.id)
    assert shown is not None and orjson.loads(shown.value)["id"] == str(bad.id)

    assert [o.outcome for o in await dl.replay(pool, schema, [row.id])] == ["replayed"]
    assert [o.outcome for o in await dl.replay(pool, schema, [row.id])] == ["already_replayed"]

    with pytest.raises(ValueError, match="not a service name"):
        await dl.list_dead_letters(pool, "no; drop table x")
    assert await dl.purge(pool, schema, older_than=datetime.now(UTC)) == 2
    assert (await dl.list_dead_letters(pool, schema)).data == []


async def test_the_old_command_line_points_to_fulfil():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fulfilkit.deadletters",
        env={**os.environ, "PYTHONPATH": str(REPO / "libs")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "fulfil dead-letters list|show|replay|purge" in err.decode()
