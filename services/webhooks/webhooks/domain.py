"""Webhook rules: subscriptions, custom headers, the delivery state machine and retries.

Pure: no I/O. Times and randomness come in as arguments so every rule is testable.
"""

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, TypeVar, get_args
from uuid import UUID

import orjson

from fulfilkit.contracts import (
    EVENT_TYPES,
    FULFILLMENT_STATUS_CHANGED,
    INBOUND_ORDER_STATUS_CHANGED,
    RETURN_STATUS_CHANGED,
    SALE_STATUS_CHANGED,
    SALE_UPDATED,
    FulfillmentStatus,
    InboundOrderStatus,
    ReturnStatus,
    SaleStatus,
)

WILDCARD = "*"
TEST_EVENT_TYPE = "webhook.test"

DeliveryStatus = Literal["pending", "succeeded", "failed"]
PENDING: DeliveryStatus = "pending"
SUCCEEDED: DeliveryStatus = "succeeded"
FAILED: DeliveryStatus = "failed"
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = (PENDING, SUCCEEDED, FAILED)

JITTER = 0.10
RETRY_AFTER_MIN_SECONDS = 1.0
RETRY_AFTER_MAX_SECONDS = 3600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE = 410
RESPONSE_EXCERPT_BYTES = 1024

# Custom headers: set by the platform, or hop-by-hop, or framing the request.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "traceparent",  # the event's trace context: set by the platform on every attempt
        "tracestate",
    }
)
RESERVED_HEADER_PREFIXES = ("webhook-", "proxy-")
MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 64
MAX_HEADER_VALUE_LENGTH = 1024
MAX_HEADERS_BYTES = 8192
MASKED = "***"
# RFC 9110 token; a value of visible ASCII with single spaces or tabs inside, never at either
# end. Non-ASCII is refused rather than re-encoded: receivers disagree on its charset.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"([\x21-\x7e]([\t\x20-\x7e]*[\x21-\x7e])?)?")


SOURCE = "webhooks"

# Event types an endpoint can filter on, and the statuses each can name: a filter keeps only
# the events whose `data.status` (the status the entity moved to, or is in after an edit)
# is among those listed.
FILTERABLE_STATUSES: dict[str, tuple[str, ...]] = {
    SALE_STATUS_CHANGED: get_args(SaleStatus),
    SALE_UPDATED: get_args(SaleStatus),
    FULFILLMENT_STATUS_CHANGED: get_args(FulfillmentStatus),
    RETURN_STATUS_CHANGED: get_args(ReturnStatus),
    INBOUND_ORDER_STATUS_CHANGED: get_args(InboundOrderStatus),
}
# {event type: {"status": [statuses]}}, as stored and shown.
Filters = dict[str, dict[str, list[str]]]


# --- endpoints and deliveries as the use cases see them -------------------------------------


@dataclass(frozen=True)
class NewEndpoint:
    url: str
    event_types: list[str]
    headers: dict[str, str]
    description: str = ""
    enabled: bool = True
    ordered: bool = False
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointChanges:
    """A partial update: None leaves a field as it is."""

    url: str | None = None
    event_types: list[str] | None = None
    headers: dict[str, str] | None = None
    description: str | None = None
    enabled: bool | None = None
    ordered: bool | None = None
    filters: Filters | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class Endpoint:
    id: UUID
    url: str
    description: str
    event_types: list[str]
    headers: dict[str, str]  # stored values: mask them (`masked_headers`) before showing
    enabled: bool
    ordered: bool
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    secret_generation: int
    filters: Filters = field(default_factory=dict)
    # Sealed (`SecretSealer`), and only where the store was asked for them.
    secret: str | None = field(default=None, repr=False)
    previous_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str


@dataclass(frozen=True)
class RotatedSecret:
    endpoint: Endpoint
    secret: str


@dataclass(frozen=True)
class LoggedAttempt:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None
    request_headers: dict[str, str] | None = None  # as `recorded_headers` kept them


@dataclass(frozen=True)
class EndpointStats:
    """An endpoint's health over `STATS_WINDOW`: deliveries that finished (succeeded or
    finally failed) and its last failed attempt."""

    deliveries: int = 0
    failed: int = 0
    last_failure_at: datetime | None = None
    last_failure_status: int | None = None
    last_failure_error: str | None = None

    @property
    def success_rate(self) -> float | None:
        """Succeeded / finished; None when nothing finished in the window."""
        if not self.deliveries:
            return None
        return round((self.deliveries - self.failed) / self.deliveries, 4)


