"""One shape for every service: settings, pool, migrations, topics, broker, relay, routes."""

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from starlette.types import ASGIApp

from fulfilkit.contracts import ALL_TOPICS, dlq_topic
from fulfilkit.db import SchemaMismatch, check_schema, create_pool, migrate
from fulfilkit.faults import arm
from fulfilkit.http import deadletters
from fulfilkit.http.middleware import (
    HeadAsGetMiddleware,
    RequestIdMiddleware,
    StripTrailingSlashMiddleware,
    UnhandledErrorMiddleware,
)
from fulfilkit.http.problems import install_problem_handlers
from fulfilkit.inbox import Apply, Inbox, RecordingApply, Relevant
from fulfilkit.kafka import check_message_size, ensure_topics, make_producer, subscribe
from fulfilkit.logs import broker_noise, configure_logging
from fulfilkit.metrics import (
    PLATFORM,
    GaugeQuery,
    PlatformSource,
    broker_middleware,
    install_http_metrics,
    messaging_gauges,
    unwatch,
    watch,
)
from fulfilkit.outbox import OutboxRelay
from fulfilkit.retention import run_inbox_pruner
from fulfilkit.settings import ServiceSettings
from fulfilkit.supervise import Supervisor
from fulfilkit.tracing import (
    RouteNamingMiddleware,
    TracingMiddleware,
    exporting,
    setup_tracing,
)

log = logging.getLogger(__name__)

BROKER_WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class Consumer:
    """Which events a service applies, and the function that applies a batch of them."""

    topics: Sequence[str]
    event_types: Sequence[str]
    apply: Callable[["Runtime[Any]"], Apply | RecordingApply]
    # Skips, before any database work, events of these types that `apply` would ignore.
    relevant: Relevant | None = None
    # `apply` is a `RecordingApply`: it records the batch in the inbox in its own first
    # statement (`fulfilkit.inbox.Unrecorded`), a round trip fewer per batch.
    records_inbox: bool = False


R = TypeVar("R")


@dataclass
class Runtime(Generic[R]):
    """What a running service holds; reachable from routes as `request.app.state.runtime`.

    `resources` is what the service itself opened at start (clients, caches), typed by the
    service; each service's `resources` module says what it holds and how routes get it."""

    settings: ServiceSettings
    schema: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer | None = None
    broker: KafkaBroker | None = None
    relay: OutboxRelay | None = None
    loops: Supervisor = field(default_factory=Supervisor)
    resources: R = None  # type: ignore[assignment]  # set before any route or loop runs


# A loop that runs for the service's lifetime, supervised (restarted when it fails) and
# reported by `/ready` under its name: the function's, without a leading `run_`.
BackgroundTask = Callable[[Runtime[Any]], Awaitable[None]]
# Opens what a service needs beyond its pool and broker, and closes it on the way out.
OpenResources = Callable[[Runtime[Any]], AbstractAsyncContextManager[Any]]


