"""Kafka plumbing: explicit topic creation, the producer, and inbox-backed batch subscribers."""

import asyncio
import logging
import random
import struct
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from fulfilkit.inbox import Inbox
from fulfilkit.offsets import AppliedOffsets

log = logging.getLogger(__name__)

# How long an idle consumer's fetch waits at the broker for a first record: the broker answers
# as soon as one arrives, so this sets how often an idle consumer asks, not how late a record
# comes. Other requests of the consumer's fetch connection (metadata, offsets after a
# rebalance) may wait behind a held fetch for up to this long.
IDLE_FETCH_WAIT_MS = 2000
FETCHER_RECHECK_MS = 1000
# How long a fetch may wait at the broker while some partitions sit out of it. aiokafka
# leaves a partition whose fetched records the consumer has not taken yet out of the next
# fetch, and sends one fetch at a time to a broker: a record that reaches such a partition
# after the consumer took its records waits until the fetch in flight comes back.
PARTIAL_FETCH_WAIT_MS = 20


DAY_MS = 86_400_000


def topic_configs(
    name: str,
    min_insync_replicas: int = 1,
    retention_ms: int = 7 * DAY_MS,
    dlq_retention_ms: int = 30 * DAY_MS,
) -> dict[str, str]:
    """The topic-level settings the platform gives `name`: dead-letter topics (`*.dlq`) keep
    their records `dlq_retention_ms`, the others `retention_ms` (-1: for ever)."""
    retention = dlq_retention_ms if name.endswith(".dlq") else retention_ms
    return {"min.insync.replicas": str(min_insync_replicas), "retention.ms": str(retention)}


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    client_options: Mapping[str, Any] | None = None,
    *,
    min_insync_replicas: int = 1,
    retention_ms: int = 7 * DAY_MS,
    dlq_retention_ms: int = 30 * DAY_MS,
) -> None:
    """Create the platform's topics with a set partition count (never rely on auto-create),
    replication factor, `min.insync.replicas` and retention (`topic_configs`).
    `client_options`: TLS and SASL (`KafkaSecurity.client_options()`).

    Topics that exist already are left as they are (Kafka has no safe way to change only some
    of a topic's settings through this client): a setting that differs from theirs is logged
    as a warning naming the command that changes it."""
    names = list(names)
    wanted = {
        n: topic_configs(n, min_insync_replicas, retention_ms, dlq_retention_ms) for n in names
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        n,
                        num_partitions=partitions,
                        replication_factor=replication_factor,
                        topic_configs=wanted[n],
                    )
                    for n in missing
                ]
            )
            # aiokafka reports per-topic errors in the response instead of raising them.
            for name, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    error = for_code(code)
                    raise RuntimeError(
                        f"cannot create topic {name} ({partitions} partitions, replication"
                        f" factor {replication_factor}): Kafka error {code}, {error.__name__}"
                        f" ({getattr(error, 'description', '')})"
                    )
        older = [n for n in names if n in existing]
        if older:
            _warn_about_drift(await _topic_configs(admin, older, wanted), wanted, bootstrap)
            _warn_about_layout(await admin.describe_topics(older), partitions, replication_factor)
    finally:
        await admin.close()


async def _topic_configs(
    admin: AIOKafkaAdminClient, names: list[str], wanted: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n, dict.fromkeys(wanted[n])) for n in names]
    )
    return {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }


def _warn_about_layout(
    topics: Iterable[Mapping[str, Any]], partitions: int, replication_factor: int
) -> None:
    """Partitions and replicas of a topic change only by hand: adding partitions moves keys
    (their events could be applied out of order meanwhile), replicas need a reassignment."""
    for topic in topics:
        found = topic.get("partitions") or []
        replicas = min((len(p.get("replicas") or ()) for p in found), default=0)
        if found and (len(found) != partitions or replicas != replication_factor):
            log.warning(
                "topic %s has %d partitions and replication factor %d where the settings say"
                " %d and %d (KAFKA_PARTITIONS, KAFKA_REPLICATION_FACTOR); Kafka changes them"
                " only by hand: kafka-topics.sh --alter --partitions, kafka-reassign-partitions.sh"
                " (docs/operations.md)",
                topic.get("topic"),
                len(found),
                replicas,
                partitions,
                replication_factor,
            )