STATS_WINDOW_HOURS = 24  # the current hour and the 24 whole hours before it
STATS_KEPT_HOURS = 48


@dataclass(frozen=True)
class Delivery:
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    subject: str
    occurred_at: datetime
    webhook_id: str
    payload: bytes
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    attempts: list[LoggedAttempt] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries of an endpoint to list; None means any. `since`/`until` bound
    `created_at` (inclusive, exclusive)."""

    status: DeliveryStatus | None = None
    event_type: str | None = None
    subject: str | None = None
    event_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


# --- subscriptions -----------------------------------------------------------------------


def _prefixes(known: Iterable[str]) -> frozenset[str]:
    return frozenset(t.rsplit(".", 1)[0] for t in known if "." in t)


def pattern_error(pattern: str, known: Sequence[str] = EVENT_TYPES) -> str | None:
    """Why `pattern` is not a valid subscription, or None: `*`, `sale.*` or an exact type."""
    if pattern == WILDCARD or pattern in known:
        return None
    if pattern.endswith(".*") and pattern[:-2] in _prefixes(known):
        return None
    return f"unknown event type {pattern!r}"


def normalize_patterns(patterns: Iterable[str]) -> list[str]:
    """Deduplicated, in the given order; `*` alone when it is among them."""
    unique = list(dict.fromkeys(patterns))
    return [WILDCARD] if WILDCARD in unique else unique


def matches(patterns: Iterable[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == WILDCARD or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class EventLike(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def tenantid(self) -> UUID: ...


@dataclass(frozen=True)
class Destination:
    """Where a subscribed endpoint's deliveries go, as stored (secrets sealed): what a
    delivery handed straight to a dispatcher is sent with."""

    url: str
    headers: Mapping[str, str]
    secret: str
    previous_secret: str | None  # while it still signs
    failing: bool
    ordered: bool


@dataclass(frozen=True)
class Subscription:
    endpoint_id: UUID
    tenant_id: UUID
    patterns: tuple[str, ...]
    # Event type -> the statuses that pass; a type without an entry passes whole.
    statuses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    destination: Destination | None = None


def status_filters(filters: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, frozenset[str]]:
    """Stored filters as `Subscription.statuses`."""
    return {event_type: frozenset(f.get("status", ())) for event_type, f in filters.items()}


def passes(statuses: Mapping[str, frozenset[str]], event: EventLike) -> bool:
    """Whether an event passes an endpoint's filters: its type is not filtered, or the status
    in its data is one the filter names."""
    wanted = statuses.get(event.type)
    if wanted is None:
        return True
    return getattr(getattr(event, "data", None), "status", None) in wanted


E = TypeVar("E", bound=EventLike)


def plan_deliveries(
    events: Sequence[E], subscriptions: Iterable[Subscription]
) -> list[tuple[E, Subscription]]:
    """One (event, endpoint) pair per subscribed endpoint of the event's own tenant whose
    filters the event passes."""
    by_tenant: dict[UUID, list[Subscription]] = {}
    for sub in subscriptions:
        by_tenant.setdefault(sub.tenant_id, []).append(sub)
    return [
        (event, sub)
        for event in events
        for sub in by_tenant.get(event.tenantid, ())
        if matches(sub.patterns, event.type) and (not sub.statuses or passes(sub.statuses, event))
    ]


@dataclass(frozen=True)
class Room:
    """Free places in a dispatcher's local queue: per endpoint and per tenant (the defaults
    for those not listed, which hold nothing) and in all, as a claim's quotas count them; then
    the express lane, per endpoint (none for those not listed) and in all: places beyond
    those for endpoints that answer fast, as many as they took in a recent quarter second."""

    endpoints: Mapping[UUID, int]
    endpoint_default: int
    tenants: Mapping[UUID, int]
    tenant_default: int
    total: int
    express: Mapping[UUID, int] = field(default_factory=dict)
    express_total: int = 0


def allot(places: Sequence[tuple[UUID, UUID] | None], room: Room) -> list[bool]:
    """Whether each wanted place, an (endpoint, tenant) pair in order (None: not wanted),
    fits in `room`: first come, first served, within the endpoint's, the tenant's and the
    total free places, else within the endpoint's and the total express places."""
    endpoints = dict(room.endpoints)
    tenants = dict(room.tenants)
    total = room.total
    express = dict(room.express)
    express_total = room.express_total
    fits = []
    for place in places:
        if place is None:
            fits.append(False)
            continue
        endpoint, tenant = place
        endpoint_free = endpoints.get(endpoint, room.endpoint_default)
        tenant_free = tenants.get(tenant, room.tenant_default)
        if total > 0 and endpoint_free > 0 and tenant_free > 0:
            endpoints[endpoint] = endpoint_free - 1
            tenants[tenant] = tenant_free - 1
            total -= 1
            fits.append(True)
        elif express_total > 0 and express.get(endpoint, 0) > 0:
            express[endpoint] -= 1
            express_total -= 1
            fits.append(True)
        else:
            fits.append(False)
    return fits


