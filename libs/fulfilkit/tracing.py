"""Traces: W3C trace context through every hop, spans exported only when configured.

Context always flows: an HTTP request continues the caller's `traceparent` (or starts a
trace), calls to other services and outbox rows carry it, the relay sends it as Kafka record
headers (the CloudEvents distributed-tracing extension), consumers continue it and webhook
deliveries send it. Spans are recorded and exported only when the standard `OTEL_*`
variables name an exporter (`OTEL_TRACES_EXPORTER=otlp|console`, or an
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Without one, no span
object is built at all: each hop only mints a span id (and a trace id where it starts one),
which is what `docs/observability.md` measured as the cheapest way to keep ids flowing.
"""

import logging
import os
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACEPARENT_BYTES = TRACEPARENT.encode()
_TRACESTATE_BYTES = TRACESTATE.encode()
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
TRACER_NAME = "fulfilkit"


@dataclass
class _State:
    service: str = ""
    tracer: trace.Tracer | None = None  # set when spans are exported


_state = _State()


# --- set-up ----------------------------------------------------------------------------------


def exporters_configured(env: Mapping[str, str] | None = None) -> list[str]:
    """The span exporters the `OTEL_*` variables ask for: `OTEL_TRACES_EXPORTER` (a comma
    list of `otlp`, `console`, `none`), else `otlp` when an OTLP endpoint is set, else none.
    `OTEL_SDK_DISABLED=true` turns exporting off (context still flows)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if named:
        return [n for n in named if n != "none"]
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(env.get(name) for name in endpoints) else []


def setup_tracing(service: str) -> None:
    """Once per process (`fulfilkit.service.create_service` calls it): an SDK tracer provider
    with a batch exporter per configured exporter, or nothing when none is configured.
    `OTEL_SERVICE_NAME` defaults to the service's name; the SDK reads the other `OTEL_*`
    variables itself (endpoint, headers, sampler, batch sizes, resource attributes)."""
    if _state.service:
        return
    _state.service = service
    names = exporters_configured()
    if not names:
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    # shuts down at exit (the SDK's default), sending its last batch
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    for exporter_name in names:
        if exporter_name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif exporter_name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            log.warning("OTEL_TRACES_EXPORTER %r is not supported; ignored", exporter_name)
    # Not made the global provider: FastAPI (0.16x) and other libraries start spans of their
    # own whenever one is set (a second server span per request, and spans around every
    # dependency and serialization); the platform's spans are these, named by route.
    _state.tracer = provider.get_tracer(TRACER_NAME)
    log.info("exporting spans as %s to %s", name, ", ".join(names))


def exporting() -> bool:
    return _state.tracer is not None


# --- W3C trace context -------------------------------------------------------------------------


# Version 00, as W3C Trace Context writes it: lower-case hex, neither id all zeros.
_TRACEPARENT_00 = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
# A later version: its first four fields read as version 00's, then `-` or the end.
_TRACEPARENT_LATER = re.compile(
    r"(?!ff)[0-9a-f]{2}-((?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2})(-.*)?"
)


def usable_traceparent(value: str | bytes | None) -> str | None:
    """`value` as a version-00 `traceparent` when it is a valid one (a later version is read
    by its first four fields, as the specification asks), else None: a malformed header is
    ignored, never an error."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = value.strip(" \t")
    if _TRACEPARENT_00.fullmatch(value):
        return value
    later = _TRACEPARENT_LATER.fullmatch(value)
    if later is None or value.startswith("00"):
        return None
    return f"00-{later.group(1)}"


def parse_traceparent(
    value: str | bytes | None, state: str | bytes | None = None
) -> SpanContext | None:
    """The remote span context of a `traceparent` (and `tracestate`), or None when it is
    missing or malformed (the caller then starts a new trace)."""
    text = usable_traceparent(value)
    if text is None:
        return None
    return SpanContext(
        int(text[3:35], 16),
        int(text[36:52], 16),
        is_remote=True,
        trace_flags=TraceFlags(int(text[53:55], 16) & TraceFlags.SAMPLED),
        trace_state=_trace_state(state),
    )


def _trace_state(value: str | bytes | None) -> TraceState | None:
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    state = TraceState.from_header([value])
    return state if len(state) else None


def format_traceparent(span_context: SpanContext) -> str:
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def current_span_context() -> SpanContext | None:
    span_context = trace.get_current_span().get_span_context()
    return span_context if span_context.is_valid else None


def current_traceparent() -> str | None:
    """The `traceparent` of the current span, or None outside any trace."""
    span_context = current_span_context()
    return format_traceparent(span_context) if span_context is not None else None


def trace_headers(span_context: SpanContext | None = None) -> dict[str, str]:
    """`traceparent` (and `tracestate` when there is one) of `span_context`, by default the
    current span's; empty outside any trace."""
    span_context = span_context or current_span_context()
    if span_context is None:
        return {}
    headers = {TRACEPARENT: format_traceparent(span_context)}
    if span_context.trace_state:
        headers[TRACESTATE] = span_context.trace_state.to_header()
    return headers


def record_traceparent(headers: Iterable[tuple[str, bytes]] | None) -> str | None:
    """The valid `traceparent` a Kafka record's headers carry, or None."""
    for name, value in headers or ():
        if name == TRACEPARENT:
            return usable_traceparent(value)
    return None


# --- spans -------------------------------------------------------------------------------------

_CURRENT = object()


