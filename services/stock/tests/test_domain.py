import uuid

import pytest

from stock.domain import (
    Policy,
    ReservationFailed,
    Reserved,
    SaleToReserve,
    StockRecord,
    StockRuleViolation,
    apply_change,
    reserve_sale,
)

TENANT = uuid.uuid4()


def record(sku: str, quantity: int, reserved: int = 0, threshold: int = 0) -> StockRecord:
    return StockRecord(
        uuid.uuid4(), TENANT, "wh-1", sku, quantity, reserved, 1, threshold=threshold
    )


def sale(*lines: tuple[str, int], location: str = "wh-1") -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", TENANT, location, lines)


def plan(sales, records, skus=("A", "B"), policies=None, queued=None):
    """Reserve each sale in order against the same records, as one batch of sales does."""
    by_key = {r.key: r for r in records}
    known = {(TENANT, s): Policy() for s in skus} | {
        (TENANT, s): p for s, p in (policies or {}).items()
    }
    return [reserve_sale(s, by_key, {(TENANT, "wh-1")}, known, queued) for s in sales]


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


def test_the_threshold_holds_units_back_from_sales():
    a = record("A", 5, threshold=2)
    assert (a.available, a.sellable) == (5, 3)
    fits, short = plan([sale(("A", 3)), sale(("A", 1))], [a])
    assert isinstance(fits, Reserved) and a.reserved == 3
    assert isinstance(short, ReservationFailed)
    assert [(s.requested, s.available, s.reason) for s in short.shortfalls] == [
        (1, 0, "insufficient_stock")
    ]
    assert record("A", 1, threshold=5).sellable == 0


def test_deny_refuses_a_short_sale_and_reserves_nothing():
    a, b = record("A", 5), record("B", 1)
    [outcome] = plan([sale(("A", 3), ("B", 2))], [a, b], policies={"B": Policy.of("deny")})
    assert isinstance(outcome, ReservationFailed) and outcome.denied
    assert [(s.sku, s.reason) for s in outcome.shortfalls] == [("B", "backorder_denied")]
    assert (a.reserved, b.reserved) == (0, 0)


def test_a_cap_counts_the_units_already_waiting():
    a = record("A", 0)
    capped = {"A": Policy.of({"cap": 5})}
    key = (TENANT, "wh-1", "A")
    [under] = plan([sale(("A", 2))], [a], policies=capped, queued={key: 3})
    [over] = plan([sale(("A", 3))], [a], policies=capped, queued={key: 3})
    assert not under.denied and under.shortfalls[0].reason == "insufficient_stock"
    assert over.denied


def test_infinite_products_are_never_reserved_nor_short():
    a = record("A", 1)
    policies = {"B": Policy.of("deny", infinite=True)}
    [outcome] = plan([sale(("A", 1), ("B", 1000))], [a], policies=policies)
    assert isinstance(outcome, Reserved)
    assert [ln[:2] for ln in outcome.lines] == [("A", 1)]


def test_a_short_line_carries_its_products_preorder():
    terms = {"expected_at": "2027-01-05T00:00:00Z", "lead_time_days": 14}
    [outcome] = plan([sale(("A", 2))], [], policies={"A": Policy.of("allow", terms)})
    assert outcome.shortfalls[0].preorder == terms