def webhook_id(event_id: UUID, endpoint_id: UUID) -> str:
    """Stable per (event, endpoint): the same on every retry and resend."""
    return f"msg_{event_id.hex}_{endpoint_id.hex[:8]}"


def webhook_payload(
    event_type: str, timestamp: datetime, data: Mapping[str, Any], dataversion: str = "1"
) -> bytes:
    """A delivery's body: the event's type, time, data, and which shape that data has (the
    event's `dataversion`, so a receiver can tell a changed shape from a broken one)."""
    return orjson.dumps(
        {"type": event_type, "timestamp": timestamp, "dataversion": dataversion, "data": data},
        option=orjson.OPT_UTC_Z,
    )


# --- custom headers ----------------------------------------------------------------------


def header_name_error(name: str) -> str | None:
    if len(name) > MAX_HEADER_NAME_LENGTH:
        return f"a header name is at most {MAX_HEADER_NAME_LENGTH} characters"
    if not _HEADER_NAME.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP token"
    lowered = name.lower()
    if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES):
        return f"header {name!r} is set by the platform and cannot be overridden"
    return None


def header_value_error(value: str) -> str | None:
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        return f"a header value is at most {MAX_HEADER_VALUE_LENGTH} characters"
    if not value.isascii():
        return "a header value must be ASCII (non-ASCII bytes are refused, not re-encoded)"
    if not _HEADER_VALUE.fullmatch(value):
        return (
            "a header value may not hold control characters (CR, LF, NUL ...) nor begin"
            " or end with whitespace"
        )
    return None


def headers_error(headers: Mapping[str, str]) -> str | None:
    """What is wrong with the set as a whole (each header being valid)."""
    if len(headers) > MAX_HEADERS:
        return f"at most {MAX_HEADERS} custom headers"
    if sum(len(n) + len(v) for n, v in headers.items()) > MAX_HEADERS_BYTES:
        return f"custom headers may hold at most {MAX_HEADERS_BYTES} bytes in all"
    lowered = [name.lower() for name in headers]
    if duplicated := sorted({n for n in lowered if lowered.count(n) > 1}):
        return f"header {duplicated[0]!r} is given twice"
    return None


SIGNATURE_HEADER = "webhook-signature"


def recorded_headers(sent: Mapping[str, str], custom: Mapping[str, str]) -> dict[str, str]:
    """The headers of an attempt as the delivery log keeps them: without the signature
    (derived from the secret) and with every custom header's value masked (they may carry
    credentials)."""
    if not custom:
        return {name: value for name, value in sent.items() if name.lower() != SIGNATURE_HEADER}
    custom_names = {name.lower() for name in custom}
    return {
        name: MASKED if name.lower() in custom_names else value
        for name, value in sent.items()
        if name.lower() != SIGNATURE_HEADER
    }


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header values are write-only: they may carry the receiver's credentials."""
    return dict.fromkeys(headers, MASKED)


