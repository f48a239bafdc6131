"""Use cases of deliveries: queue them from events, deliver one (an attempt and its verdict),
record the outcomes, read them, queue finished ones again."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from fulfilkit.errors import Conflict, Invalid, NotFound
from fulfilkit.inbox import Unrecorded
from fulfilkit.metrics import after_commit
from fulfilkit.outbox import add_events
from fulfilkit.received import Envelope, Event
from fulfilkit.tracing import incoming_traceparent
from webhooks.domain import (
    Delivery,
    DeliveryFilter,
    Destination,
    Outcome,
    Room,
    Subscription,
    Target,
    allot,
    can_resend,
    decide,
    failing_reason,
    failing_too_long,
    gone_reason,
    matches,
    plan_deliveries,
    recover_window_error,
    webhook_id,
    webhook_payload,
)
from webhooks.events import endpoint_disabled
from webhooks.sender import Sender
from webhooks.store import SCHEMA, Executor, dispatching, notify_dispatcher
from webhooks.store import deliveries as store
from webhooks.store import endpoints as endpoint_store
from webhooks.usecases.endpoints import get_endpoint


def no_delivery() -> NotFound:
    return NotFound("No such webhook delivery.")


# --- from events -----------------------------------------------------------------------------


class Handoff(Protocol):
    """The dispatcher of this process, taking deliveries straight from the consumer."""

    @property
    def lease(self) -> timedelta: ...

    def room(self) -> Room | None:
        """Free places in its local queue now; None when it takes nothing."""

    def secrets(self, destination: Destination) -> list[str] | None:
        """The endpoint's open secrets; None when no key opens them."""

    def take(self, targets: list[Target]) -> None:
        """Deliveries leased for it, once they are committed."""


@dataclass(frozen=True)
class Screened:
    """What `screen` found for a batch: whether each event is wanted, in order, and the
    subscriptions of the batch's tenants, which the inbox's transaction plans the wanted
    events (`ids`) of that batch with (`subscriptions_for`)."""

    wanted: list[bool]
    ids: frozenset[UUID]
    subscriptions: list[Subscription]

    def subscriptions_for(self, events: Sequence[Event[Any]]) -> list[Subscription] | None:
        """This batch's subscriptions when every one of `events` was screened here, else
        None (to be read again)."""
        return self.subscriptions if all(e.id in self.ids for e in events) else None


async def screen(pool: asyncpg.Pool, envelopes: Sequence[Envelope]) -> Screened:
    """Whether some enabled endpoint of each event's tenant subscribes to its type, read in
    one statement outside any transaction (the inbox's `Screening`): an event no endpoint
    wants is then skipped unvalidated, with no transaction. Filters on the target status are
    not applied here (they need the event's data): an event they would filter out is wanted,
    and `record_deliveries` plans nothing for it.

    Called once the batch was fetched from Kafka, the statement sees every endpoint whose
    subscription committed before the events did (they were published after they committed,
    and fetched after that), whichever replica runs it (`docs/webhooks.md`). So the wanted
    events are planned with what it read, and the inbox's transaction reads nothing more."""
    tenants = {e.tenantid for e in envelopes if e.tenantid is not None}
    subscriptions = await store.subscriptions(pool, tenants) if tenants else []
    patterns: dict[UUID, list[str]] = {}
    for s in subscriptions:
        patterns.setdefault(s.tenant_id, []).extend(s.patterns)
    return Screened(
        [
            e.tenantid is not None and matches(patterns.get(e.tenantid, ()), e.type)
            for e in envelopes
        ],
        frozenset(e.id for e in envelopes if e.id is not None),
        subscriptions,
    )


