"""The rules of returns: what a sale may still return, per SKU and across its returns, and
the return's state machine."""

import uuid
from datetime import UTC, datetime

import pytest

from orders.returns import (
    BeyondShipped,
    Excess,
    IllegalReturnTransition,
    InvalidReceipt,
    Return,
    SaleNotReturnable,
    cancel,
    close,
    receive,
    request_return,
    returnable,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TENANT, SALE = uuid.uuid4(), uuid.uuid4()
SHIPPED = [{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 2}]


def ask(lines: list[dict], earlier: list[Return] = (), status: str = "shipped") -> Return:  # type: ignore[assignment]
    return request_return(
        TENANT, SALE, "S-1", status, SHIPPED, list(earlier), "damaged", lines, NOW
    )


def test_a_new_return_is_requested_with_its_lines_as_asked():
    ret = ask([{"sku": "A", "quantity": 2}])
    assert (ret.tenant_id, ret.sale, ret.sale_id) == (TENANT, SALE, "S-1")
    assert (ret.status, ret.version, ret.reason) == ("requested", 1, "damaged")
    assert ret.lines == [{"sku": "A", "quantity": 2}]
    assert ret.received_lines == []
    assert ret.created_at == ret.updated_at == NOW
    assert ret.received_at is None and ret.closed_at is None


@pytest.mark.parametrize("status", ["shipped", "delivered"])
def test_a_shipped_or_delivered_sale_can_be_returned(status):
    assert ask([{"sku": "B", "quantity": 1}], status=status).status == "requested"


@pytest.mark.parametrize(
    "status", ["awaiting_stock", "pending", "backordered", "in_fulfillment", "canceled"]
)
def test_a_sale_that_has_not_shipped_cannot_be_returned(status):
    with pytest.raises(SaleNotReturnable) as refused:
        ask([{"sku": "A", "quantity": 1}], status=status)
    assert refused.value.status == status


def test_lines_of_one_sku_count_together_against_what_shipped():
    assert returnable(SHIPPED, []) == {"A": 5, "B": 1}
    ask([{"sku": "A", "quantity": 3}, {"sku": "A", "quantity": 2}])  # all five
    with pytest.raises(BeyondShipped) as refused:
        ask([{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 3}, {"sku": "A", "quantity": 3}])
    assert refused.value.excesses == [Excess(index=1, sku="A", asked=6, remaining=5)]


def test_the_limit_holds_across_several_returns_of_the_sale():
    first = ask([{"sku": "A", "quantity": 2}])
    second = ask([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}], [first])
    assert returnable(SHIPPED, [first, second]) == {"A": 1, "B": 0}
    third = ask([{"sku": "A", "quantity": 1}], [first, second])
    with pytest.raises(BeyondShipped) as refused:
        ask([{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}], [first, second, third])
    assert refused.value.excesses == [
        Excess(index=0, sku="B", asked=1, remaining=0),
        Excess(index=1, sku="A", asked=1, remaining=0),
    ]


def test_received_and_closed_returns_still_count():
    first = ask([{"sku": "B", "quantity": 1}])
    receive(first, [line(sku="B")], NOW)
    close(first, NOW)
    with pytest.raises(BeyondShipped):
        ask([{"sku": "B", "quantity": 1}], [first])


def test_a_sku_the_sale_did_not_ship_has_nothing_to_return():
    with pytest.raises(BeyondShipped) as refused:
        ask([{"sku": "Z", "quantity": 1}])
    assert refused.value.excesses == [Excess(index=0, sku="Z", asked=1, remaining=0)]


def line(sku: str = "A", quantity: int = 1, disposition: str = "restock") -> dict:
    return {"sku": sku, "quantity": quantity, "disposition": disposition, "location_id": "wh-1"}


def test_receiving_records_what_came_back_and_moves_the_return_on():
    ret = ask([{"sku": "A", "quantity": 3}])
    later = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    change = receive(ret, [line(quantity=2), line(quantity=1, disposition="discard")], later)
    assert (change.previous, ret.status, ret.version) == ("requested", "received", 2)
    assert ret.received_lines == [line(quantity=2), line(quantity=1, disposition="discard")]
    assert ret.received_at == ret.updated_at == later


def test_less_than_asked_may_come_back():
    ret = ask([{"sku": "A", "quantity": 3}])
    receive(ret, [line(quantity=1)], NOW)
    assert ret.status == "received"


def test_a_receipt_beyond_the_return_or_of_another_sku_is_refused_with_pointers():
    ret = ask([{"sku": "A", "quantity": 2}])
    with pytest.raises(InvalidReceipt) as refused:
        receive(
            ret, [line(quantity=2), line(sku="B"), line(quantity=1, disposition="discard")], NOW
        )
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("/lines/1/sku", "the return has no line of 'B'"),
        ("/lines/2/quantity", "3 of 'A' received in all; the return asked for 2"),
    ]
    assert (ret.status, ret.version, ret.received_lines) == ("requested", 1, [])


def test_a_return_is_received_once_and_closed_after():
    ret = ask([{"sku": "A", "quantity": 1}])
    with pytest.raises(IllegalReturnTransition):
        close(ret, NOW)
    receive(ret, [line()], NOW)
    with pytest.raises(IllegalReturnTransition):
        receive(ret, [line()], NOW)
    change = close(ret, NOW)
    assert change is not None and change.previous == "received"
    assert (ret.status, ret.version, ret.closed_at) == ("closed", 3, NOW)
    assert close(ret, NOW) is None  # again: nothing changes
    assert ret.version == 3


def test_a_canceled_return_no_longer_counts_and_only_a_requested_one_cancels():
    first = ask([{"sku": "A", "quantity": 5}])
    with pytest.raises(BeyondShipped):
        ask([{"sku": "A", "quantity": 1}], [first])
    change = cancel(first, NOW)
    assert change is not None and change.previous == "requested"
    assert (first.status, first.version, first.canceled_at) == ("canceled", 2, NOW)
    assert cancel(first, NOW) is None and first.version == 2  # again: nothing changes
    assert returnable(SHIPPED, [first]) == {"A": 5, "B": 1}
    again = ask([{"sku": "A", "quantity": 5}], [first])
    with pytest.raises(IllegalReturnTransition):
        receive(first, [line()], NOW)
    receive(again, [line()], NOW)
    with pytest.raises(IllegalReturnTransition):
        cancel(again, NOW)
