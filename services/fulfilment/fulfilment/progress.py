"""Moving many fulfillments forward in one request: what `POST /fulfillments/{id}/status`
does for one, with one read, one ask to `orders` and one locking transaction for all.

Every fulfillment going to `shipped` has its sale shipped by `orders` first, exactly as for
one: a sale that cannot ship (canceled, say) leaves its fulfillment where it was, and if this
service dies after `orders` answered, the reconciler moves the fulfillment.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from fulfilment import store
from fulfilment.domain import Fulfillment, why_not
from fulfilment.orders_client import OrdersClient
from fulfilment.shipping import move


@dataclass
class Outcome:
    moved: list[Fulfillment] = field(default_factory=list)  # in the order asked
    errors: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, fulfillment: UUID, code: str, detail: str, **extra: Any) -> None:
        self.errors.append({"id": str(fulfillment), "code": code, "detail": detail, **extra})


async def move_many(
    pool: asyncpg.Pool,
    orders: OrdersClient,
    tenant: UUID,
    actor: str,
    targets: Sequence[tuple[UUID, str]],
    after_orders: Callable[[], None] = lambda: None,
) -> Outcome:
    """Move each fulfillment to its target status; report those that cannot move."""
    outcome = Outcome()
    async with pool.acquire() as conn:
        found = await store.get_many(conn, tenant, [fid for fid, _ in targets])
    wanted: dict[UUID, str] = {}
    for fid, target in targets:
        current = found.get(fid)
        if current is None:
            outcome.refuse(fid, "not_found", f"No fulfillment {str(fid)!r}.")
        elif (why := why_not(current.status, target)) is not None:
            outcome.refuse(fid, "conflict", why, fulfillment_status=current.status)
        else:
            wanted[fid] = target
    to_ship = {found[fid].sale_id: fid for fid, target in wanted.items() if target == "shipped"}
    if to_ship:
        answer = await orders.ship_many(tenant, actor, list(to_ship))
        after_orders()
        for error in answer["errors"]:
            fid = to_ship[error["sale_id"]]
            del wanted[fid]
            outcome.refuse(
                fid,
                "conflict",
                f"The sale cannot ship: {error['detail']}",
                sale_status=error.get("sale_status"),
            )
    if not wanted:
        return outcome
    async with pool.acquire() as conn, conn.transaction():
        locked = await store.get_many(conn, tenant, list(wanted), lock=True)
        by_target: dict[str, list[Fulfillment]] = {}
        for fid, target in wanted.items():
            current = locked[fid]  # fulfillments are never deleted
            if (why := why_not(current.status, target)) is not None:
                outcome.refuse(fid, "conflict", why, fulfillment_status=current.status)
                continue
            by_target.setdefault(target, []).append(current)
        for target, fulfillments in by_target.items():
            await move(conn, fulfillments, target)
    moved = {f.id: f for group in by_target.values() for f in group}
    outcome.moved = [moved[fid] for fid, _ in targets if fid in moved]
    return outcome
