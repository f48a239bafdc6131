"""What two replicas of a service share through PostgreSQL, on a database of their own: two
webhooks dispatchers claiming at the same moment never lease one delivery twice nor send two
of one ordered subject at once, and of two outbox relays only one leads until it is gone.

The per-endpoint cap counts per dispatcher: two replicas may each take their quota of one
endpoint (docs/scaling.md says so, with the setting to divide)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from fulfilkit.db import create_pool, migrate
from fulfilkit.leader import become_leader
from tests.support import eventually
from webhooks.app import MIGRATIONS
from webhooks.domain import NewEndpoint
from webhooks.store import deliveries, dispatching, endpoints

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=60)
SLOTS = 10


@pytest.fixture
async def pool(database) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database.url, 1, 4)
    try:
        await migrate(pool, "webhooks", MIGRATIONS)
        yield pool
    finally:
        await pool.close()


async def endpoint(pool: asyncpg.Pool, tenant: UUID, *, ordered: bool) -> UUID:
    new = NewEndpoint("http://127.0.0.1:9/hook", ["*"], {}, "", enabled=True, ordered=ordered)
    return (await endpoints.create_endpoint(pool, tenant, uuid4(), new, "sealed")).id


async def due_deliveries(
    pool: asyncpg.Pool, tenant: UUID, endpoint_id: UUID, subjects: list[str]
) -> list[UUID]:
    """One due delivery per entry of `subjects`, in that order of occurrence."""
    now = datetime.now(UTC)
    rows = []
    for n, subject in enumerate(subjects):
        event = uuid4()
        at = now + timedelta(milliseconds=n)
        rows.append(
            (
                tenant,
                endpoint_id,
                event,
                "stock.changed",
                f"msg_{event.hex}",
                b"{}",
                subject,
                at,
                None,
            )
        )
    async with pool.acquire() as conn, conn.transaction():
        await deliveries.insert_deliveries(conn, rows)
        ids = await conn.fetch(
            "UPDATE webhooks.deliveries SET next_attempt_at = now() - interval '1 second'"
            " WHERE endpoint_id = $1 RETURNING id",
            endpoint_id,
        )
    return [r["id"] for r in ids]


def quota(endpoint_id: UUID) -> dispatching.Quotas:
    """What a dispatcher with nothing in flight asks for: its own SLOTS for the endpoint."""
    return dispatching.Quotas({endpoint_id: SLOTS}, 0, {}, 100)


async def test_two_dispatchers_claiming_at_once_never_lease_one_delivery_twice(
    pool: asyncpg.Pool,
) -> None:
    tenant = uuid4()
    target = await endpoint(pool, tenant, ordered=False)
    queued = await due_deliveries(pool, tenant, target, [f"stock/{n}" for n in range(30)])
    first, second = await pool.acquire(), await pool.acquire()
    try:
        # both claim inside open transactions: the first one's row locks are still held
        async with first.transaction(), second.transaction():
            mine = {r["id"] for r in await dispatching.claim_due(first, 50, LEASE, quota(target))}
            theirs = {
                r["id"] for r in await dispatching.claim_due(second, 50, LEASE, quota(target))
            }
        assert not mine & theirs
        assert len(mine) == len(theirs) == SLOTS  # each replica's own quota
        # once committed, the leases keep both away from what was claimed
        async with first.transaction():
            again = {r["id"] for r in await dispatching.claim_due(first, 50, LEASE, quota(target))}
        assert again == set(queued) - mine - theirs
    finally:
        await pool.release(first)
        await pool.release(second)


async def test_two_dispatchers_never_send_two_deliveries_of_one_ordered_subject_at_once(
    pool: asyncpg.Pool,
) -> None:
    tenant = uuid4()
    target = await endpoint(pool, tenant, ordered=True)
    subjects = [f"sale/{n}" for n in range(3) for _ in range(3)]  # three deliveries each
    await due_deliveries(pool, tenant, target, subjects)
    first, second = await pool.acquire(), await pool.acquire()
    try:
        async with first.transaction(), second.transaction():
            heads = await dispatching.claim_due(first, 50, LEASE, quota(target))
            behind = await dispatching.claim_due(second, 50, LEASE, quota(target))
        assert len(heads) == 3
        assert behind == [], "the heads are another dispatcher's: the rest of each subject waits"
        async with second.transaction():
            assert await dispatching.claim_due(second, 50, LEASE, quota(target)) == []
    finally:
        await pool.release(first)
        await pool.release(second)


async def test_of_two_relays_one_leads_and_the_other_takes_over_when_it_is_gone(
    database,
) -> None:
    lock = f"outbox:replicas-{uuid4().hex[:8]}"
    leader = await asyncpg.connect(database.url)
    standby = await asyncpg.connect(database.url)
    try:
        await become_leader(leader, lock, 0.05)
        assert not await standby.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock)
        await leader.close()  # as a crashed replica's connection goes

        async def leads() -> bool:
            return await standby.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock)

        await eventually(leads, bool, timeout=10, what="the standby leading")
    finally:
        await standby.close()
        if not leader.is_closed():
            await leader.close()
