"""Inbound orders' rules: deliveries expected from a supplier at a location, what may change
while, and what a receipt does to them. No I/O here.

Statuses: `draft` (not yet expected: neither incoming nor receivable), `open` (expected),
`receiving` (something came in, more is expected), `received` (every line came in full),
`closed` (by hand, with a reason: the rest will never come) and `canceled` (nothing came
in). Only `draft` and `open` orders may be changed, only those with nothing received
canceled, only `open` and `receiving` ones received against or closed.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

MAX_QUANTITY = 2_000_000_000  # what the integer columns hold, with room to spare
InboundStatus = Literal["draft", "open", "receiving", "received", "closed", "canceled"]
EDITABLE: frozenset[str] = frozenset({"draft", "open"})
RECEIVABLE: frozenset[str] = frozenset({"open", "receiving"})
# whose outstanding units are incoming (stock records' `incoming`, a short line's arrival)
EXPECTED: frozenset[str] = frozenset({"open", "receiving"})


class InboundRuleViolation(Exception):
    """A change the order's status does not allow (a 409)."""


class ReceiptInvalid(Exception):
    """A receipt that does not fit the order (a 422): `errors` are pointer and message."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class InboundLine:
    sku: str
    quantity: int  # expected
    received: int = 0

    @property
    def outstanding(self) -> int:
        """What is still expected (never below zero: more may come in than expected)."""
        return max(0, self.quantity - self.received)


@dataclass(frozen=True)
class InboundOrder:
    id: UUID
    tenant_id: UUID
    reference: str
    supplier: str | None
    location_id: str
    expected_at: datetime | None
    urgent: bool
    instructions: str | None
    properties: dict[str, Any] | None
    status: InboundStatus
    lines: tuple[InboundLine, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    close_reason: str | None = None

    @property
    def received_any(self) -> bool:
        return any(line.received for line in self.lines)

    def incoming(self) -> dict[str, int]:
        """Outstanding units by SKU, while the order is expected; none otherwise."""
        if self.status not in EXPECTED:
            return {}
        return {line.sku: line.outstanding for line in self.lines if line.outstanding}


@dataclass(frozen=True)
class ReceiptLine:
    sku: str
    quantity: int
    reason: str | None = None


@dataclass(frozen=True)
class Received:
    """What a receipt did: the order after it, and the units to add on hand by SKU."""

    order: InboundOrder
    units: dict[str, int] = field(default_factory=dict)


def check_editable(order: InboundOrder) -> None:
    if order.status not in EDITABLE:
        raise InboundRuleViolation(
            f"Inbound order {order.reference} is {order.status}: only draft and open"
            " inbound orders can be changed."
        )


def check_new_status(status: str) -> None:
    """A change of status by PATCH: between draft and open only."""
    if status not in EDITABLE:
        raise InboundRuleViolation(
            f"An inbound order's status can be changed to draft or open only, not {status}."
        )


def cancel(order: InboundOrder) -> InboundOrder:
    if order.status not in EDITABLE or order.received_any:
        raise InboundRuleViolation(
            f"Inbound order {order.reference} is {order.status}: only a draft or open"
            " inbound order with nothing received can be canceled."
        )
    return replace(order, status="canceled")


def close(order: InboundOrder, reason: str) -> InboundOrder:
    if order.status not in RECEIVABLE:
        raise InboundRuleViolation(
            f"Inbound order {order.reference} is {order.status}: only an open or receiving"
            " inbound order can be closed."
        )
    return replace(order, status="closed", close_reason=reason)


def receive(order: InboundOrder, lines: Sequence[ReceiptLine]) -> Received:
    """Apply a receipt: each line adds to its SKU's `received`. A line over or under what is
    still expected of its SKU must give a reason; every SKU must be on the order, once. The
    order becomes `received` when every line has come in full, else `receiving` once
    anything came in."""
    if order.status not in RECEIVABLE:
        raise InboundRuleViolation(
            f"Inbound order {order.reference} is {order.status}: only an open or receiving"
            " inbound order can be received against."
        )
    by_sku = {line.sku: line for line in order.lines}
    errors, seen = [], set()
    for i, line in enumerate(lines):
        expected = by_sku.get(line.sku)
        if expected is None:
            errors.append({"field": f"/lines/{i}/sku", "message": "not on the inbound order"})
        elif line.sku in seen:
            errors.append({"field": f"/lines/{i}/sku", "message": "listed twice"})
        elif expected.received + line.quantity > MAX_QUANTITY:
            errors.append(
                {
                    "field": f"/lines/{i}/quantity",
                    "message": f"would make {expected.received + line.quantity} received,"
                    f" more than the {MAX_QUANTITY} a line can hold",
                }
            )
        elif line.quantity != expected.outstanding and not line.reason:
            more_or_less = "more" if line.quantity > expected.outstanding else "less"
            errors.append(
                {
                    "field": f"/lines/{i}/reason",
                    "message": f"{line.quantity} is {more_or_less} than the"
                    f" {expected.outstanding} still expected: say why",
                }
            )
        seen.add(line.sku)
    if errors:
        raise ReceiptInvalid("The receipt does not fit the inbound order.", errors)
    units = {line.sku: line.quantity for line in lines}
    new_lines = tuple(
        replace(line, received=line.received + units.get(line.sku, 0)) for line in order.lines
    )
    done = all(line.received >= line.quantity for line in new_lines)
    # a receipt of nothing (every line 0, with its reason) leaves an open order open
    started = any(line.received for line in new_lines)
    status: InboundStatus = "received" if done else "receiving" if started else order.status
    return Received(replace(order, lines=new_lines, status=status), units)


def first_arrival(wanted: int, orders: Sequence[tuple[datetime | None, int]]) -> datetime | None:
    """When the first order (by `expected_at`; orders without one never count) whose
    incoming units would fill a short line of `wanted` more units is expected: `orders` are
    (expected_at, incoming units of the line's SKU) of the location's expected orders."""
    dated = sorted((at, n) for at, n in orders if at is not None)
    for at, incoming in dated:
        if incoming >= wanted:
            return at
    return None
