"""`/metrics`: HTTP requests labelled by route template, and gauges that never hold up a
scrape, even while the database is down or does not answer."""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import APIRouter
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fulfilkit.metrics import (
    HttpMetricsMiddleware,
    PlatformSource,
    messaging_gauges,
    name_route,
    unwatch,
    watch,
)
from fulfilkit.service import ServiceDefinition, create_service
from fulfilkit.settings import ServiceSettings
from tests.asgi import asgi_request

router = APIRouter()


@router.get("/sales/{sale_id}")
async def get_sale(sale_id: str) -> dict[str, str]:
    return {"sale_id": sale_id}


@router.post("/sales")
async def create_sale() -> dict[str, str]:
    return {}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


def service(name: str) -> Any:
    return create_service(
        ServiceDefinition(
            name=name,
            settings=ServiceSettings(),
            migrations=Path(__file__).parent,
            routers=[router],
            uses_kafka=False,
        )
    )


async def call(app: Any, method: str, path: str) -> tuple[int, bytes]:
    status, _, body = await asgi_request(app, method, path)
    return status, body


def samples(text: bytes, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def requests_of(text: bytes, service: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["route"], labels["method"], labels["status"]): value
        for labels, value in samples(text, "fulfil_http_requests_total", service=service)
    }


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    app = service("metrics-routes")
    for path in ("/sales/S-1", "/sales/S-2", "/sales/S-3/"):  # a trailing slash too
        assert (await call(app, "GET", path))[0] == 200
    assert (await call(app, "HEAD", "/sales/S-4"))[0] == 200
    assert (await call(app, "POST", "/sales"))[0] == 200
    assert (await call(app, "DELETE", "/sales"))[0] == 405
    assert (await call(app, "GET", "/boom"))[0] == 500
    for n in range(3):
        assert (await call(app, "GET", f"/no/such/{n}"))[0] == 404
    assert (await call(app, "BREW", "/sales/S-5"))[0] == 405

    status, text = await call(app, "GET", "/metrics")

    assert status == 200
    assert requests_of(text, "metrics-routes") == {
        ("/sales/{sale_id}", "GET", "200"): 3,
        ("/sales/{sale_id}", "HEAD", "200"): 1,
        ("/sales", "POST", "200"): 1,
        ("/sales", "DELETE", "405"): 1,
        ("/boom", "GET", "500"): 1,
        ("unmatched", "GET", "404"): 3,  # one series, whatever the paths
        ("/sales/{sale_id}", "other", "405"): 1,
    }
    latency = samples(text, "fulfil_http_request_duration_seconds_count", service="metrics-routes")
    assert {(lb["route"], lb["method"]): v for lb, v in latency}[("/sales/{sale_id}", "GET")] == 3
    assert b"S-1" not in text and b"/no/such" not in text


async def test_metrics_are_not_in_the_openapi_document() -> None:
    app = service("metrics-openapi")
    assert "/metrics" not in app.openapi()["paths"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A PostgreSQL that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.mark.parametrize("database", ["refused", "silent"])
async def test_metrics_answer_at_once_while_the_database_is_down(database: str) -> None:
    name = f"metrics-db-{database}"
    app = service(name)
    async with contextlib.AsyncExitStack() as stack:
        port = (
            free_port()
            if database == "refused"
            else await stack.enter_async_context(silent_server())
        )
        pool = await asyncpg.create_pool(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", min_size=0, max_size=2
        )
        stack.push_async_callback(pool.close)
        watch(PlatformSource(name, messaging_gauges("orders"), pool=pool, timeout=0.5))
        stack.callback(unwatch, name)

        started = time.monotonic()
        status, text = await call(app, "GET", "/metrics")
        took = time.monotonic() - started

    assert status == 200
    assert took < 2.0
    assert samples(text, "fulfil_metrics_source_up", service=name) == [
        ({"service": name, "source": "database"}, 0.0)
    ]
    assert samples(text, "fulfil_outbox_backlog_rows", service=name) == []  # no stale value
    assert requests_of(text, name) == {}  # the scrape itself is counted once it answered


async def test_a_request_left_without_an_answer_is_counted_apart_from_errors() -> None:
    async def gone(scope: Any, receive: Any, send: Any) -> None:
        name_route(scope, "/api/v1/sales")  # as the gateway's forwarding names its paths

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("before any answer")

    await HttpMetricsMiddleware(gone, "metrics-gone")(
        {"type": "http", "method": "POST", "path": "/api/v1/sales"}, None, None
    )
    with pytest.raises(RuntimeError):
        await HttpMetricsMiddleware(failing, "metrics-gone")(
            {"type": "http", "method": "GET", "path": "/x"}, None, None
        )

    text = generate_latest(REGISTRY)
    assert requests_of(text, "metrics-gone") == {
        ("/api/v1/sales", "POST", "499"): 1,
        ("unmatched", "GET", "500"): 1,
    }
