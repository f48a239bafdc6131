"""Offsets committed after their batch applied: at most once per interval, and the last
batch's too once the interval has passed, even if no batch follows it."""

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class AppliedOffsets:
    """The offsets of the records a consumer has applied, committed at most every `interval`.

    A commit per batch would cost a broker round trip each; committing only when a batch
    finds the interval passed would leave the last batch before a quiet spell uncommitted
    for as long as the quiet lasts (a restart replays it, and the group's committed lag stays
    above zero). So a batch that cannot commit yet schedules a commit for when it may.

    The offsets are given explicitly: the consumer's own position may already be past
    records fetched but not yet applied when the scheduled commit runs."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._applied: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._last = float("-inf")
        self._later: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def applied(self, consumer: AIOKafkaConsumer, records: Iterable[Any]) -> None:
        """`records` (ConsumerRecords) are applied: their offsets are committed now, or once
        `interval` has passed since the last commit."""
        self._consumer = consumer
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._applied[tp] = max(self._applied.get(tp, 0), record.offset + 1)
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            await self.commit()
        elif self._later is None:
            self._later = asyncio.create_task(self._commit_after(wait))

    async def commit(self) -> None:
        """Commit what was applied and not committed yet, for the partitions still assigned
        (a revoked partition's next owner starts from its last commit and replays the rest,
        which applying skips or repeats harmlessly). A commit the broker refuses, as during a
        rebalance, is logged and left to the next one."""
        async with self._lock:
            offsets, self._applied = self._applied, {}
            consumer = self._consumer
            if not offsets or consumer is None:
                return
            self._last = time.monotonic()
            assigned = consumer.assignment()
            offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # a later commit, or the next owner's replay, covers it
                log.warning("offsets %s not committed: %r", offsets, exc)

    async def _commit_after(self, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
        finally:
            self._later = None
        try:
            await self.commit()
        except Exception:  # a task of its own: nobody else would hear of it
            log.exception("scheduled offset commit failed")
