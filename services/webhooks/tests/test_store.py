"""The store's queries against the real PostgreSQL.

A platform may run on the same database: each test has tenants of its own, claims only its
own endpoints' deliveries (a quota of 0 for every other endpoint), and makes its deliveries
due only inside the transaction that claims them.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from webhooks.domain import Attempt, DeliveryFilter, NewEndpoint, Outcome, Verdict
from webhooks.store import NOTIFY_CHANNEL, deliveries, dispatching, endpoints

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=60)


async def endpoint(
    pool: asyncpg.Pool, tenant: UUID, *, enabled: bool = True, ordered: bool = False
) -> UUID:
    new = NewEndpoint(
        "http://127.0.0.1:9/hook", ["*"], {"X-Shop": "42"}, "", enabled=enabled, ordered=ordered
    )
    return (await endpoints.create_endpoint(pool, tenant, uuid4(), new, "sealed")).id


async def queue(
    pool: Any, tenant: UUID, endpoint_id: UUID, count: int = 1, subject: str = "stock/a"
) -> list[UUID]:
    """Parked deliveries (out of any dispatcher's reach): `due` makes them claimable."""
    now = datetime.now(UTC)
    rows = []
    for _ in range(count):
        event = uuid4()
        rows.append(
            (
                tenant,
                endpoint_id,
                event,
                "stock.changed",
                f"msg_{event.hex}",
                b"{}",
                subject,
                now,
                None,
            )
        )
        now += timedelta(milliseconds=1)
    async with pool.acquire() as conn, conn.transaction():
        await deliveries.insert_deliveries(conn, rows)
        ids = await conn.fetch(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL"
            " WHERE endpoint_id = $1 AND event_id = ANY($2::uuid[]) RETURNING id, seq",
            endpoint_id,
            [r[2] for r in rows],
        )
    return [r["id"] for r in sorted(ids, key=lambda r: r["seq"])]


async def due(conn: asyncpg.Connection, ids: list[UUID]) -> None:
    await conn.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = now() - interval '1 second'"
        " WHERE id = ANY($1::uuid[])",
        ids,
    )


def only(*endpoint_ids: UUID, slots: int = 10) -> dispatching.Quotas:
    return dispatching.Quotas(dict.fromkeys(endpoint_ids, slots), 0, {}, 100)


async def test_insert_deliveries_skips_disabled_endpoints_and_pairs_already_queued(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    on, off = await endpoint(pool, tenant), await endpoint(pool, tenant, enabled=False)
    now = datetime.now(UTC)
    event = uuid4()
    rows = [
        (tenant, e, event, "stock.changed", f"msg_{e.hex}", b"{}", "stock/a", now, None)
        for e in (on, off)
    ]
    async with pool.acquire() as conn, conn.transaction():
        assert len(await deliveries.insert_deliveries(conn, rows)) == 1
        assert await deliveries.insert_deliveries(conn, rows) == []
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
        )
    subscribed = await pool.acquire()
    try:
        subs = await deliveries.subscriptions(subscribed, [tenant])
    finally:
        await pool.release(subscribed)
    assert [s.endpoint_id for s in subs] == [on]


async def test_a_delivery_inserted_leased_is_claimable_only_once_its_lease_ends(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    """What the consumer hands to its dispatcher is leased to it: should the process die
    before an attempt is recorded, it is due again when the lease ends, like a claimed one."""
    tenant = tenants()
    hook = await endpoint(pool, tenant)
    now = datetime.now(UTC)
    rows = [
        (tenant, hook, uuid4(), "stock.changed", f"msg_{n}", b"{}", "stock/a", now, None)
        for n in range(2)
    ]
    async with pool.acquire() as conn, conn.transaction():
        inserted = await deliveries.insert_deliveries(conn, rows, [True, False], LEASE)
        assert [(r["event_id"], r["leased"]) for r in inserted] == [
            (rows[0][2], True),
            (rows[1][2], False),
        ]
        leased, due_now = (r["id"] for r in inserted)
        [claimed] = await dispatching.claim_due(conn, 10, LEASE, only(hook))
        assert claimed["id"] == due_now, "the leased one is not due"
        assert await dispatching.claim_due(conn, 10, LEASE, only(hook)) == []
        await conn.execute(  # its lease runs out
            "UPDATE webhooks.deliveries SET next_attempt_at = now() - interval '1 ms'"
            " WHERE id = $1",
            leased,
        )
        [claimed] = await dispatching.claim_due(conn, 10, LEASE, only(hook))
        assert claimed["id"] == leased
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
        )


