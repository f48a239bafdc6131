"""One sale under one trace id: from `POST /sales` (with the caller's `traceparent`) through
`sale.created`, the stock reservation and a webhook delivery. The trace context is in the
Kafka record headers and in the webhook request's `traceparent` with or without an exporter;
with one, every service's spans of that sale share the trace id.

The services run as processes, so an in-process `InMemorySpanExporter` cannot see their
spans. Instead the platform is restarted with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a
small OTLP/HTTP receiver in this test, which decodes what each service exports
(`opentelemetry.proto`) and keeps the spans in memory: the very path an operator configures,
exporter and environment variables included, is what is tested.
"""

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from deploy.local.services import Platform
from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import Hook, polled, register, started
from tests.kafka_tools import read_all
from tests.support import Client, eventually, ref

CALLER_SPAN = "b7ad6b7169203331"


def caller_traceparent() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{CALLER_SPAN}-01"


def trace_id_of(traceparent: str | bytes | None) -> str | None:
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode()
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


async def record_traceparents(bootstrap: str, topic: str, key: str) -> dict[str, str]:
    """Event type -> the `traceparent` header of the records on `topic` with `key`."""
    found = {}
    for record in await read_all(bootstrap, topic):
        if record.key != key.encode():
            continue
        headers = dict(record.headers)
        assert headers["content-type"] == b"application/cloudevents+json"
        found[orjson.loads(record.value)["type"]] = headers.get("traceparent", b"").decode()
    return found


async def follow_one_sale(
    tenant: Client, bootstrap: str, traceparent: str | None, hook: Hook
) -> tuple[dict[str, str], dict[str, str], str]:
    """Creates a stocked sale (sending `traceparent` when given) with a webhook endpoint for
    `sale.created`: the `traceparent` headers of the sale's records on the sales and stock
    topics, by event type, and the one its webhook request came with."""
    await register(tenant, hook.url, event_types=[c.SALE_CREATED])
    sku, location, _ = await stocked_product(tenant, quantity=5)
    headers = {"traceparent": traceparent} if traceparent is not None else {}
    created = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)), headers=headers)
    assert created.status == 201 and created.body["status"] == "pending", created
    key = c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(created.body["id"]))
    sales = await eventually(
        lambda: record_traceparents(bootstrap, c.SALES_TOPIC, key),
        lambda found: {c.SALE_CREATED, c.SALE_STATUS_CHANGED} <= set(found),
        interval=0.3,
        what="sale.created and the sale's pending status on the sales topic",
    )
    stock = await eventually(
        lambda: record_traceparents(bootstrap, c.STOCK_TOPIC, key),
        lambda found: c.STOCK_RESERVED in found,
        interval=0.3,
        what="stock.reserved on the stock topic",
    )
    arrivals = await eventually(
        polled(lambda: hook.of_type(c.SALE_CREATED)), bool, what="the sale.created webhook"
    )
    return sales, stock, arrivals[0].headers.get("traceparent", "")


@pytest.fixture
async def hook() -> Any:
    receiver = await started()
    try:
        yield receiver
    finally:
        await receiver.stop()


# --- without an exporter ---------------------------------------------------------------------


async def test_without_an_exporter_the_callers_trace_still_flows_to_kafka_and_webhooks(
    infrastructure: Any, tenant: Client, hook: Hook
):
    trace_id, traceparent = caller_traceparent()
    sales, stock, webhook = await follow_one_sale(
        tenant, infrastructure.bootstrap_servers, traceparent, hook
    )

    for header in [*sales.values(), *stock.values(), webhook]:
        assert trace_id_of(header) == trace_id, (sales, stock, webhook)
        assert header.split("-")[2] != CALLER_SPAN, "each hop has a span id of its own"


async def test_without_a_traceparent_the_gateway_starts_the_trace_that_flows_on(
    infrastructure: Any, tenant: Client, hook: Hook
):
    sales, stock, webhook = await follow_one_sale(
        tenant, infrastructure.bootstrap_servers, None, hook
    )

    started_here = trace_id_of(sales["sale.created"])
    assert started_here is not None and int(started_here, 16) != 0
    assert {trace_id_of(h) for h in [*sales.values(), *stock.values(), webhook]} == {started_here}


