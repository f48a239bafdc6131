"""Fulfillments, their state machine and shipping-provider choice. No I/O here."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

STATUS_ORDER = ("waiting_for_picking", "picking", "packed", "shipped", "delivered")


class IllegalTransition(Exception):
    pass


@dataclass
class Fulfillment:
    id: UUID
    tenant_id: UUID
    fulfillment_id: str
    sale: UUID
    sale_id: str
    location: str  # the location's code (location_id)
    status: str
    shipping_provider: str  # the provider's code (shipping_provider_id)
    tracking_number: str
    is_bulky: bool
    version: int
    date_created: datetime
    # what the fulfillment shows of its sale and location, copied when it was created
    shop_channel: str
    shop_name: str
    sale_date_created: datetime
    location_name: str
    # its place among its sale's fulfillments: 0 for the reservation's own location, then
    # the other locations of a split sale in the order the reservation lists them
    part: int = 0


# The sale's status that each status of its fulfillment implies: orders claims the sale before
# the fulfillment exists, ships it before the fulfillment is marked shipped, delivers it on the
# fulfillment's delivery, and a fulfillment is canceled only with its sale.
SALE_STATUS_OF = {
    "waiting_for_picking": "in_fulfillment",
    "picking": "in_fulfillment",
    "packed": "in_fulfillment",
    "shipped": "shipped",
    "delivered": "delivered",
    "canceled": "canceled",
}


def sale_status(fulfillment_status: str) -> str:
    return SALE_STATUS_OF[fulfillment_status]


def fulfillment_number(fulfillment: UUID) -> str:
    return f"F-{fulfillment.hex[:12].upper()}"


def check_digit(digits: str) -> int:
    """Mod-10 (Luhn) check digit, so a mistyped tracking number is caught at once."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def tracking_number(prefix: str, serial: int) -> str:
    digits = f"{serial:010d}"
    return f"{prefix}{digits}{check_digit(digits)}"


def choose_provider(rules: dict[str, str], location: str, channel: str, default: str) -> str:
    """Rules map `location:<id>` or `channel:<name>` to a provider; location wins."""
    return rules.get(f"location:{location}") or rules.get(f"channel:{channel}") or default


def next_status(current: str, target: str) -> str | None:
    """The status to move to, or None when already there. Fulfillments only move forward;
    `shipped` cannot be skipped, and nothing leaves `canceled`."""
    if target == current:
        return None
    if target == "canceled":
        if current in ("shipped", "delivered"):
            raise IllegalTransition(f"a {current} fulfillment cannot be canceled")
        return target
    if current == "canceled" or target not in STATUS_ORDER:
        raise IllegalTransition(f"a {current} fulfillment cannot become {target}")
    if STATUS_ORDER.index(target) < STATUS_ORDER.index(current):
        raise IllegalTransition(f"a {current} fulfillment cannot go back to {target}")
    if target == "delivered" and current != "shipped":
        raise IllegalTransition(f"a {current} fulfillment must be shipped before delivered")
    return target


def why_not(current: str, target: str) -> str | None:
    """Why a fulfillment cannot move from `current` to `target`, as a sentence; None if it can."""
    try:
        next_status(current, target)
    except IllegalTransition as exc:
        return str(exc).capitalize() + "."
    return None


def advance(f: Fulfillment, target: str) -> Fulfillment | None:
    """`f` moved to `target` (one version later), or None when it is there already.

    Raises IllegalTransition if it cannot move there."""
    status = next_status(f.status, target)
    if status is None:
        return None
    return dataclasses.replace(f, status=status, version=f.version + 1)


def movable(fulfillments: Sequence[Fulfillment], target: str) -> list[Fulfillment]:
    """Those that can move to `target` (where the others are simply left alone)."""
    return [f for f in fulfillments if why_not(f.status, target) is None]


@dataclass(frozen=True)
class ShippingDetails:
    """Where a fulfillment ships from and to, as its sale said when it was claimed: its
    label's sender (the location's `{name, address}` as stock's reservation named it, or
    None) and recipient (free-form, as the client sent them)."""

    fulfillment: UUID
    customer: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    sender: dict[str, Any] | None = None


def sender_of(reservation: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The location a sale's reservation names (`{name, address}`), or None when it names
    none (a reservation published before stock named locations)."""
    location = (reservation or {}).get("location")
    if not isinstance(location, Mapping) or not isinstance(location.get("name"), str):
        return None
    address = location.get("address")
    return {"name": location["name"], "address": address if isinstance(address, dict) else None}


@dataclass(frozen=True)
class Part:
    """What one location ships of a claimed sale: one fulfillment each. `location` is the
    place as stock's reservation named it (`{name, address}`), or None when it did not;
    `lines` are the reservation's lines at that location."""

    location_id: str
    location: Mapping[str, Any] | None
    lines: list[Mapping[str, Any]]

    @property
    def is_bulky(self) -> bool:
        """A shipment is bulky when any of its reserved lines' product is."""
        return any(line.get("is_bulky") for line in self.lines)

    @property
    def name(self) -> str:
        """The location's name as the reservation gives it, else its code."""
        name = self.location.get("name") if isinstance(self.location, Mapping) else None
        return name if isinstance(name, str) and name else self.location_id

    @property
    def sender(self) -> dict[str, Any] | None:
        """The location as the label's sender (`{name, address}`), or None when the
        reservation did not name it."""
        return sender_of({"location": self.location})


class NothingToShip(ValueError):
    """A claimed sale whose reservation names no location, and that names none itself."""


def parts_of(location_id: str | None, reservation: Mapping[str, Any] | None) -> list[Part]:
    """The parts a claimed sale ships, one per location its reservation holds units at: the
    reservation's own `location_id` first (a line there names no location of its own), then
    each of its `other_locations` in order, with the lines that name it. A sale reserved at
    one location is one part. A sale whose reservation names no location ships from its own
    `location_id` (reservations published before stock named their location)."""
    reservation = reservation or {}
    primary = reservation.get("location_id") or location_id
    if not isinstance(primary, str) or not primary:
        raise NothingToShip("the sale's reservation names no location to ship from")
    places: dict[str, Mapping[str, Any] | None] = {primary: reservation.get("location")}
    for place in reservation.get("other_locations") or []:
        if isinstance(place, Mapping) and isinstance(place.get("location_id"), str):
            places.setdefault(place["location_id"], place.get("location"))
    lines: dict[str, list[Mapping[str, Any]]] = {where: [] for where in places}
    for line in reservation.get("lines") or []:
        where = line.get("location_id") or primary
        if where not in lines:  # a line at a place other_locations does not list
            places[where] = None
            lines[where] = []
        lines[where].append(line)
    return [Part(where, places[where], lines[where]) for where in places]
