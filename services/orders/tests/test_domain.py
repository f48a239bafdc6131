import uuid
from datetime import UTC, datetime

import pytest

from orders.domain import (
    IllegalTransition,
    NewSale,
    NotAPart,
    NotEditable,
    Sale,
    VersionMismatch,
    add_fulfillment,
    apply_reservation_outcome,
    cancel,
    created_history,
    edit,
    end_reservation,
    lines_naming,
    open_sale,
    ship,
    ship_locations,
    ship_part,
    stock_issues,
    transition,
    update_fulfillment,
)


def sale(status: str) -> Sale:
    return Sale(
        uuid.uuid4(),
        uuid.uuid4(),
        "S-1",
        status,
        1,
        {"channel": "web", "shop_name": "x"},
        "wh-1",
        [{"sku": "A", "quantity": 1}],
        None,
        None,
        None,
        None,
    )


def test_pending_sale_is_claimed_once():
    s = sale("pending")
    change = transition(s, "in_fulfillment", "shipping_init")
    assert (change.previous, s.status, s.version) == ("pending", "in_fulfillment", 2)
    with pytest.raises(IllegalTransition):
        transition(s, "in_fulfillment")


@pytest.mark.parametrize("status", ["awaiting_stock", "backordered", "shipped", "canceled"])
def test_only_pending_sales_can_be_claimed(status):
    with pytest.raises(IllegalTransition):
        transition(sale(status), "in_fulfillment")


def test_shipped_and_delivered_sales_cannot_be_canceled():
    for status in ("shipped", "delivered"):
        with pytest.raises(IllegalTransition):
            transition(sale(status), "canceled")


def test_cancel_at_a_version_refuses_a_sale_that_moved_on_but_not_a_canceled_one():
    moved = sale("in_fulfillment")
    moved.version = 3
    with pytest.raises(VersionMismatch):
        cancel(moved, "other", version=2)
    assert (moved.status, moved.version) == ("in_fulfillment", 3)
    assert cancel(moved, "other", version=3).sale.status == "canceled"
    assert cancel(moved, "other", version=3) is None, "canceled already: nothing to do"


def test_reservation_outcomes_move_waiting_sales():
    pending = sale("awaiting_stock")
    assert apply_reservation_outcome(pending, True, {}).sale.status == "pending"
    short = sale("awaiting_stock")
    assert apply_reservation_outcome(short, False, {}).sale.status == "backordered"
    back = sale("backordered")
    assert apply_reservation_outcome(back, True, {}).sale.status == "pending"


def test_late_outcomes_change_nothing():
    canceled = sale("canceled")
    assert apply_reservation_outcome(canceled, True, {}) is None
    assert canceled.status == "canceled"
    pending = sale("pending")
    assert apply_reservation_outcome(pending, False, {}) is None
    assert pending.status == "pending"


def test_a_new_sale_awaits_stock_at_version_one_with_its_created_entry():
    tenant, now = uuid.uuid4(), datetime.now(UTC)
    order = NewSale(
        "S-1", {"channel": "web", "shop_name": "x"}, "wh-1", [{"sku": "A", "quantity": 1}]
    )
    sale = open_sale(tenant, order, now)
    assert (sale.tenant_id, sale.sale_id, sale.status, sale.version) == (
        tenant,
        "S-1",
        "awaiting_stock",
        1,
    )
    assert (sale.created_at, sale.updated_at, sale.fulfillments) == (now, now, [])
    assert open_sale(tenant, order, now).id != sale.id
    assert created_history(sale, "api") == [
        {
            "from_status": None,
            "to_status": "awaiting_stock",
            "reason": "created",
            "actor": "api",
            "at": now,
        }
    ]


def test_an_ended_reservation_is_kept_without_moving_the_sale():
    s = sale("canceled")
    end_reservation(s, {"status": "released"})
    assert (s.status, s.version, s.reservation) == ("canceled", 1, {"status": "released"})


