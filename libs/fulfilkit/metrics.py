"""Prometheus metrics: `GET /metrics` on every service, in the Prometheus text format.

- HTTP: requests by route template, method and status, and their latency
  (`HttpMetricsMiddleware`, a pure ASGI middleware).
- Kafka: FastStream's `KafkaPrometheusMiddleware` on the broker (batches consumed, handler
  duration), events published by the outbox relay and consumed by the inbox (by topic and
  event type), dead-lettered events, consumer batch sizes, consumer lag per partition.
- Platform gauges read when scraped (outbox backlog, parked rows, inbox dead letters,
  dead-letter topic depth, and each service's own `GaugeQuery`s), with a timeout and a
  short cache, so that a scrape never holds up the service and `/metrics` still answers
  while the database or Kafka is down (`fulfil_metrics_source_up` says which is).
- Domain counters, counted after the transaction that made the change committed
  (`after_commit`): reservations by outcome, sale status transitions, webhook deliveries.

Labels stay bounded: a service, route template, method, status, topic, event type, group,
partition or outcome; never a tenant, sale, endpoint, event or request id.
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.offset import OffsetRequest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# The route label of a request no route matched (404s of random paths stay one series).
UNMATCHED = "unmatched"
# The scope key through which whoever answers a request outside FastAPI's routing (the
# gateway's forwarding) names its route template: see `name_route`.
ROUTE_KEY = "fulfil.metrics.route"
# The event type label of an outbox row written before rows had a type.
UNTYPED = "unknown"
# The status label of a request that ended without an answer: the client left before it.
CLIENT_GONE = 499
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "fulfil_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "fulfil_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_PUBLISHED = Counter(
    "fulfil_events_published",
    "Events the outbox relay published and Kafka acknowledged, by topic and event type",
    ["service", "topic", "event_type"],
)
EVENTS_CONSUMED = Counter(
    "fulfil_events_consumed",
    "Events a consumer received and decoded, by topic and event type",
    ["service", "topic", "event_type"],
)
EVENTS_DEAD_LETTERED = Counter(
    "fulfil_events_dead_lettered",
    "Records a consumer sent to the dead-letter topic, by the topic they came from",
    ["service", "topic"],
)
CONSUMER_BATCH = Histogram(
    "fulfil_consumer_batch_records",
    "Records in each batch a consumer handled",
    ["service"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
RESERVATIONS = Counter(
    "fulfil_stock_reservations",
    "Sales stock reserved, backordered, released or committed (after commit)",
    ["outcome"],
)
SALE_TRANSITIONS = Counter(
    "fulfil_orders_sale_status_transitions",
    "Sale status changes, by the status left and the status reached (after commit)",
    ["from_status", "to_status"],
)
WEBHOOK_DELIVERIES = Counter(
    "fulfil_webhooks_delivery_attempts",
    "Webhook delivery attempts recorded, by outcome: succeeded, retrying or failed",
    ["outcome"],
)


# --- HTTP -------------------------------------------------------------------------------


def name_route(scope: Scope, template: str) -> None:
    """Names the route template of a request answered outside FastAPI's routing."""
    holder = scope.get(ROUTE_KEY)
    if holder is not None:
        holder[0] = template


def _route_of(scope: Scope, named: list[str | None]) -> str:
    if named[0] is not None:
        return named[0]
    route = scope.get("route")  # unless a middleware inside copied the scope
    return str(getattr(route, "path", None) or UNMATCHED)


