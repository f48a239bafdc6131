"""Use cases of webhook endpoints: create, read, update, delete, rotate the secret, ping.

Creating an endpoint and rotating its secret are keyed writes (`Idempotency-Key`): they run
on the connection of the transaction `fulfilkit.idempotency.once` opens for the key, and
`endpoint_secret` answers a replay of either with the secret of the generation it produced.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from fulfilkit.errors import Conflict, Invalid, NotFound
from webhooks.domain import (
    MASKED,
    STATS_WINDOW_HOURS,
    TEST_EVENT_TYPE,
    Attempt,
    CreatedEndpoint,
    Endpoint,
    EndpointChanges,
    EndpointStats,
    NewEndpoint,
    RotatedSecret,
    active_secrets,
    merge_masked,
    webhook_payload,
)
from webhooks.resolving import on_behalf_of
from webhooks.resources import Resources
from webhooks.signing import new_secret
from webhooks.store import Executor, notify_dispatcher
from webhooks.store import deliveries as delivery_store
from webhooks.store import endpoints as store
from webhooks.urls import UrlRefused, check_url

PATCHABLE = ("url", "description", "event_types", "headers", "enabled", "ordered", "filters")


def no_endpoint() -> NotFound:
    return NotFound("No such webhook endpoint.")


async def check_destination(resources: Resources, tenant: UUID, url: str) -> None:
    """Refuses a URL that cannot receive webhooks (its host resolves to a refused address)."""
    try:
        with on_behalf_of(tenant):
            await check_url(url, resources.sender.allow, resources.sender.resolver)
    except UrlRefused as exc:
        raise Invalid(
            "The URL cannot receive webhooks.",
            errors=[{"field": "/url", "message": str(exc), "in": "body"}],
        ) from None


async def create_endpoint(
    conn: asyncpg.Connection, resources: Resources, tenant: UUID, new: NewEndpoint
) -> CreatedEndpoint:
    """In the caller's transaction; the URL is checked beforehand (`check_destination`), so
    that a replay, which does not come here, does not resolve it again."""
    cap = resources.settings.webhook_max_endpoints_per_tenant
    if await store.lock_tenant_endpoints(conn, tenant) >= cap:
        raise Conflict(
            f"A tenant can have at most {cap} webhook endpoints;"
            " delete one before creating another.",
            limit=cap,
        )
    secret = new_secret()
    endpoint = await store.create_endpoint(
        conn, tenant, uuid4(), new, resources.sealer.seal(secret)
    )
    return CreatedEndpoint(endpoint, secret)


async def rotate_secret(
    conn: asyncpg.Connection, resources: Resources, tenant: UUID, endpoint_id: UUID
) -> RotatedSecret:
    """A new secret; the previous one still signs (alongside) for the overlap. In the caller's
    transaction."""
    overlap = timedelta(seconds=resources.settings.webhook_secret_overlap_seconds)
    secret = new_secret()
    sealed = resources.sealer.seal(secret)
    endpoint = await store.rotate_secret(conn, tenant, endpoint_id, sealed, overlap)
    if endpoint is None:
        raise no_endpoint()
    return RotatedSecret(endpoint, secret)


async def endpoint_secret(
    conn: asyncpg.Connection, resources: Resources, tenant: UUID, endpoint_id: UUID, generation: int
) -> str:
    """The endpoint's secret while it is still of `generation` (a replay of the create or the
    rotation that made it); a Conflict once deleted or rotated again."""
    endpoint = await store.get_endpoint(conn, tenant, endpoint_id)
    if endpoint is None or endpoint.secret is None:
        raise Conflict("The endpoint of this Idempotency-Key has been deleted since.")
    if endpoint.secret_generation != generation:
        raise Conflict(
            "The endpoint's secret has been rotated again since this"
            " Idempotency-Key's request; rotate with a new key for a new secret."
        )
    return resources.sealer.open(endpoint.secret)


async def list_endpoints(
    db: Executor, tenant: UUID, limit: int, offset: int
) -> tuple[list[Endpoint], int]:
    return await store.list_endpoints(db, tenant, limit, offset)


async def stats_of(db: Executor, endpoint_ids: Sequence[UUID]) -> dict[UUID, EndpointStats]:
    """Each endpoint's health over the last `STATS_WINDOW_HOURS` hours."""
    return await delivery_store.endpoint_stats(db, endpoint_ids, STATS_WINDOW_HOURS)


