"""Fulfillments for claimed sales, created once per sale whichever path gets there first:
the shipping-init request, or the reconciler that follows `sale.status_changed`."""

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.events import utcnow
from fulfilkit.outbox import Keyed, add_events
from fulfilment import events, store
from fulfilment.domain import (
    Fulfillment,
    IllegalTransition,
    choose_provider,
    fulfillment_number,
    is_bulky,
    next_status,
)
from fulfilment.providers import PROVIDERS
from fulfilment.settings import FulfilmentSettings


async def ensure_fulfillments(
    conn: asyncpg.Connection,
    settings: FulfilmentSettings,
    tenant: UUID,
    sales: Sequence[dict[str, Any]],
) -> dict[str, Fulfillment]:
    """The fulfillment of each claimed sale (given as sale snapshots), created if missing.

    A unique index keeps one fulfillment per sale, so concurrent callers end with the same
    one, and a canceled one is never replaced. Returns them by sale_id.
    """
    live = await store.by_sale_ids(conn, tenant, [s["sale_id"] for s in sales])
    # One insertion order everywhere, so concurrent callers never deadlock on the index.
    missing = sorted((s for s in sales if s["sale_id"] not in live), key=lambda s: str(s["id"]))
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for sale in missing:
        provider = choose_provider(
            settings.shipping_provider_rules,
            sale["location_id"],
            sale["shop"]["channel"],
            settings.default_shipping_provider,
        )
        by_provider.setdefault(provider, []).append(sale)
    now = utcnow()
    created: list[Fulfillment] = []
    for name, group in by_provider.items():
        numbers = await PROVIDERS[name].allocate(conn, len(group))
        for sale, number in zip(group, numbers, strict=True):
            fid = uuid.uuid4()
            created.append(
                Fulfillment(
                    id=fid,
                    tenant_id=tenant,
                    fulfillment_id=fulfillment_number(fid),
                    sale=UUID(str(sale["id"])),
                    sale_id=sale["sale_id"],
                    location=sale["location_id"],
                    status="waiting_for_picking",
                    shipping_provider=name,
                    tracking_number=number,
                    is_bulky=is_bulky(sale),
                    version=1,
                    date_created=now,
                )
            )
    if created:
        created.sort(key=lambda f: str(f.sale))
        added = set(await store.insert_many(conn, created))
        await add_events(
            conn, "fulfilment", [events.fulfillment_created(f) for f in created if f.id in added]
        )
        live = await store.by_sale_ids(conn, tenant, [s["sale_id"] for s in sales])
    return live


async def move(
    conn: asyncpg.Connection, fulfillments: Sequence[Fulfillment], target: str
) -> list[Fulfillment]:
    """Move fulfillments (locked by the caller) to `target`, publishing each change.

    Raises IllegalTransition if any of them cannot move; returns those that changed.
    """
    outgoing: list[Keyed] = []
    changed: list[Fulfillment] = []
    for f in fulfillments:
        status = next_status(f.status, target)
        if status is None:
            continue
        previous = f.status
        f.status, f.version = status, f.version + 1
        outgoing.append(events.fulfillment_status_changed(f, previous))
        changed.append(f)
    await store.save_statuses(conn, changed)
    await add_events(conn, "fulfilment", outgoing)
    return changed


async def move_unless_changed(
    pool: asyncpg.Pool, read: Fulfillment, target: str
) -> Fulfillment | None:
    """Move a fulfillment read without a lock to `target`, if nobody changed it since: one
    round trip instead of a locking transaction. None when it changed; decide again then.

    Raises IllegalTransition if it cannot move; returns it unchanged if already there.
    """
    status = next_status(read.status, target)
    if status is None:
        return read
    moved = dataclasses.replace(read, status=status, version=read.version + 1)
    event = events.fulfillment_status_changed(moved, read.status)
    return moved if await store.save_status_if_unchanged(pool, moved, event) else None


def movable(fulfillments: Sequence[Fulfillment], target: str) -> list[Fulfillment]:
    """Those that can move to `target` (used where others are simply left alone)."""
    ok = []
    for f in fulfillments:
        try:
            next_status(f.status, target)
            ok.append(f)
        except IllegalTransition:
            pass
    return ok