def loop_name(task: BackgroundTask) -> str:
    return getattr(task, "__name__", "loop").removeprefix("run_")


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything `create_service` needs to know about one service."""

    name: str
    settings: ServiceSettings
    migrations: Path
    routers: Sequence[APIRouter]
    consumers: Sequence[Consumer] = ()
    background: Sequence[BackgroundTask] = ()
    uses_kafka: bool = True
    resources: OpenResources | None = None
    # ASGI middleware classes taking the app, applied inside request ids and trailing slashes
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = ()
    # Gauges read from the service's database when `/metrics` is scraped (`fulfilkit.metrics`)
    gauges: Sequence[GaugeQuery] = ()


async def get_runtime(request: Request) -> Runtime[Any]:
    return request.app.state.runtime


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


RuntimeDep = Annotated[Runtime[Any], Depends(get_runtime)]
Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def _start_runtime(spec: ServiceDefinition) -> Runtime[Any]:
    s = spec.settings
    pool = await create_pool(
        s.database_url,
        s.db_pool_min_size,
        s.db_pool_max_size,
        application_name=spec.name,
        acquire_timeout=s.db_acquire_timeout_seconds,
    )
    await _prepare_schema(spec, pool)
    runtime: Runtime[Any] = Runtime(
        settings=s,
        schema=spec.name,
        pool=pool,
        loops=Supervisor(
            first_delay=s.loop_restart_first_seconds, max_delay=s.loop_restart_max_seconds
        ),
    )
    if spec.uses_kafka:
        kafka_options = s.kafka_security.client_options()
        await ensure_topics(
            s.kafka_bootstrap_servers,
            ALL_TOPICS,
            s.kafka_partitions,
            s.kafka_replication_factor,
            client_options=kafka_options,
            min_insync_replicas=s.kafka_min_insync_replicas,
            retention_ms=s.kafka_retention_ms,
            dlq_retention_ms=s.kafka_dlq_retention_ms,
        )
        await check_message_size(
            s.kafka_bootstrap_servers,
            ALL_TOPICS,
            s.kafka_max_request_size,
            client_options=kafka_options,
        )
        runtime.producer = make_producer(
            s.kafka_bootstrap_servers, s.kafka_max_request_size, kafka_options
        )
        await runtime.producer.start()
    return runtime


async def _prepare_schema(spec: ServiceDefinition, pool: asyncpg.Pool) -> None:
    """Migrate (MIGRATE_ON_START, the default) or check that the schema is up to date; either
    way refuse to start on a schema this code does not match."""
    try:
        if spec.settings.migrate_on_start:
            applied = await migrate(pool, spec.name, spec.migrations)
            if applied:
                log.info("applied migrations %s", applied)
        else:
            await check_schema(pool, spec.name, spec.migrations)
    except SchemaMismatch as exc:
        log.critical("refusing to start: %s", exc)
        await pool.close()
        raise


async def _start_consumers(spec: ServiceDefinition, runtime: Runtime[Any]) -> None:
    """Subscribes the service's consumers; they may use its resources, so they come after."""
    s = spec.settings
    if runtime.producer is not None:
        # No dependency injection: the one subscriber takes the message as its decoder hands
        # it over (FastDepends would resolve it in a worker thread: a thread hop per batch).
        runtime.broker = KafkaBroker(
            s.kafka_bootstrap_servers,
            logger=log,
            security=s.kafka_security.broker_security(),
            log_level=logging.DEBUG,
            apply_types=False,
            middlewares=[broker_middleware(spec.name)],
        )
        for consumer in spec.consumers:
            inbox = Inbox(
                runtime.pool,
                spec.name,
                spec.name,
                runtime.producer,
                consumer.apply(runtime),
                event_types=consumer.event_types,
                relevant=consumer.relevant,
                max_attempts=s.consumer_max_attempts,
                records_inbox=consumer.records_inbox,
            )
            subscribe(
                runtime.broker,
                inbox,
                *consumer.topics,
                group_id=spec.name,
                max_records=s.consumer_max_records,
                poll_timeout_ms=s.consumer_poll_timeout_ms,
                commit_interval=s.consumer_commit_interval_seconds,
                fetch_max_wait_ms=s.consumer_fetch_max_wait_ms,
                fetch_min_bytes=s.consumer_fetch_min_bytes,
            )
        await runtime.broker.start()


def _start_loops(spec: ServiceDefinition, runtime: Runtime[Any]) -> None:
    loops = runtime.loops
    for job in spec.background:
        loops.start(loop_name(job), functools.partial(job, runtime))
    s = spec.settings
    if spec.consumers:
        loops.start(
            "inbox_pruner",
            functools.partial(
                run_inbox_pruner,
                runtime.pool,
                spec.name,
                timedelta(seconds=s.inbox_retention_seconds),
                s.inbox_prune_interval_seconds,
            ),
        )
    if runtime.producer is not None:
        relay = OutboxRelay(
            runtime.pool,
            spec.name,
            runtime.producer,
            batch_size=s.outbox_batch_size,
            poll_interval=s.outbox_poll_interval_seconds,
            idle_check=s.outbox_idle_check_seconds,
            linger=s.outbox_linger_ms / 1000,
            park_after=s.outbox_park_after_failures,
        )
        runtime.relay = relay
        loops.start("outbox_relay", relay.run)
    if runtime.broker is not None:
        loops.start("broker_watch", functools.partial(_watch_broker, runtime.broker))