def merge_masked(given: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """`given` with each masked value replaced by the stored one of that name (so a read,
    edited and written back, keeps the values it could not see). KeyError: nothing stored."""
    return {name: stored[name] if value == MASKED else value for name, value in given.items()}


# --- deliveries --------------------------------------------------------------------------


def can_resend(status: DeliveryStatus) -> bool:
    """Finished deliveries can be queued again; a pending one is already queued."""
    return status != PENDING


# --- retries -----------------------------------------------------------------------------


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"5,30,120"` -> (5.0, 30.0, 120.0); empty means no retries."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    delays = tuple(float(p) for p in parts)
    if any(d <= 0 for d in delays):
        raise ValueError("retry delays must be positive seconds")
    return delays


def jittered(delay: float, rand: Callable[[], float] = random.random) -> float:
    return delay * (1 + JITTER * (2 * rand() - 1))


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Seconds asked by a `Retry-After` header (delta or HTTP date), within 1 s .. 1 h."""
    if not header:
        return None
    text = header.strip()
    try:
        seconds = (
            float(text) if text.isdigit() else (parsedate_to_datetime(text) - now).total_seconds()
        )
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(seconds, RETRY_AFTER_MIN_SECONDS), RETRY_AFTER_MAX_SECONDS)


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True)
class Verdict:
    status: DeliveryStatus
    retry_in: float | None = None
    disable_endpoint: bool = False


def decide(
    status_code: int | None,
    attempts_made: int,
    schedule: Sequence[float],
    *,
    now: datetime,
    retry_after: str | None = None,
    rand: Callable[[], float] = random.random,
) -> Verdict:
    """What follows an attempt; `attempts_made` counts it. `status_code` None: no response."""
    if is_success(status_code):
        return Verdict(SUCCEEDED)
    if status_code == GONE:
        return Verdict(FAILED, disable_endpoint=True)
    if attempts_made > len(schedule):
        return Verdict(FAILED)
    delay = jittered(schedule[attempts_made - 1], rand)
    if status_code in RETRY_AFTER_STATUSES:
        delay = retry_after_seconds(retry_after, now) or delay
    return Verdict(PENDING, retry_in=delay)


def gone_reason(status_code: int) -> str:
    return f"the endpoint answered {status_code} Gone"


def failing_reason(since: datetime) -> str:
    return f"every delivery failed since {since.isoformat()}"


@dataclass(frozen=True)
class Attempt:
    """One POST to an endpoint: its answer, or the error that stood in for one."""

    attempted_at: datetime
    latency_ms: int
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: str | None = None
    request_headers: dict[str, str] | None = None  # as `recorded_headers` kept them

    @property
    def succeeded(self) -> bool:
        return is_success(self.status_code)


@dataclass(frozen=True)
class Outcome:
    delivery_id: UUID
    endpoint_id: UUID
    attempt: Attempt
    verdict: Verdict
    endpoint_failing: bool = False  # as the endpoint stood when the delivery was claimed


@dataclass(frozen=True)
class Target:
    """A claimed delivery, ready to send: its endpoint's address, headers and open secrets."""

    delivery_id: UUID
    endpoint_id: UUID
    tenant_id: UUID
    url: str
    headers: dict[str, str]
    secrets: list[str]
    webhook_id: str
    payload: bytes
    attempts_made: int
    endpoint_failing: bool
    claimed_at: float  # time.monotonic()
    traceparent: str | None = None  # of the event that caused the delivery


def unsent(
    delivery_id: UUID,
    endpoint_id: UUID,
    attempts_made: int,
    endpoint_failing: bool,
    reason: str,
    schedule: Sequence[float],
    now: datetime,
) -> Outcome:
    """An attempt that could not be made fails like one without an answer: retried on the
    schedule, so fixing what stopped it lets it through."""
    verdict = decide(None, attempts_made + 1, schedule, now=now)
    return Outcome(
        delivery_id, endpoint_id, Attempt(now, 0, error=reason), verdict, endpoint_failing
    )


def failing_too_long(failing_since: datetime | None, now: datetime, window: float) -> bool:
    """An endpoint without a success since `failing_since` is disabled once `window` passed
    (0 turns the rule off)."""
    return (
        window > 0 and failing_since is not None and (now - failing_since).total_seconds() >= window
    )


# --- recovery ----------------------------------------------------------------------------


def recover_window_error(since: datetime, until: datetime | None, now: datetime) -> str | None:
    """Why (since, until) cannot select deliveries to recover, or None."""
    if since > now:
        return "since is in the future"
    if until is not None and until <= since:
        return "until must be later than since"
    return None


# --- idempotency ---------------------------------------------------------------------------


def fingerprinted_endpoint(fields: Mapping[str, Any]) -> bytes:
    """What stands for an endpoint's body in its `Idempotency-Key` fingerprint: its fields in
    canonical order, custom header values left out (credentials are kept nowhere else, not
    even hashed)."""
    canonical = dict(fields)
    if "headers" in canonical:
        canonical["headers"] = sorted(canonical["headers"])
    return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)


# --- secrets and responses ---------------------------------------------------------------


def active_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """Secrets to sign with: the current one, and the previous one during its overlap."""
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return [current, previous]
    return [current]


def excerpt(body: bytes, limit: int = RESPONSE_EXCERPT_BYTES) -> str:
    """The first `limit` bytes as text that PostgreSQL accepts (no NUL)."""
    return body[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