@contextmanager
def span(
    name: str,
    *,
    parent: SpanContext | object | None = _CURRENT,
    kind: SpanKind = SpanKind.INTERNAL,
    links: Sequence[SpanContext] = (),
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span, current inside the block: a child of `parent` (by default the current span; None
    starts a new trace). Recorded and exported only when an exporter is configured; otherwise
    a non-recording span with a fresh span id in the parent's trace (or a new trace id)."""
    if parent is _CURRENT:
        parent_context = current_span_context()
    else:
        parent_context = parent  # type: ignore[assignment]
    tracer = _state.tracer
    if tracer is not None:
        ctx = (
            trace.set_span_in_context(NonRecordingSpan(parent_context))
            if parent_context is not None
            else otel_context.Context()  # a root: not the current span's child
        )
        with tracer.start_as_current_span(
            name,
            context=ctx,
            kind=kind,
            links=[Link(c) for c in links],
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=True,
        ) as recorded:
            yield recorded
        return
    minted = NonRecordingSpan(_child_of(parent_context))
    token = otel_context.attach(trace.set_span_in_context(minted))
    try:
        yield minted
    finally:
        otel_context.detach(token)


def _child_of(parent: SpanContext | None) -> SpanContext:
    if parent is None:
        return SpanContext(random.getrandbits(128), random.getrandbits(64), False, SAMPLED)
    return SpanContext(
        parent.trace_id, random.getrandbits(64), False, parent.trace_flags, parent.trace_state
    )


def set_route(method: str, route: str) -> None:
    """Names the current server span by its route template (`POST /api/v1/sales`): what
    `RouteNamingMiddleware` does for routed requests, and the gateway's forwarding for its
    own (which never reach the router)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.update_name(f"{method} {route}")
        current.set_attribute("http.route", route)


# --- HTTP --------------------------------------------------------------------------------------


class TracingMiddleware:
    """Continues the caller's `traceparent` (a malformed one is ignored: a new trace starts)
    with a server span, current for the whole request; `RouteNamingMiddleware` names it by
    method and route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = state = None
        for name, value in scope["headers"]:
            if name == _TRACEPARENT_BYTES:
                parent = value
            elif name == _TRACESTATE_BYTES:
                state = value
        remote = parse_traceparent(parent, state) if parent is not None else None
        method: str = scope["method"]
        if _state.tracer is None:
            with span(method, parent=remote, kind=SpanKind.SERVER):
                await self.app(scope, receive, send)
            return
        status = [0]

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        with span(
            method,
            parent=remote,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as server:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                _finish_server_span(server, status[0])


def _finish_server_span(server: Span, status: int) -> None:
    if status:
        server.set_attribute("http.response.status_code", status)
        if status >= 500:
            server.set_status(Status(StatusCode.ERROR))


class RouteNamingMiddleware:
    """Innermost, around the router (installed only when spans are recorded): names the
    server span by the template of the route that served the request, which the router puts
    in the scope it was given (the outer middleware saw an earlier copy of it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route") if scope["type"] == "http" else None
            path = getattr(route, "path", None)
            if path is not None:
                set_route(scope["method"], path)


# --- consumers and the outbox ------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """The trace context of the events a consumer batch is applying: by Kafka key (for the
    events it causes, `fulfilkit.outbox.outbox_arrays`) and by event id."""

    by_key: Mapping[str, str]
    by_event: Mapping[Any, str]


_incoming: ContextVar[Incoming | None] = ContextVar("incoming_trace_context", default=None)


def incoming_traceparent(event_id: Any) -> str | None:
    """The `traceparent` that event `event_id` of the batch being applied came with; else
    the current span's."""
    incoming = _incoming.get()
    found = incoming.by_event.get(event_id) if incoming is not None else None
    return found or current_traceparent()


def outgoing_traceparents(keys: Sequence[str]) -> list[str | None]:
    """The `traceparent` of each event about to be written to the outbox, by its Kafka key:
    inside a consumer batch the incoming event's with the same key, else the current span's
    (the HTTP request's, or the batch's)."""
    current = current_traceparent()
    incoming = _incoming.get()
    if incoming is None or not incoming.by_key:
        return [current] * len(keys)
    by_key = incoming.by_key
    return [by_key.get(k, current) for k in keys]


@contextmanager
def consuming(name: str, events: Sequence[tuple[str | None, Any, str | None]]) -> Iterator[None]:
    """A consumer span around one applied batch of `(key, event id, traceparent)`: the child
    of the events' trace when they all share one, else a new trace; when recorded, linked to
    every distinct event context. The events' `traceparent`s are where
    `outgoing_traceparents` and `incoming_traceparent` find them."""
    by_key: dict[str, str] = {}
    by_event: dict[Any, str] = {}
    for key, event_id, traceparent in events:
        if traceparent is None:
            continue
        if key is not None:
            by_key[key] = traceparent
        by_event[event_id] = traceparent
    parent = None
    if by_event:
        first = next(iter(by_event.values()))
        if all(t[3:35] == first[3:35] for t in by_event.values()):
            parent = parse_traceparent(first)
    token = _incoming.set(Incoming(by_key, by_event))
    try:
        if _state.tracer is None:
            with span(name, parent=parent, kind=SpanKind.CONSUMER):
                yield
            return
        linked = [parse_traceparent(t) for t in dict.fromkeys(by_event.values())]
        with span(
            name,
            parent=parent,
            kind=SpanKind.CONSUMER,
            links=[c for c in linked if c is not None],
            attributes={
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(events),
            },
        ):
            yield
    finally:
        _incoming.reset(token)
