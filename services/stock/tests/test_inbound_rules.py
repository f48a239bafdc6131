"""Inbound orders' rules: statuses, receipts, reasons, what is incoming, first arrival."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from stock.inbound import (
    InboundLine,
    InboundOrder,
    InboundRuleViolation,
    ReceiptInvalid,
    ReceiptLine,
    cancel,
    check_editable,
    check_new_status,
    close,
    first_arrival,
    receive,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def order(status="open", lines=(("A", 10), ("B", 5)), received=()) -> InboundOrder:
    got = dict(received)
    return InboundOrder(
        id=uuid4(),
        tenant_id=uuid4(),
        reference="PO-1",
        supplier="Acme",
        location_id="main",
        expected_at=NOW,
        urgent=False,
        instructions=None,
        properties=None,
        status=status,
        lines=tuple(InboundLine(sku, q, got.get(sku, 0)) for sku, q in lines),
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_full_receipt_needs_no_reason_and_receives_the_order():
    done = receive(order(), [ReceiptLine("A", 10), ReceiptLine("B", 5)])
    assert done.order.status == "received"
    assert [(x.sku, x.received) for x in done.order.lines] == [("A", 10), ("B", 5)]
    assert done.units == {"A": 10, "B": 5}


def test_a_partial_receipt_moves_to_receiving_with_a_reason():
    part = receive(order(), [ReceiptLine("A", 4, "pallet two next week")])
    assert part.order.status == "receiving"
    assert part.order.lines[0].received == 4 and part.order.lines[0].outstanding == 6
    rest = receive(part.order, [ReceiptLine("A", 6), ReceiptLine("B", 5)])
    assert rest.order.status == "received"


@pytest.mark.parametrize(("quantity", "word"), [(4, "less"), (11, "more")])
def test_a_line_over_or_under_what_is_expected_needs_a_reason(quantity, word):
    with pytest.raises(ReceiptInvalid) as refused:
        receive(order(), [ReceiptLine("A", quantity)])
    assert refused.value.errors == [
        {
            "field": "/lines/0/reason",
            "message": f"{quantity} is {word} than the 10 still expected: say why",
        }
    ]


def test_more_than_expected_with_a_reason_is_received_and_counted():
    over = receive(order(), [ReceiptLine("A", 12, "two spare"), ReceiptLine("B", 5)])
    assert over.order.status == "received"
    assert over.order.lines[0].received == 12 and over.order.lines[0].outstanding == 0


def test_a_sku_not_on_the_order_or_listed_twice_is_refused_by_pointer():
    with pytest.raises(ReceiptInvalid) as refused:
        receive(order(), [ReceiptLine("Z", 1, "x"), ReceiptLine("A", 10), ReceiptLine("A", 1)])
    assert refused.value.errors == [
        {"field": "/lines/0/sku", "message": "not on the inbound order"},
        {"field": "/lines/2/sku", "message": "listed twice"},
    ]


@pytest.mark.parametrize("status", ["draft", "received", "closed", "canceled"])
def test_only_open_and_receiving_orders_are_received_against(status):
    with pytest.raises(InboundRuleViolation):
        receive(order(status), [ReceiptLine("A", 10)])


@pytest.mark.parametrize("status", ["receiving", "received", "closed", "canceled"])
def test_only_draft_and_open_orders_change(status):
    with pytest.raises(InboundRuleViolation):
        check_editable(order(status))
    check_editable(order("draft"))
    check_editable(order("open"))


@pytest.mark.parametrize("status", ["receiving", "received", "closed", "canceled"])
def test_a_patch_moves_status_between_draft_and_open_only(status):
    with pytest.raises(InboundRuleViolation):
        check_new_status(status)


def test_cancel_only_while_nothing_is_received():
    assert cancel(order("draft")).status == "canceled"
    assert cancel(order("open")).status == "canceled"
    with pytest.raises(InboundRuleViolation):
        cancel(order("receiving", received=[("A", 1)]))


def test_close_by_hand_keeps_the_reason():
    closed = close(order("receiving", received=[("A", 1)]), "supplier went bust")
    assert (closed.status, closed.close_reason) == ("closed", "supplier went bust")
    with pytest.raises(InboundRuleViolation):
        close(order("draft"), "never")


def test_incoming_is_what_expected_orders_still_bring():
    assert order(received=[("A", 4)]).incoming() == {"A": 6, "B": 5}
    assert order("receiving", received=[("A", 12), ("B", 5)]).incoming() == {}
    for status in ("draft", "received", "closed", "canceled"):
        assert order(status).incoming() == {}


def test_first_arrival_is_the_earliest_order_that_would_fill_the_line():
    later = NOW + timedelta(days=3)
    assert first_arrival(5, [(later, 5), (NOW, 4), (None, 50)]) == later
    assert first_arrival(4, [(later, 5), (NOW, 4)]) == NOW
    assert first_arrival(6, [(later, 5), (NOW, 4), (None, 50)]) is None


def test_received_never_passes_what_a_line_can_hold():
    full = order(lines=(("A", 10),), received=[("A", 1_999_999_999)])
    with pytest.raises(ReceiptInvalid) as refused:
        receive(full, [ReceiptLine("A", 2, "again")])
    assert [e["field"] for e in refused.value.errors] == ["/lines/0/quantity"]


def test_a_receipt_of_nothing_leaves_an_open_order_open():
    nothing = receive(order(), [ReceiptLine("A", 0, "truck empty")])
    assert nothing.order.status == "open" and nothing.units == {"A": 0}
    assert cancel(nothing.order).status == "canceled", "still nothing received"
