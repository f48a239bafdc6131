"""The sale and its state machine. `orders` is the only writer of a sale's status."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

Status = Literal[
    "awaiting_stock", "pending", "backordered", "in_fulfillment", "shipped", "delivered", "canceled"
]

TRANSITIONS: dict[str, frozenset[str]] = {
    "awaiting_stock": frozenset({"pending", "backordered", "canceled"}),
    "backordered": frozenset({"pending", "canceled"}),
    "pending": frozenset({"in_fulfillment", "canceled"}),
    "in_fulfillment": frozenset({"shipped", "canceled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "canceled": frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, sale_id: str, current: str, target: str) -> None:
        super().__init__(f"sale {sale_id} is {current} and cannot become {target}")
        self.sale_id, self.current, self.target = sale_id, current, target


@dataclass
class Sale:
    id: UUID
    tenant_id: UUID
    sale_id: str
    status: str
    version: int
    shop: dict[str, Any]
    location_id: str | None  # None: stock routes the sale (see `allocations`)
    lines: list[dict[str, Any]]
    customer: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    cancel_reason: str | None
    reservation: dict[str, Any] | None
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # the optional details (docs/api-guide.md, "Order details")
    priority: str = "normal"
    instructions: str | None = None
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    invoice_value: dict[str, Any] | None = None
    cash_on_delivery: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    # the version of the sale's last change that asked stock for a new reservation (its
    # creation, or an edit of its lines or location): an outcome answering an older version
    # is stale ("Editing a sale" in docs/api-guide.md)
    reservation_version: int = 1
    allow_split: bool = True  # a routed sale may be split across locations
    # the parts shipped so far, {location_id, shipped_at}, in the order they shipped
    shipped_parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def required_dates(self) -> dict[str, datetime | None] | None:
        if self.ship_by is None and self.deliver_by is None:
            return None
        return {"ship_by": self.ship_by, "deliver_by": self.deliver_by}


# A sale's status changes, oldest first: from_status, to_status, reason, actor, at.
History = list[dict[str, Any]]


@dataclass(frozen=True)
class NewSale:
    """What a caller gives to create a sale; the platform adds the rest."""

    sale_id: str
    shop: dict[str, Any]
    location_id: str | None
    lines: list[dict[str, Any]]
    customer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    priority: str = "normal"
    instructions: str | None = None
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    invoice_value: dict[str, Any] | None = None
    cash_on_delivery: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    allow_split: bool = True


def open_sale(tenant_id: UUID, new: NewSale, now: datetime) -> Sale:
    """A sale as created: waiting for its reservation's outcome."""
    return Sale(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        sale_id=new.sale_id,
        status="awaiting_stock",
        version=1,
        shop=new.shop,
        location_id=new.location_id,
        lines=new.lines,
        customer=new.customer,
        shipping_address=new.shipping_address,
        cancel_reason=None,
        reservation=None,
        created_at=now,
        updated_at=now,
        priority=new.priority,
        instructions=new.instructions,
        ship_by=new.ship_by,
        deliver_by=new.deliver_by,
        invoice_value=new.invoice_value,
        cash_on_delivery=new.cash_on_delivery,
        properties=new.properties,
        allow_split=new.allow_split,
    )


def created_history(sale: Sale, actor: str) -> History:
    """The history of a sale just created: the one entry its insert wrote."""
    return [
        {
            "from_status": None,
            "to_status": sale.status,
            "reason": "created",
            "actor": actor,
            "at": sale.created_at,
        }
    ]


@dataclass(frozen=True)
class StatusChange:
    sale: Sale
    previous: str
    reason: str | None


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def transition(sale: Sale, target: str, reason: str | None = None) -> StatusChange:
    if not can_transition(sale.status, target):
        raise IllegalTransition(sale.sale_id, sale.status, target)
    previous = sale.status
    sale.status = target
    sale.version += 1
    return StatusChange(sale, previous, reason)


# A short line's product may not be backordered (this far): stock reserved nothing and did
# not queue the sale, so it ends `canceled` with this reason.
BACKORDER_DENIED = "backorder_denied"