def test_a_fulfillment_is_kept_once_and_follows_its_updates():
    s = sale("in_fulfillment")
    add_fulfillment(s, {"id": "f", "status": "waiting_for_picking"})
    add_fulfillment(s, {"id": "f", "status": "waiting_for_picking"})
    assert s.fulfillments == [{"id": "f", "status": "waiting_for_picking"}]
    assert update_fulfillment(s, {"id": "f", "status": "picking"}) is None
    assert s.fulfillments == [{"id": "f", "status": "picking"}]


def test_a_delivered_fulfillment_delivers_a_shipped_sale_once():
    s = sale("shipped")
    where = {"name": "Warehouse 1", "location_id": "wh-1"}
    s.fulfillments = [{"id": "f", "status": "shipped", "location": where}]
    change = update_fulfillment(s, {"id": "f", "status": "delivered", "location": where})
    assert change is not None
    assert (change.previous, s.status, change.reason) == (
        "shipped",
        "delivered",
        "fulfillment_delivered",
    )
    assert update_fulfillment(s, {"id": "f", "status": "delivered", "location": where}) is None
    assert s.fulfillments == [{"id": "f", "status": "delivered", "location": where}]


def test_a_backordered_sale_has_one_issue_per_short_line():
    s = sale("awaiting_stock")
    failed = {
        "sale": str(s.id),
        "sale_id": "S-1",
        "location_id": "wh-1",
        "shortfalls": [
            {"sku": "A", "requested": 3, "available": 1, "reason": "insufficient_stock"},
            {"sku": "B", "requested": 1, "available": 0, "reason": "unknown_location"},
        ],
    }
    assert stock_issues(s) == []
    apply_reservation_outcome(s, False, failed)
    assert stock_issues(s) == failed["shortfalls"]
    s.status = "pending"  # reserved since (a restock): no issue left
    assert stock_issues(s) == []


def test_lines_naming_skus_are_named_by_their_index():
    order = NewSale(
        "S-1",
        {"channel": "web", "shop_name": "x"},
        "wh-1",
        [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}, {"sku": "B", "quantity": 2}],
    )
    assert lines_naming(order, set()) == []
    assert lines_naming(order, {"B", "C"}) == [(1, "B"), (2, "B")]


def test_a_sale_refused_by_a_backorder_policy_is_canceled_with_its_issues():
    s = sale("awaiting_stock")
    terms = {"expected_at": None, "lead_time_days": 5}
    failed = {
        "sale": str(s.id),
        "sale_id": "S-1",
        "location_id": "wh-1",
        "shortfalls": [
            {"sku": "A", "requested": 3, "available": 1, "reason": "backorder_denied"},
            {"sku": "B", "requested": 2, "available": 0, "reason": "insufficient_stock"},
        ],
    }
    failed["shortfalls"][1]["preorder"] = terms
    change = apply_reservation_outcome(s, False, failed)
    assert change is not None
    assert (change.previous, s.status, change.reason, s.cancel_reason) == (
        "awaiting_stock",
        "canceled",
        "backorder_denied",
        "backorder_denied",
    )
    assert stock_issues(s) == failed["shortfalls"]
    # a late duplicate of the outcome changes nothing
    assert apply_reservation_outcome(s, False, failed) is None
    assert s.status == "canceled"


# --- edits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["awaiting_stock", "backordered", "pending"])
def test_an_open_sale_takes_an_edit_of_its_details_and_keeps_its_status(status):
    s = sale(status)
    s.reservation = {"sale_version": 1, "lines": []}
    done = edit(s, {"priority": "urgent", "instructions": "ring twice"}, 1)
    assert done is not None
    assert (done.previous, s.status, s.version, done.changed) == (
        status,
        status,
        2,
        ["priority", "instructions"],
    )
    assert not done.moves_reservation
    assert (s.priority, s.instructions, s.reservation_version) == ("urgent", "ring twice", 1)
    assert s.reservation == {"sale_version": 1, "lines": []}  # untouched
    assert done.status_change.reason == "edited"


