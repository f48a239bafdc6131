"""What fulfilment answers when orders does not answer 200."""

import pytest

from fulfilkit.http.problems import Problem
from fulfilment.api import orders_answers
from fulfilment.orders_client import OrdersError, refusal


def answered(error: OrdersError) -> Problem:
    with pytest.raises(Problem) as raised, orders_answers():
        raise error
    return raised.value


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
    problem = answered(refusal(status, {"detail": "The request has invalid fields."}, "claim"))
    assert (problem.status, problem.code) == (status, code)
    assert problem.detail == "orders refused the claim: The request has invalid fields."
    assert "Retry-After" not in problem.headers


@pytest.mark.parametrize("status", [401, 403, 429, 500, 502, 503, 504])
def test_anything_else_means_orders_cannot_do_it_now(status):
    problem = answered(refusal(status, {"detail": "whatever"}, "shipment"))
    assert (problem.status, problem.code) == (503, "unavailable")
    assert problem.detail == f"orders answered {status} to a shipment"
    assert problem.headers == {"Retry-After": "1"}


def test_an_answer_without_a_detail_still_says_what_was_refused():
    assert refusal(422, ["not", "a", "problem"], "claim").detail == (
        "orders refused the claim: no reason given"
    )