def backorder_denied(failure: dict[str, Any]) -> bool:
    return any(s.get("reason") == BACKORDER_DENIED for s in failure.get("shortfalls", []))


def stale_outcome(sale: Sale, reservation: dict[str, Any]) -> bool:
    """Whether a reservation event answers a version of the sale older than its last edit
    that changed what to reserve: stock has been asked again since, so the event says
    nothing about the sale as it is. An event without `sale_version` (published before
    edits existed) is never stale."""
    answered = reservation.get("sale_version")
    return answered is not None and answered < sale.reservation_version


def apply_reservation_outcome(
    sale: Sale, reserved: bool, reservation: dict[str, Any]
) -> StatusChange | None:
    """stock.reserved makes a waiting sale pending; a failure makes it backordered.

    Outcomes that arrive after the sale moved on (for example canceled) change nothing, nor
    do those that answer a version before the sale's last reservation-changing edit.
    """
    if stale_outcome(sale, reservation):
        return None
    sale.reservation = reservation
    if not reserved and sale.status == "awaiting_stock" and backorder_denied(reservation):
        sale.cancel_reason = BACKORDER_DENIED
        return transition(sale, "canceled", BACKORDER_DENIED)
    target = "pending" if reserved else "backordered"
    if sale.status == target or not can_transition(sale.status, target):
        return None
    if not reserved and sale.status != "awaiting_stock":
        return None
    return transition(sale, target, "stock_reserved" if reserved else "stock_short")


CancelReason = Literal["out_of_stock", "customer_request", "other"]


class VersionMismatch(Exception):
    """The caller asked for a change to a version of the sale that is no longer current."""

    def __init__(self, sale: "Sale", expected: int) -> None:
        super().__init__(f"sale {sale.sale_id} is at version {sale.version}, not {expected}")
        self.sale, self.expected = sale, expected


def cancel(sale: Sale, reason: CancelReason, version: int | None = None) -> StatusChange | None:
    """Cancel before shipping, and only at `version` if one is given; cancelling a canceled
    sale again changes nothing, whatever the version asked for (the outcome wanted holds).
    A sale of which any part has shipped cannot be canceled."""
    if sale.status == "canceled":
        return None
    if version is not None and sale.version != version:
        raise VersionMismatch(sale, version)
    if sale.shipped_parts:
        raise IllegalTransition(sale.sale_id, sale.status, "canceled")
    change = transition(sale, "canceled", reason)
    sale.cancel_reason = reason
    return change


def claim(sale: Sale) -> StatusChange:
    """Only a pending sale can be claimed for shipping, so a sale is claimed once."""
    return transition(sale, "in_fulfillment", "shipping_init")


def ship_locations(sale: Sale) -> list[str]:
    """The locations a sale ships from, one part each: its reservation's own `location_id`
    first, then those of its lines elsewhere (`other_locations`, for a sale split across
    locations). A sale whose reservation names no location ships from its own."""
    reservation = sale.reservation or {}
    primary = reservation.get("location_id") or sale.location_id
    found = [primary] if primary else []
    for place in reservation.get("other_locations") or []:
        found.append(place.get("location_id"))
    for line in reservation.get("lines") or []:
        found.append(line.get("location_id"))
    return [where for where in dict.fromkeys(found) if isinstance(where, str) and where]


class NotAPart(Exception):
    """The sale ships nothing from the location asked for."""

    def __init__(self, sale: Sale, location_id: str) -> None:
        super().__init__(f"sale {sale.sale_id} ships nothing from {location_id}")
        self.sale, self.location_id = sale, location_id


