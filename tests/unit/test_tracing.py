"""Trace context: a bad `traceparent` is ignored (a new trace starts, never a 4xx), a good one
is continued; spans carry route templates; consumer batches hand their events' context on."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fulfilkit import tracing
from fulfilkit.outbox import record_headers
from fulfilkit.tracing import (
    RouteNamingMiddleware,
    TracingMiddleware,
    consuming,
    current_traceparent,
    exporters_configured,
    format_traceparent,
    incoming_traceparent,
    outgoing_traceparents,
    parse_traceparent,
    record_traceparent,
    span,
)
from tests.asgi import asgi_request

TRACE = "0af7651916cd43dd8448eb211c80319c"
GOOD = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00",
        f"00-{TRACE}-b7ad6b7169203331",  # no flags
        f"00-{TRACE}-b7ad6b7169203331-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE.upper()}-b7ad6b7169203331-01",  # upper-case hex
        f"00-{'0' * 32}-b7ad6b7169203331-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-b7ad6b7169203331-01",  # version ff is invalid
        f"0-{TRACE}-b7ad6b7169203331-01",
        f"00-{TRACE}z-b7ad6b716920333-01",
        f"00-{TRACE[:-1]}g-b7ad6b7169203331-01",
        f"00_{TRACE}_b7ad6b7169203331_01",
        f"00-{TRACE}-b7ad6b7169203331-1",
        "00-" + "é" * 32 + "-b7ad6b7169203331-01",
        b"\xff\xfe",
        None,
    ],
)
def test_a_malformed_traceparent_is_ignored(value: Any) -> None:
    assert parse_traceparent(value) is None


def test_a_good_traceparent_is_read_and_written_back_unchanged() -> None:
    parsed = parse_traceparent(GOOD.encode())
    assert parsed is not None and parsed.is_remote and parsed.trace_flags.sampled
    assert format_traceparent(parsed) == GOOD
    assert not parse_traceparent(f"00-{TRACE}-b7ad6b7169203331-00").trace_flags.sampled  # type: ignore[union-attr]
    # a later version is read by its first four fields, as the specification asks
    later = parse_traceparent(f"01-{TRACE}-b7ad6b7169203331-01-what-comes-next")
    assert later is not None and later.trace_id == int(TRACE, 16)
    with_state = parse_traceparent(GOOD, "vendor=value")
    assert with_state is not None and with_state.trace_state.to_header() == "vendor=value"


def test_record_headers_carry_the_rows_traceparent_next_to_the_content_type() -> None:
    assert record_headers(None) == [("content-type", b"application/cloudevents+json")]
    headers = record_headers(GOOD)
    assert headers[1] == ("traceparent", GOOD.encode())
    assert record_traceparent(headers) == GOOD
    assert record_traceparent([("content-type", b"x")]) is None
    assert record_traceparent([("traceparent", b"nonsense")]) is None
    assert record_traceparent(None) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
    ],
)
def test_spans_are_exported_only_when_the_environment_names_an_exporter(
    env: dict[str, str], expected: list[str]
) -> None:
    assert exporters_configured(env) == expected


# --- the middleware ------------------------------------------------------------------------


def app_seeing_its_trace() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, Any]:
        return {"traceparent": current_traceparent()}

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(RouteNamingMiddleware)
    app.add_middleware(TracingMiddleware)
    return app


async def call(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], method: str = "GET"
) -> tuple[int, bytes]:
    status, _, body = await asgi_request(app, method, path, headers, raise_after_answer=False)
    return status, body


async def traceparent_seen(headers: list[tuple[bytes, bytes]]) -> str:
    import orjson

    status, body = await call(app_seeing_its_trace(), "/things/42", headers)
    assert status == 200, "a trace header never makes a request fail"
    seen = orjson.loads(body)["traceparent"]
    assert parse_traceparent(seen) is not None
    return seen


async def test_a_request_continues_the_callers_trace_in_a_span_of_its_own() -> None:
    seen = await traceparent_seen([(b"traceparent", GOOD.encode())])
    assert seen.split("-")[1] == TRACE
    assert seen.split("-")[2] != GOOD.split("-")[2], "its own span id"
    assert seen.endswith("-01"), "the caller's sampled flag is kept"


@pytest.mark.parametrize(
    "header",
    [
        [],
        [(b"traceparent", b"garbage")],
        [(b"traceparent", f"00-{'0' * 32}-b7ad6b7169203331-01".encode())],
        [(b"traceparent", b"\xff" * 55)],
        [(b"traceparent", GOOD.upper().encode()), (b"tracestate", b"\x00\x01")],
    ],
)
async def test_without_a_usable_traceparent_a_request_starts_a_new_trace(header: Any) -> None:
    first, second = await traceparent_seen(header), await traceparent_seen(header)
    assert first.split("-")[1] != TRACE
    assert first.split("-")[1] != second.split("-")[1], "a new trace each time"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans recorded in memory, as a configured exporter would get them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing._state, "tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


async def test_server_spans_are_named_by_route_template_and_mark_server_errors(
    recorded: InMemorySpanExporter,
) -> None:
    app = app_seeing_its_trace()
    await call(app, "/things/42", [(b"traceparent", GOOD.encode())])
    await call(app, "/boom", [], method="POST")
    await call(app, "/nowhere", [])
    ok, boom, missing = recorded.get_finished_spans()

    assert (ok.name, ok.kind, ok.attributes["http.route"]) == (
        "GET /things/{thing_id}",
        SpanKind.SERVER,
        "/things/{thing_id}",
    )
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.context.trace_id == int(TRACE, 16) and ok.parent.span_id == int(
        "b7ad6b7169203331", 16
    )
    assert boom.name == "POST /boom" and not boom.status.is_ok
    assert boom.parent is None, "no traceparent: a trace starts here"
    assert missing.name == "GET" and missing.attributes["http.response.status_code"] == 404


# --- consumers -----------------------------------------------------------------------------


def context_of(trace_hex: str, span_hex: str) -> Any:
    return parse_traceparent(f"00-{trace_hex}-{span_hex}-01")


async def test_events_a_batch_causes_carry_the_trace_of_the_event_with_their_key() -> None:
    a = context_of("a" * 32, "1" * 16)
    b = context_of("b" * 32, "2" * 16)
    events = [("t:sale:1", "e1", format_traceparent(a)), ("t:sale:2", "e2", format_traceparent(b))]
    with consuming("stock process", events):
        batch = current_traceparent()
        assert batch is not None and batch.split("-")[1] not in ("a" * 32, "b" * 32)
        assert outgoing_traceparents(["t:sale:2", "t:sale:1", "t:sale:9"]) == [
            format_traceparent(b),
            format_traceparent(a),
            batch,  # no incoming event with that key: the batch's own span
        ]
        assert incoming_traceparent("e1") == format_traceparent(a)
        assert incoming_traceparent("other") == batch
    assert current_traceparent() is None
    assert outgoing_traceparents(["t:sale:1"]) == [None], "outside any trace: none"


async def test_a_batch_of_one_trace_continues_it_and_links_every_event(
    recorded: InMemorySpanExporter,
) -> None:
    a1, a2 = context_of("a" * 32, "1" * 16), context_of("a" * 32, "2" * 16)
    c = context_of("c" * 32, "3" * 16)
    a1_, a2_, c_ = (format_traceparent(x) for x in (a1, a2, c))
    with consuming("stock process", [("k1", "e1", a1_), ("k2", "e2", a2_), ("k3", "e3", None)]):
        pass
    with consuming("stock process", [("k1", "e1", a1_), ("k3", "e3", c_)]):
        pass
    one_trace, mixed = recorded.get_finished_spans()
    assert one_trace.kind == SpanKind.CONSUMER
    assert one_trace.context.trace_id == a1.trace_id and one_trace.parent.span_id == a1.span_id
    assert [link.context for link in one_trace.links] == [a1, a2]
    assert mixed.parent is None and mixed.context.trace_id not in (a1.trace_id, c.trace_id)
    assert [link.context for link in mixed.links] == [a1, c]


async def test_a_span_without_an_exporter_only_mints_ids() -> None:
    with span("x", parent=parse_traceparent(GOOD)) as minted:
        assert not minted.is_recording()
        assert current_traceparent().split("-")[1] == TRACE  # type: ignore[union-attr]
    with span("root", parent=None):
        fresh = current_traceparent()
        assert fresh is not None and fresh.split("-")[1] != TRACE and fresh.endswith("-01")
