"""The routing rule (`stock.routing`) clause by clause, and `reserve_routed`, which applies
stock policies around it."""

import uuid

from stock.domain import (
    Policy,
    ReservationFailed,
    Reserved,
    SaleToReserve,
    StockRecord,
    reserve_routed,
)
from stock.routing import Site, in_order, primary, route, waiting_location

TENANT = uuid.uuid4()


def sites(*specs: tuple[str, int] | tuple[str, int, bool]) -> list[Site]:
    return [Site(*spec) for spec in specs]


# --- the order -------------------------------------------------------------------------


def test_routing_order_is_priority_then_the_default_then_location_id():
    listed = sites(("c", 1), ("b", 1), ("z", 0), ("d", 1, True), ("a", 2, False))
    assert [s.location_id for s in in_order(listed)] == ["z", "d", "b", "c", "a"]


def test_a_sale_waits_at_the_default_else_at_the_first_in_order_else_nowhere():
    assert waiting_location(sites(("a", 0), ("b", 9, True))) == "b"
    assert waiting_location(sites(("b", 2), ("a", 2), ("c", 1))) == "c"
    assert waiting_location([]) is None


# --- clause 1: the whole sale at one location ------------------------------------------


def test_the_whole_sale_goes_to_the_first_location_that_can_sell_every_line():
    listed = sites(("far", 5), ("near", 1), ("mid", 3))
    stock = {("near", "A"): 5, ("near", "B"): 0, ("mid", "A"): 5, ("mid", "B"): 2}
    stock |= {("far", "A"): 9, ("far", "B"): 9}
    assert route({"A": 2, "B": 1}, stock, listed) == [("mid", "A", 2), ("mid", "B", 1)]


def test_a_location_that_can_fill_the_sale_wins_over_a_split_among_better_ones():
    listed = sites(("a", 1), ("b", 2), ("c", 3))
    stock = {("a", "A"): 1, ("b", "A"): 1, ("c", "A"): 2}
    assert route({"A": 2}, stock, listed) == [("c", "A", 2)]


def test_an_empty_sale_goes_to_the_first_location_and_no_location_routes_nothing():
    assert route({}, {}, sites(("b", 1), ("a", 1))) == []
    assert route({"A": 1}, {}, []) is None


# --- clause 2: a split across the fewest locations -------------------------------------


def test_a_split_uses_the_fewest_locations_even_when_more_better_ones_would_do():
    listed = sites(("a", 1), ("b", 2), ("c", 3), ("d", 4))
    # a + b + c together have 6, but d alone with a also has them: two locations beat three
    stock = {("a", "A"): 2, ("b", "A"): 2, ("c", "A"): 2, ("d", "A"): 4}
    assert route({"A": 6}, stock, listed) == [("a", "A", 2), ("d", "A", 4)]


def test_among_as_many_locations_the_first_combination_in_routing_order_wins():
    listed = sites(("a", 1), ("b", 2), ("c", 3))
    stock = {("a", "A"): 3, ("b", "A"): 3, ("c", "A"): 3}
    assert route({"A": 5}, stock, listed) == [("a", "A", 3), ("b", "A", 2)]


def test_each_line_takes_its_units_in_routing_order_and_may_itself_be_split():
    listed = sites(("a", 1), ("b", 2))
    stock = {("a", "A"): 1, ("a", "B"): 4, ("b", "A"): 4, ("b", "B"): 1}
    assert route({"A": 3, "B": 2}, stock, listed) == [
        ("a", "A", 1),
        ("a", "B", 2),
        ("b", "A", 2),
    ]


def test_a_sale_that_may_not_split_is_not_routed_when_no_location_can_fill_it():
    listed = sites(("a", 1), ("b", 2))
    stock = {("a", "A"): 2, ("b", "A"): 2}
    assert route({"A": 3}, stock, listed, allow_split=False) is None
    assert route({"A": 3}, stock, listed) == [("a", "A", 2), ("b", "A", 1)]


def test_past_the_bound_on_combinations_the_split_is_greedy_in_routing_order():
    listed = sites(("a", 1), ("b", 2), ("c", 3), ("d", 4))
    stock = {("a", "A"): 1, ("b", "A"): 1, ("c", "A"): 1, ("d", "A"): 3}
    # the fewest is {a, d} or any pair with d; greedy takes a, b, c, then d
    assert route({"A": 4}, stock, listed) == [("a", "A", 1), ("d", "A", 3)]
    assert route({"A": 4}, stock, listed, max_combinations=1) == [
        ("a", "A", 1),
        ("b", "A", 1),
        ("c", "A", 1),
        ("d", "A", 1),
    ]


# --- clause 3: not there at all ---------------------------------------------------------


def test_a_sale_the_locations_together_cannot_fill_is_not_routed():
    listed = sites(("a", 1), ("b", 2))
    stock = {("a", "A"): 2, ("b", "A"): 2, ("a", "B"): 9}
    assert route({"A": 5, "B": 1}, stock, listed) is None


def test_the_primary_location_holds_the_most_units_ties_in_routing_order():
    listed = sites(("a", 1), ("b", 2), ("c", 2, True))
    assert primary([("a", "A", 1), ("b", "A", 3)], listed) == "b"
    assert primary([("b", "A", 2), ("c", "A", 2)], listed) == "c"
    assert primary([("a", "A", 2), ("c", "B", 2)], listed) == "a"


# --- reserve_routed: the rule with stock policies ---------------------------------------


