"""Each use case against the real PostgreSQL (and, for deliveries, a real HTTP receiver):
what a user would notice, rows, outbox events and domain errors.

A platform may run on the same database: every test has a tenant of its own, and keeps its
pending deliveries out of the dispatchers' reach (`park`) unless it wants them sent.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from fulfilkit import contracts as c
from fulfilkit.errors import Conflict, Invalid, NotFound
from fulfilkit.inbox import Unrecorded
from fulfilkit.metrics import until_commit
from fulfilkit.received import Event, decode_event
from webhooks.domain import (
    PENDING,
    Attempt,
    DeliveryFilter,
    EndpointChanges,
    NewEndpoint,
    Outcome,
    Room,
    Target,
    decide,
)
from webhooks.resources import Resources
from webhooks.store import SCHEMA
from webhooks.usecases import deliveries, endpoints

pytestmark = pytest.mark.integration

SCHEDULE = (5.0, 30.0)


def new_endpoint(url: str = "http://127.0.0.1:9/hook", **fields: Any) -> NewEndpoint:
    values: dict[str, Any] = {"event_types": ["*"], "headers": {}, **fields}
    return NewEndpoint(url=url, **values)


async def create(
    pool: asyncpg.Pool, resources: Resources, tenant: UUID, new: NewEndpoint | None = None
) -> Any:
    async with pool.acquire() as conn, conn.transaction():
        return await endpoints.create_endpoint(conn, resources, tenant, new or new_endpoint())


def stock_changed(tenant: UUID, quantity: int = 5) -> tuple[bytes, Event[Any]]:
    """The record a producer publishes, and the event the inbox decodes from it."""
    data = c.StockChanged(
        id=uuid4(),
        location_id="main",
        sku=f"sku-{quantity}",
        quantity=quantity,
        reserved=0,
        available=quantity,
        version=1,
        updated_at=datetime.now(UTC),
        quantity_change=quantity,
        reserved_change=0,
        reason="received",
    )
    event = c.make_event(
        source="stock",
        type=c.STOCK_CHANGED,
        tenant_id=tenant,
        subject=f"stock/{data.id}",
        data=data,
    )
    raw = event.to_bytes()
    return raw, decode_event(raw)


async def record(pool: asyncpg.Pool, tenant: UUID, events: list[Event[Any]]) -> int:
    """`record_deliveries` as the inbox calls it, leaving the deliveries parked."""
    async with pool.acquire() as conn, conn.transaction():
        inserted = await deliveries.record_deliveries(conn, events)
        await park(conn, tenant)
    return inserted


async def park(db: Any, tenant: UUID) -> None:
    """Out of every dispatcher's reach (a platform may share the database), as the deliveries
    of a disabled endpoint are; the outcome of an attempt is still recorded."""
    await db.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
    )


async def delivery_rows(db: Any, tenant: UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM webhooks.deliveries WHERE tenant_id = $1 ORDER BY seq", tenant
    )


def target(row: Any, url: str, secret: str, failing: bool = False) -> Target:
    return Target(
        row["id"],
        row["endpoint_id"],
        row["tenant_id"],
        url,
        {"X-Shop": "42"},
        [secret],
        row["webhook_id"],
        bytes(row["payload"]),
        row["attempt_count"],
        failing,
        0.0,
    )


# --- endpoints -----------------------------------------------------------------------------


async def test_create_endpoint_stores_the_secret_sealed_and_answers_it_once(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    created = await create(pool, resources, tenant, new_endpoint(description="ERP"))
    stored = await pool.fetchrow(
        "SELECT secret, description FROM webhooks.endpoints WHERE id = $1", created.endpoint.id
    )
    assert created.secret.startswith("whsec_") and stored["secret"] != created.secret
    assert resources.sealer.open(stored["secret"]) == created.secret
    assert stored["description"] == "ERP" and created.endpoint.version == 1


async def test_create_endpoint_refuses_past_the_tenants_cap(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    cap = resources.settings.webhook_max_endpoints_per_tenant
    for _ in range(cap):
        await create(pool, resources, tenant)
    with pytest.raises(Conflict) as refused:
        await create(pool, resources, tenant)
    assert refused.value.extra == {"limit": cap}
    assert (
        await pool.fetchval("SELECT count(*) FROM webhooks.endpoints WHERE tenant_id = $1", tenant)
        == cap
    )


async def test_check_destination_refuses_an_address_outside_the_allowed_ones(
    resources: Resources,
) -> None:
    await endpoints.check_destination(resources, uuid4(), "http://127.0.0.1:8080/hook")
    with pytest.raises(Invalid) as refused:
        await endpoints.check_destination(resources, uuid4(), "http://10.1.2.3/hook")
    assert refused.value.errors and refused.value.errors[0]["field"] == "/url"


async def test_get_and_list_endpoints_see_only_the_tenants_own(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    mine = (await create(pool, resources, tenant)).endpoint
    await create(pool, resources, tenants())
    found, total = await endpoints.list_endpoints(pool, tenant, 10, 0)
    assert total == 1 and [e.id for e in found] == [mine.id]
    assert (await endpoints.get_endpoint(pool, tenant, mine.id)).url == mine.url
    with pytest.raises(NotFound):
        await endpoints.get_endpoint(pool, uuid4(), mine.id)


async def test_update_endpoint_keeps_masked_header_values_and_checks_the_version(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (
        await create(pool, resources, tenant, new_endpoint(headers={"Authorization": "Bearer s"}))
    ).endpoint
    changes = EndpointChanges(headers={"Authorization": "***", "X-Shop": "42"}, description="new")
    updated = await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, changes, 1)
    assert updated.headers == {"Authorization": "Bearer s", "X-Shop": "42"}
    assert updated.description == "new" and updated.version == 2
    with pytest.raises(Conflict):
        await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, changes, 1)
    with pytest.raises(Invalid) as refused:
        masked = EndpointChanges(headers={"X-Unknown": "***"})
        await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, masked, None)
    assert refused.value.errors and refused.value.errors[0]["field"] == "/headers/X-Unknown"
    with pytest.raises(NotFound):
        await endpoints.update_endpoint(pool, resources, tenant, uuid4(), changes, None)


async def test_disabling_an_endpoint_pauses_its_queue_and_enabling_resumes_it(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    async with pool.acquire() as conn, conn.transaction():
        await deliveries.record_deliveries(conn, [stock_changed(tenant)[1]])
        # Not yet due, so that no dispatcher sharing the database sends it meanwhile.
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = now() + interval '1 hour'"
            " WHERE tenant_id = $1",
            tenant,
        )
    off = EndpointChanges(enabled=False)
    disabled = await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, off, None)
    assert disabled.disabled_reason == "disabled through the API"
    [row] = await delivery_rows(pool, tenant)
    assert row["status"] == PENDING and row["next_attempt_at"] is None
    on = EndpointChanges(enabled=True)
    enabled = await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, on, None)
    assert enabled.enabled and enabled.disabled_reason is None
    [row] = await delivery_rows(pool, tenant)
    assert row["next_attempt_at"] is not None


async def test_delete_endpoint_takes_its_deliveries_with_it(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    await record(pool, tenant, [stock_changed(tenant)[1]])
    await endpoints.delete_endpoint(pool, tenant, endpoint.id)
    assert await delivery_rows(pool, tenant) == []
    with pytest.raises(NotFound):
        await endpoints.delete_endpoint(pool, tenant, endpoint.id)


async def test_rotate_secret_keeps_the_previous_one_for_the_overlap(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    created = await create(pool, resources, tenant)
    async with pool.acquire() as conn, conn.transaction():
        rotated = await endpoints.rotate_secret(conn, resources, tenant, created.endpoint.id)
    assert rotated.secret != created.secret
    assert rotated.endpoint.secret_generation == created.endpoint.secret_generation + 1
    assert rotated.endpoint.previous_secret_expires_at is not None
    stored = await pool.fetchrow(
        "SELECT secret, previous_secret FROM webhooks.endpoints WHERE id = $1",
        created.endpoint.id,
    )
    assert resources.sealer.open(stored["previous_secret"]) == created.secret
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(NotFound):
            await endpoints.rotate_secret(conn, resources, tenant, uuid4())


async def test_endpoint_secret_answers_a_replay_only_while_its_generation_holds(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    created = await create(pool, resources, tenant)
    endpoint = created.endpoint
    async with pool.acquire() as conn:
        again = await endpoints.endpoint_secret(
            conn, resources, tenant, endpoint.id, endpoint.secret_generation
        )
        assert again == created.secret
        async with conn.transaction():
            await endpoints.rotate_secret(conn, resources, tenant, endpoint.id)
        with pytest.raises(Conflict, match="rotated again"):
            await endpoints.endpoint_secret(
                conn, resources, tenant, endpoint.id, endpoint.secret_generation
            )
        await endpoints.delete_endpoint(conn, tenant, endpoint.id)
        with pytest.raises(Conflict, match="deleted"):
            await endpoints.endpoint_secret(conn, resources, tenant, endpoint.id, 2)


async def test_send_test_posts_a_signed_ping_to_the_receiver(
    pool: asyncpg.Pool, tenants: Any, resources: Resources, receiver: Any
) -> None:
    tenant = tenants()
    created = await create(pool, resources, tenant, new_endpoint(receiver.url))
    attempt = await endpoints.send_test(pool, resources, tenant, created.endpoint.id)
    assert attempt.succeeded and attempt.status_code == 200
    [(headers, body)] = receiver.requests
    ping = Webhook(created.secret).verify(body, headers)
    assert ping["type"] == "webhook.test"
    assert ping["data"] == {"endpoint_id": str(created.endpoint.id)}
    with pytest.raises(NotFound):
        await endpoints.send_test(pool, resources, tenant, uuid4())


# --- deliveries ----------------------------------------------------------------------------


async def test_record_deliveries_queues_one_per_subscribed_endpoint_with_the_published_data(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    stock = (await create(pool, resources, tenant, new_endpoint(event_types=["stock.*"]))).endpoint
    await create(pool, resources, tenant, new_endpoint(event_types=["sale.*"]))
    await create(pool, resources, tenants())  # another tenant's
    raw, event = stock_changed(tenant)
    assert await record(pool, tenant, [event]) == 1
    assert await record(pool, tenant, [event]) == 0, "a replayed event is not queued twice"
    [row] = await delivery_rows(pool, tenant)
    assert row["endpoint_id"] == stock.id and row["status"] == PENDING
    assert row["webhook_id"] == f"msg_{event.id.hex}_{stock.id.hex[:8]}"
    published = orjson.loads(raw)
    payload = bytes(row["payload"])
    assert orjson.loads(payload)["data"] == published["data"]
    # Byte for byte the data as its producer serialised it.
    assert orjson.dumps(published["data"]) in payload


async def test_only_events_some_endpoint_wants_are_recorded_in_the_inbox(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    """As the inbox applies a batch (`records_inbox`): an event no endpoint subscribes to
    writes nothing at all; one that is wanted is recorded once and planned once."""
    tenant, quiet = tenants(), tenants()
    await create(pool, resources, tenant, new_endpoint(event_types=["stock.*"]))
    wanted, unwanted = stock_changed(tenant)[1], stock_changed(quiet)[1]
    ids = [wanted.id, unwanted.id]

    async def apply(events: list[Event[Any]]) -> int:
        unrecorded = Unrecorded(SCHEMA, "deliveries", [e.id for e in events])
        async with pool.acquire() as conn, conn.transaction():
            inserted = await deliveries.record_deliveries(conn, events, None, unrecorded)
            await park(conn, tenant)
        return inserted

    async def inboxed() -> set[UUID]:
        rows = await pool.fetch(
            "SELECT event_id FROM webhooks.inbox WHERE event_id = ANY($1::uuid[])", ids
        )
        return {r["event_id"] for r in rows}

    assert await apply([unwanted]) == 0
    assert await inboxed() == set(), "an event no endpoint wants leaves no inbox row"
    assert await apply([wanted, unwanted]) == 1
    assert await inboxed() == {wanted.id}
    assert await apply([wanted, unwanted]) == 0, "a replayed event is not planned twice"
    assert [r["event_id"] for r in await delivery_rows(pool, tenant)] == [wanted.id]
    assert await delivery_rows(pool, quiet) == []


class FakeHandoff:
    """A dispatcher with `room` free places for every endpoint, taking what it is handed."""

    def __init__(self, resources: Resources, room: int) -> None:
        self._room = Room({}, room, {}, 100, 100)
        self._secrets = resources.handoff.secrets
        self.lease = timedelta(seconds=60)
        self.taken: list[Target] = []

    def room(self) -> Room | None:
        return self._room

    def secrets(self, destination: Any) -> list[str] | None:
        return self._secrets(destination)

    def take(self, targets: list[Target]) -> None:
        self.taken += targets


async def test_deliveries_the_dispatcher_has_room_for_are_leased_and_handed_over_once_committed(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    free = await create(pool, resources, tenant, new_endpoint(headers={"X-Shop": "42"}))
    ordered = (await create(pool, resources, tenant, new_endpoint(ordered=True))).endpoint.id
    events = [stock_changed(tenant, n)[1] for n in (1, 2, 3)]
    handoff = FakeHandoff(resources, room=2)
    with until_commit():
        async with pool.acquire() as conn, conn.transaction():
            assert await deliveries.record_deliveries(conn, events, handoff) == 6
            rows = await conn.fetch(
                "SELECT id, endpoint_id, event_id, next_attempt_at > now() + interval '50 s'"
                " AS leased FROM webhooks.deliveries WHERE tenant_id = $1 ORDER BY seq",
                tenant,
            )
            await park(conn, tenant)
            assert handoff.taken == [], "nothing is handed over before the commit"
    leased = [(r["endpoint_id"], r["event_id"]) for r in rows if r["leased"]]
    assert leased == [(free.endpoint.id, events[0].id), (free.endpoint.id, events[1].id)], (
        "the room's two places; an ordered endpoint's deliveries are claimed, head first"
    )
    assert [(t.endpoint_id, t.delivery_id) for t in handoff.taken] == [
        (r["endpoint_id"], r["id"]) for r in rows if r["leased"]
    ]
    sent = handoff.taken[0]
    assert sent.secrets == [free.secret] and sent.headers == {"X-Shop": "42"}
    assert sent.webhook_id == f"msg_{events[0].id.hex}_{free.endpoint.id.hex[:8]}"
    assert orjson.loads(sent.payload)["type"] == "stock.changed" and sent.attempts_made == 0
    assert ordered not in {t.endpoint_id for t in handoff.taken}

    rolled_back = FakeHandoff(resources, room=2)
    with pytest.raises(RuntimeError), until_commit():
        async with pool.acquire() as conn, conn.transaction():
            await deliveries.record_deliveries(conn, [stock_changed(tenant)[1]], rolled_back)
            raise RuntimeError("the inbox's transaction fails")
    assert rolled_back.taken == [], "what never committed is never sent"


async def test_deliver_posts_a_signed_delivery_and_decides_what_follows(
    pool: asyncpg.Pool, tenants: Any, resources: Resources, receiver: Any
) -> None:
    tenant = tenants()
    created = await create(pool, resources, tenant, new_endpoint(receiver.url))
    await record(pool, tenant, [stock_changed(tenant)[1]])
    [row] = await delivery_rows(pool, tenant)
    sent = target(row, receiver.url, created.secret)

    outcome = await deliveries.deliver(resources.sender, sent, SCHEDULE)
    assert outcome.verdict.status == "succeeded" and outcome.attempt.response_body == "thanks"
    [(headers, body)] = receiver.requests
    assert body == bytes(row["payload"]) and headers["webhook-id"] == row["webhook_id"]
    assert headers["X-Shop"] == "42"
    assert Webhook(created.secret).verify(body, headers)["type"] == "stock.changed"

    receiver.status, receiver.retry_after = 503, "7"
    outcome = await deliveries.deliver(resources.sender, sent, SCHEDULE)
    assert outcome.verdict.status == PENDING and outcome.verdict.retry_in == 7

    receiver.status, receiver.retry_after = 410, None
    outcome = await deliveries.deliver(resources.sender, sent, SCHEDULE)
    assert outcome.verdict.status == "failed" and outcome.verdict.disable_endpoint


async def test_record_outcomes_finishes_deliveries_and_disables_a_gone_endpoint(
    pool: asyncpg.Pool, tenants: Any, resources: Resources, receiver: Any
) -> None:
    tenant = tenants()
    ok = (await create(pool, resources, tenant, new_endpoint(receiver.url))).endpoint
    gone = (await create(pool, resources, tenant, new_endpoint(receiver.url))).endpoint
    await record(pool, tenant, [stock_changed(tenant)[1]])
    rows = {r["endpoint_id"]: r for r in await delivery_rows(pool, tenant)}
    now = datetime.now(UTC)
    succeeded = Outcome(
        rows[ok.id]["id"], ok.id, Attempt(now, 3, 200), decide(200, 1, SCHEDULE, now=now)
    )
    answered_gone = Outcome(
        rows[gone.id]["id"], gone.id, Attempt(now, 3, 410), decide(410, 1, SCHEDULE, now=now)
    )
    # In a transaction of the test's, rolled back: a relay sharing the database would publish
    # (and delete) the outbox row as soon as it was committed.
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            marked = await deliveries.record_outcomes(
                OneConnection(conn),  # type: ignore[arg-type]
                [succeeded, answered_gone],
                0,
                frozenset(),
            )
            assert marked == {gone.id}, "the failing endpoint is marked, the other one is not"
            after = {r["endpoint_id"]: r for r in await delivery_rows(conn, tenant)}
            assert after[ok.id]["status"] == "succeeded" and after[ok.id]["attempt_count"] == 1
            assert after[gone.id]["status"] == "failed"
            assert after[gone.id]["completed_at"] is not None
            endpoint = await endpoints.get_endpoint(conn, tenant, gone.id)
            assert not endpoint.enabled
            assert endpoint.disabled_reason == "the endpoint answered 410 Gone"
            [event] = await conn.fetch(
                "SELECT payload FROM webhooks.outbox WHERE key = $1",
                f"{tenant}:webhook_endpoint:{gone.id}",
            )
            published = orjson.loads(event["payload"])
            assert published["type"] == "webhook.endpoint_disabled"
            assert published["data"]["reason"] == "the endpoint answered 410 Gone"
            attempts = await conn.fetchval(
                "SELECT count(*) FROM webhooks.attempts WHERE delivery_id = $1",
                rows[ok.id]["id"],
            )
            assert attempts == 1
        finally:
            await tx.rollback()


class OneConnection:
    """A pool of the one connection given, whose transactions nest in the caller's."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