@pytest.mark.parametrize("status", ["awaiting_stock", "backordered", "pending"])
@pytest.mark.parametrize(
    "fields", [{"lines": [{"sku": "A", "quantity": 2}]}, {"location_id": "wh-2"}]
)
def test_an_edit_of_what_to_reserve_waits_for_stock_again(status, fields):
    s = sale(status)
    s.reservation = {"sale_version": 1}
    done = edit(s, fields, 1)
    assert done is not None and done.moves_reservation
    assert (done.previous, s.status, s.version, s.reservation_version) == (
        status,
        "awaiting_stock",
        2,
        2,
    )
    assert s.reservation is None


@pytest.mark.parametrize("status", ["in_fulfillment", "shipped", "delivered", "canceled"])
def test_a_sale_past_pending_cannot_be_edited(status):
    s = sale(status)
    with pytest.raises(NotEditable):
        edit(s, {"priority": "urgent"}, 1)
    assert (s.version, s.priority) == (1, "normal")


def test_a_stale_version_is_refused_before_anything_else():
    s = sale("shipped")
    with pytest.raises(VersionMismatch):
        edit(s, {"priority": "urgent"}, 2)
    s = sale("pending")
    with pytest.raises(VersionMismatch):
        edit(s, {}, 7)
    assert s.version == 1


def test_an_edit_to_the_values_the_sale_has_changes_nothing():
    s = sale("pending")
    assert edit(s, {"lines": [{"sku": "A", "quantity": 1}], "priority": "normal"}, 1) is None
    assert edit(s, {}, 1) is None
    assert (s.status, s.version) == ("pending", 1)


def test_required_dates_are_edited_together_and_cleared_with_null():
    s = sale("pending")
    ship_by = datetime(2030, 1, 2, tzinfo=UTC)
    done = edit(s, {"required_dates": {"ship_by": ship_by, "deliver_by": None}}, 1)
    assert done is not None and done.changed == ["required_dates"]
    assert (s.ship_by, s.deliver_by) == (ship_by, None)
    assert edit(s, {"required_dates": {"ship_by": ship_by, "deliver_by": None}}, 2) is None
    edit(s, {"required_dates": None}, 2)
    assert (s.ship_by, s.deliver_by, s.required_dates, s.version) == (None, None, None, 3)


def test_an_outcome_older_than_the_last_reservation_edit_changes_nothing():
    s = sale("pending")
    edit(s, {"lines": [{"sku": "A", "quantity": 5}]}, 1)  # version 2, asks stock again
    late = {"sale_version": 1, "lines": [{"sku": "A", "quantity": 1}]}
    assert apply_reservation_outcome(s, True, late) is None
    assert apply_reservation_outcome(s, False, {"sale_version": 1, "shortfalls": []}) is None
    end_reservation(s, {"sale_version": 1, "status": "released"})
    assert (s.status, s.reservation) == ("awaiting_stock", None)
    answer = {"sale_version": 2, "lines": [{"sku": "A", "quantity": 5}]}
    change = apply_reservation_outcome(s, True, answer)
    assert change is not None and (s.status, s.reservation) == ("pending", answer)


def test_a_detail_edit_keeps_outcomes_of_the_reservation_current():
    s = sale("awaiting_stock")
    edit(s, {"instructions": "fragile"}, 1)  # version 2; the reservation asked at 1 holds
    assert apply_reservation_outcome(s, True, {"sale_version": 1}) is not None
    assert s.status == "pending"


def test_outcomes_without_a_sale_version_apply_as_before():
    s = sale("pending")
    edit(s, {"location_id": "wh-2"}, 1)
    assert apply_reservation_outcome(s, False, {"shortfalls": []}) is not None
    assert s.status == "backordered"


def test_allow_split_moves_the_reservation_of_a_routed_sale_only():
    located = sale("pending")
    done = edit(located, {"allow_split": False}, 1)
    assert done is not None and done.changed == ["allow_split"]
    assert not done.moves_reservation and located.status == "pending"
    routed = sale("pending")
    routed.location_id = None
    done = edit(routed, {"allow_split": False}, 1)
    assert done is not None and done.moves_reservation and routed.status == "awaiting_stock"


