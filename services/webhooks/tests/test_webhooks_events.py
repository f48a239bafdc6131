"""Contract events built from domain outcomes."""

from datetime import UTC, datetime
from uuid import uuid4

import orjson

from webhooks.domain import Endpoint
from webhooks.events import endpoint_disabled

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_endpoint_disabled_carries_the_endpoint_snapshot_without_secrets() -> None:
    tenant, endpoint_id = uuid4(), uuid4()
    endpoint = Endpoint(
        id=endpoint_id,
        url="https://erp.example.com/hooks",
        description="ERP",
        event_types=["sale.*"],
        headers={"Authorization": "Bearer s3cret"},
        enabled=False,
        ordered=True,
        disabled_reason="the endpoint answered 410 Gone",
        version=4,
        created_at=NOW,
        updated_at=NOW,
        previous_secret_expires_at=None,
        secret_generation=1,
        secret="whsec_x",
    )
    key, event = endpoint_disabled(tenant, endpoint, "the endpoint answered 410 Gone")
    assert key == f"{tenant}:webhook_endpoint:{endpoint_id}"
    assert event.type == "webhook.endpoint_disabled" and event.tenantid == tenant
    assert event.subject == f"webhook_endpoints/{endpoint_id}"
    assert event.data["version"] == 4 and event.data["enabled"] is False
    assert event.data["reason"] == "the endpoint answered 410 Gone"
    assert event.data["ordered"] is True and event.data["event_types"] == ["sale.*"]
    dumped = orjson.dumps(event.data).decode()
    assert "s3cret" not in dumped and "whsec_" not in dumped and "headers" not in event.data
