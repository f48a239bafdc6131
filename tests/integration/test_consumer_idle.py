"""An idle consumer (`fulfilkit.kafka.subscribe`) on the real broker: it neither busy-polls
nor fetches every few milliseconds, and an event published after a quiet spell is still
handled at once.

A subscriber that went back to a short poll (FastStream's `batch_timeout_ms`, slept again
after every empty poll) or to fetching every `fetch_max_wait_ms` when nothing comes makes
the polls and fetches counted here within milliseconds, not seconds; one whose long poll
kept FastStream's sleep after an empty poll hands an event over up to a poll timeout late.
"""

import asyncio
import logging
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream.kafka import KafkaBroker

from fulfilkit.kafka import (
    IDLE_FETCH_WAIT_MS,
    LongPollBatchSubscriber,
    ensure_topics,
    make_producer,
    subscribe,
)
from fulfilkit.settings import ServiceSettings
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

POLLS, FETCHES = 4, 3  # counted from an idle start
POLL_TIMEOUT_MS = ServiceSettings.model_fields["consumer_poll_timeout_ms"].default


@dataclass
class Handled:
    """Stands in for the inbox: when each record arrived in a batch handed to it."""

    at: dict[bytes, float] = field(default_factory=dict)

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        now = time.monotonic()
        for record in records:
            self.at[record.value] = now


@dataclass
class Counted:
    polls: int = 0
    fetches: int = 0


def count_wakeups(consumer: AIOKafkaConsumer) -> Counted:
    """Counts the consumer's polls (`getmany` calls) and the fetch requests it sends."""
    counted = Counted()
    getmany, send = consumer.getmany, consumer._client.send

    async def counting_getmany(*args: Any, **kwargs: Any) -> Any:
        counted.polls += 1
        return await getmany(*args, **kwargs)

    async def counting_send(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        if type(request).__name__.startswith("FetchRequest"):
            counted.fetches += 1
        return await send(node_id, request, *args, **kwargs)

    consumer.getmany = counting_getmany  # type: ignore[method-assign]
    consumer._client.send = counting_send  # type: ignore[method-assign]
    return counted


@pytest.fixture
async def consuming(infrastructure) -> AsyncIterator[tuple[str, Handled, LongPollBatchSubscriber]]:
    topic = ref("idle")
    await ensure_topics(infrastructure.bootstrap_servers, [topic], partitions=2)
    broker = KafkaBroker(
        infrastructure.bootstrap_servers, logger=logging.getLogger("idle-test"), apply_types=False
    )
    handled = Handled()
    # As fulfilment and webhooks consume: the broker gathers up to 1 MiB for 25 ms.
    subscriber = subscribe(
        broker,
        handled,  # type: ignore[arg-type]  # the consumer only calls handle()
        topic,
        group_id=ref("idle-group"),
        poll_timeout_ms=POLL_TIMEOUT_MS,
        fetch_max_wait_ms=25,
        fetch_min_bytes=1024 * 1024,
    )
    await broker.start()
    try:
        consumer = subscriber.consumer
        assert consumer is not None
        await eventually(
            lambda: asyncio.sleep(0, consumer.assignment()),
            lambda assigned: len(assigned) == 2,
            what="both partitions assigned",
        )
        yield topic, handled, subscriber
    finally:
        await broker.stop()


async def test_an_idle_consumer_neither_busy_polls_nor_fetches_often(consuming) -> None:
    _, _, subscriber = consuming
    consumer = subscriber.consumer
    assert consumer is not None
    fetcher = consumer._fetcher
    await eventually(  # past the first fetches after the assignment: it fetches as when idle
        lambda: asyncio.sleep(0, fetcher._fetch_max_wait_ms),
        lambda wait: wait == IDLE_FETCH_WAIT_MS,
        what="the idle fetch wait",
    )
    counted = count_wakeups(consumer)
    started = time.monotonic()
    await eventually(
        lambda: asyncio.sleep(0, (counted.polls, counted.fetches)),
        lambda seen: seen[0] >= POLLS and seen[1] >= FETCHES,
        timeout=30,
        interval=0.01,
        what=f"{POLLS} polls and {FETCHES} fetches",
    )
    took = time.monotonic() - started

    # The first of each may be in flight at the start: POLLS polls start no sooner than
    # POLLS - 1 poll timeouts later, FETCHES fetches no sooner than FETCHES - 1 idle fetch
    # waits. Busy polling or fetching gets there within milliseconds.
    assert POLL_TIMEOUT_MS >= 500 and IDLE_FETCH_WAIT_MS >= 500
    fewest = max((POLLS - 1) * POLL_TIMEOUT_MS, (FETCHES - 1) * IDLE_FETCH_WAIT_MS) / 1000
    assert took >= 0.9 * fewest, f"{counted} in {took:.2f}s"


async def test_an_event_after_a_quiet_spell_is_handled_at_once(infrastructure, consuming) -> None:
    topic, handled, _ = consuming
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    latencies = []
    try:
        for n in range(5):
            # longer than a poll and an idle fetch: both are waiting when the event comes
            await asyncio.sleep(POLL_TIMEOUT_MS / 1000 + 0.2)
            value = f"event-{n}".encode()
            sent = time.monotonic()
            await producer.send_and_wait(topic, value=value, key=value)
            await eventually(
                lambda v=value: asyncio.sleep(0, v in handled.at),
                bool,
                timeout=10,
                interval=0.005,
                what=f"{value!r} handled",
            )
            latencies.append(handled.at[value] - sent)
    finally:
        await producer.stop()
    # Kafka answers the waiting fetch when the record is appended and the poll returns with
    # it: milliseconds, where sleeping out a poll would take up to POLL_TIMEOUT_MS.
    assert statistics.median(latencies) < 0.25, [f"{x * 1000:.0f} ms" for x in latencies]