async def record_deliveries(
    conn: asyncpg.Connection,
    events: Sequence[Event[Any]],
    handoff: Handoff | None = None,
    unrecorded: Unrecorded | None = None,
    subscriptions: Sequence[Subscription] | None = None,
) -> int:
    """One delivery per subscribed endpoint of each event's tenant, in the caller's (the
    inbox's) transaction. The payload carries the event's data as its contract model dumps
    it, which is what its producer published; each delivery keeps the `traceparent` its event
    came with.

    As many as the `handoff`'s dispatcher has room for (never those of an `ordered`
    endpoint, whose subjects wait on their heads) are inserted leased to it and handed to it
    once the transaction commits (`after_commit`: the inbox's), sent without a claim; should
    it never record an attempt (the process dies), they are due when the lease ends. The
    others are due at once, and the dispatchers are woken when the transaction commits.

    Given the batch `unrecorded` (the inbox's `RecordingApply`), it records in the inbox only
    the events some endpoint subscribes to, and plans only those not recorded before: an
    event no endpoint wants writes nothing, so a batch of them is a read-only transaction.
    Such an event consumed again (a replay, a rebalance) is planned for the endpoints
    subscribed by then, as a consumer running behind would plan it.

    Given the `subscriptions` of the events' tenants (as `screen` read them once the batch
    was fetched), it plans with those instead of reading them."""
    if subscriptions is None:
        subscriptions = await store.subscriptions(conn, (e.tenantid for e in events))
    planned = plan_deliveries(events, subscriptions)
    if planned and unrecorded is not None:
        fresh = await unrecorded.record(conn, list(dict.fromkeys(e.id for e, _ in planned)))
        planned = [(e, s) for e, s in planned if e.id in fresh]
    if not planned:
        return 0
    payloads = {
        e.id: webhook_payload(e.type, e.time, e.data.model_dump(mode="json"), e.dataversion)
        for e, _ in planned
    }
    rows = [
        (
            e.tenantid,
            s.endpoint_id,
            e.id,
            e.type,
            webhook_id(e.id, s.endpoint_id),
            payloads[e.id],
            e.subject,
            e.time,
            incoming_traceparent(e.id),
        )
        for e, s in planned
    ]
    room = handoff.room() if handoff is not None else None
    if handoff is None or room is None:
        inserted = await store.insert_deliveries(conn, rows)
        if inserted:
            await notify_dispatcher(conn)
        return len(inserted)
    secrets = {
        s.endpoint_id: handoff.secrets(s.destination)
        for _, s in planned
        if s.destination is not None and not s.destination.ordered
    }
    leased = allot(
        [(s.endpoint_id, s.tenant_id) if secrets.get(s.endpoint_id) else None for _, s in planned],
        room,
    )
    claimed_at = time.monotonic()
    inserted = await store.insert_deliveries(conn, rows, leased, handoff.lease)
    by_pair = {(e.id, s.endpoint_id): (s, row) for (e, s), row in zip(planned, rows, strict=True)}
    targets = []
    for r in inserted:
        if not r["leased"]:
            continue
        sub, row = by_pair[r["event_id"], r["endpoint_id"]]
        destination = sub.destination
        assert destination is not None
        targets.append(
            Target(
                r["id"],
                sub.endpoint_id,
                sub.tenant_id,
                destination.url,
                dict(destination.headers),
                secrets[sub.endpoint_id] or [],
                row[4],
                row[5],
                0,
                destination.failing,
                claimed_at,
                row[8],
            )
        )
    if len(targets) < len(inserted):
        await notify_dispatcher(conn)
    if targets:
        after_commit(partial(handoff.take, targets))
    return len(inserted)


# --- delivering ------------------------------------------------------------------------------


async def deliver(sender: Sender, target: Target, schedule: Sequence[float]) -> Outcome:
    """One signed POST of a claimed delivery, and what follows from its answer: succeeded,
    failed (the endpoint disabled on a 410), or pending again after the schedule's delay
    (or the `Retry-After` the endpoint asked for)."""
    attempt = await sender.post(
        target.url,
        target.headers,
        target.secrets,
        target.webhook_id,
        target.payload,
        target.tenant_id,
        target.traceparent,
    )
    verdict = decide(
        attempt.status_code,
        target.attempts_made + 1,
        schedule,
        now=datetime.now(UTC),
        retry_after=attempt.retry_after,
    )
    return Outcome(
        target.delivery_id, target.endpoint_id, attempt, verdict, target.endpoint_failing
    )


