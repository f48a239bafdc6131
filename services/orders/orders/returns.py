"""Returns of shipped sales and their state machine: `requested -> received -> closed`, or
`requested -> canceled`. No I/O here.

A sale may take back, per SKU, what it shipped less what its earlier returns (but the
canceled ones) claim; a return is received with each line's disposition (`restock` or
`discard`) and location, at most what it asked for of each SKU, and is closed by hand
afterwards. A return whose units never come is canceled while still requested."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

ReturnStatus = Literal["requested", "received", "closed", "canceled"]
ReturnReason = Literal["damaged", "wrong_item", "no_longer_needed", "other"]
Disposition = Literal["restock", "discard"]

# The statuses of a sale whose units have left, and so can come back.
RETURNABLE = frozenset({"shipped", "delivered"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"received", "canceled"}),
    "received": frozenset({"closed"}),
    "closed": frozenset(),
    "canceled": frozenset(),
}


@dataclass
class Return:
    id: UUID
    tenant_id: UUID
    sale: UUID  # the sale's platform id
    sale_id: str  # the client's
    status: str
    version: int
    reason: str
    lines: list[dict[str, Any]]  # [{sku, quantity}], as asked
    received_lines: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    received_at: datetime | None = None
    closed_at: datetime | None = None
    canceled_at: datetime | None = None


@dataclass(frozen=True)
class ReturnChange:
    ret: Return
    previous: str


class SaleNotReturnable(Exception):
    """The sale has not shipped (or was canceled): nothing of it can come back."""

    def __init__(self, status: str) -> None:
        super().__init__(f"a {status} sale cannot be returned")
        self.status = status


@dataclass(frozen=True)
class Excess:
    """A line of a return asking for more of a SKU than the sale may still return."""

    index: int
    sku: str
    asked: int  # of this SKU, by every line of the return naming it
    remaining: int


class BeyondShipped(Exception):
    def __init__(self, excesses: list[Excess]) -> None:
        super().__init__(", ".join(f"{e.sku}: {e.asked} > {e.remaining}" for e in excesses))
        self.excesses = excesses


class IllegalReturnTransition(Exception):
    def __init__(self, ret: Return, target: str) -> None:
        super().__init__(f"return {ret.id} is {ret.status} and cannot become {target}")
        self.ret, self.target = ret, target


@dataclass(frozen=True)
class ReceiveError:
    """A received line that breaks a rule: a pointer into the body and why."""

    field: str
    message: str


class InvalidReceipt(Exception):
    def __init__(self, errors: list[ReceiveError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def per_sku(lines: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts[line["sku"]] += line["quantity"]
    return counts


def returnable(sale_lines: list[dict[str, Any]], earlier: list[Return]) -> Counter[str]:
    """What may still come back of each SKU: what shipped (every line of a shipped sale)
    less what the sale's earlier returns claim, whatever their status but canceled."""
    left = per_sku(sale_lines)
    for ret in earlier:
        if ret.status != "canceled":
            left.subtract(per_sku(ret.lines))
    return left


def request_return(
    tenant_id: UUID,
    sale: UUID,
    sale_id: str,
    sale_status: str,
    sale_lines: list[dict[str, Any]],
    earlier: list[Return],
    reason: str,
    lines: list[dict[str, Any]],
    now: datetime,
) -> Return:
    """A new return of a shipped or delivered sale (SaleNotReturnable otherwise), for at most
    what the sale may still return of each SKU (BeyondShipped names each line asking more:
    the first line of each SKU asking too much). Lines of the same SKU count together."""
    if sale_status not in RETURNABLE:
        raise SaleNotReturnable(sale_status)
    left = returnable(sale_lines, earlier)
    asked = per_sku(lines)
    first = {}
    for index, line in enumerate(lines):
        first.setdefault(line["sku"], index)
    excesses = [
        Excess(first[sku], sku, quantity, max(left[sku], 0))
        for sku, quantity in asked.items()
        if quantity > left[sku]
    ]
    if excesses:
        raise BeyondShipped(sorted(excesses, key=lambda e: e.index))
    return Return(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        sale=sale,
        sale_id=sale_id,
        status="requested",
        version=1,
        reason=reason,
        lines=[{"sku": line["sku"], "quantity": line["quantity"]} for line in lines],
        created_at=now,
        updated_at=now,
    )


def _transition(ret: Return, target: str, now: datetime) -> ReturnChange:
    if target not in TRANSITIONS[ret.status]:
        raise IllegalReturnTransition(ret, target)
    previous = ret.status
    ret.status = target
    ret.version += 1
    ret.updated_at = now
    return ReturnChange(ret, previous)


def receive(ret: Return, lines: list[dict[str, Any]], now: datetime) -> ReturnChange:
    """What came back of a requested return: each line a SKU of the return, with its
    disposition and location; of each SKU at most what the return asked for (less is fine:
    the rest never came). IllegalReturnTransition unless the return is `requested`;
    InvalidReceipt with a pointer to each line breaking a rule."""
    if ret.status != "requested":
        raise IllegalReturnTransition(ret, "received")
    asked = per_sku(ret.lines)
    errors = [
        ReceiveError(f"/lines/{i}/sku", f"the return has no line of {line['sku']!r}")
        for i, line in enumerate(lines)
        if line["sku"] not in asked
    ]
    got = per_sku([line for line in lines if line["sku"] in asked])
    last: dict[str, int] = {}
    for i, line in enumerate(lines):
        last[line["sku"]] = i
    errors += [
        ReceiveError(
            f"/lines/{last[sku]}/quantity",
            f"{quantity} of {sku!r} received in all; the return asked for {asked[sku]}",
        )
        for sku, quantity in got.items()
        if quantity > asked[sku]
    ]
    if errors:
        raise InvalidReceipt(errors)
    change = _transition(ret, "received", now)
    ret.received_lines = [
        {
            "sku": line["sku"],
            "quantity": line["quantity"],
            "disposition": line["disposition"],
            "location_id": line["location_id"],
        }
        for line in lines
    ]
    ret.received_at = now
    return change


def close(ret: Return, now: datetime) -> ReturnChange | None:
    """A received return is closed; closing a closed one again changes nothing (None)."""
    if ret.status == "closed":
        return None
    change = _transition(ret, "closed", now)
    ret.closed_at = now
    return change


def cancel(ret: Return, now: datetime) -> ReturnChange | None:
    """A requested return whose units will not come: it no longer counts against what the
    sale may return. Canceling a canceled one again changes nothing (None); a received or
    closed return cannot be canceled (its units are back)."""
    if ret.status == "canceled":
        return None
    change = _transition(ret, "canceled", now)
    ret.canceled_at = now
    return change