async def test_a_finished_delivery_finishes_once(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    """An outcome for a delivery no longer pending (recorded already, resent and finished)
    changes nothing: a delivery goes from pending to finished, never from one end to another."""
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    await record(pool, tenant, [stock_changed(tenant)[1]])
    [row] = await delivery_rows(pool, tenant)
    now = datetime.now(UTC)
    first = Outcome(row["id"], endpoint.id, Attempt(now, 1, 200), decide(200, 1, (), now=now))
    late = Outcome(row["id"], endpoint.id, Attempt(now, 1, 500), decide(500, 1, (), now=now))
    await deliveries.record_outcomes(pool, [first], 0, frozenset())
    await deliveries.record_outcomes(pool, [late], 0, frozenset())
    [row] = await delivery_rows(pool, tenant)
    assert row["status"] == "succeeded" and row["attempt_count"] == 1
    assert row["last_status_code"] == 200


async def test_resend_delivery_queues_a_finished_one_again_not_a_pending_one(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    await record(pool, tenant, [stock_changed(tenant)[1]])
    [row] = await delivery_rows(pool, tenant)
    with pytest.raises(Conflict):
        await deliveries.resend_delivery(pool, tenant, row["id"])
    now = datetime.now(UTC)
    failed = Outcome(row["id"], endpoint.id, Attempt(now, 1, 500), decide(500, 1, (), now=now))
    await deliveries.record_outcomes(pool, [failed], 0, frozenset())
    # Disabled first, so that the resent delivery waits instead of going out.
    off = EndpointChanges(enabled=False)
    await endpoints.update_endpoint(pool, resources, tenant, endpoint.id, off, None)
    resent = await deliveries.resend_delivery(pool, tenant, row["id"])
    assert resent.status == PENDING and resent.attempt_count == 0
    assert resent.webhook_id == row["webhook_id"] and len(resent.attempts) == 1
    with pytest.raises(NotFound):
        await deliveries.resend_delivery(pool, tenant, uuid4())


async def test_recover_deliveries_requeues_the_failed_ones_of_a_window(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    await record(pool, tenant, [stock_changed(tenant, n)[1] for n in range(3)])
    rows = await delivery_rows(pool, tenant)
    now = datetime.now(UTC)
    failed = [
        Outcome(r["id"], endpoint.id, Attempt(now, 1, 500), decide(500, 1, (), now=now))
        for r in rows[:2]
    ]
    await deliveries.record_outcomes(pool, failed, 0, frozenset())
    await endpoints.update_endpoint(
        pool, resources, tenant, endpoint.id, EndpointChanges(enabled=False), None
    )
    since = now - timedelta(minutes=1)
    assert await deliveries.recover_deliveries(pool, tenant, endpoint.id, since, None) == 2
    assert {r["status"] for r in await delivery_rows(pool, tenant)} == {PENDING}
    with pytest.raises(Invalid):
        await deliveries.recover_deliveries(
            pool, tenant, endpoint.id, now + timedelta(hours=1), None
        )
    with pytest.raises(NotFound):
        await deliveries.recover_deliveries(pool, tenant, uuid4(), since, None)


async def test_list_and_get_deliveries_filter_and_show_attempts(
    pool: asyncpg.Pool, tenants: Any, resources: Resources
) -> None:
    tenant = tenants()
    endpoint = (await create(pool, resources, tenant)).endpoint
    await record(pool, tenant, [stock_changed(tenant, n)[1] for n in range(3)])
    rows = await delivery_rows(pool, tenant)
    now = datetime.now(UTC)
    done = Outcome(rows[0]["id"], endpoint.id, Attempt(now, 1, 200), decide(200, 1, (), now=now))
    await deliveries.record_outcomes(pool, [done], 0, frozenset())

    found, total = await deliveries.list_deliveries(
        pool, tenant, endpoint.id, DeliveryFilter(status=PENDING), 10, 0
    )
    assert total == 2 and {d.id for d in found} == {r["id"] for r in rows[1:]}
    delivery = await deliveries.get_delivery(pool, tenant, rows[0]["id"])
    assert delivery.status == "succeeded" and [a.status_code for a in delivery.attempts] == [200]
    with pytest.raises(NotFound):
        await deliveries.get_delivery(pool, uuid4(), rows[0]["id"])
    with pytest.raises(NotFound):
        await deliveries.list_deliveries(pool, tenant, uuid4(), DeliveryFilter(), 10, 0)
