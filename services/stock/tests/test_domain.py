import uuid

import pytest

from stock.domain import (
    ReservationFailed,
    Reserved,
    SaleToReserve,
    StockRecord,
    StockRuleViolation,
    apply_change,
    reserve_sale,
)

TENANT = uuid.uuid4()


def record(sku: str, quantity: int, reserved: int = 0) -> StockRecord:
    return StockRecord(uuid.uuid4(), TENANT, "wh-1", sku, quantity, reserved, 1)


def sale(*lines: tuple[str, int], location: str = "wh-1") -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", TENANT, location, lines)


def plan(sales, records, skus=("A", "B")):
    """Reserve each sale in order against the same records, as one batch of sales does."""
    by_key = {r.key: r for r in records}
    known_skus = {(TENANT, s) for s in skus}
    return [reserve_sale(s, by_key, {(TENANT, "wh-1")}, known_skus) for s in sales]


def test_reserves_every_line_and_records_the_ledger():
    a, b = record("A", 5), record("B", 2)
    [outcome] = plan([sale(("A", 3), ("B", 2))], [a, b])
    assert isinstance(outcome, Reserved)
    assert (a.reserved, b.reserved, a.version, b.version) == (3, 2, 2, 2)
    assert [(e.sku, e.reserved_change, e.reserved_after) for e in outcome.entries] == [
        ("A", 3, 3),
        ("B", 2, 2),
    ]


def test_one_short_line_reserves_nothing():
    a, b = record("A", 5), record("B", 1)
    [outcome] = plan([sale(("A", 3), ("B", 2))], [a, b])
    assert isinstance(outcome, ReservationFailed)
    assert [(s.sku, s.requested, s.available, s.reason) for s in outcome.shortfalls] == [
        ("B", 2, 1, "insufficient_stock")
    ]
    assert (a.reserved, b.reserved) == (0, 0)


def test_repeated_sku_lines_are_summed():
    a = record("A", 3)
    [outcome] = plan([sale(("A", 2), ("A", 2))], [a])
    assert isinstance(outcome, ReservationFailed)
    assert outcome.shortfalls[0].requested == 4


def test_sales_in_a_batch_compete_in_order_and_never_oversell():
    a = record("A", 3)
    outcomes = plan([sale(("A", 1)) for _ in range(5)], [a])
    assert [isinstance(o, Reserved) for o in outcomes] == [True, True, True, False, False]
    assert a.reserved == a.quantity == 3


def test_unknown_sku_and_location_fail_with_a_reason():
    [unknown_sku] = plan([sale(("Z", 1))], [])
    [unknown_location] = plan([sale(("A", 1), location="nowhere")], [record("A", 5)])
    assert unknown_sku.shortfalls[0].reason == "unknown_sku"
    assert unknown_location.shortfalls[0].reason == "unknown_location"


@pytest.mark.parametrize(("quantity_change", "reserved_change"), [(-6, 0), (0, 6), (-3, 0)])
def test_changes_that_break_reserved_le_quantity_are_refused(quantity_change, reserved_change):
    r = record("A", 5, reserved=3)
    with pytest.raises(StockRuleViolation):
        apply_change(r, "adjustment", quantity_change, reserved_change)
    assert (r.quantity, r.reserved, r.version) == (5, 3, 1)
