"""The operator's overview within its bound: a service that hangs, refuses, or answers
nonsense shows `unreachable` and never holds the others' answers back."""

import asyncio
import time

import orjson

from fulfilkit.http.problems import Problem
from gateway import usecases
from gateway.domain import OVERVIEW_PATH, OVERVIEW_SERVICES, StoredResponse, UpstreamCall

READY = {
    "ready": True,
    "checks": {"database": True, "broker": True},
    "consumer_lag": [{"group": "orders", "topic": "stock.events", "lag": 3}],
    "outbox_backlog_rows": 0,
    "dead_letters": {"dead": 1, "replayed": 0},
}


async def send(call: UpstreamCall) -> StoredResponse:
    assert call.method == "GET" and call.path == OVERVIEW_PATH and call.tenant_id is None
    if call.service == "stock":
        await asyncio.Event().wait()  # never answers: the overview's bound cancels it
    if call.service == "fulfilment":
        raise Problem("unavailable", "The fulfilment service is unavailable; try again later.")
    if call.service == "webhooks":
        return StoredResponse(200, {}, b"<html>")
    return StoredResponse(200, {}, orjson.dumps(READY))


async def test_a_hanging_service_costs_the_bound_and_no_more():
    started = time.monotonic()
    found = await usecases.overview(send, 0.3)
    took = time.monotonic() - started
    assert 0.3 <= took < 1.0, took
    assert [s["service"] for s in found] == list(OVERVIEW_SERVICES)
    orders, stock, fulfilment, webhooks = found
    assert orders == {
        "service": "orders",
        "status": "ready",
        **{k: v for k, v in READY.items() if k != "ready"},
    }
    empty = {
        "checks": None,
        "consumer_lag": None,
        "outbox_backlog_rows": None,
        "dead_letters": None,
    }
    assert stock == {
        "service": "stock",
        "status": "unreachable",
        **empty,
        "error": "no answer within 0.3 s",
    }
    assert fulfilment["status"] == "unreachable" and "unavailable" in fulfilment["error"]
    assert webhooks["status"] == "unreachable" and webhooks["error"] == "its answer was not JSON"


async def test_a_service_that_is_not_ready_says_so():
    async def not_ready(call: UpstreamCall) -> StoredResponse:
        return StoredResponse(200, {}, orjson.dumps({**READY, "ready": False}))

    found = await usecases.overview(not_ready, 1)
    assert {s["status"] for s in found} == {"not_ready"}


async def test_an_error_answer_is_unreachable_with_its_status():
    async def refused(call: UpstreamCall) -> StoredResponse:
        return StoredResponse(401, {}, b"{}")

    found = await usecases.overview(refused, 1)
    assert {s["error"] for s in found} == {"it answered 401"}
