"""Logging for every service: one handler on stderr, as text (the default) or as one JSON
object a line (`LOG_FORMAT=json`), each line with the request id, the tenant and the trace
where they are known."""

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal
from uuid import UUID

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra
from pythonjsonlogger.orjson import OrjsonFormatter

LogFormat = Literal["text", "json"]
NO_REQUEST = "-"
request_id_var: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)
# The tenant a request (or a batch of events) is for, once it is known: set by
# `fulfilkit.http.internal.tenant_vouched_by` and the gateway's API-key check, and scoped to
# one request by `fulfilkit.http.middleware.RequestIdMiddleware`.
tenant_var: ContextVar[UUID | str | None] = ContextVar("tenant", default=None)
# The uvicorn loggers that `uvicorn` (the command) gives handlers of its own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object a line: `time` (ISO 8601, UTC), `level`, `service`, `logger`, `message`,
    then `request_id`, `tenant`, `trace_id` and `span_id` when known, `exception` and `stack`
    when there is one, and any `extra` the caller passed (under another name than these)."""

    # What the record holds that is said otherwise (or not at all) in the line; uvicorn's
    # `color_message` is its message again, with terminal colour codes.
    SKIPPED = frozenset({*RESERVED_ATTRS, "request_id", "message", "asctime", "color_message"})

    def __init__(self, service: str) -> None:
        super().__init__(
            rename_fields={"exc_info": "exception", "stack_info": "stack"},
            reserved_attrs=list(self.SKIPPED),
        )
        self.service = service

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        log_data["level"] = record.levelname
        log_data["service"] = self.service
        log_data["logger"] = record.name
        log_data["message"] = record.message
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id != NO_REQUEST:
            log_data["request_id"] = request_id
        tenant = tenant_var.get()
        if tenant is not None:
            log_data["tenant"] = str(tenant)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            log_data["trace_id"] = format(span.trace_id, "032x")
            log_data["span_id"] = format(span.span_id, "016x")
        for key, value in message_dict.items():
            log_data[self.rename_fields.get(key, key)] = value
        extra: dict[str, Any] = {}
        merge_record_extra(record, extra, reserved=self._skip_fields)
        for key, value in extra.items():  # never in place of a field above
            log_data.setdefault(key, value)


class BrokerNoise(logging.Filter):
    """While the Kafka broker is unreachable, aiokafka logs about ten errors a second per
    service. This lets one of them through every `interval` seconds, as a warning that says
    how long the broker has been unreachable and how many lines were left out; `recovered`
    ends the outage once the noise has stopped (the caller checks the broker answers)."""

    def __init__(self, interval: float = 10.0, source: str = "aiokafka") -> None:
        super().__init__()
        self.interval = interval
        self.source = source
        self.outage_since: float | None = None
        self.last_noise = 0.0
        self.left_out = 0
        self._quiet_until = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == self.source or record.name.startswith(f"{self.source}.")):
            return True
        # Errors start an outage; warnings (a rebalance, say) are noise only during one.
        threshold = logging.WARNING if self.outage_since is not None else logging.ERROR
        if record.levelno < threshold:
            return True
        now = time.monotonic()
        self.last_noise = now
        if self.outage_since is None:
            self.outage_since = now
        if now < self._quiet_until:
            self.left_out += 1
            return False
        record.msg = (
            f"Kafka broker unreachable for {now - self.outage_since:.0f}s"
            f" ({self.left_out} similar lines left out): {record.getMessage()}"
        )
        record.args, record.exc_info, record.exc_text = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self.left_out = 0
        self._quiet_until = now + self.interval
        return True

    def quiet_for(self) -> float:
        return time.monotonic() - self.last_noise

    def recovered(self) -> float:
        """End the outage; returns how long it lasted."""
        lasted = time.monotonic() - (self.outage_since or time.monotonic())
        self.outage_since, self.left_out, self._quiet_until = None, 0, 0.0
        return lasted


broker_noise = BrokerNoise()


def text_formatter(service: str) -> logging.Formatter:
    return logging.Formatter(
        f"%(asctime)s %(levelname)s {service} %(name)s [%(request_id)s] %(message)s"
    )


def configure_logging(service: str, level: str, log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(broker_noise)
    handler.setFormatter(
        JsonFormatter(service) if log_format == "json" else text_formatter(service)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if log_format == "json":
        # `uvicorn` (the command) gives its loggers text handlers of their own: every line
        # goes through this one instead, so that each is JSON.
        for name in UVICORN_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
