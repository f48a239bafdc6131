"""One shape for every service: settings, pool, migrations, topics, broker, relay, routes."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from starlette.types import ASGIApp

from fulfilkit.contracts import ALL_TOPICS
from fulfilkit.db import create_pool, migrate
from fulfilkit.http.middleware import (
    HeadAsGetMiddleware,
    RequestIdMiddleware,
    StripTrailingSlashMiddleware,
    UnhandledErrorMiddleware,
)
from fulfilkit.http.problems import install_problem_handlers
from fulfilkit.inbox import Apply, Inbox, Relevant
from fulfilkit.kafka import ensure_topics, make_producer, subscribe
from fulfilkit.logs import configure_logging
from fulfilkit.outbox import OutboxRelay
from fulfilkit.retention import run_inbox_pruner
from fulfilkit.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consumer:
    """Which events a service applies, and the function that applies a batch of them."""

    topics: Sequence[str]
    event_types: Sequence[str]
    apply: Callable[["Runtime"], Apply]
    # Skips, before any database work, events of these types that `apply` would ignore.
    relevant: Relevant | None = None


@dataclass
class Runtime:
    """What a running service holds; reachable from routes as `request.app.state.runtime`."""

    settings: ServiceSettings
    schema: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer | None = None
    broker: KafkaBroker | None = None
    extras: dict[str, Any] = field(default_factory=dict)


BackgroundTask = Callable[[Runtime], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings: ServiceSettings
    migrations: Path
    routers: Sequence[APIRouter]
    consumers: Sequence[Consumer] = ()
    background: Sequence[BackgroundTask] = ()
    uses_kafka: bool = True
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    # ASGI middleware classes taking the app, applied inside request ids and trailing slashes
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = ()


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def _start_runtime(spec: ServiceSpec) -> Runtime:
    s = spec.settings
    pool = await create_pool(s.database_url, s.db_pool_min_size, s.db_pool_max_size,
                             application_name=spec.name)
    applied = await migrate(pool, spec.name, spec.migrations)
    if applied:
        log.info("applied migrations %s", applied)
    runtime = Runtime(settings=s, schema=spec.name, pool=pool)
    if spec.uses_kafka:
        await ensure_topics(s.kafka_bootstrap_servers, ALL_TOPICS, s.kafka_partitions)
        runtime.producer = make_producer(s.kafka_bootstrap_servers)
        await runtime.producer.start()
        # No dependency injection: the one subscriber takes the message as its decoder hands
        # it over. With it, FastDepends resolved the message through a synchronous context
        # field in a worker thread, a thread hop per batch.
        runtime.broker = KafkaBroker(s.kafka_bootstrap_servers, logger=log,
                                     log_level=logging.DEBUG, apply_types=False)
        for consumer in spec.consumers:
            inbox = Inbox(
                pool, spec.name, spec.name, runtime.producer, consumer.apply(runtime),
                event_types=consumer.event_types, relevant=consumer.relevant,
                max_attempts=s.consumer_max_attempts,
            )
            subscribe(runtime.broker, inbox, *consumer.topics, group_id=spec.name,
                      max_records=s.consumer_max_records,
                      poll_timeout_ms=s.consumer_poll_timeout_ms,
                      commit_interval=s.consumer_commit_interval_seconds,
                      fetch_max_wait_ms=s.consumer_fetch_max_wait_ms,
                      fetch_min_bytes=s.consumer_fetch_min_bytes)
        await runtime.broker.start()
    return runtime


def _background_tasks(spec: ServiceSpec, runtime: Runtime) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(job(runtime)) for job in spec.background]
    if spec.consumers:
        s = spec.settings
        tasks.append(asyncio.create_task(run_inbox_pruner(
            runtime.pool, spec.name, timedelta(seconds=s.inbox_retention_seconds),
            s.inbox_prune_interval_seconds,
        )))
    if runtime.producer is not None:
        relay = OutboxRelay(
            runtime.pool, spec.name, runtime.producer,
            batch_size=spec.settings.outbox_batch_size,
            poll_interval=spec.settings.outbox_poll_interval_seconds,
            linger=spec.settings.outbox_linger_ms / 1000,
        )
        tasks.append(asyncio.create_task(relay.run()))
    return tasks


async def _stop_runtime(runtime: Runtime, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if runtime.broker is not None:
        await runtime.broker.stop()
    if runtime.producer is not None:
        await runtime.producer.stop()
    await runtime.pool.close()


def _health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    async def ready(runtime: RuntimeDep) -> JSONResponse:
        checks = {"database": False}
        if runtime.broker is not None:
            checks["broker"] = False
        with contextlib.suppress(Exception):
            checks["database"] = await runtime.pool.fetchval("SELECT 1", timeout=2) == 1
        if runtime.broker is not None:
            with contextlib.suppress(Exception):
                checks["broker"] = bool(await runtime.broker.ping(timeout=2))
        ok = all(checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return router


def create_service(spec: ServiceSpec, **fastapi_kwargs: Any) -> FastAPI:
    configure_logging(spec.name, spec.settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await _start_runtime(spec)
        app.state.runtime = runtime
        if spec.on_start is not None:
            await spec.on_start(runtime)
        tasks = _background_tasks(spec, runtime)
        # What exists now (modules, routes, models) lives as long as the process: keep it
        # out of the collector's full passes, which would otherwise walk it every time.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if spec.on_stop is not None:
                await spec.on_stop(runtime)
            await _stop_runtime(runtime, tasks)

    app = FastAPI(lifespan=lifespan, redirect_slashes=False, **fastapi_kwargs)
    app.state.settings = spec.settings
    install_problem_handlers(app)
    for middleware in spec.middleware:  # each one added wraps those added before it
        app.add_middleware(middleware)
    app.add_middleware(StripTrailingSlashMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(UnhandledErrorMiddleware)  # inside the request id: answers carry it
    app.add_middleware(RequestIdMiddleware)
    app.include_router(_health_router())
    for router in spec.routers:
        app.include_router(router)
    return app