def ship_part(sale: Sale, location_id: str | None, at: datetime) -> StatusChange | None:
    """The part of a sale in fulfillment at `location_id` has left (None: the whole sale);
    the sale is shipped when every location it ships from has. Only a sale in fulfillment
    ships, so a canceled sale never does; shipping a part twice is the same as once. Raises
    IllegalTransition for a sale that cannot ship, NotAPart for a location it does not ship
    from."""
    if sale.status in ("shipped", "delivered"):
        return None
    if sale.status != "in_fulfillment":
        raise IllegalTransition(sale.sale_id, sale.status, "shipped")
    locations = ship_locations(sale)
    if location_id is not None and location_id not in locations:
        raise NotAPart(sale, location_id)
    shipped = {part["location_id"] for part in sale.shipped_parts}
    stamp = at.isoformat()
    added = [
        {"location_id": where, "shipped_at": stamp}
        for where in (locations if location_id is None else [location_id])
        if where not in shipped
    ]
    sale.shipped_parts = [*sale.shipped_parts, *added]
    if shipped.union(p["location_id"] for p in added).issuperset(locations):
        return transition(sale, "shipped", "fulfillment_shipped")
    return None


def ship(sale: Sale, at: datetime) -> StatusChange | None:
    """The whole sale has left: every part of it."""
    return ship_part(sale, None, at)


def deliver(sale: Sale) -> StatusChange | None:
    """A shipped sale is delivered once the fulfillment of every location it ships from is
    (as orders has heard of them)."""
    if sale.status != "shipped":
        return None
    delivered = {_location_of(f) for f in sale.fulfillments if f.get("status") == "delivered"}
    if not delivered.issuperset(ship_locations(sale)):
        return None
    return transition(sale, "delivered", "fulfillment_delivered")


def _location_of(fulfillment: dict[str, Any]) -> str | None:
    """A fulfillment's location code: `location.location_id` (data version 2), or the code
    itself (version 1)."""
    location = fulfillment.get("location")
    return location.get("location_id") if isinstance(location, dict) else location


def end_reservation(sale: Sale, reservation: dict[str, Any]) -> None:
    """A released or committed reservation is kept as it ended; the status does not move.
    One that answers a version before the sale's last reservation-changing edit is stale."""
    if not stale_outcome(sale, reservation):
        sale.reservation = reservation


def add_fulfillment(sale: Sale, fulfillment: dict[str, Any]) -> None:
    """A fulfillment created for the sale; the same one twice is kept once."""
    if all(f["id"] != fulfillment["id"] for f in sale.fulfillments):
        sale.fulfillments = [*sale.fulfillments, fulfillment]


def update_fulfillment(sale: Sale, fulfillment: dict[str, Any]) -> StatusChange | None:
    """A fulfillment moved on: the sale keeps its latest state, and is delivered once the
    fulfillments of all its parts are."""
    kept = [f for f in sale.fulfillments if f["id"] != fulfillment["id"]]
    if len(kept) == len(sale.fulfillments):  # one orders had not heard of: kept from now on
        sale.fulfillments = [*sale.fulfillments, fulfillment]
    else:
        sale.fulfillments = [
            fulfillment if f["id"] == fulfillment["id"] else f for f in sale.fulfillments
        ]
    return deliver(sale) if fulfillment["status"] == "delivered" else None


def stock_issues(sale: Sale) -> list[dict[str, Any]]:
    """Why a sale created short of stock is not reserved: one entry per short line (`sku`,
    `requested`, `available`, `reason`), from stock's reservation failure; empty for a sale
    that is not backordered, nor canceled because a product's backorders are denied. A
    line whose product has pre-order terms carries them (`preorder`), and one that an
    inbound order expected at the location would fill, its expected arrival
    (`expected_at`)."""
    denied = sale.status == "canceled" and sale.cancel_reason == BACKORDER_DENIED
    if not (sale.status == "backordered" or denied) or not sale.reservation:
        return []
    keys = ("sku", "requested", "available", "reason")
    return [
        {key: short[key] for key in keys}
        | ({"preorder": short["preorder"]} if short.get("preorder") else {})
        | ({"expected_at": short["expected_at"]} if short.get("expected_at") else {})
        for short in sale.reservation.get("shortfalls", [])
    ]


def lines_naming(new: NewSale, skus: set[str]) -> list[tuple[int, str]]:
    """The lines (index, sku) of a sale that name one of `skus`."""
    return [(i, line["sku"]) for i, line in enumerate(new.lines) if line["sku"] in skus]


