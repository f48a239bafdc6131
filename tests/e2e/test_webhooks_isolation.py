"""Isolation: a hanging endpoint, another tenant, internal addresses."""

from datetime import datetime

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import TEST_SETTINGS
from tests.e2e.webhook_tools import (
    Hook,
    StockRecord,
    deliveries,
    polled,
    received_count,
    register,
    started,
)
from tests.support import Client, eventually

PER_ENDPOINT = 10  # WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT (default)
HEALTHY_BOUND_SECONDS = 2.0
EVENTS = 40


async def test_a_hanging_receiver_does_not_delay_a_healthy_one(tenant: Client):
    """While one endpoint holds all its slots with requests that never answer, every event
    reaches a healthy endpoint of the same tenant within 2 s of the event's time."""
    assert float(TEST_SETTINGS["WEBHOOK_TIMEOUT_SECONDS"]) > HEALTHY_BOUND_SECONDS
    hanging = await started(lambda _, hook: hook.hang())
    healthy = await started()
    try:
        await register(tenant, hanging.url, event_types=["stock.changed"])
        await register(tenant, healthy.url, event_types=["stock.changed"])
        records = [await StockRecord.create(tenant, quantity=1) for _ in range(4)]
        for n in range(2 * PER_ENDPOINT):
            await records[n % len(records)].restock()
        await eventually(
            polled(lambda: hanging.open_requests),
            lambda n: n == PER_ENDPOINT,
            what="the hanging endpoint holding all its slots",
        )
        before = len(healthy.received)

        for n in range(EVENTS):
            await records[n % len(records)].restock()
        total = len(records) + 2 * PER_ENDPOINT + EVENTS
        await received_count(healthy, total, timeout=HEALTHY_BOUND_SECONDS + 10)

        delays = [
            a.at - datetime.fromisoformat(a.json["timestamp"]).timestamp()
            for a in healthy.received[before:]
        ]
        assert len(delays) >= EVENTS
        assert max(delays) < HEALTHY_BOUND_SECONDS, sorted(delays)[-5:]
        assert hanging.most_open == PER_ENDPOINT, "the hanging endpoint is held to its cap"
        ports = {a.peer_port for a in healthy.received}
        assert len(ports) <= PER_ENDPOINT, f"connections are reused: {len(ports)} ports"
    finally:
        await hanging.stop()
        await healthy.stop()


async def test_no_event_of_one_tenant_reaches_another_tenants_endpoint(
    tenant: Client,
    other_tenant: Client,
):
    mine, theirs = await started(), await started()
    try:
        endpoint = await register(tenant, mine.url, event_types=["*"])
        other = await register(other_tenant, theirs.url, event_types=["*"])
        their_record = await StockRecord.create(other_tenant, quantity=3)
        for _ in range(5):
            await their_record.restock()
        my_record = await StockRecord.create(tenant, quantity=3)
        # each tenant's product.created, then its record's stock.changed events
        await received_count(theirs, 7, what="the other tenant's own events")
        await received_count(mine, 2, what="my own events")

        # An event's deliveries to every endpoint are created in one transaction, so once the
        # other tenant's endpoint got all of its events, mine would have a delivery for any
        # of them it was (wrongly) sent: it has only its own.
        queued = await deliveries(tenant, endpoint["id"])
        assert {d["subject"] for d in queued} == {my_record.subject, f"product/{my_record.sku}"}

        def about(arrival) -> str:  # the stock record's id, or the product's SKU
            return arrival.json["data"].get("id") or arrival.json["data"]["sku"]

        assert {about(a) for a in mine.received} == {my_record.id, my_record.sku}
        assert {about(a) for a in theirs.received} == {their_record.id, their_record.sku}
        for arrival in mine.received:
            Webhook(endpoint["secret"]).verify(arrival.body, arrival.headers)

        hidden = await tenant.get(f"/webhooks/endpoints/{other['id']}")
        assert hidden.status == 404 and hidden.problem_code == "no_content"
        listed = await tenant.get("/webhooks/endpoints")
        assert other["id"] not in {e["id"] for e in listed.body["data"]}
        foreign = await tenant.get(f"/webhooks/endpoints/{other['id']}/deliveries")
        assert foreign.status == 404
        for path in ("rotate-secret", "test"):
            assert (await tenant.post(f"/webhooks/endpoints/{other['id']}/{path}")).status == 404
        patched = await tenant.call(
            "PATCH", f"/webhooks/endpoints/{other['id']}", json={"enabled": False}
        )
        assert patched.status == 404
    finally:
        await mine.stop()
        await theirs.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.0.10/hooks",
        "http://172.16.5.4:8080/hooks",
        "http://100.64.0.1/hooks",
        "http://[fd00::1]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
        "http://example.com:99999/x",
        "ftp://example.com/hooks",
        "http://user:secret@example.com/hooks",
        "/relative/hooks",
    ],
)
async def test_private_and_malformed_urls_are_refused_with_422(tenant: Client, url: str):
    """Only the validation is exercised: nothing is ever sent to these addresses."""
    created = await tenant.post("/webhooks/endpoints", {"url": url})
    assert created.status == 422, created
    assert created.problem_code == "validation"
    assert created.body["errors"][0]["field"] == "/url"


async def test_an_endpoint_cannot_be_moved_to_a_private_address(tenant: Client):
    endpoint = await register(tenant, Hook(port=9).url)
    moved = await tenant.call(
        "PATCH", f"/webhooks/endpoints/{endpoint['id']}", json={"url": "http://169.254.169.254/"}
    )
    assert moved.status == 422, moved
    kept = await tenant.get(f"/webhooks/endpoints/{endpoint['id']}")
    assert kept.body["url"] == endpoint["url"]