def record(location: str, sku: str, quantity: int, threshold: int = 0) -> StockRecord:
    return StockRecord(uuid.uuid4(), TENANT, location, sku, quantity, 0, 1, threshold=threshold)


def routed_sale(*lines: tuple[str, int], allow_split: bool = True) -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), "S-1", TENANT, None, lines, 3, allow_split)


def policies(**by_sku: Policy) -> dict:
    return {(TENANT, sku): p for sku, p in by_sku.items()}


def test_a_split_reservation_names_its_primary_location_and_each_lines_place():
    records = [record("a", "A", 2), record("b", "A", 5), record("a", "B", 1)]
    by_key = {r.key: r for r in records}
    outcome = reserve_routed(
        routed_sale(("A", 4), ("B", 1)),
        by_key,
        sites(("a", 1), ("b", 2)),
        policies(A=Policy(), B=Policy()),
    )
    assert isinstance(outcome, Reserved)
    assert outcome.location_id == "a"  # 2 A + 1 B there, 2 A at b
    assert sorted((sku, qty, outcome.at[rid]) for sku, qty, rid in outcome.lines) == [
        ("A", 2, "a"),
        ("A", 2, "b"),
        ("B", 1, "a"),
    ]
    assert [(r.location_id, r.sku, r.reserved) for r in records] == [
        ("a", "A", 2),
        ("b", "A", 2),
        ("a", "B", 1),
    ]


def test_routing_sells_only_what_the_threshold_leaves_and_skips_infinite_products():
    records = [record("a", "A", 5, threshold=3), record("b", "A", 3)]
    outcome = reserve_routed(
        routed_sale(("A", 3), ("E", 100)),
        {r.key: r for r in records},
        sites(("a", 1), ("b", 2)),
        policies(A=Policy(), E=Policy(infinite=True)),
    )
    assert isinstance(outcome, Reserved)
    assert [(sku, qty, outcome.at[rid]) for sku, qty, rid in outcome.lines] == [("A", 3, "b")]


def test_a_routed_sale_short_everywhere_waits_at_the_default_with_what_all_can_sell():
    records = [record("a", "A", 1), record("home", "A", 1)]
    outcome = reserve_routed(
        routed_sale(("A", 3)),
        {r.key: r for r in records},
        sites(("a", 1), ("home", 9, True)),
        policies(A=Policy(preorder={"lead_time_days": 3})),
    )
    assert isinstance(outcome, ReservationFailed)
    assert (outcome.location_id, outcome.denied) == ("home", False)
    assert [
        (s.sku, s.requested, s.available, s.reason, s.preorder) for s in outcome.shortfalls
    ] == [("A", 3, 2, "insufficient_stock", {"lead_time_days": 3})]
    assert all(r.reserved == 0 for r in records)


def test_a_sale_that_may_not_split_reports_what_the_waiting_location_has():
    records = [record("a", "A", 2), record("home", "A", 1), record("a", "B", 5)]
    outcome = reserve_routed(
        routed_sale(("A", 3), ("B", 1), allow_split=False),
        {r.key: r for r in records},
        sites(("a", 1), ("home", 9, True)),
        policies(A=Policy(), B=Policy()),
    )
    assert isinstance(outcome, ReservationFailed)
    assert outcome.location_id == "home"
    assert [(s.sku, s.available) for s in outcome.shortfalls] == [("A", 1), ("B", 0)]


def test_a_cap_counts_the_queue_of_the_location_the_sale_would_wait_at():
    records = [record("a", "A", 1)]
    sale = routed_sale(("A", 3))
    place = sites(("a", 1), ("home", 9, True))
    capped = policies(A=Policy(cap=5))
    fits = reserve_routed(sale, {r.key: r for r in records}, place, capped, {(TENANT, "a", "A"): 4})
    assert isinstance(fits, ReservationFailed) and not fits.denied
    over = reserve_routed(
        sale, {r.key: r for r in records}, place, capped, {(TENANT, "home", "A"): 4}
    )
    assert isinstance(over, ReservationFailed) and over.denied
    assert [s.reason for s in over.shortfalls] == ["backorder_denied"]
    denied = reserve_routed(sale, {r.key: r for r in records}, place, policies(A=Policy(cap=0)))
    assert isinstance(denied, ReservationFailed) and denied.denied


def test_an_unknown_sku_or_no_location_at_all_is_a_failure_naming_why():
    records = [record("a", "A", 5)]
    unknown = reserve_routed(
        routed_sale(("A", 1), ("X", 1)),
        {r.key: r for r in records},
        sites(("a", 1)),
        policies(A=Policy()),
    )
    assert isinstance(unknown, ReservationFailed)
    assert (unknown.location_id, [(s.sku, s.reason) for s in unknown.shortfalls]) == (
        "a",
        [("X", "unknown_sku")],
    )
    nowhere = reserve_routed(routed_sale(("A", 2)), {}, [], policies(A=Policy()))
    assert isinstance(nowhere, ReservationFailed)
    assert nowhere.location_id is None
    assert [(s.sku, s.requested, s.available, s.reason) for s in nowhere.shortfalls] == [
        ("A", 2, 0, "unknown_location")
    ]
    assert records[0].reserved == 0


def test_a_sale_of_infinite_products_only_is_placed_at_the_first_location_without_lines():
    outcome = reserve_routed(
        routed_sale(("E", 4)), {}, sites(("b", 1), ("a", 1)), policies(E=Policy(infinite=True))
    )
    assert isinstance(outcome, Reserved)
    assert (outcome.location_id, outcome.lines) == ("a", [])
