"""When a consumer (`fulfilkit.kafka.subscribe`) commits its offsets, on the real broker:
only after the batch applied, at most once per commit interval, and the last batch before a
quiet spell too, once the interval has passed.

A consumer that commits only when a batch finds the interval passed leaves the last batch
before a pause uncommitted for as long as the pause lasts: a restart replays it, and the
group's committed offsets never reach the end. One that commits its position when the
interval passes commits a batch it is still applying: a crash then loses it."""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from fulfilkit.kafka import ensure_topics, make_producer, subscribe
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

INTERVAL = 0.5


@dataclass
class Applying:
    """Stands in for the inbox: the values it applied, and one value whose batch waits for
    `release` before it counts as applied."""

    held: bytes = b""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    applied: list[bytes] = field(default_factory=list)

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        if any(r.value == self.held for r in records):
            await self.release.wait()
        self.applied += [r.value for r in records]


@dataclass
class Consuming:
    topic: str
    group: str
    applying: Applying
    admin: AIOKafkaAdminClient

    async def committed(self) -> int:
        offsets = await self.admin.list_consumer_group_offsets(
            self.group, partitions=[TopicPartition(self.topic, 0)]
        )
        found = offsets.get(TopicPartition(self.topic, 0))
        return found.offset if found is not None else -1


@pytest.fixture
async def consuming(infrastructure) -> AsyncIterator[Consuming]:
    topic, group = ref("commits"), ref("commits-group")
    await ensure_topics(infrastructure.bootstrap_servers, [topic], partitions=1)
    broker = KafkaBroker(
        infrastructure.bootstrap_servers, logger=logging.getLogger("commit-test"), apply_types=False
    )
    applying = Applying()
    subscriber = subscribe(
        broker,
        applying,  # type: ignore[arg-type]  # the consumer only calls handle()
        topic,
        group_id=group,
        commit_interval=INTERVAL,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=infrastructure.bootstrap_servers)
    await broker.start()
    await admin.start()
    try:
        consumer = subscriber.consumer
        assert consumer is not None
        await eventually(
            lambda: asyncio.sleep(0, consumer.assignment()), bool, what="the partition assigned"
        )
        yield Consuming(topic, group, applying, admin)
    finally:
        applying.release.set()
        await broker.stop()
        await admin.close()


async def send_applied(consuming: Consuming, producer, value: bytes) -> int:
    """Publish `value` and wait until it is applied; its offset."""
    sent = await producer.send_and_wait(consuming.topic, value=value, key=b"one")
    await eventually(
        lambda: asyncio.sleep(0, consuming.applying.applied),
        lambda applied: value in applied,
        what=f"{value!r} applied",
    )
    return int(sent.offset)


async def test_the_last_batch_before_a_pause_is_committed(infrastructure, consuming) -> None:
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    try:
        await send_applied(consuming, producer, b"first")  # commits: no commit yet
        last = await send_applied(consuming, producer, b"second")  # within the interval
    finally:
        await producer.stop()
    # nothing else comes: the second batch's offset is committed once the interval passed
    await eventually(
        consuming.committed,
        lambda committed: committed == last + 1,
        timeout=INTERVAL + 5,
        what="the last batch's offset committed",
    )


async def test_a_batch_being_applied_is_not_committed(infrastructure, consuming) -> None:
    consuming.applying.held = b"held"
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    try:
        await send_applied(consuming, producer, b"first")
        applied = await send_applied(consuming, producer, b"second")  # its commit waits
        held = await producer.send_and_wait(consuming.topic, value=b"held", key=b"one")

        # The interval passes while "held" is being applied (the consumer's position is
        # past it already): what is committed is "second"'s, never "held"'s.
        committed = await eventually(
            consuming.committed, lambda c: c > applied, timeout=INTERVAL + 5, what="a commit"
        )
        assert committed == applied + 1
        assert b"held" not in consuming.applying.applied

        consuming.applying.release.set()
        await eventually(
            consuming.committed,
            lambda c: c == held.offset + 1,
            timeout=INTERVAL + 5,
            what="the held batch's offset committed once applied",
        )
    finally:
        await producer.stop()