class RouteNamer:
    """Innermost: hands the route FastAPI matched to `HttpMetricsMiddleware`, which cannot
    see it when a middleware in between copied the scope (HEAD, a trailing slash)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(ROUTE_KEY)
            route = scope.get("route")
            if holder is not None and holder[0] is None and route is not None:
                holder[0] = getattr(route, "path", None)


class HttpMetricsMiddleware:
    """Counts each HTTP request by route template, method and status, and times it.

    Outermost, so that it sees the status any middleware answered with. The route is the
    matched route's template (`/sales/{sale_id}`), the one `name_route` gave, or
    `unmatched`; an unknown method is `other`; a request that ended without an answer (the
    client left) has status 499."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        named: list[str | None] = [None]
        scope[ROUTE_KEY] = named

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except BaseException:
            status = status or 500  # what the server answers in its place
            raise
        finally:
            status = status or CLIENT_GONE
            method = scope["method"]
            key = (_route_of(scope, named), method if method in KNOWN_METHODS else "other", status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(self.service, key[0], key[1], str(status)),
                    HTTP_LATENCY.labels(self.service, key[0], key[1]),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


# --- events -------------------------------------------------------------------------------

_published: dict[tuple[str, str, str], Any] = {}
_consumed: dict[tuple[str, str, str], Any] = {}


def event_published(service: str, topic: str, event_type: str, count: int = 1) -> None:
    key = (service, topic, event_type)
    child = _published.get(key)
    if child is None:
        child = _published[key] = EVENTS_PUBLISHED.labels(*key)
    child.inc(count)


def event_consumed(service: str, topic: str, event_type: str) -> None:
    key = (service, topic, event_type)
    child = _consumed.get(key)
    if child is None:
        child = _consumed[key] = EVENTS_CONSUMED.labels(*key)
    child.inc()


def event_dead_lettered(service: str, topic: str) -> None:
    EVENTS_DEAD_LETTERED.labels(service, topic).inc()


def batch_consumed(service: str, records: int) -> None:
    CONSUMER_BATCH.labels(service).observe(records)


# --- counting after commit ------------------------------------------------------------------

_deferred: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "fulfil_metrics_deferred", default=None
)


def after_commit(count: Callable[[], None]) -> None:
    """Counts once the transaction around the caller committed: inside `until_commit`, when
    its block ends without an error; anywhere else (the caller committed), at once."""
    pending = _deferred.get()
    if pending is None:
        count()
    else:
        pending.append(count)


def committing_later() -> bool:
    """Whether the caller runs inside `until_commit`: what it gives `after_commit` runs once
    the transaction that block opened has committed, not at once."""
    return _deferred.get() is not None


@contextlib.contextmanager
def until_commit() -> Iterator[None]:
    """Wraps a transaction: what `after_commit` was given inside counts only if it commits.
    The block opens the transaction and ends after its commit (never the other way round):
    `fulfilkit.outbox.relay_wake` counts on it to wake the relay after the commit."""
    pending: list[Callable[[], None]] = []
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    for count in pending:
        count()


def reservations(outcomes: Iterable[str]) -> None:
    for outcome in outcomes:
        RESERVATIONS.labels(outcome).inc()


def sale_transitions(changes: Iterable[tuple[str, str]]) -> None:
    for previous, current in changes:
        SALE_TRANSITIONS.labels(previous, current).inc()


def webhook_attempts(outcomes: Iterable[str]) -> None:
    for outcome in outcomes:
        WEBHOOK_DELIVERIES.labels(outcome).inc()


# --- gauges read when scraped ---------------------------------------------------------------


@dataclass(frozen=True)
class GaugeQuery:
    """A gauge read from the service's database when scraped: `sql` returns one row per
    sample, the label values (`labels`, in order) then the value."""

    name: str
    documentation: str
    sql: str
    labels: tuple[str, ...] = ()


def messaging_gauges(schema: str) -> list[GaugeQuery]:
    """The outbox and inbox gauges of a service that uses Kafka."""
    return [
        GaugeQuery(
            "fulfil_outbox_backlog_rows",
            "Outbox rows not yet published",
            f"SELECT count(*) FROM {schema}.outbox",
        ),
        GaugeQuery(
            "fulfil_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet published (0 when there is none)",
            f"SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {schema}.outbox",
        ),
        GaugeQuery(
            "fulfil_outbox_parked_rows",
            "Outbox rows Kafka refused, moved aside to outbox_parked",
            f"SELECT count(*) FROM {schema}.outbox_parked",
        ),
        GaugeQuery(
            "fulfil_inbox_dead_letters",
            "Events the inbox dead-lettered (and still remembers)",
            f"SELECT count(*) FROM {schema}.inbox WHERE outcome = 'dead_lettered'",
        ),
    ]


Sample = tuple[tuple[str, ...], float]


