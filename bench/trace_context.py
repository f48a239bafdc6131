"""What trace context costs a request, and an event: `fulfilkit.tracing`'s middleware around
a minimal FastAPI route, called straight through ASGI (no server, no socket), without an
exporter (what runs unless OTEL_* configures one) and with spans recorded (to an exporter
that drops them: the cost of building and batching spans, not of sending them); and the
per-event cost of choosing each outbox event's traceparent, and a consumer batch's span.

    python bench/trace_context.py [--requests 20000] [--rounds 5]

No infrastructure needed. Prints microseconds per request (best of `--rounds`).
"""

import argparse
import asyncio
import platform as host
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from fulfilkit import tracing
from fulfilkit.tracing import (
    RouteNamingMiddleware,
    TracingMiddleware,
    consuming,
    outgoing_traceparents,
    span,
)

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def app(*middleware: Any) -> FastAPI:
    api = FastAPI()

    @api.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    for m in middleware:
        api.add_middleware(m)
    return api


async def per_request(target: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/things/42",
        "raw_path": b"/api/v1/things/42",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x"), (b"accept", b"*/*"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    started = time.perf_counter()
    for _ in range(n):
        await target(dict(scope), receive, send)
    return (time.perf_counter() - started) / n * 1e6


def per_event(keys: list[str], n: int, in_batch: bool) -> float:
    """`outgoing_traceparents`, what `outbox_arrays` adds per event, inside an open span."""
    contexts = [(k, i, TRACEPARENT.decode()) for i, k in enumerate(keys)]
    scope = consuming("bench process", contexts) if in_batch else span("request", parent=None)
    with scope:
        started = time.perf_counter()
        for _ in range(n):
            outgoing_traceparents(keys)
    return (time.perf_counter() - started) / n / len(keys) * 1e6


def per_batch(keys: list[str], n: int) -> float:
    """A consumer batch's span and context map (no exporter), per batch of `len(keys)`."""
    contexts = [(k, i, TRACEPARENT.decode()) for i, k in enumerate(keys)]
    started = time.perf_counter()
    for _ in range(n):
        with consuming("bench process", contexts):
            pass
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"$ python bench/trace_context.py {shlex.join(sys.argv[1:])}")
    print(f"Python {host.python_version()} on {host.machine()}, best of {args.rounds} rounds")
    n = args.requests
    given = [(b"traceparent", TRACEPARENT)]

    def best(results: list[float]) -> str:
        return f"{min(results):6.2f} us"

    plain = app()
    traced = app(TracingMiddleware)
    cases: list[tuple[str, Any, list[tuple[bytes, bytes]]]] = [
        ("route alone (no tracing)", plain, []),
        ("with tracing, no exporter, no traceparent", traced, []),
        ("with tracing, no exporter, caller's traceparent", traced, given),
    ]
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.rounds):
        for name, target, headers in cases:
            results[name].append(await per_request(target, headers, n))
    for name, values in results.items():
        print(f"  {name:55} {best(values)} per request")

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=n * 2))
    tracing._state.tracer = provider.get_tracer("bench")
    recorded = app(RouteNamingMiddleware, TracingMiddleware)
    values = [await per_request(recorded, given, n) for _ in range(args.rounds)]
    print(f"  {'with tracing, spans recorded (exporter drops them)':55} {best(values)} per request")
    tracing._state.tracer = None
    provider.shutdown()

    keys = [f"{uuid.uuid4()}:sale:{uuid.uuid4()}" for _ in range(20)]
    for in_batch in (False, True):
        values = [per_event(keys, n, in_batch) for _ in range(args.rounds)]
        where = "in a consumer batch" if in_batch else "in a request"
        print(f"  traceparent of an outbox event, {where:29} {best(values)} per event")
    values = [per_batch(keys, n) for _ in range(args.rounds)]
    print(f"  {'a consumer batch of 20: span and context map':55} {best(values)} per batch")


if __name__ == "__main__":
    asyncio.run(main())