# split sales: one part per location of the reservation

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def split_sale(status: str = "in_fulfillment") -> Sale:
    """A routed sale (no location of its own) reserved at wh-a, with a line at wh-b."""
    s = sale(status)
    s.location_id = None  # type: ignore[assignment]  # a routed sale
    s.reservation = {
        "location_id": "wh-a",
        "lines": [
            {"sku": "A", "quantity": 2, "stock_record_id": "r1"},
            {"sku": "B", "quantity": 1, "stock_record_id": "r2", "location_id": "wh-b"},
        ],
        "other_locations": [{"location_id": "wh-b", "location": {"name": "B"}}],
    }
    return s


def test_a_sale_ships_from_its_reservation_s_locations_its_own_first():
    assert ship_locations(split_sale()) == ["wh-a", "wh-b"]
    single = sale("in_fulfillment")
    assert ship_locations(single) == ["wh-1"], "no reservation: the sale's own location"
    single.reservation = {"location_id": "wh-1", "lines": [{"sku": "A", "quantity": 1}]}
    assert ship_locations(single) == ["wh-1"]


def test_a_split_sale_ships_when_its_last_part_does():
    s = split_sale()

    assert ship_part(s, "wh-b", AT) is None, "a part is left: still in fulfillment"
    assert (s.status, s.version) == ("in_fulfillment", 1)
    assert s.shipped_parts == [{"location_id": "wh-b", "shipped_at": AT.isoformat()}]
    assert ship_part(s, "wh-b", AT) is None, "the same part again changes nothing"
    assert len(s.shipped_parts) == 1

    change = ship_part(s, "wh-a", AT)

    assert change is not None
    assert (change.previous, s.status, s.version, change.reason) == (
        "in_fulfillment",
        "shipped",
        2,
        "fulfillment_shipped",
    )
    assert [p["location_id"] for p in s.shipped_parts] == ["wh-b", "wh-a"]
    assert ship_part(s, "wh-a", AT) is None, "shipped already"


def test_shipping_a_whole_sale_ships_every_part_at_once():
    s = split_sale()
    change = ship(s, AT)
    assert change is not None and s.status == "shipped"
    assert [p["location_id"] for p in s.shipped_parts] == ["wh-a", "wh-b"]


def test_a_part_the_sale_does_not_ship_from_is_refused_and_changes_nothing():
    s = split_sale()
    with pytest.raises(NotAPart):
        ship_part(s, "wh-z", AT)
    assert (s.status, s.shipped_parts) == ("in_fulfillment", [])


@pytest.mark.parametrize("status", ["pending", "awaiting_stock", "backordered", "canceled"])
def test_no_part_of_a_sale_out_of_fulfillment_ships(status):
    s = split_sale(status)
    with pytest.raises(IllegalTransition):
        ship_part(s, "wh-a", AT)
    assert s.shipped_parts == []


def test_a_sale_with_a_part_shipped_cannot_be_canceled():
    s = split_sale()
    ship_part(s, "wh-b", AT)
    with pytest.raises(IllegalTransition):
        cancel(s, "customer_request")
    assert (s.status, s.cancel_reason) == ("in_fulfillment", None)


def test_a_split_sale_in_fulfillment_with_no_part_shipped_can_be_canceled():
    s = split_sale()
    change = cancel(s, "customer_request")
    assert change is not None and s.status == "canceled"


def test_a_split_sale_is_delivered_when_every_part_s_fulfillment_is():
    s = split_sale()
    ship(s, AT)

    def fulfillment(fid: str, where: str, status: str) -> dict:
        return {"id": fid, "status": status, "location": {"name": where, "location_id": where}}

    s.fulfillments = [fulfillment("fa", "wh-a", "shipped"), fulfillment("fb", "wh-b", "shipped")]
    assert update_fulfillment(s, fulfillment("fb", "wh-b", "delivered")) is None
    assert s.status == "shipped"
    change = update_fulfillment(s, fulfillment("fa", "wh-a", "delivered"))
    assert change is not None and s.status == "delivered"


def test_a_fulfillment_orders_had_not_heard_of_is_kept_when_it_moves():
    s = sale("shipped")
    moved = {"id": "f", "status": "delivered", "location": "wh-1"}  # data version 1
    change = update_fulfillment(s, moved)
    assert change is not None and s.status == "delivered"
    assert s.fulfillments == [moved]