async def _watch_broker(broker: KafkaBroker) -> None:
    """Says once when the broker answers again after an outage `broker_noise` has seen."""
    while True:
        await asyncio.sleep(BROKER_WATCH_SECONDS)
        if (
            broker_noise.outage_since is not None
            and broker_noise.quiet_for() > 2 * BROKER_WATCH_SECONDS
            and await broker.ping(timeout=2)
        ):
            log.warning("Kafka broker reachable again after %.0fs", broker_noise.recovered())


async def _stop_runtime(runtime: Runtime[Any]) -> None:
    await runtime.loops.stop()  # again: a no-op unless start failed half-way
    if runtime.broker is not None:
        await runtime.broker.stop()
    if runtime.producer is not None:
        await runtime.producer.stop()
    await runtime.pool.close()


async def readiness(runtime: "Runtime[Any]") -> tuple[bool, dict[str, Any]]:
    """What `/ready` answers: whether the database, the broker and every loop are up."""
    checks = {"database": False}
    if runtime.broker is not None:
        checks["broker"] = False
    with contextlib.suppress(Exception):
        async with runtime.pool.acquire(timeout=2) as conn:
            checks["database"] = await conn.fetchval("SELECT 1", timeout=2) == 1
    if runtime.broker is not None:
        with contextlib.suppress(Exception):
            checks["broker"] = bool(await runtime.broker.ping(timeout=2))
    down = set(runtime.loops.down())
    checks.update({f"loop:{name}": name not in down for name in runtime.loops.loops})
    ok = all(checks.values())
    loops = {
        name: {
            "up": name not in down,
            "failures": status.failures,
            "last_error": status.last_error,
        }
        for name, status in runtime.loops.loops.items()
    }
    body: dict[str, Any] = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "loops": loops,
    }
    if runtime.relay is not None:
        body["outbox_parked"] = runtime.relay.parked  # since this process started
    return ok, body


def _health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    async def ready(runtime: RuntimeDep) -> JSONResponse:
        ok, body = await readiness(runtime)
        return JSONResponse(
            body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"}
        )

    return router


def _install_dead_letters(app: FastAPI, spec: ServiceDefinition) -> None:
    """A service with consumers answers its dead letters to the gateway (`/internal/...`);
    every service that uses Kafka answers its overview (`/internal/overview`)."""
    if spec.consumers:
        app.include_router(deadletters.router)
    if spec.uses_kafka:
        app.include_router(_overview_router(spec))


OVERVIEW_PATH = "/internal/overview"