def _warn_about_drift(
    actual: Mapping[str, Mapping[str, str]],
    wanted: Mapping[str, Mapping[str, str]],
    bootstrap: str,
) -> None:
    for name, configs in sorted(actual.items()):
        differ = {k: v for k, v in wanted[name].items() if configs.get(k) not in (None, v)}
        if differ:
            log.warning(
                "topic %s has %s where the settings say %s; to change it: kafka-configs.sh"
                " --bootstrap-server %s --alter --entity-type topics --entity-name %s"
                " --add-config %s",
                name,
                ", ".join(f"{k}={configs[k]}" for k in differ),
                ", ".join(f"{k}={v}" for k, v in differ.items()),
                bootstrap,
                name,
                ",".join(f"{k}={v}" for k, v in differ.items()),
            )


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}
# The platform's keys start with a tenant's id (36 bytes) and the kind of key (`:sale:...`):
# murmur2's state after their first 40 bytes is the same for every key of one tenant and kind
# of one length, and is remembered (`_HEADS`, up to `_HEADS_KEPT`, dropped whole when full).
_HEAD_WORDS = 10
_HEADS: dict[tuple[bytes, int], int] = {}
_HEADS_KEPT = 4096


def _mixed(h: int, words: tuple[int, ...]) -> int:
    for k in words:
        k = (k * _M) & _MASK
        h = ((h * _M) ^ ((k ^ (k >> 24)) * _M)) & _MASK
    return h


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (`org.apache.kafka.common.utils.Utils.murmur2`, as an unsigned
    32-bit value): what aiokafka's `partitioner.murmur2` gives, its 4-byte words unpacked at
    once, each product masked once, and the state after a key's first 40 bytes remembered
    for the next key of that length that starts with them (3-5x faster in all)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    count = length >> 2
    words = _WORDS.get(count)
    if words is None:
        words = _WORDS.setdefault(count, struct.Struct(f"<{count}I"))
    values = words.unpack_from(data)
    if count > _HEAD_WORDS:
        head = (data[: 4 * _HEAD_WORDS], length)
        after = _HEADS.get(head)
        if after is None:
            after = _mixed(h, values[:_HEAD_WORDS])
            if len(_HEADS) >= _HEADS_KEPT:
                _HEADS.clear()
            _HEADS[head] = after
        h = _mixed(after, values[_HEAD_WORDS:])
    else:
        h = _mixed(h, values)
    rest = length & 3
    if rest:
        tail = length - rest
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class KeyPartitioner:
    """The partition of a key as Java's and aiokafka's default partitioners pick it
    (`murmur2(key) & 0x7fffffff` modulo the partition count, over the partitions sorted by
    id), so every producer of a key agrees on its partition and its events stay in order;
    a record without a key goes to a random available partition, as theirs does.

    aiokafka's own murmur2 is pure Python, a word at a time: it was a tenth of the stock
    service's CPU (docs/benchmarks.md). This one reads the words at once, and remembers the
    hash of up to `remember` keys (a stock record's key repeats on every change of it);
    the memory is dropped whole when full, the partition count read on every call."""

    def __init__(self, remember: int = 65_536) -> None:
        self._remember = remember
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = murmur2(key) & 0x7FFFFFFF
            if len(self._hashes) >= self._remember:
                self._hashes.clear()
            self._hashes[key] = hashed
        return all_partitions[hashed % len(all_partitions)]


def make_producer(
    bootstrap: str,
    max_request_size: int = 1048576,
    client_options: Mapping[str, Any] | None = None,
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **(client_options or {}),
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        max_batch_size=256 * 1024,
        max_request_size=max_request_size,
        partitioner=KeyPartitioner(),
    )


async def check_message_size(
    bootstrap: str,
    names: Iterable[str],
    max_request_size: int,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to start when the producer would send messages a topic refuses: its limit
    (`max.message.bytes`, the broker's `message.max.bytes` unless the topic overrides it) must
    be at least `max_request_size`, or every such event would be parked instead of sent."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
                for name in names
            ]
        )
    finally:
        await admin.close()
    limits = {
        resource[3]: int(entry[1])
        for response in responses
        for resource in response.resources
        for entry in resource[4]
        if entry[0] == "max.message.bytes"
    }
    too_small = {name: limit for name, limit in limits.items() if limit < max_request_size}
    if too_small:
        raise RuntimeError(
            f"KAFKA_MAX_REQUEST_SIZE is {max_request_size} bytes, but Kafka accepts at most"
            f" {min(too_small.values())} bytes on {', '.join(sorted(too_small))} (the broker's"
            " message.max.bytes or the topic's max.message.bytes): lower the setting or raise"
            " the broker's limit"
        )


async def _the_message(message: KafkaMessage) -> KafkaMessage:
    """The handler works on the records themselves and acknowledges through the message.
    async on purpose: FastStream runs a sync decoder in a worker thread, a thread hop per
    batch."""
    return message


class LongPollBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber without the sleep after an empty poll.

    FastStream's `BatchSubscriber` sleeps as long as its poll timeout after a poll that found
    nothing, so records arriving meanwhile wait for the sleep to end: its poll timeout has to
    stay short (a busy loop when idle) or every hop of an event gets slower. aiokafka's
    `getmany` returns as soon as records arrive, so without that sleep the poll can be long: an
    idle consumer wakes once per poll timeout, and a record is handed over at once.
    Only `get_msg` differs (no new slots): `subscribe` turns the subscriber FastStream made,
    with the broker's middlewares and settings, into this class."""

    __slots__ = ()

    async def start(self) -> None:
        await super().start()
        if self.consumer is not None:
            fetch_long_when_idle(self.consumer)

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        records = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        return tuple(chain.from_iterable(records.values()))


def fetch_long_when_idle(
    consumer: AIOKafkaConsumer, idle_wait_ms: int = IDLE_FETCH_WAIT_MS
) -> None:
    """After a fetch that brought nothing, ask the broker for any record (`fetch.min.bytes`
    1) with a wait of `idle_wait_ms`; after one that brought records, for the consumer's own
    `fetch_min_bytes` and `fetch_max_wait_ms` again. While fetched records wait to be taken,
    their partitions sit out of the next fetch, which then waits `PARTIAL_FETCH_WAIT_MS` at
    most: a record for those partitions would otherwise wait for it (up to `idle_wait_ms`
    after a burst).

    A consumer that lets the broker gather records (a large `fetch_min_bytes`, a short
    `fetch_max_wait_ms`: fewer, bigger batches under load) would otherwise fetch every
    `fetch_max_wait_ms` when idle, and the broker pays for every one. Under load nothing
    changes; the first record after a quiet spell is answered at once instead of after the
    wait. Set on aiokafka's fetcher, which reads both values whenever it builds a request."""
    fetcher = consumer._fetcher
    busy = (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes)
    idle = (max(busy[0], idle_wait_ms), 1)
    if busy == idle:
        return
    fetch = fetcher._proc_fetch_request

    partial = (min(busy[0], PARTIAL_FETCH_WAIT_MS), busy[1])

    async def fetch_then_adapt(assignment: Any, node_id: int, request: Any) -> bool:
        got_records = await fetch(assignment, node_id, request)
        fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes = (
            partial if fetcher._records else busy if got_records else idle
        )
        return got_records

    fetcher._proc_fetch_request = fetch_then_adapt


def subscribe(
    broker: KafkaBroker,
    inbox: Inbox,
    *topics: str,
    group_id: str,
    max_records: int = 500,
    poll_timeout_ms: int = 1000,
    commit_interval: float = 0.2,
    fetch_max_wait_ms: int = 500,
    fetch_min_bytes: int = 1,
    retry_backoff: float = 1.0,
) -> LongPollBatchSubscriber:
    """Consume `topics` in batches through `inbox`; commit offsets only after it applied them.

    An idle consumer waits up to `poll_timeout_ms` for records and is woken as soon as they
    arrive (`LongPollBatchSubscriber`): the timeout sets how often an idle consumer wakes, not
    how late an event is handled."""
    offsets = AppliedOffsets(commit_interval)

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=poll_timeout_ms,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        fetch_min_bytes=fetch_min_bytes,
        # aiokafka's fetch routine wakes this often even while its fetch is held at the broker
        # (default 200 ms), to look for work nothing told it about; records, rebalances,
        # seeks and offset resets all wake it at once.
        consumer_timeout_ms=FETCHER_RECHECK_MS,
        ack_policy=AckPolicy.MANUAL,
        decoder=_the_message,
        title=f"{group_id}:{','.join(topics)}",
    )
    subscriber.__class__ = LongPollBatchSubscriber

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        try:
            await inbox.handle(records)
        except Exception as exc:  # data errors were dead-lettered inside; this is infrastructure
            log.warning("consumer %s cannot apply batch, will retry: %r", group_id, exc)
            await asyncio.sleep(retry_backoff)
            await message.nack()
            return
        # The inbox already made this batch's effects permanent and idempotent, so offsets
        # need not be committed after every batch: a crash replays only what applying again
        # changes nothing with.
        consumer = message.consumer
        if isinstance(consumer, AIOKafkaConsumer):
            await offsets.applied(consumer, records)
        else:  # the in-memory test broker's stand-in
            await message.ack()

    return cast(LongPollBatchSubscriber, subscriber)
