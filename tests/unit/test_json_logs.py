"""LOG_FORMAT=json: one JSON object a line, with the request, tenant and trace where known."""

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pydantic import ValidationError

from fulfilkit.http.internal import INTERNAL_TOKEN_HEADER, TENANT_HEADER, TenantId
from fulfilkit.http.middleware import RequestIdMiddleware
from fulfilkit.logs import configure_logging, request_id_var, tenant_var
from fulfilkit.settings import ServiceSettings, token_digest
from tests.asgi import asgi_get

log = logging.getLogger("orders.usecases")
TOKEN = "a-gateway-token-for-the-json-log-tests"


@pytest.fixture
def restored() -> Iterator[None]:
    """The root logger as it was, after a test configured it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_logs() -> None:
    """The service's stderr handler, as JSON. Called inside a test, where stderr is the one
    `capsys` captures (the handler keeps the stream it was given)."""
    configure_logging("orders", "INFO", "json")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_line_outside_any_request_has_the_fixed_fields_only(restored, capsys) -> None:
    json_logs()
    before = datetime.now(UTC)
    log.info("reserved %s units", 3)
    [line] = lines(capsys)
    assert list(line) == ["time", "level", "service", "logger", "message"]
    assert line["level"] == "INFO"
    assert line["service"] == "orders"
    assert line["logger"] == "orders.usecases"
    assert line["message"] == "reserved 3 units"
    assert isinstance(line["time"], str) and line["time"].endswith("Z")
    when = datetime.fromisoformat(line["time"])
    assert when.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) < when <= datetime.now(UTC)


def test_a_line_inside_a_request_and_span_has_its_ids(restored, capsys) -> None:
    json_logs()
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    tenant = uuid4()
    request_token, tenant_token = request_id_var.set("req-42"), tenant_var.set(tenant)
    try:
        with trace.use_span(NonRecordingSpan(context)):
            log.warning("slow answer", extra={"sale": "S-1", "service": "not-orders"})
    finally:
        tenant_var.reset(tenant_token)
        request_id_var.reset(request_token)
    [line] = lines(capsys)
    assert line["request_id"] == "req-42"
    assert line["tenant"] == str(tenant)
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == "b7ad6b7169203331"
    assert line["level"] == "WARNING"
    assert line["sale"] == "S-1", "extra fields are kept"
    assert line["service"] == "orders", "but never in place of the line's own"
    assert "exception" not in line


def test_an_exception_is_one_string_on_the_same_line(restored, capsys) -> None:
    json_logs()
    try:
        raise ValueError("the stock level went below zero")
    except ValueError:
        log.exception("could not apply event %s", "e-1")
    [line] = lines(capsys)
    assert line["level"] == "ERROR"
    assert line["message"] == "could not apply event e-1"
    exception = line["exception"]
    assert isinstance(exception, str)
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("ValueError: the stock level went below zero")


def test_broker_noise_still_applies(restored, capsys) -> None:
    json_logs()
    kafka = logging.getLogger("aiokafka.conn")
    for _ in range(20):
        kafka.error("Unable connect to node with id %s", 1)
    [line] = lines(capsys)
    assert line["level"] == "WARNING"
    assert line["logger"] == "aiokafka.conn"
    assert str(line["message"]).startswith("Kafka broker unreachable for")


async def test_the_tenant_a_route_was_vouched_for_is_on_its_lines_and_forgotten_after(
    restored, capsys
) -> None:
    json_logs()
    router = APIRouter()

    @router.get("/things")
    async def things(tenant_id: TenantId) -> dict[str, str]:
        log.info("listing things")
        return {"tenant": str(tenant_id)}

    app = FastAPI()
    app.state.settings = ServiceSettings(
        environment="development", internal_callers={"gateway": token_digest(TOKEN)}
    )
    app.include_router(router)
    service = RequestIdMiddleware(app)
    tenant = str(uuid4())
    headers = [
        (b"x-request-id", b"req-tenant-1"),
        (INTERNAL_TOKEN_HEADER.lower().encode(), TOKEN.encode()),
        (TENANT_HEADER.lower().encode(), tenant.encode()),
    ]

    status, answer_headers, body = await asgi_get(service, "/things", headers)
    assert status == 200 and body == {"tenant": tenant}
    assert answer_headers["x-request-id"] == "req-tenant-1"
    log.info("after the request")
    during, after = lines(capsys)
    assert (during["message"], during["request_id"], during["tenant"]) == (
        "listing things",
        "req-tenant-1",
        tenant,
    )
    assert after["message"] == "after the request"
    assert "tenant" not in after and "request_id" not in after


def test_text_stays_the_default_and_keeps_the_request_id(restored, capsys) -> None:
    configure_logging("orders", "INFO")
    token = request_id_var.set("req-7")
    try:
        log.info("hello")
    finally:
        request_id_var.reset(token)
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" INFO orders orders.usecases [req-7] hello")
    assert ServiceSettings(environment="development").log_format == "text"


@pytest.mark.parametrize("given", ["JSON", " json ", "Text"])
def test_the_format_is_read_in_any_case(given: str) -> None:
    settings = ServiceSettings(environment="development", log_format=given)
    assert settings.log_format == given.strip().lower()


@pytest.mark.parametrize("given", ["xml", "", "logfmt"])
def test_any_other_format_is_a_settings_error(given: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ServiceSettings(environment="development", log_format=given)
    [error] = raised.value.errors()
    assert error["loc"] == ("log_format",)
    assert "'text' or 'json'" in error["msg"]