async def get_endpoint(db: Executor, tenant: UUID, endpoint_id: UUID) -> Endpoint:
    endpoint = await store.get_endpoint(db, tenant, endpoint_id)
    if endpoint is None:
        raise no_endpoint()
    return endpoint


async def update_endpoint(
    pool: asyncpg.Pool,
    resources: Resources,
    tenant: UUID,
    endpoint_id: UUID,
    changes: EndpointChanges,
    expected_version: int | None,
) -> Endpoint:
    """Only the fields given change. Enabling an endpoint resumes its queue, disabling pauses
    it; a masked header value (`***`) keeps the value stored under that name."""
    fields = changes.given()
    if "url" in fields:
        await check_destination(resources, tenant, fields["url"])
    async with pool.acquire() as conn, conn.transaction():
        if MASKED in fields.get("headers", {}).values():
            fields["headers"] = await _unmasked(conn, tenant, endpoint_id, fields["headers"])
        current = await store.lock_endpoint(conn, tenant, endpoint_id)
        if current is None:
            raise no_endpoint()
        enabled, version = current
        if expected_version not in (None, version):
            raise Conflict(f"the endpoint is at version {version}")
        fields = {name: fields[name] for name in PATCHABLE if name in fields}
        if not fields:
            return await get_endpoint(conn, tenant, endpoint_id)
        toggled = "enabled" in fields and fields["enabled"] != enabled
        endpoint = await store.update_endpoint(conn, endpoint_id, fields, toggled)
        if toggled and endpoint.enabled:
            await store.resume_deliveries(conn, [endpoint_id])
        elif toggled:
            await store.pause_deliveries(conn, [endpoint_id])
        elif "ordered" in fields:
            await notify_dispatcher(conn)  # deliveries held back for order may go now
    return endpoint


async def _unmasked(
    conn: asyncpg.Connection, tenant: UUID, endpoint_id: UUID, given: dict[str, str]
) -> dict[str, str]:
    current = await get_endpoint(conn, tenant, endpoint_id)
    try:
        return merge_masked(given, current.headers)
    except KeyError as missing:
        raise Invalid(
            "A masked header value can only keep a value already stored.",
            errors=[
                {
                    "field": f"/headers/{missing.args[0]}",
                    "in": "body",
                    "message": f"no stored value of {missing.args[0]!r} to keep",
                }
            ],
        ) from None


async def delete_endpoint(db: Executor, tenant: UUID, endpoint_id: UUID) -> None:
    """Its deliveries and their attempts go with it."""
    if not await store.delete_endpoint(db, tenant, endpoint_id):
        raise no_endpoint()


async def send_test(db: Executor, resources: Resources, tenant: UUID, endpoint_id: UUID) -> Attempt:
    """A signed `webhook.test` ping now, outside the delivery queue: how the endpoint answered."""
    endpoint = await get_endpoint(db, tenant, endpoint_id)
    assert endpoint.secret is not None
    now = datetime.now(UTC)
    sealer = resources.sealer
    secrets = active_secrets(
        sealer.open(endpoint.secret),
        sealer.open_optional(endpoint.previous_secret),
        endpoint.previous_secret_expires_at,
        now,
    )
    body = webhook_payload(TEST_EVENT_TYPE, now, {"endpoint_id": str(endpoint_id)})
    return await resources.sender.post(
        endpoint.url, dict(endpoint.headers), secrets, f"msg_test_{uuid4().hex}", body, tenant
    )