async def record_outcomes(
    pool: asyncpg.Pool, batch: Sequence[Outcome], disable_after: float, marked: frozenset[UUID]
) -> frozenset[UUID]:
    """Writes a batch of outcomes in one transaction with the endpoint health they change,
    any endpoint they disable (answered 410, or failing for `disable_after` seconds) and the
    `webhook.endpoint_disabled` event announcing it.

    Health is written only when it changes, as the claim saw it; `marked`: the endpoints the
    caller's earlier batches marked as failing. Returns it updated. Lock order: endpoints,
    then deliveries."""
    succeeded = {o.endpoint_id for o in batch if o.attempt.succeeded}
    recovered = {
        o.endpoint_id
        for o in batch
        if o.attempt.succeeded and (o.endpoint_failing or o.endpoint_id in marked)
    }
    failing = {
        o.endpoint_id for o in batch if not o.attempt.succeeded and not o.endpoint_failing
    } - succeeded
    if not recovered and all(o.attempt.succeeded for o in batch):
        # Nothing but the outcomes to write (every attempt succeeded, no endpoint recovered,
        # none to disable): one statement, atomic by itself, without a transaction block's
        # round trips.
        await dispatching.record_outcomes(pool, batch)
        return marked
    async with pool.acquire() as conn, conn.transaction():
        if recovered or failing:
            await dispatching.note_endpoint_health(conn, recovered, failing)
        if reasons := await _reasons_to_disable(conn, batch, disable_after):
            await dispatching.commit_durably(conn)  # it publishes an event: no async commit
            disabled = await endpoint_store.disable_endpoints(conn, reasons)
            if disabled:
                await endpoint_store.pause_deliveries(conn, [e.id for _, e in disabled])
                events = [endpoint_disabled(t, e, e.disabled_reason or "") for t, e in disabled]
                await add_events(conn, SCHEMA, events)
        await dispatching.record_outcomes(conn, batch)
    return (marked | failing) - recovered


async def _reasons_to_disable(
    conn: asyncpg.Connection, batch: Sequence[Outcome], disable_after: float
) -> dict[UUID, str]:
    reasons = {
        o.endpoint_id: gone_reason(o.attempt.status_code or 410)
        for o in batch
        if o.verdict.disable_endpoint
    }
    # Only an endpoint already failing when its delivery was claimed can be past the window.
    failing = {
        o.endpoint_id for o in batch if not o.attempt.succeeded and o.endpoint_failing
    } - set(reasons)
    if failing and disable_after > 0:
        now = datetime.now(UTC)
        since = await dispatching.failing_since(conn, failing)
        reasons |= {
            endpoint: failing_reason(ts)
            for endpoint, ts in since.items()
            if failing_too_long(ts, now, disable_after)
        }
    return reasons


# --- through the API -------------------------------------------------------------------------


async def list_deliveries(
    db: Executor, tenant: UUID, endpoint_id: UUID, where: DeliveryFilter, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """Newest first, each with its attempts; filters combine."""
    await get_endpoint(db, tenant, endpoint_id)
    return await store.list_deliveries(db, tenant, endpoint_id, where, limit, offset)


async def list_tenant_deliveries(
    db: Executor,
    tenant: UUID,
    endpoint_id: UUID | None,
    where: DeliveryFilter,
    limit: int,
    offset: int,
) -> tuple[list[Delivery], int]:
    """Deliveries across the tenant's endpoints (or one's: NotFound when it is not the
    tenant's), newest first, each with its attempts; filters combine."""
    if endpoint_id is not None:
        await get_endpoint(db, tenant, endpoint_id)
    return await store.list_tenant_deliveries(db, tenant, endpoint_id, where, limit, offset)


async def get_delivery(db: Executor, tenant: UUID, delivery_id: UUID) -> Delivery:
    delivery = await store.get_delivery(db, tenant, delivery_id)
    if delivery is None:
        raise no_delivery()
    return delivery


async def resend_delivery(pool: asyncpg.Pool, tenant: UUID, delivery_id: UUID) -> Delivery:
    """Queue a finished delivery again, with a fresh retry schedule and the same webhook-id."""
    async with pool.acquire() as conn, conn.transaction():
        status = await store.lock_delivery(conn, tenant, delivery_id)
        if status is None:
            raise no_delivery()
        if not can_resend(status):
            raise Conflict("The delivery is still pending; it will be sent.")
        await store.requeue_delivery(conn, delivery_id)
    return await get_delivery(pool, tenant, delivery_id)


async def recover_deliveries(
    pool: asyncpg.Pool, tenant: UUID, endpoint_id: UUID, since: datetime, until: datetime | None
) -> int:
    """Queue again every failed delivery of the endpoint created since `since` (and before
    `until`), each with a fresh retry schedule and its webhook-id unchanged; how many."""
    if error := recover_window_error(since, until, datetime.now(UTC)):
        raise Invalid(
            "Nothing can be recovered in that window.",
            errors=[{"field": "/since", "message": error, "in": "body"}],
        )
    async with pool.acquire() as conn, conn.transaction():
        await get_endpoint(conn, tenant, endpoint_id)
        return await store.recover_failed(conn, tenant, endpoint_id, since, until)
