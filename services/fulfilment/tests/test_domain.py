import pytest

from fulfilment.domain import (
    IllegalTransition,
    check_digit,
    choose_provider,
    next_status,
    tracking_number,
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
