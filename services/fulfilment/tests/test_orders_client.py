"""What fulfilment answers when orders does not answer 200."""

import pytest

from fulfilment.orders_client import refusal


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_request"),
        (404, "no_content"),
        (409, "conflict"),
        (413, "too_large"),
        (422, "validation"),
    ],
)
def test_what_orders_refuses_is_a_client_error(status, code):
    problem = refusal(status, {"detail": "The request has invalid fields."}, "claim")
    assert (problem.status, problem.code) == (status, code)
    assert problem.detail == "orders refused the claim: The request has invalid fields."


@pytest.mark.parametrize("status", [401, 403, 429, 500, 502, 503, 504])
def test_anything_else_means_orders_cannot_do_it_now(status):
    problem = refusal(status, {"detail": "whatever"}, "shipment")
    assert (problem.status, problem.code) == (503, "unavailable")
    assert problem.detail == f"orders answered {status} to a shipment"


def test_an_answer_without_a_detail_still_says_what_was_refused():
    assert refusal(422, ["not", "a", "problem"], "claim").detail == (
        "orders refused the claim: no reason given"
    )