async def test_claim_due_leases_within_the_endpoint_quota_and_parks_a_disabled_endpoints(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    busy, paused = await endpoint(pool, tenant), await endpoint(pool, tenant)
    busy_ids = await queue(pool, tenant, busy, 5)
    paused_ids = await queue(pool, tenant, paused, 1)
    await pool.execute("UPDATE webhooks.endpoints SET enabled = false WHERE id = $1", paused)
    async with pool.acquire() as conn, conn.transaction():
        await due(conn, busy_ids + paused_ids)
        rows = await dispatching.claim_due(
            conn, 10, LEASE, dispatching.Quotas({busy: 3, paused: 3}, 0, {}, 100)
        )
        claimed = {r["id"]: r for r in rows}
        assert len([i for i in busy_ids if i in claimed]) == 3
        assert claimed[paused_ids[0]]["enabled"] is False
        parked = await conn.fetchval(
            "SELECT next_attempt_at FROM webhooks.deliveries WHERE id = $1", paused_ids[0]
        )
        assert parked is None, "a disabled endpoint's delivery waits for it"
        again = await dispatching.claim_due(conn, 10, LEASE, only(busy))
        assert {r["id"] for r in again} == set(busy_ids) - set(claimed), "leased ones wait"
        await dispatching.release(conn, [busy_ids[0]])
        [released] = await dispatching.claim_due(conn, 10, LEASE, only(busy))
        assert released["id"] == busy_ids[0]
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
        )


async def test_claim_due_gives_an_ordered_endpoint_only_the_head_of_each_subject(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    ordered = await endpoint(pool, tenant, ordered=True)
    first = await queue(pool, tenant, ordered, 3, subject="stock/a")
    other = await queue(pool, tenant, ordered, 1, subject="stock/b")
    async with pool.acquire() as conn, conn.transaction():
        await due(conn, first + other)
        rows = await dispatching.claim_due(conn, 10, LEASE, only(ordered))
        assert {r["id"] for r in rows} == {first[0], other[0]}
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
        )


async def test_record_outcomes_reschedules_finishes_and_skips_what_is_not_pending(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant)
    retried, done = await queue(pool, tenant, endpoint_id, 2)
    now = datetime.now(UTC)
    outcomes = [
        Outcome(retried, endpoint_id, Attempt(now, 4, 503, error=None), Verdict("pending", 30.0)),
        Outcome(done, endpoint_id, Attempt(now, 2, 200, response_body="ok"), Verdict("succeeded")),
    ]
    async with pool.acquire() as conn, conn.transaction():
        assert await dispatching.record_outcomes(conn, outcomes) == 2
        assert await dispatching.record_outcomes(conn, outcomes[1:]) == 0
        # Parked back: a dispatcher sharing the database must not send it.
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE id = $1", retried
        )
    rows = {
        r["id"]: r
        for r in await pool.fetch(
            "SELECT id, status, attempt_count, completed_at, last_status_code"
            " FROM webhooks.deliveries WHERE tenant_id = $1",
            tenant,
        )
    }
    assert rows[retried]["status"] == "pending" and rows[retried]["attempt_count"] == 1
    assert rows[done]["status"] == "succeeded" and rows[done]["completed_at"] is not None
    delivery = await deliveries.get_delivery(pool, tenant, done)
    assert delivery is not None
    assert [(a.status_code, a.response_body) for a in delivery.attempts] == [(200, "ok")]


async def test_endpoint_health_is_noted_and_read_back(pool: asyncpg.Pool, tenants: Any) -> None:
    tenant = tenants()
    failing, healthy = await endpoint(pool, tenant), await endpoint(pool, tenant)
    async with pool.acquire() as conn, conn.transaction():
        await dispatching.note_endpoint_health(conn, set(), {failing, healthy})
        await dispatching.note_endpoint_health(conn, {healthy}, set())
        since = await dispatching.failing_since(conn, {failing, healthy})
    assert set(since) == {failing}


async def test_disable_endpoints_disables_only_enabled_ones_and_pause_stops_their_queue(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    on, off = await endpoint(pool, tenant), await endpoint(pool, tenant, enabled=False)
    [waiting] = await queue(pool, tenant, on)
    async with pool.acquire() as conn, conn.transaction():
        await due(conn, [waiting])
        disabled = await endpoints.disable_endpoints(conn, {on: "gone", off: "gone"})
        assert [(t, e.id, e.disabled_reason, e.version) for t, e in disabled] == [
            (tenant, on, "gone", 2)
        ]
        await endpoints.pause_deliveries(conn, [on])
        assert (
            await conn.fetchval(
                "SELECT next_attempt_at FROM webhooks.deliveries WHERE id = $1", waiting
            )
            is None
        )


async def test_update_endpoint_toggling_resets_the_reason_and_the_failing_streak(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant, enabled=False)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhooks.endpoints SET failing_since = now() WHERE id = $1", endpoint_id
        )
        assert await endpoints.lock_endpoint(conn, tenant, endpoint_id) == (False, 1)
        assert await endpoints.lock_endpoint(conn, uuid4(), endpoint_id) is None
        updated = await endpoints.update_endpoint(
            conn, endpoint_id, {"enabled": True, "description": "back"}, toggled=True
        )
        assert updated.enabled and updated.disabled_reason is None and updated.version == 2
        assert (
            await conn.fetchval(
                "SELECT failing_since FROM webhooks.endpoints WHERE id = $1", endpoint_id
            )
            is None
        )
        assert await endpoints.lock_tenant_endpoints(conn, tenant) == 1


