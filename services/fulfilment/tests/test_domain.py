import uuid
from datetime import UTC, datetime

import pytest

from fulfilment.domain import (
    Fulfillment,
    IllegalTransition,
    NothingToShip,
    Part,
    advance,
    check_digit,
    choose_provider,
    movable,
    next_status,
    parts_of,
    sender_of,
    tracking_number,
    why_not,
)


def fulfillment(status: str, version: int = 1) -> Fulfillment:
    return Fulfillment(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        fulfillment_id="F-1",
        sale=uuid.uuid4(),
        sale_id="S-1",
        location="wh-1",
        status=status,
        shipping_provider="fulfil-post",
        tracking_number="FP1",
        is_bulky=False,
        version=version,
        date_created=datetime.now(UTC),
        shop_channel="web",
        shop_name="Main",
        sale_date_created=datetime.now(UTC),
        location_name="Warehouse 1",
    )


def test_tracking_numbers_carry_a_luhn_check_digit():
    number = tracking_number("FP", 1000001)
    assert number == "FP0001000001" + str(check_digit("0001000001"))
    assert check_digit("7992739871") == 3


def test_provider_rules_prefer_location_then_channel():
    rules = {"location:wh-2": "carrier-a", "channel:amazon": "carrier-b"}
    assert choose_provider(rules, "wh-2", "amazon", "default") == "carrier-a"
    assert choose_provider(rules, "wh-1", "amazon", "default") == "carrier-b"
    assert choose_provider(rules, "wh-1", "web", "default") == "default"


def test_status_only_moves_forward():
    assert next_status("waiting_for_picking", "picking") == "picking"
    assert next_status("picking", "shipped") == "shipped"
    with pytest.raises(IllegalTransition):
        next_status("packed", "picking")
    with pytest.raises(IllegalTransition):
        next_status("shipped", "canceled")
    with pytest.raises(IllegalTransition):
        next_status("canceled", "picking")


def test_a_move_is_one_version_later_and_leaves_the_original_alone():
    packed = fulfillment("packed", version=3)
    shipped = advance(packed, "shipped")
    assert shipped is not None
    assert (shipped.status, shipped.version, shipped.id) == ("shipped", 4, packed.id)
    assert (packed.status, packed.version) == ("packed", 3)
    assert advance(shipped, "shipped") is None, "already there: nothing to move"
    with pytest.raises(IllegalTransition):
        advance(shipped, "canceled")


def test_why_not_says_it_as_a_sentence_and_movable_leaves_the_others_alone():
    assert why_not("shipped", "picking") == "A shipped fulfillment cannot go back to picking."
    assert why_not("picking", "delivered") == (
        "A picking fulfillment must be shipped before delivered."
    )
    assert why_not("picking", "packed") is None
    waiting, shipped = fulfillment("waiting_for_picking"), fulfillment("shipped")
    assert movable([waiting, shipped], "canceled") == [waiting]


def test_a_shipment_is_bulky_when_any_reserved_line_is():
    [none] = parts_of("wh-1", None)
    assert not none.is_bulky
    [light] = parts_of("wh-1", {"lines": [{"sku": "A", "is_bulky": False}]})
    assert not light.is_bulky
    [bulky] = parts_of("wh-1", {"lines": [{"sku": "A"}, {"sku": "B", "is_bulky": True}]})
    assert bulky.is_bulky


def test_the_sender_is_the_location_the_reservation_names():
    located = {"lines": [], "location": {"name": "Depot", "address": {"city": "Oslo"}}}
    assert sender_of(located) == {"name": "Depot", "address": {"city": "Oslo"}}
    assert sender_of({"location": {"name": "Depot"}}) == {"name": "Depot", "address": None}
    for unnamed in (None, {}, {"lines": []}, {"location": None}, {"location": {"name": 3}}):
        assert sender_of(unnamed) is None


def test_the_location_is_named_as_the_reservation_names_it_else_by_its_code():
    def name(reservation):
        [part] = parts_of("wh-1", reservation)
        return part.name

    assert name({"location": {"name": "Main"}, "lines": []}) == "Main"
    assert name({"lines": []}) == "wh-1"
    assert name({"location": None}) == "wh-1"
    assert name(None) == "wh-1"


DEPOT = {"name": "Depot", "address": {"city": "Oslo"}}
ANNEX = {"name": "Annex", "address": None}


def test_a_sale_reserved_at_one_location_is_one_part_with_every_line():
    lines = [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1, "is_bulky": True}]
    reservation = {"location_id": "wh-a", "location": DEPOT, "lines": lines}

    assert parts_of("wh-a", reservation) == [Part("wh-a", DEPOT, lines)]
    # a routed sale (no location_id of its own) ships from where stock reserved it
    assert parts_of(None, reservation) == [Part("wh-a", DEPOT, lines)]
    [part] = parts_of(None, reservation)
    assert (part.name, part.sender, part.is_bulky) == ("Depot", DEPOT, True)


def test_a_split_sale_is_one_part_per_location_the_reservation_s_own_first():
    here = {"sku": "A", "quantity": 3}
    there = {"sku": "A", "quantity": 1, "location_id": "wh-b", "is_bulky": True}
    elsewhere = {"sku": "C", "quantity": 1, "location_id": "wh-c"}
    reservation = {
        "location_id": "wh-a",
        "location": DEPOT,
        "lines": [there, here, elsewhere],
        "other_locations": [
            {"location_id": "wh-c"},  # stock did not name it
            {"location_id": "wh-b", "location": ANNEX},
        ],
    }

    parts = parts_of(None, reservation)

    assert parts == [
        Part("wh-a", DEPOT, [here]),
        Part("wh-c", None, [elsewhere]),
        Part("wh-b", ANNEX, [there]),
    ]
    assert [(p.name, p.sender, p.is_bulky) for p in parts] == [
        ("Depot", DEPOT, False),
        ("wh-c", None, False),
        ("Annex", ANNEX, True),
    ]


def test_a_line_at_a_location_the_reservation_does_not_list_is_a_part_all_the_same():
    stray = {"sku": "B", "quantity": 1, "location_id": "wh-z"}
    reservation = {"location_id": "wh-a", "lines": [{"sku": "A", "quantity": 1}, stray]}

    assert [(p.location_id, p.lines) for p in parts_of(None, reservation)] == [
        ("wh-a", [{"sku": "A", "quantity": 1}]),
        ("wh-z", [stray]),
    ]


def test_a_sale_with_no_location_anywhere_has_nothing_to_ship():
    for reservation in (None, {}, {"lines": [{"sku": "A", "quantity": 1}]}):
        with pytest.raises(NothingToShip):
            parts_of(None, reservation)
