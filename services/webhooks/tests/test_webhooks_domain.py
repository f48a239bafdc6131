"""Pure rules: subscriptions, headers, the delivery state machine, retries, secrets."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import get_args
from uuid import UUID, uuid4

import orjson
import pytest

from fulfilkit.contracts import EVENT_TYPES, FulfillmentStatus, SaleStatus
from webhooks.domain import (
    FAILED,
    FILTERABLE_STATUSES,
    PENDING,
    SUCCEEDED,
    Room,
    Subscription,
    active_secrets,
    allot,
    can_resend,
    decide,
    excerpt,
    failing_too_long,
    header_name_error,
    header_value_error,
    headers_error,
    jittered,
    masked_headers,
    matches,
    merge_masked,
    normalize_patterns,
    parse_schedule,
    passes,
    pattern_error,
    plan_deliveries,
    recover_window_error,
    retry_after_seconds,
    status_filters,
    webhook_id,
    webhook_payload,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SCHEDULE = (5.0, 30.0, 120.0)


@dataclass(frozen=True)
class Event:
    id: UUID
    type: str
    tenantid: UUID


# --- subscriptions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "sale.created", True),
        (["*"], "webhook.endpoint_disabled", True),
        (["sale.*"], "sale.status_changed", True),
        (["sale.*"], "stock.changed", False),
        (["stock.low"], "stock.low", True),
        (["stock.low"], "stock.changed", False),
        (["stock.low", "fulfillment.*"], "fulfillment.created", True),
        (["sale.*"], "sales.created", False),
        ([], "sale.created", False),
    ],
)
def test_matches(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_every_contract_type_is_a_valid_pattern() -> None:
    assert all(pattern_error(t) is None for t in EVENT_TYPES)


@pytest.mark.parametrize("pattern", ["*", "sale.*", "stock.*", "fulfillment.*", "webhook.*"])
def test_wildcards_are_valid(pattern: str) -> None:
    assert pattern_error(pattern) is None


@pytest.mark.parametrize("pattern", ["", "sale", "sale.", "orders.*", "sale.shipped", "*.*", "s*"])
def test_unknown_patterns_are_refused(pattern: str) -> None:
    assert pattern_error(pattern) is not None


def test_normalize_patterns_dedupes_and_collapses_the_wildcard() -> None:
    assert normalize_patterns(["sale.*", "stock.low", "sale.*"]) == ["sale.*", "stock.low"]
    assert normalize_patterns(["stock.low", "*"]) == ["*"]


def test_plan_deliveries_stays_within_the_event_tenant() -> None:
    tenant_a, tenant_b = uuid4(), uuid4()
    a_all = Subscription(uuid4(), tenant_a, ("*",))
    a_stock = Subscription(uuid4(), tenant_a, ("stock.*",))
    b_all = Subscription(uuid4(), tenant_b, ("*",))
    sale = Event(uuid4(), "sale.created", tenant_a)
    stock = Event(uuid4(), "stock.changed", tenant_a)
    planned = plan_deliveries([sale, stock], [a_all, a_stock, b_all])
    assert {(e.id, s.endpoint_id) for e, s in planned} == {
        (sale.id, a_all.endpoint_id),
        (stock.id, a_all.endpoint_id),
        (stock.id, a_stock.endpoint_id),
    }


def test_plan_deliveries_for_a_tenant_without_endpoints_is_empty() -> None:
    event = Event(uuid4(), "sale.created", uuid4())
    assert plan_deliveries([event], [Subscription(uuid4(), uuid4(), ("*",))]) == []


def test_allot_fits_places_first_come_within_the_endpoint_tenant_and_total_room() -> None:
    busy, fresh, other, tenant, crowded = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
    room = Room({busy: 1}, 3, {crowded: 0}, 4, 10)
    assert allot([(busy, tenant)] * 2 + [(fresh, tenant)] * 4, room) == [
        True,
        False,  # the busy endpoint had one free place
        True,
        True,
        True,
        False,  # the tenant's four places are taken (and the endpoint's three)
    ]
    assert allot([(other, crowded), None, (other, tenant)], room) == [False, False, True]
    assert allot([(fresh, tenant)] * 3, Room({}, 3, {}, 4, 2)) == [True, True, False]
    assert allot([(fresh, tenant)], Room({}, 3, {}, 4, 0)) == [False]


def test_webhook_id_is_stable_per_event_and_endpoint() -> None:
    event, endpoint, other = uuid4(), uuid4(), uuid4()
    assert webhook_id(event, endpoint) == webhook_id(event, endpoint)
    assert webhook_id(event, endpoint) != webhook_id(event, other)
    assert webhook_id(event, endpoint).startswith("msg_")


def test_payload_carries_type_timestamp_and_full_data() -> None:
    data = {"id": str(uuid4()), "status": "pending", "version": 3}
    body = orjson.loads(webhook_payload("sale.created", NOW, data))
    assert body == {
        "type": "sale.created",
        "timestamp": "2025-01-02T03:04:05Z",
        "dataversion": "1",
        "data": data,
    }
    body = orjson.loads(webhook_payload("fulfillment.created", NOW, data, "2"))
    assert body["dataversion"] == "2"


# --- headers -------------------------------------------------------------------------------


def header_error(name: str, value: str) -> str | None:
    """What the request model checks of one custom header."""
    return header_name_error(name) or header_value_error(value)


@pytest.mark.parametrize(
    "name", ["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "Content-Type", "Host"]
)
def test_platform_headers_cannot_be_overridden(name: str) -> None:
    assert "cannot be overridden" in (header_error(name, "x") or "")


@pytest.mark.parametrize(
    ("name", "value"),
    [("Bad Name", "x"), ("", "x"), ("X-Ok", "a\r\nInjected: 1"), ("X-Ok", "\x00")],
)
def test_malformed_headers_are_refused(name: str, value: str) -> None:
    assert header_error(name, value) is not None


def test_custom_headers_are_accepted() -> None:
    assert header_error("Authorization", "Bearer abc.def") is None
    assert header_error("X-Shop-Id", "shop 42") is None
    assert header_error("X-Tab", "a\tb") is None
    assert header_error("X-Empty", "") is None
    assert header_error("X-" + "a" * 62, "v" * 1024) is None


@pytest.mark.parametrize(
    "value",
    [
        "token\n",
        "token\r",
        "token\r\n",
        "a\nb",
        "\x00",
        "a\x7fb",
        "a\x1bb",
        "a\x0bb",
        " leading",
        "trailing ",
        "trailing\t",
        "caf\u00e9",
        "\u00e9",
        "\u2028",
        "v" * 1025,
    ],
)
def test_values_with_control_characters_whitespace_ends_or_non_ascii_are_refused(
    value: str,
) -> None:
    assert header_error("X-Ok", value) is not None


@pytest.mark.parametrize(
    "name",
    ["X-Ok\n", "X Ok", "X:Ok", "X-\u00e9", "X-Ok\x00", "(X)", "X-" + "a" * 63],
)
def test_names_that_are_not_short_rfc9110_tokens_are_refused(name: str) -> None:
    assert header_name_error(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "webhook-anything",
        "Proxy-Authorization",
        "Transfer-Encoding",
        "TE",
        "Upgrade",
        "Content-Length",
        "Connection",
        "Keep-Alive",
        "Expect",
        "Trailer",
    ],
)
def test_framing_hop_by_hop_and_platform_headers_are_reserved(name: str) -> None:
    assert "cannot be overridden" in (header_name_error(name) or "")


def test_the_set_of_headers_is_bounded_in_count_and_bytes() -> None:
    assert headers_error({f"X-{n}": "v" for n in range(20)}) is None
    assert headers_error({f"X-{n}": "v" for n in range(21)}) == "at most 20 custom headers"
    assert "8192 bytes" in (headers_error({f"X-{n}": "v" * 1000 for n in range(9)}) or "")
    assert headers_error({"X-A": "1", "x-a": "2"}) == "header 'x-a' is given twice"


def test_header_values_read_masked_and_masked_values_keep_the_stored_ones() -> None:
    stored = {"Authorization": "Bearer s3cret", "X-Shop": "42"}
    assert masked_headers(stored) == {"Authorization": "***", "X-Shop": "***"}
    assert merge_masked({"Authorization": "***", "X-New": "1"}, stored) == {
        "Authorization": "Bearer s3cret",
        "X-New": "1",
    }
    with pytest.raises(KeyError):
        merge_masked({"X-Unknown": "***"}, stored)


# --- state machine -------------------------------------------------------------------------


def test_only_finished_deliveries_can_be_resent() -> None:
    assert can_resend(FAILED) and can_resend(SUCCEEDED)
    assert not can_resend(PENDING)


# --- retries -------------------------------------------------------------------------------


def test_parse_schedule() -> None:
    assert parse_schedule("5, 30,120") == (5.0, 30.0, 120.0)
    assert parse_schedule("") == ()
    with pytest.raises(ValueError):
        parse_schedule("5,0")
    with pytest.raises(ValueError):
        parse_schedule("5,soon")


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 90.0), (0.5, 100.0), (1.0, 110.0)])
def test_jitter_stays_within_ten_percent(rand: float, expected: float) -> None:
    assert jittered(100.0, lambda: rand) == pytest.approx(expected)


def test_jitter_spreads_retries() -> None:
    delays = {round(jittered(100.0), 6) for _ in range(50)}
    assert len(delays) > 1 and all(90.0 <= d <= 110.0 for d in delays)


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_succeeds(code: int) -> None:
    verdict = decide(code, 1, SCHEDULE, now=NOW)
    assert verdict.status == SUCCEEDED and verdict.retry_in is None


def test_410_fails_at_once_and_disables_the_endpoint() -> None:
    verdict = decide(410, 1, SCHEDULE, now=NOW)
    assert verdict.status == FAILED and verdict.disable_endpoint


@pytest.mark.parametrize("code", [None, 301, 400, 401, 404, 500, 502])
def test_other_answers_follow_the_schedule(code: int | None) -> None:
    for attempt, delay in enumerate(SCHEDULE, start=1):
        verdict = decide(code, attempt, SCHEDULE, now=NOW, rand=lambda: 0.5)
        assert verdict.status == PENDING
        assert verdict.retry_in == pytest.approx(delay)
        assert not verdict.disable_endpoint


def test_a_spent_schedule_fails() -> None:
    verdict = decide(500, len(SCHEDULE) + 1, SCHEDULE, now=NOW)
    assert verdict.status == FAILED and not verdict.disable_endpoint


def test_no_schedule_means_one_attempt() -> None:
    assert decide(None, 1, (), now=NOW).status == FAILED


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("0", 1.0), ("86400", 3600.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_is_bounded(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


def test_retry_after_accepts_an_http_date() -> None:
    header = format_datetime(NOW + timedelta(minutes=2), usegmt=True)
    assert retry_after_seconds(header, NOW) == pytest.approx(120.0)
    past = format_datetime(NOW - timedelta(minutes=2), usegmt=True)
    assert retry_after_seconds(past, NOW) == 1.0


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_overrides_the_schedule_on_429_and_503(code: int) -> None:
    verdict = decide(code, 1, SCHEDULE, now=NOW, retry_after="90")
    assert verdict.status == PENDING and verdict.retry_in == 90.0


def test_retry_after_is_ignored_on_other_codes() -> None:
    verdict = decide(500, 1, SCHEDULE, now=NOW, retry_after="90", rand=lambda: 0.5)
    assert verdict.retry_in == pytest.approx(5.0)


def test_retry_after_does_not_extend_a_spent_schedule() -> None:
    assert decide(429, len(SCHEDULE) + 1, SCHEDULE, now=NOW, retry_after="5").status == FAILED


# --- secrets and responses -------------------------------------------------------------------


def test_previous_secret_signs_only_during_the_overlap() -> None:
    later = NOW + timedelta(hours=1)
    assert active_secrets("new", "old", later, NOW) == ["new", "old"]
    assert active_secrets("new", "old", NOW, NOW) == ["new"]
    assert active_secrets("new", None, None, NOW) == ["new"]


def test_excerpt_keeps_one_kilobyte_of_storable_text() -> None:
    assert len(excerpt(b"a" * 5000)) == 1024
    assert "\x00" not in excerpt(b"ok\x00\xff")


# --- disabling, recovery -------------------------------------------------------------------


def test_failing_too_long_needs_the_whole_window() -> None:
    since = NOW - timedelta(days=5)
    assert failing_too_long(since, NOW, 5 * 86400)
    assert not failing_too_long(since, NOW, 5 * 86400 + 1)
    assert not failing_too_long(None, NOW, 1)
    assert not failing_too_long(since, NOW, 0), "0 turns the rule off"


def test_recover_window() -> None:
    assert recover_window_error(NOW - timedelta(hours=1), None, NOW) is None
    assert recover_window_error(NOW - timedelta(hours=1), NOW, NOW) is None
    assert recover_window_error(NOW + timedelta(seconds=1), None, NOW) == "since is in the future"
    assert recover_window_error(NOW, NOW, NOW) == "until must be later than since"


@dataclass(frozen=True)
class _Data:
    status: str


@dataclass(frozen=True)
class _StatusEvent:
    id: UUID
    type: str
    tenantid: UUID
    data: _Data


def test_plan_deliveries_keeps_only_the_filtered_statuses() -> None:
    tenant = uuid4()
    shipped_only = Subscription(
        uuid4(),
        tenant,
        ("sale.*", "fulfillment.*"),
        status_filters({"sale.status_changed": {"status": ["shipped", "canceled"]}}),
    )
    every = Subscription(uuid4(), tenant, ("*",))
    shipped = _StatusEvent(uuid4(), "sale.status_changed", tenant, _Data("shipped"))
    packed = _StatusEvent(uuid4(), "sale.status_changed", tenant, _Data("in_fulfillment"))
    # A type the endpoint does not filter passes whole, whatever its status.
    fulfillment = _StatusEvent(uuid4(), "fulfillment.status_changed", tenant, _Data("packed"))
    planned = plan_deliveries([shipped, packed, fulfillment], [shipped_only, every])
    assert {(e.id, s.endpoint_id) for e, s in planned} == {
        (shipped.id, shipped_only.endpoint_id),
        (fulfillment.id, shipped_only.endpoint_id),
        (shipped.id, every.endpoint_id),
        (packed.id, every.endpoint_id),
        (fulfillment.id, every.endpoint_id),
    }


def test_a_filtered_type_without_a_status_does_not_pass() -> None:
    statuses = status_filters({"fulfillment.status_changed": {"status": ["shipped"]}})
    event = Event(uuid4(), "fulfillment.status_changed", uuid4())
    assert not passes(statuses, event)
    assert passes(statuses, Event(uuid4(), "sale.created", uuid4()))


def test_filterable_statuses_are_the_contracts() -> None:
    assert FILTERABLE_STATUSES["sale.status_changed"] == get_args(SaleStatus)
    assert FILTERABLE_STATUSES["sale.updated"] == get_args(SaleStatus)
    assert FILTERABLE_STATUSES["fulfillment.status_changed"] == get_args(FulfillmentStatus)
