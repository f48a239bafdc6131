"""Domain outcomes -> contract events: what webhooks announces, with its Kafka key."""

from uuid import UUID

from fulfilkit.contracts import WEBHOOK_ENDPOINT_DISABLED, EndpointDisabled, make_event
from fulfilkit.events import CloudEvent
from webhooks.domain import SOURCE, Endpoint


def endpoint_key(tenant_id: UUID, endpoint_id: UUID) -> str:
    return f"{tenant_id}:webhook_endpoint:{endpoint_id}"


ENDPOINT_SNAPSHOT_FIELDS = tuple(
    name for name in EndpointDisabled.model_fields if name not in ("reason",)
)


def endpoint_disabled(tenant_id: UUID, endpoint: Endpoint, reason: str) -> tuple[str, CloudEvent]:
    """`webhook.endpoint_disabled` with the endpoint's snapshot after the change (no secrets,
    no custom headers: they may carry credentials)."""
    snapshot = EndpointDisabled(
        **{name: getattr(endpoint, name) for name in ENDPOINT_SNAPSHOT_FIELDS}, reason=reason
    )
    event = make_event(
        source=SOURCE,
        type=WEBHOOK_ENDPOINT_DISABLED,
        tenant_id=tenant_id,
        subject=f"webhook_endpoints/{snapshot.id}",
        data=snapshot,
    )
    return endpoint_key(tenant_id, snapshot.id), event
