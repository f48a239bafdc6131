import uuid
from datetime import UTC, datetime

import pytest

from fulfilment.domain import (
    Fulfillment,
    IllegalTransition,
    advance,
    check_digit,
    choose_provider,
    is_bulky,
    movable,
    next_status,
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
    assert not is_bulky(None)
    assert not is_bulky({"lines": [{"sku": "A", "is_bulky": False}]})
    assert is_bulky({"lines": [{"sku": "A"}, {"sku": "B", "is_bulky": True}]})


def test_the_sender_is_the_location_the_reservation_names():
    located = {"lines": [], "location": {"name": "Depot", "address": {"city": "Oslo"}}}
    assert sender_of(located) == {"name": "Depot", "address": {"city": "Oslo"}}
    assert sender_of({"location": {"name": "Depot"}}) == {"name": "Depot", "address": None}
    for unnamed in (None, {}, {"lines": []}, {"location": None}, {"location": {"name": 3}}):
        assert sender_of(unnamed) is None