# --- edits ("Editing a sale" in docs/api-guide.md) -------------------------------------------

# A sale can be edited until shipping starts: then its lines are on their way to a picker.
EDITABLE = frozenset({"awaiting_stock", "backordered", "pending"})
# The fields whose change asks stock for a new reservation; the others change the sale only.
RESERVATION_FIELDS = ("lines", "location_id", "allow_split")
EDITED = "edited"


def moves_reservation(changed: list[str], location_id: str | None) -> bool:
    """Whether an edit of these fields asks stock for a new reservation: one of the lines or
    the location does, and one of `allow_split` when the sale is routed (no location): a
    sale at a location is never split, whatever `allow_split` says."""
    return any(
        name in RESERVATION_FIELDS and (name != "allow_split" or location_id is None)
        for name in changed
    )


class NotEditable(Exception):
    """The sale's status no longer allows an edit (shipping started, or it is canceled)."""

    def __init__(self, sale: Sale) -> None:
        super().__init__(f"sale {sale.sale_id} is {sale.status} and can no longer be edited")
        self.sale = sale


@dataclass(frozen=True)
class Edit:
    sale: Sale
    previous: str  # the status before the edit
    changed: list[str]  # the top-level fields changed, in the order given

    @property
    def moves_reservation(self) -> bool:
        return moves_reservation(self.changed, self.sale.location_id)

    @property
    def status_change(self) -> StatusChange:
        """The edit as the status history records it (from and to may be the same)."""
        return StatusChange(self.sale, self.previous, EDITED)


def _current(sale: Sale, name: str) -> Any:
    return sale.required_dates if name == "required_dates" else getattr(sale, name)


def edit(sale: Sale, fields: dict[str, Any], version: int | None) -> Edit | None:
    """Change `fields` (top-level field names and their new values, as the sale keeps them;
    `required_dates` as `{"ship_by", "deliver_by"}` or None) of the sale at `version` (None:
    whatever its version, for `If-Match: *`).

    A stale version is refused first (VersionMismatch), then a sale past `pending`
    (NotEditable). Fields given with their current values change nothing; when none
    changes, neither does the sale (None). Otherwise the version goes up once, and an edit
    of the lines, location or `allow_split` takes the sale back to `awaiting_stock`, its
    reservation cleared, until stock answers this version (`reservation_version`)."""
    if version is not None and sale.version != version:
        raise VersionMismatch(sale, version)
    if sale.status not in EDITABLE:
        raise NotEditable(sale)
    changed = [name for name, value in fields.items() if _current(sale, name) != value]
    if not changed:
        return None
    for name in changed:
        if name == "required_dates":
            dates = fields[name] or {}
            sale.ship_by, sale.deliver_by = dates.get("ship_by"), dates.get("deliver_by")
        else:
            setattr(sale, name, fields[name])
    previous = sale.status
    sale.version += 1
    result = Edit(sale, previous, changed)
    if result.moves_reservation:
        sale.status = "awaiting_stock"
        sale.reservation = None
        sale.reservation_version = sale.version
    return result


def allocations(sale: Sale) -> list[dict[str, Any]]:
    """Where the sale's units are reserved: one entry per location (`location_id`, `lines`
    of `sku` and `quantity`), the reservation's location first, then the others as stock
    listed them. Empty while nothing is reserved (waiting, backordered) and once the
    reservation is released; a committed one (shipped) keeps them."""
    reservation = sale.reservation
    if not reservation or reservation.get("status") not in ("active", "committed"):
        return []
    primary = reservation.get("location_id")
    order = [primary] + [p["location_id"] for p in reservation.get("other_locations") or []]
    by_location: dict[str, list[dict[str, Any]]] = {}
    for line in reservation.get("lines") or []:
        where = line.get("location_id") or primary
        if where not in order:
            order.append(where)
        by_location.setdefault(where, []).append({"sku": line["sku"], "quantity": line["quantity"]})
    return [{"location_id": loc, "lines": by_location[loc]} for loc in order if loc in by_location]