async def test_a_malformed_traceparent_is_ignored_and_a_new_trace_started(
    infrastructure: Any, tenant: Client, hook: Hook
):
    sales, _, webhook = await follow_one_sale(
        tenant, infrastructure.bootstrap_servers, "00-not-a-trace-01", hook
    )

    started_here = trace_id_of(sales["sale.created"])
    assert started_here is not None and trace_id_of(webhook) == started_here


# --- with an exporter: spans in memory -----------------------------------------------------


@dataclass(frozen=True)
class Received:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    links: tuple[str, ...]  # trace ids


class OtlpReceiver:
    """OTLP/HTTP (protobuf) on a local port, keeping every span it is sent in memory."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def take(self, request: ExportTraceServiceRequest) -> None:
        got = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    got.append(
                        Received(
                            attributes.get("service.name", ""),
                            s.name,
                            s.kind,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            tuple(link.trace_id.hex() for link in s.links),
                        )
                    )
        with self._lock:
            self.spans += got

    def of_trace(self, trace_id: str) -> list[Received]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """This module's own session, which never reuses a connection: `exported` restarts the
    services, and a request written into a connection the old gateway left behind fails
    ("Can not write request body")."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        yield session


@pytest.fixture(scope="module")
def exported(platform: Platform) -> Iterator[OtlpReceiver]:
    """The platform's services restarted exporting to an in-test OTLP receiver, and
    restarted without it afterwards."""
    receiver = OtlpReceiver()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    try:
        for service in platform:
            service.env.update(otel)
        platform.stop()
        platform.start()
        yield receiver
    finally:
        for service in platform:
            for name in otel:
                service.env.pop(name, None)
        platform.stop()
        platform.start()
        receiver.close()


SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP's SpanKind numbers


async def test_one_sale_is_one_trace_from_the_api_through_kafka_to_its_webhook(
    exported: OtlpReceiver, infrastructure: Any, tenant: Client, hook: Hook
):
    trace_id, traceparent = caller_traceparent()
    sales, stock, webhook = await follow_one_sale(
        tenant, infrastructure.bootstrap_servers, traceparent, hook
    )

    assert {trace_id_of(h) for h in [*sales.values(), *stock.values(), webhook]} == {trace_id}

    def complete(spans: list[Received]) -> bool:
        seen = {(s.service, s.kind) for s in spans}
        wanted = {
            ("gateway", SERVER),
            ("gateway", CLIENT),
            ("orders", SERVER),
            ("stock", CONSUMER),
            ("orders", CONSUMER),
            ("webhooks", CONSUMER),
            ("webhooks", CLIENT),
        }
        return wanted <= seen

    spans = await eventually(
        polled(lambda: exported.of_trace(trace_id)),
        complete,
        what="the spans of every service on the sale's path under the caller's trace id",
    )
    by_id = {s.span_id: s for s in spans}
    assert not [s.name for s in spans if s.name.startswith("fastapi.")], "one server span each"
    [gateway] = [s for s in spans if s.service == "gateway" and s.kind == SERVER]
    assert gateway.name == "POST /api/v1/sales" and gateway.parent_span_id == CALLER_SPAN
    [orders] = [s for s in spans if s.service == "orders" and s.kind == SERVER]
    assert orders.name == "POST /api/v1/sales"
    assert by_id[orders.parent_span_id].service == "gateway", "the gateway's call is its parent"
    # sale.created names the orders request's span; stock's batch continues it
    assert sales["sale.created"].split("-")[2] == orders.span_id
    reserving = [s for s in spans if s.service == "stock" and s.kind == CONSUMER]
    assert any(s.parent_span_id == orders.span_id and trace_id in s.links for s in reserving)
    # the webhook request's traceparent names the delivery attempt's span
    [attempt] = [s for s in spans if s.service == "webhooks" and s.kind == CLIENT]
    assert webhook.split("-")[2] == attempt.span_id
    assert by_id[attempt.parent_span_id].service == "orders", "a child of the event's context"