def _overview_router(spec: ServiceDefinition) -> APIRouter:
    """`GET /internal/overview`, for the gateway's `GET /api/v1/admin/overview`: readiness,
    consumer lag per group and topic (summed over partitions, as `/metrics` last read it,
    read again when stale, within `METRICS_TIMEOUT_SECONDS`), outbox backlog rows and dead
    letters by state. An internal endpoint rather than `/metrics`: dead letters by state are
    not gauges, and the gateway gets one small JSON answer instead of a text exposition to
    parse."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(deadletters.gateway_only)])

    @router.get(OVERVIEW_PATH)
    async def overview(runtime: RuntimeDep) -> dict[str, Any]:
        # the three parts at once: the answer takes the slowest one, each bounded
        (ok, ready_body), lag, counts = await asyncio.gather(
            readiness(runtime), _consumer_lag(spec.name), _messaging_counts(spec, runtime)
        )
        return {"ready": ok, "checks": ready_body["checks"], "consumer_lag": lag, **counts}

    return router


async def _messaging_counts(spec: ServiceDefinition, runtime: "Runtime[Any]") -> dict[str, Any]:
    """Outbox rows not yet published and dead letters by state; None when unreadable within
    `METRICS_TIMEOUT_SECONDS`."""
    timeout = spec.settings.metrics_timeout_seconds
    counts: dict[str, Any] = {"outbox_backlog_rows": None, "dead_letters": None}
    with contextlib.suppress(Exception):
        async with runtime.pool.acquire(timeout=timeout) as conn:
            counts["outbox_backlog_rows"] = await conn.fetchval(
                f"SELECT count(*) FROM {spec.name}.outbox", timeout=timeout
            )
            if spec.consumers:
                rows = await conn.fetch(
                    f"SELECT state, count(*) AS n FROM {spec.name}.dead_letters GROUP BY state",
                    timeout=timeout,
                )
                found = {r["state"]: r["n"] for r in rows}
                counts["dead_letters"] = {st: found.get(st, 0) for st in ("dead", "replayed")}
    return counts


async def _consumer_lag(service: str) -> list[dict[str, Any]]:
    source = PLATFORM.sources.get(service)
    if source is None:
        return []
    await source.refresh()  # bounded by the source's timeout; cached between reads
    summed: dict[tuple[str, str], float] = {}
    for (group, topic, _partition), lag in source.readings.lag:
        summed[group, topic] = summed.get((group, topic), 0) + lag
    return [
        {"group": group, "topic": topic, "lag": int(lag)}
        for (group, topic), lag in sorted(summed.items())
    ]


def _install_tracing(app: FastAPI, spec: ServiceDefinition) -> None:
    """Trace context for every request (outermost: the whole request is inside its span);
    spans are exported only when the `OTEL_*` variables configure an exporter, and only then
    named by route template (by a middleware around the router: installed first)."""
    setup_tracing(spec.name)
    if exporting():
        app.add_middleware(RouteNamingMiddleware)


def _watch_metrics(spec: ServiceDefinition, runtime: Runtime[Any]) -> None:
    """`/metrics` reads the service's gauges: outbox and inbox when it uses Kafka (with its
    consumers' lag and the depth of their dead-letter topics), and its own."""
    s = spec.settings
    gauges = [*(messaging_gauges(spec.name) if spec.uses_kafka else ()), *spec.gauges]
    topics = sorted({t for consumer in spec.consumers for t in consumer.topics})
    watch(
        PlatformSource(
            spec.name,
            gauges,
            pool=runtime.pool,
            broker=runtime.broker,
            producer=runtime.producer,
            dlq_topics=[dlq_topic(t) for t in topics],
            timeout=s.metrics_timeout_seconds,
            cache_seconds=s.metrics_cache_seconds,
        )
    )


def create_service(spec: ServiceDefinition, **fastapi_kwargs: Any) -> FastAPI:
    configure_logging(spec.name, spec.settings.log_level, spec.settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        arm(spec.settings.fault_points)
        runtime = await _start_runtime(spec)
        app.state.runtime = runtime
        try:
            async with contextlib.AsyncExitStack() as resources:
                if spec.resources is not None:
                    runtime.resources = await resources.enter_async_context(spec.resources(runtime))
                await _start_consumers(spec, runtime)
                _start_loops(spec, runtime)
                _watch_metrics(spec, runtime)
                # What exists now (modules, routes, models) lives as long as the process:
                # keep it out of the collector's full passes, which would walk it each time.
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    unwatch(spec.name)
                    await runtime.loops.stop()
                    if runtime.broker is not None:
                        await runtime.broker.stop()
                        runtime.broker = None
        finally:
            await _stop_runtime(runtime)

    app = FastAPI(lifespan=lifespan, redirect_slashes=False, **fastapi_kwargs)
    app.state.settings = spec.settings
    install_problem_handlers(app)
    _install_tracing(app, spec)
    for middleware in spec.middleware:  # each one added wraps those added before it
        app.add_middleware(middleware)
    app.add_middleware(StripTrailingSlashMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(UnhandledErrorMiddleware)  # inside the request id: answers carry it
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(TracingMiddleware)
    install_http_metrics(app, spec.name)  # outermost: sees every answer
    app.include_router(_health_router())
    for router in spec.routers:
        app.include_router(router)
    _install_dead_letters(app, spec)
    return app