@dataclass
class Readings:
    gauges: dict[str, list[Sample]] = field(default_factory=dict)
    lag: list[Sample] = field(default_factory=list)  # (group, topic, partition)
    dlq: list[Sample] = field(default_factory=list)  # (topic,)
    up: dict[str, bool] = field(default_factory=dict)


class PlatformSource:
    """One service's gauges: read at most once per `cache_seconds`, each read bounded by
    `timeout` seconds; a part that fails is left out, reported as down and read again at the
    next scrape."""

    def __init__(
        self,
        service: str,
        gauges: Sequence[GaugeQuery],
        *,
        pool: Any = None,
        broker: KafkaBroker | None = None,
        producer: Any = None,
        dlq_topics: Sequence[str] = (),
        timeout: float = 1.0,
        cache_seconds: float = 5.0,
    ) -> None:
        self.service = service
        self.gauges = list(gauges)
        self.pool = pool
        self.broker = broker
        self.producer = producer
        self.dlq_topics = list(dlq_topics)
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.readings = Readings()
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at < self.cache_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < self.cache_seconds:
                return  # another scrape read them meanwhile
            readings = Readings()
            parts = []
            if self.gauges and self.pool is not None:
                parts.append(("database", self._read_database(readings)))
            if self.broker is not None and self.producer is not None:
                parts.append(("kafka", self._read_kafka(readings)))
            results = await asyncio.gather(
                *(asyncio.wait_for(part, self.timeout) for _, part in parts),
                return_exceptions=True,
            )
            for (name, _), result in zip(parts, results, strict=True):
                up = readings.up[name] = not isinstance(result, BaseException)
                if not up and self.readings.up.get(name, True):  # once, when it goes down
                    log.warning("metrics of %s cannot read %s: %r", self.service, name, result)
            if not readings.up.get("database", True):
                readings.gauges = {}
            if not readings.up.get("kafka", True):
                readings.lag, readings.dlq = [], []
            self.readings = readings
            if all(readings.up.values()):  # while a source is down, each scrape tries again
                self._read_at = time.monotonic()

    async def _read_database(self, readings: Readings) -> None:
        async with self.pool.acquire(timeout=self.timeout) as conn:
            for gauge in self.gauges:
                rows = await conn.fetch(gauge.sql, timeout=self.timeout)
                readings.gauges[gauge.name] = [
                    (tuple(str(v) for v in row[:-1]), float(row[-1] or 0)) for row in rows
                ]

    async def _read_kafka(self, readings: Readings) -> None:
        """Lag from each consumer (the service's name is its group), dead-letter topics'
        depth. Offsets are asked through the producer's client: on the consumer's own
        connection the request would queue behind a fetch the broker may hold for seconds
        while the consumer is idle (`fulfilkit.kafka.fetch_long_when_idle`)."""
        assert self.broker is not None
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            assigned = sorted(consumer.assignment())
            if not assigned:
                continue
            for topic in {tp.topic for tp in assigned}:
                await self.producer.partitions_for(topic)  # the producer's client learns it
            ends = await list_offsets(self.producer.client, assigned, LATEST)
            positions = await asyncio.gather(
                *(_position(consumer, tp, self.timeout / 4) for tp in assigned)
            )
            for tp, position in zip(assigned, positions, strict=True):
                if position is not None and tp in ends:  # None: just assigned, not known yet
                    lag = max(ends[tp] - position, 0)
                    readings.lag.append(((self.service, tp.topic, str(tp.partition)), lag))
        if not self.dlq_topics:
            return
        partitions = [
            TopicPartition(topic, p)
            for topic in self.dlq_topics
            for p in sorted(await self.producer.partitions_for(topic) or ())
        ]
        begins = await list_offsets(self.producer.client, partitions, EARLIEST)
        ends = await list_offsets(self.producer.client, partitions, LATEST)
        depth: dict[str, float] = {topic: 0.0 for topic in self.dlq_topics}
        for tp in partitions:
            depth[tp.topic] += max(ends.get(tp, 0) - begins.get(tp, 0), 0)
        readings.dlq = [((topic,), value) for topic, value in depth.items()]


LATEST, EARLIEST = -1, -2