async def test_list_deliveries_filters_and_pages_newest_first(
    pool: asyncpg.Pool, tenants: Any
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant)
    ids = await queue(pool, tenant, endpoint_id, 3)
    await pool.execute(
        "UPDATE webhooks.deliveries SET status = 'failed', completed_at = now() WHERE id = $1",
        ids[0],
    )
    found, total = await deliveries.list_deliveries(
        pool, tenant, endpoint_id, DeliveryFilter(status="pending"), 1, 0
    )
    assert total == 2 and len(found) == 1
    everything, total = await deliveries.list_deliveries(
        pool, tenant, endpoint_id, DeliveryFilter(), 10, 0
    )
    assert total == 3 and {d.id for d in everything} == set(ids)
    assert await deliveries.get_delivery(pool, uuid4(), ids[0]) is None


async def test_requeue_and_recover_make_finished_deliveries_pending_again(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant, enabled=False)  # so nothing is sent meanwhile
    await pool.execute("UPDATE webhooks.endpoints SET enabled = true WHERE id = $1", endpoint_id)
    ids = await queue(pool, tenant, endpoint_id, 2)
    await pool.execute("UPDATE webhooks.endpoints SET enabled = false WHERE id = $1", endpoint_id)
    await pool.execute(
        "UPDATE webhooks.deliveries SET status = 'failed', attempt_count = 3,"
        " completed_at = now() WHERE tenant_id = $1",
        tenant,
    )
    async with pool.acquire() as conn, conn.transaction():
        assert await deliveries.lock_delivery(conn, tenant, ids[0]) == "failed"
        await deliveries.requeue_delivery(conn, ids[0])
        since = datetime.now(UTC) - timedelta(minutes=1)
        assert await deliveries.recover_failed(conn, tenant, endpoint_id, since, None) == 1
    rows = await pool.fetch(
        "SELECT status, attempt_count, next_attempt_at FROM webhooks.deliveries"
        " WHERE tenant_id = $1",
        tenant,
    )
    assert [(r["status"], r["attempt_count"], r["next_attempt_at"]) for r in rows] == [
        ("pending", 0, None)
    ] * 2


async def test_prune_finished_deletes_only_finished_deliveries_past_the_age(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant)
    old_done, old_pending, recent_done = await queue(pool, tenant, endpoint_id, 3)
    await pool.execute(
        "UPDATE webhooks.deliveries SET status = 'succeeded', completed_at = $2"
        " WHERE id = ANY($1::uuid[])",
        [old_done, recent_done],
        datetime.now(UTC),
    )
    await pool.execute(
        "UPDATE webhooks.deliveries SET completed_at = now() - interval '400 days' WHERE id = $1",
        old_done,
    )
    await deliveries.prune_finished(pool, timedelta(days=365), 1000)
    left = {
        r["id"]
        for r in await pool.fetch("SELECT id FROM webhooks.deliveries WHERE tenant_id = $1", tenant)
    }
    assert left == {old_pending, recent_done}


async def test_replace_secrets_only_while_the_stored_ones_are_unchanged(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    endpoint_id = await endpoint(pool, tenant)
    assert await endpoints.replace_secrets(pool, endpoint_id, ("sealed", None), ("new", None))
    assert not await endpoints.replace_secrets(pool, endpoint_id, ("sealed", None), ("x", None))
    stored = await endpoints.get_endpoint(pool, tenant, endpoint_id)
    assert stored is not None and stored.secret == "new" and stored.previous_secret is None
    await pool.execute(
        "UPDATE webhooks.endpoints SET secret = 'whsec_plain' WHERE id = $1", endpoint_id
    )
    plaintext = await endpoints.stored_secrets(pool, None, 100_000, plaintext_only=True)
    assert endpoint_id in {r["id"] for r in plaintext}


async def test_next_due_in_reads_the_earliest_pending_delivery(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    ids = await queue(pool, tenant, await endpoint(pool, tenant), 1)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = now() - interval '1 hour'"
            " WHERE id = $1",
            ids[0],
        )
        due_in = await dispatching.next_due_in(conn)
        assert due_in is not None and due_in <= -3599, "the earliest is at most this one"
        await conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE id = $1", ids[0]
        )


async def test_release_wakes_every_listening_dispatcher(
    pool: asyncpg.Pool,
    tenants: Any,
) -> None:
    tenant = tenants()
    busy = await endpoint(pool, tenant)
    ids = await queue(pool, tenant, busy, 1)
    heard: asyncio.Queue[str] = asyncio.Queue()

    def hear(_conn: object, _pid: int, channel: str, _payload: str) -> None:
        heard.put_nowait(channel)

    listening = await pool.acquire()
    try:
        await listening.add_listener(NOTIFY_CHANNEL, hear)
        async with pool.acquire() as conn, conn.transaction():
            await due(conn, ids)
            await dispatching.claim_due(conn, 10, LEASE, only(busy))
        await dispatching.release(pool, ids)
        assert await asyncio.wait_for(heard.get(), 5) == NOTIFY_CHANNEL
    finally:
        await listening.remove_listener(NOTIFY_CHANNEL, hear)
        await pool.release(listening)
        await pool.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = NULL WHERE tenant_id = $1", tenant
        )
