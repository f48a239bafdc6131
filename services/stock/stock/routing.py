"""Where a sale that names no location is reserved: the routing rule. No I/O here.

The rule, in order (docs/api-guide.md, "Routing and split shipments"):

1. The whole sale from the first location, in routing order, that can sell every line.
   Routing order: `routing_priority` (lower first), then the default location, then
   `location_id`.
2. Else, unless the sale forbids it (`allow_split: false`), split across the fewest
   locations that together can sell every line; among as many, the first combination in
   routing order. Each line takes its units from the combination's locations in routing
   order, so a line may itself be split. At most `MAX_COMBINATIONS` combinations are
   tried; past that the sale is split greedily (each location in routing order gives what
   is still wanted), which may use more locations than the fewest.
3. Else nothing is reserved: the sale waits at `waiting_location` (the default location, or
   the first in routing order when the tenant has no default).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

# Combinations of locations tried before the greedy split: with 20 locations, every pair and
# most triples (190 + 1140); each costs one sum per line.
MAX_COMBINATIONS = 2000


@dataclass(frozen=True)
class Site:
    """A location as routing sees it."""

    location_id: str
    routing_priority: int = 0
    is_default: bool = False

    @property
    def rank(self) -> tuple[int, bool, str]:
        return (self.routing_priority, not self.is_default, self.location_id)


# (location_id, sku) -> units that location can sell of that SKU
Sellable = Mapping[tuple[str, str], int]
# (location_id, sku, quantity), in routing order of the locations, then by SKU
Plan = list[tuple[str, str, int]]


def in_order(sites: Iterable[Site]) -> list[Site]:
    """The locations in routing order."""
    return sorted(sites, key=lambda s: s.rank)


def waiting_location(sites: Iterable[Site]) -> str | None:
    """Where a routed sale waits for stock: the default location, else the first in routing
    order; None when there is no location at all."""
    ordered = in_order(sites)
    default = next((s for s in ordered if s.is_default), None)
    chosen = default or (ordered[0] if ordered else None)
    return chosen.location_id if chosen else None


def route(
    wanted: Mapping[str, int],
    sellable: Sellable,
    sites: Iterable[Site],
    allow_split: bool = True,
    max_combinations: int = MAX_COMBINATIONS,
) -> Plan | None:
    """Where to take each SKU's `wanted` units from, or None when the stock is not there
    (or only split and the sale may not be). `wanted` holds the units per SKU to reserve
    (positive); an empty `wanted` is placed at the first location (no units)."""
    ordered = [s.location_id for s in in_order(sites)]
    if not ordered:
        return None
    skus = sorted(wanted)
    for location in ordered:
        if all(sellable.get((location, sku), 0) >= wanted[sku] for sku in skus):
            return [(location, sku, wanted[sku]) for sku in skus]
    if not allow_split or not _enough(wanted, sellable, ordered):
        return None
    tried = 0
    for size in range(2, len(ordered) + 1):
        for combination in combinations(ordered, size):
            tried += 1
            if tried > max_combinations:
                return _fill(wanted, sellable, ordered)
            if _enough(wanted, sellable, combination):
                return _fill(wanted, sellable, combination)
    return None  # unreachable: every location together has enough


def _enough(wanted: Mapping[str, int], sellable: Sellable, locations: Sequence[str]) -> bool:
    return all(
        sum(sellable.get((loc, sku), 0) for loc in locations) >= n for sku, n in wanted.items()
    )


def _fill(wanted: Mapping[str, int], sellable: Sellable, locations: Sequence[str]) -> Plan:
    """Each SKU from `locations` in their order, each giving what is still wanted."""
    taken: dict[tuple[str, str], int] = {}
    for sku in sorted(wanted):
        left = wanted[sku]
        for location in locations:
            if left == 0:
                break
            take = min(left, sellable.get((location, sku), 0))
            if take > 0:
                taken[(location, sku)] = take
                left -= take
    position = {loc: i for i, loc in enumerate(locations)}
    return [
        (loc, sku, n)
        for (loc, sku), n in sorted(taken.items(), key=lambda kv: (position[kv[0][0]], kv[0][1]))
    ]


def primary(plan: Plan, sites: Iterable[Site]) -> str:
    """The location holding the most units of a plan, ties in routing order: the
    reservation's `location_id`."""
    units: dict[str, int] = {}
    for location, _, quantity in plan:
        units[location] = units.get(location, 0) + quantity
    rank = {s.location_id: s.rank for s in sites}
    return min(units, key=lambda loc: (-units[loc], rank.get(loc, (0, True, loc))))
