"""Delivery processes: every dispatcher's share of the caps, the attempts they report, and
that one whose service is gone exits at once."""

import os
import subprocess
import sys

import pytest

from fulfilkit.metrics import WEBHOOK_DELIVERIES
from webhooks.deliverers import MODULE, count_reported
from webhooks.delivery_process import EXIT_PARENT_GONE
from webhooks.settings import WebhookSettings


def test_the_dispatchers_shares_of_every_cap_stay_within_it():
    settings = WebhookSettings(
        webhook_delivery_processes=2,
        webhook_max_in_flight_per_endpoint=10,
        webhook_max_in_flight_per_tenant=64,
        webhook_max_in_flight=256,
    )
    own, process = settings.dispatcher_share(own=True), settings.dispatcher_share(own=False)
    assert settings.dispatchers == 3  # the service's own and two delivery processes
    caps = ("webhook_max_in_flight_per_endpoint", "webhook_max_in_flight_per_tenant",
            "webhook_max_in_flight")  # fmt: skip
    assert [getattr(own, cap) for cap in caps] == [2, 12, 51]
    assert [getattr(process, cap) for cap in caps] == [4, 26, 102]
    for cap in caps:
        assert getattr(own, cap) + 2 * getattr(process, cap) <= getattr(settings, cap)


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_every_dispatcher_has_at_least_one_place_of_the_smallest_caps(processes: int):
    settings = WebhookSettings(
        webhook_delivery_processes=processes, webhook_max_in_flight_per_endpoint=processes + 1
    )
    own, process = settings.dispatcher_share(own=True), settings.dispatcher_share(own=False)
    assert own.webhook_max_in_flight_per_endpoint == 1
    assert process.webhook_max_in_flight_per_endpoint == 1


def test_without_delivery_processes_the_caps_stay_whole():
    settings = WebhookSettings(webhook_delivery_processes=0)
    assert settings.dispatcher_share(own=True) is settings


def test_more_dispatchers_than_a_cap_allows_are_refused():
    with pytest.raises(ValueError, match="WEBHOOK_DELIVERY_PROCESSES"):
        WebhookSettings(webhook_delivery_processes=2, webhook_max_in_flight_per_endpoint=2)


def _count(outcome: str) -> float:
    return WEBHOOK_DELIVERIES.labels(outcome)._value.get()


def test_reported_totals_count_once_each():
    counted: dict[str, float] = {}
    before = _count("succeeded"), _count("retrying")
    count_reported(b'{"succeeded": 5.0}\n', counted)
    count_reported(b'{"succeeded": 7.0, "retrying": 1.0}\n', counted)
    count_reported(b"not json\n", counted)
    count_reported(b'{"succeeded": 7.0, "retrying": 1.0}\n', counted)
    assert (_count("succeeded") - before[0], _count("retrying") - before[1]) == (7, 1)


def test_a_delivery_process_exits_at_once_when_its_service_is_gone():
    env = os.environ | {
        "ENVIRONMENT": "development",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "LOG_LEVEL": "CRITICAL",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdin is not None
        process.stdin.close()  # as the service's end is closed when it dies
        assert process.wait(timeout=30) == EXIT_PARENT_GONE
    finally:
        if process.poll() is None:
            process.kill()
