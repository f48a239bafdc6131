"""Bundles (`stock.bundles`): components checked for cycles, sale lines expanded into
components, shortfalls named by the bundle line, and what a bundle can sell, derived."""

import uuid

from stock.bundles import component_errors, derived_available, expand, per_bundle
from stock.domain import (
    Policy,
    ReservationFailed,
    Reserved,
    SaleToReserve,
    Shortfall,
    StockRecord,
    name_bundles,
    reserve_routed,
    reserve_sale,
)
from stock.routing import Site

TENANT = uuid.uuid4()
KIT = {"KIT": (("A", 2), ("B", 1))}
NESTED = {"BOX": (("KIT", 3), ("C", 1)), "KIT": (("A", 2), ("B", 1))}


def record(sku: str, quantity: int, location: str = "wh-1", reserved: int = 0) -> StockRecord:
    return StockRecord(uuid.uuid4(), TENANT, location, sku, quantity, reserved, 1)


def sale(*lines, bundles=KIT, location: str | None = "wh-1") -> SaleToReserve:
    return SaleToReserve(
        uuid.uuid4(), "S-1", TENANT, location, lines, bundles=tuple(sorted(bundles.items()))
    )


def policies(*skus: str) -> dict:
    return {(TENANT, s): Policy() for s in skus}


# --- components -------------------------------------------------------------------------


def test_components_must_exist_not_be_the_bundle_and_not_be_named_twice():
    errors = component_errors(
        "KIT", (("A", 1), ("KIT", 1), ("NOPE", 2), ("A", 3)), {"A", "KIT"}, {}
    )
    assert errors == [
        (1, "a bundle cannot contain itself"),
        (2, "no product with sku 'NOPE'"),
        (3, "'A' is named twice: give its quantity once"),
    ]


def test_a_component_that_leads_back_to_the_bundle_is_a_cycle_at_any_depth():
    bundles = {"BOX": (("KIT", 1),), "KIT": (("A", 1),), "CRATE": (("BOX", 2),)}
    assert component_errors("A", (("CRATE", 1),), {"CRATE"}, bundles) == [
        (0, "'CRATE' contains 'A': bundles cannot form a cycle")
    ]
    # the same bundles, with no way back: fine
    assert component_errors("PALLET", (("CRATE", 1), ("A", 4)), {"CRATE", "A"}, bundles) == []


# --- expansion --------------------------------------------------------------------------


def test_a_bundle_line_becomes_its_components_times_the_line_and_others_stay():
    assert expand([("KIT", 3), ("C", 1)], KIT) == [("A", 6), ("B", 3), ("C", 1)]
    assert expand([("BOX", 2)], NESTED) == [("A", 12), ("B", 6), ("C", 2)]
    assert expand([("A", 1)], {}) == [("A", 1)]


def test_per_bundle_sums_a_component_named_at_two_depths():
    assert per_bundle("TWICE", {"TWICE": (("KIT", 1), ("A", 1))} | KIT) == {"A": 3, "B": 1}


def test_a_sale_needs_and_locks_the_components_of_its_bundle_lines():
    s = sale(("KIT", 2), ("A", 1))
    assert s.quantities() == {"A": 5, "B": 2}
    assert s.keys() == {(TENANT, "wh-1", "A"), (TENANT, "wh-1", "B")}
    plain = SaleToReserve(uuid.uuid4(), "S-2", TENANT, "wh-1", (("A", 1),))
    assert plain.needs() is plain.lines  # no bundles: the lines as they are


# --- derived availability ---------------------------------------------------------------


def test_a_bundle_can_sell_as_many_as_its_scarcest_component_allows():
    assert derived_available({"A": 2, "B": 1}, {"A": 7, "B": 10}) == 3
    assert derived_available({"A": 2, "B": 1}, {"A": 7}) == 0  # no record of B
    assert derived_available({}, {"A": 7}) == 0


# --- reservation ------------------------------------------------------------------------


def test_a_bundle_sale_reserves_its_components_all_or_nothing():
    a, b = record("A", 10), record("B", 3)
    by_key = {r.key: r for r in (a, b)}
    outcome = reserve_sale(sale(("KIT", 3)), by_key, {(TENANT, "wh-1")}, policies("A", "B", "KIT"))
    assert isinstance(outcome, Reserved)
    assert sorted((sku, n) for sku, n, _ in outcome.lines) == [("A", 6), ("B", 3)]
    assert (a.reserved, b.reserved) == (6, 3)

    short = reserve_sale(sale(("KIT", 1)), by_key, {(TENANT, "wh-1")}, policies("A", "B"))
    assert isinstance(short, ReservationFailed)
    assert short.shortfalls == [Shortfall("KIT", 1, 0, "insufficient_stock")]
    assert (a.reserved, b.reserved) == (6, 3)  # nothing of A taken: never half a kit


def test_a_short_bundle_line_says_how_many_bundles_could_be_sold():
    a, b = record("A", 7), record("B", 10)
    by_key = {r.key: r for r in (a, b)}
    short = reserve_sale(sale(("KIT", 5), ("B", 2)), by_key, {(TENANT, "wh-1")}, policies("A", "B"))
    assert isinstance(short, ReservationFailed)
    assert short.shortfalls == [Shortfall("KIT", 5, 3, "insufficient_stock")]
    assert a.reserved == b.reserved == 0


def test_a_routed_bundle_sale_takes_its_components_where_routing_finds_them():
    records = [record("A", 1, "north"), record("B", 5, "north"), record("A", 4, "south")]
    records.append(record("B", 2, "south"))
    by_key = {r.key: r for r in records}
    outcome = reserve_routed(
        sale(("KIT", 2), location=None),
        by_key,
        [Site("north", 0), Site("south", 1)],
        policies("A", "B"),
    )
    assert isinstance(outcome, Reserved)
    assert outcome.location_id == "south"
    assert sorted((sku, n) for sku, n, _ in outcome.lines) == [("A", 4), ("B", 2)]


def test_shortfalls_are_unchanged_for_a_sale_without_bundles():
    shortfalls = [Shortfall("A", 3, 1, "insufficient_stock")]
    plain = SaleToReserve(uuid.uuid4(), "S-3", TENANT, "wh-1", (("A", 3),))
    assert name_bundles(plain, shortfalls) is shortfalls


def test_a_bundle_line_takes_the_worst_reason_of_its_short_components():
    shortfalls = [
        Shortfall("A", 4, 1, "insufficient_stock"),
        Shortfall("B", 2, 0, "backorder_denied"),
    ]
    assert name_bundles(sale(("KIT", 2)), shortfalls) == [
        Shortfall("KIT", 2, 0, "backorder_denied")
    ]
