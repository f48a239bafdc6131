"""A sale's `allocations`, derived from the reservation stock published."""

import uuid
from typing import Any

from orders.domain import Sale, allocations


def sale_with(reservation: dict[str, Any] | None, location: str | None = None) -> Sale:
    return Sale(
        uuid.uuid4(),
        uuid.uuid4(),
        "S-1",
        "pending",
        2,
        {"channel": "web", "shop_name": "x"},
        location,
        [{"sku": "A", "quantity": 5}, {"sku": "B", "quantity": 1}],
        None,
        None,
        None,
        reservation,
    )


def reservation(status: str = "active") -> dict[str, Any]:
    return {
        "status": status,
        "location_id": "north",
        "lines": [
            {"sku": "A", "quantity": 3, "stock_record_id": str(uuid.uuid4())},
            {
                "sku": "A",
                "quantity": 2,
                "stock_record_id": str(uuid.uuid4()),
                "location_id": "east",
            },
            {
                "sku": "B",
                "quantity": 1,
                "stock_record_id": str(uuid.uuid4()),
                "location_id": "south",
            },
        ],
        "other_locations": [{"location_id": "south"}, {"location_id": "east"}],
    }


def test_one_allocation_per_location_the_reservations_first_then_as_stock_listed_them():
    assert allocations(sale_with(reservation())) == [
        {"location_id": "north", "lines": [{"sku": "A", "quantity": 3}]},
        {"location_id": "south", "lines": [{"sku": "B", "quantity": 1}]},
        {"location_id": "east", "lines": [{"sku": "A", "quantity": 2}]},
    ]


def test_a_committed_reservation_keeps_its_allocations():
    assert len(allocations(sale_with(reservation("committed")))) == 3


def test_nothing_is_allocated_before_a_reservation_after_a_release_or_on_a_failure():
    assert allocations(sale_with(None)) == []
    assert allocations(sale_with(reservation("released"))) == []
    failure = {"sale_id": "S-1", "location_id": "north", "shortfalls": [{"sku": "A"}]}
    assert allocations(sale_with(failure)) == []


def test_a_sale_at_one_location_has_one_allocation():
    single = {
        "status": "active",
        "location_id": "wh-1",
        "lines": [{"sku": "A", "quantity": 5, "stock_record_id": str(uuid.uuid4())}],
    }
    assert allocations(sale_with(single, "wh-1")) == [
        {"location_id": "wh-1", "lines": [{"sku": "A", "quantity": 5}]}
    ]
