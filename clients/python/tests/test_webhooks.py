"""The webhook helper: Standard Webhooks signatures, stale and future timestamps, rotated
secrets, and the body parsed into its typed event."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from fulfil_client import events
from fulfil_client.webhooks import InvalidWebhook, WebhookVerifier, parse_event, sign

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()
NOW = 1_800_000_000


def sale_status_changed(**data: Any) -> dict[str, Any]:
    return {
        "type": "sale.status_changed",
        "timestamp": "2027-01-15T08:00:00Z",
        "dataversion": "2",
        "data": {
            "id": "5d1c0000-0000-0000-0000-000000000001",
            "sale_id": "SO-1",
            "status": "pending",
            "previous_status": "awaiting_stock",
            "version": 2,
            "shop": {"channel": "web", "shop_name": "Main"},
            "location_id": None,
            "lines": [{"sku": "MUG-1", "quantity": 2}],
            "customer": None,
            "shipping_address": None,
            "created_at": "2027-01-15T07:59:59Z",
            "updated_at": "2027-01-15T08:00:00Z",
            **data,
        },
    }


def delivery(secret: str = SECRET, at: int = NOW, **data: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(sale_status_changed(**data)).encode()
    return body, sign(secret, "msg_1", at, body)


def verifier(secret: str | list[str] = SECRET, **kwargs: Any) -> WebhookVerifier:
    return WebhookVerifier(secret, clock=lambda: float(NOW), **kwargs)


def test_a_signed_delivery_parses_into_its_typed_event() -> None:
    body, headers = delivery()
    event = verifier().verify(body, {k.title(): v for k, v in headers.items()})
    assert isinstance(event, events.SaleStatusChangedEvent)
    assert event.type == "sale.status_changed" and event.dataversion == "2"
    assert (event.data.sale_id, event.data.status, event.data.previous_status) == (
        "SO-1",
        "pending",
        "awaiting_stock",
    )
    assert event.data.lines[0].quantity == 2
    assert WebhookVerifier.webhook_id(headers) == "msg_1"


def test_a_tampered_body_or_another_secret_is_refused() -> None:
    body, headers = delivery()
    with pytest.raises(InvalidWebhook, match="No signature"):
        verifier().verify(body.replace(b"SO-1", b"SO-2"), headers)
    with pytest.raises(InvalidWebhook, match="No signature"):
        verifier(OTHER).verify(body, headers)


def test_while_a_secret_rotates_either_signature_passes() -> None:
    body, old = delivery(OTHER)
    _, new = delivery(SECRET)
    headers = {**old, "webhook-signature": f"{new['webhook-signature']} {old['webhook-signature']}"}
    assert verifier(SECRET).verify(body, headers).type == "sale.status_changed"
    assert verifier(OTHER).verify(body, headers).type == "sale.status_changed"
    assert verifier([OTHER, SECRET]).verify(body, old).type == "sale.status_changed"


@pytest.mark.parametrize(("at", "word"), [(NOW - 301, "too old"), (NOW + 301, "too new")])
def test_stale_and_future_timestamps_are_refused(at: int, word: str) -> None:
    body, headers = delivery(at=at)
    with pytest.raises(InvalidWebhook, match=word):
        verifier().verify(body, headers)
    assert verifier(tolerance_seconds=600).verify(body, headers).type == "sale.status_changed"


def test_a_timestamp_within_the_tolerance_passes() -> None:
    body, headers = delivery(at=NOW - 299)
    assert verifier().verify(body, headers).data.sale_id == "SO-1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    body, headers = delivery()
    del headers[missing]
    with pytest.raises(InvalidWebhook, match="Missing"):
        verifier().verify(body, headers)


def test_a_malformed_signature_or_timestamp_is_refused() -> None:
    body, headers = delivery()
    with pytest.raises(InvalidWebhook):
        verifier().verify(body, {**headers, "webhook-signature": "v1,not base64!"})
    with pytest.raises(InvalidWebhook):
        verifier().verify(body, {**headers, "webhook-timestamp": "soon"})


def test_unknown_types_and_data_versions_parse_as_the_generic_event() -> None:
    ping = parse_event(
        {"type": "webhook.test", "timestamp": "2027-01-15T08:00:00Z", "data": {"endpoint_id": "e"}}
    )
    assert type(ping) is events.WebhookEvent and ping.data == {"endpoint_id": "e"}
    older = parse_event({**sale_status_changed(), "dataversion": "1"})
    assert type(older) is events.WebhookEvent


def test_a_body_that_does_not_fit_its_type_is_refused() -> None:
    with pytest.raises(InvalidWebhook, match=r"sale\.status_changed"):
        parse_event(sale_status_changed(status="lost"))


def test_every_event_type_has_a_model() -> None:
    assert {"sale.created", "sale.status_changed", "fulfillment.created"} <= set(events.EVENT_TYPES)


def test_the_verifier_never_shows_its_secret() -> None:
    assert "whsec" not in repr(verifier())
    with pytest.raises(ValueError):
        WebhookVerifier("")
