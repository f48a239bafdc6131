"""Request validation of the endpoint routes (no server needed)."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from webhooks.schemas import EndpointIn, EndpointOut, EndpointPatch
from webhooks.settings import WebhookSettings


def test_defaults_subscribe_to_everything() -> None:
    endpoint = EndpointIn(url="https://example.com/hook")
    assert endpoint.event_types == ["*"] and endpoint.enabled and endpoint.headers == {}


def test_event_types_are_checked_one_by_one() -> None:
    with pytest.raises(ValidationError) as info:
        EndpointIn(url="https://example.com/", event_types=["sale.*", "sale.shipped"])
    assert info.value.errors()[0]["loc"] == ("event_types", 1)


def test_empty_event_types_are_refused() -> None:
    with pytest.raises(ValidationError):
        EndpointIn(url="https://example.com/", event_types=[])


@pytest.mark.parametrize("name", ["webhook-signature", "Content-Type", "webhook-id"])
def test_reserved_headers_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="cannot be overridden"):
        EndpointIn(url="https://example.com/", headers={name: "x"})


def test_headers_differing_only_in_case_are_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        EndpointIn(url="https://example.com/", headers={"X-A": "1", "x-a": "2"})


def test_bad_url_shape_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        EndpointIn(url="ftp://example.com/")
    assert info.value.errors()[0]["loc"] == ("url",)


def test_patch_changes_only_what_was_given() -> None:
    patch = EndpointPatch.model_validate({"enabled": False, "event_types": ["stock.low", "*"]})
    assert patch.changes().given() == {"enabled": False, "event_types": ["*"]}


def test_patch_refuses_nulls_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        EndpointPatch.model_validate({"url": None})
    with pytest.raises(ValidationError):
        EndpointPatch.model_validate({"secret": "whsec_x"})


def test_settings_defaults_and_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, localhost,::1")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,2,3")
    settings = WebhookSettings()
    assert settings.allowed_hosts == {"127.0.0.1", "localhost", "::1"}
    assert settings.retry_schedule == (1.0, 2.0, 3.0)
    assert settings.webhook_timeout_seconds == 10
    assert settings.webhook_max_in_flight_per_endpoint == 10
    assert settings.webhook_secret_overlap_seconds == 86400
    assert settings.webhook_poll_interval_seconds == 0.5


def test_default_schedule_spans_hours() -> None:
    schedule = WebhookSettings().retry_schedule
    assert schedule[0] == 5 and sum(schedule) > 12 * 3600


def test_settings_refuse_a_lease_shorter_than_a_request() -> None:
    with pytest.raises(ValidationError):
        WebhookSettings(webhook_timeout_seconds=60, webhook_lease_seconds=30)
    with pytest.raises(ValidationError):
        WebhookSettings(webhook_retry_schedule_seconds="5,-1")


def test_endpoint_views_never_carry_secrets() -> None:
    row = {
        "id": uuid4(),
        "url": "https://example.com/",
        "event_types": ["*"],
        "headers": {},
        "description": "",
        "enabled": True,
        "ordered": False,
        "disabled_reason": None,
        "version": 1,
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
        "secret": "whsec_current",
        "previous_secret": "whsec_old",
    }
    dumped = EndpointOut.model_validate(row).model_dump_json()
    assert "whsec_" not in dumped


def test_filters_are_kept_as_given_without_repeats() -> None:
    endpoint = EndpointIn.model_validate(
        {
            "url": "https://example.com/",
            "filters": {
                "sale.status_changed": {"status": ["shipped", "canceled", "shipped"]},
                "fulfillment.status_changed": {"status": ["delivered"]},
            },
        }
    )
    assert endpoint.new().filters == {
        "sale.status_changed": {"status": ["shipped", "canceled"]},
        "fulfillment.status_changed": {"status": ["delivered"]},
    }
    assert EndpointIn(url="https://example.com/").new().filters == {}


@pytest.mark.parametrize(
    ("filters", "loc"),
    [
        ({"stock.changed": {"status": ["shipped"]}}, ("filters", "stock.changed")),
        ({"sale.canceled": {"status": ["canceled"]}}, ("filters", "sale.canceled")),
        (
            {"sale.status_changed": {"status": ["packed"]}},
            ("filters", "sale.status_changed", "status", 0),
        ),
        (
            {"fulfillment.status_changed": {"status": ["shipped", "backordered"]}},
            ("filters", "fulfillment.status_changed", "status", 1),
        ),
        ({"sale.status_changed": {"status": []}}, ("filters", "sale.status_changed", "status")),
        (
            {"sale.status_changed": {"status": "shipped"}},
            ("filters", "sale.status_changed", "status"),
        ),
    ],
)
def test_unknown_filter_types_and_statuses_are_refused_where_they_are(
    filters: dict[str, object], loc: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        EndpointIn.model_validate({"url": "https://example.com/", "filters": filters})
    assert [e["loc"] for e in info.value.errors()] == [loc]


def test_patch_can_clear_the_filters() -> None:
    patch = EndpointPatch.model_validate({"filters": {}})
    assert patch.changes().given() == {"filters": {}}


def test_sale_updated_can_be_filtered_on_the_status_after_the_edit() -> None:
    endpoint = EndpointIn.model_validate(
        {"url": "https://example.com/", "filters": {"sale.updated": {"status": ["awaiting_stock"]}}}
    )
    assert endpoint.new().filters == {"sale.updated": {"status": ["awaiting_stock"]}}
    with pytest.raises(ValidationError) as info:
        EndpointIn.model_validate(
            {"url": "https://example.com/", "filters": {"sale.updated": {"status": ["packed"]}}}
        )
    assert [e["loc"] for e in info.value.errors()] == [("filters", "sale.updated", "status", 0)]