async def _position(consumer: Any, tp: TopicPartition, timeout: float) -> int | None:
    """The consumer's next offset on `tp`; None while it is still looking it up."""
    try:
        return int(await asyncio.wait_for(consumer.position(tp), timeout))
    except (TimeoutError, KafkaError):
        return None


async def list_offsets(
    client: Any, partitions: Sequence[TopicPartition], when: int
) -> dict[TopicPartition, int]:
    """The first (`EARLIEST`) or next (`LATEST`) offset of each partition, one request per
    leader, through a client that knows the partitions' topics (`partitions_for`).

    Not a consumer's `beginning_offsets`: for a topic it does not subscribe to, a consumer
    refreshes its metadata first, and waits for it, at every call."""
    by_leader: dict[int, dict[str, list[tuple[int, int]]]] = {}
    for tp in partitions:
        leader = client.cluster.leader_for_partition(tp)
        if leader is not None and leader >= 0:
            by_leader.setdefault(leader, {}).setdefault(tp.topic, []).append((tp.partition, when))
    answers = await asyncio.gather(
        *(
            client.send(leader, OffsetRequest(-1, 0, list(topics.items())))
            for leader, topics in by_leader.items()
        )
    )
    return {
        TopicPartition(topic, partition): info[-1]
        for answer in answers
        for topic, parts in answer.topics
        for partition, error, *info in parts
        if error == 0 and info
    }


LAG = (
    "fulfil_consumer_lag_messages",
    "Records on a partition the consumer group has not fetched yet (log end - position)",
)
DLQ_DEPTH = (
    "fulfil_dlq_depth_messages",
    "Records held by a dead-letter topic (end offset - beginning offset)",
)
SOURCE_UP = (
    "fulfil_metrics_source_up",
    "1 when the last read of a source of gauges (database, kafka) succeeded",
)


class PlatformCollector(Collector):
    """The gauges of every service this process runs, from their last readings."""

    def __init__(self) -> None:
        self.sources: dict[str, PlatformSource] = {}

    def _families(self) -> dict[str, GaugeMetricFamily]:
        families = {
            LAG[0]: GaugeMetricFamily(*LAG, labels=["service", "group", "topic", "partition"]),
            DLQ_DEPTH[0]: GaugeMetricFamily(*DLQ_DEPTH, labels=["service", "topic"]),
            SOURCE_UP[0]: GaugeMetricFamily(*SOURCE_UP, labels=["service", "source"]),
        }
        for source in self.sources.values():
            for gauge in source.gauges:
                families.setdefault(
                    gauge.name,
                    GaugeMetricFamily(
                        gauge.name, gauge.documentation, labels=["service", *gauge.labels]
                    ),
                )
        return families

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        for service, source in self.sources.items():
            readings = source.readings
            for name, samples in readings.gauges.items():
                for labels, value in samples:
                    families[name].add_metric([service, *labels], value)
            for labels, value in readings.lag:
                families[LAG[0]].add_metric([service, *labels], value)
            for labels, value in readings.dlq:
                families[DLQ_DEPTH[0]].add_metric([service, *labels], value)
            for name, up in readings.up.items():
                families[SOURCE_UP[0]].add_metric([service, name], 1.0 if up else 0.0)
        return list(families.values())


PLATFORM = PlatformCollector()
REGISTRY.register(PLATFORM)


# --- installing -----------------------------------------------------------------------------


def broker_middleware(service: str) -> KafkaPrometheusMiddleware:
    """FastStream's consume metrics (`faststream_received_*`), labelled `app_name=service`."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service)


def metrics_router(service: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        source = PLATFORM.sources.get(service)
        if source is not None:
            await source.refresh()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def install_http_metrics(app: FastAPI, service: str) -> None:
    """`GET /metrics` and the HTTP middleware; call after every other middleware was added,
    so that this one is outermost."""
    app.include_router(metrics_router(service))
    app.add_middleware(HttpMetricsMiddleware, service=service)
    app.user_middleware.append(Middleware(RouteNamer))  # the last one is the innermost


def watch(source: PlatformSource) -> None:
    """Reads `source`'s gauges at each scrape from now on, until `unwatch`."""
    PLATFORM.sources[source.service] = source


def unwatch(service: str) -> None:
    PLATFORM.sources.pop(service, None)
