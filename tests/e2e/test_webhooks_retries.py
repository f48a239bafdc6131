"""Retries, recovery and disabling, against real local receivers.

TEST_SETTINGS shorten the retry schedule to 0.2, 0.4 and 0.8 s (four attempts in all).
"""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from fulfilkit import contracts as c
from tests.e2e.webhook_tools import (
    Arrival,
    Hook,
    StockRecord,
    deliveries,
    polled,
    received_count,
    register,
    started,
)
from tests.kafka_tools import as_event, read_all
from tests.support import Client, eventually


def scripted(*statuses: int):
    """Answer the first requests with `statuses`, then 200."""
    script = list(statuses)

    def respond(_: Arrival, __: Hook) -> web.Response:
        return web.Response(status=script.pop(0) if script else 200, text="nope")

    return respond


async def settled(
    client: Client, endpoint_id: str, count: int, status: str = "succeeded"
) -> list[dict]:
    async def probe() -> list[dict]:
        return await deliveries(client, endpoint_id, status=status)

    return await eventually(
        probe, lambda found: len(found) >= count, what=f"{count} {status} deliveries"
    )


async def test_500_twice_then_200_arrives_exactly_at_the_third_attempt(tenant: Client):
    hook = await started(scripted(500, 500))
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        await StockRecord.create(tenant, quantity=1)
        [delivery] = await settled(tenant, endpoint["id"], 1)

        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
        assert delivery["attempt_count"] == 3 and delivery["last_status_code"] == 200
        assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
        assert delivery["attempts"][0]["response_body"] == "nope"
        assert len(hook.received) == 3
        assert {a.webhook_id for a in hook.received} == {delivery["webhook_id"]}
        bodies = {a.body for a in hook.received}
        assert len(bodies) == 1, "every retry carries the same payload"
        for arrival in hook.received:
            Webhook(endpoint["secret"]).verify(arrival.body, arrival.headers)
        times = [datetime.fromisoformat(a["attempted_at"]) for a in delivery["attempts"]]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert gaps[0] >= 0.18 and gaps[1] >= 0.36, f"backoff not respected: {gaps}"
    finally:
        await hook.stop()


async def test_a_receiver_that_is_down_then_back_gets_everything(tenant: Client):
    hook = await started()
    port = hook.port
    await hook.stop()  # connection refused from now on
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        record = await StockRecord.create(tenant, quantity=1)
        for _ in range(4):
            await record.restock()

        async def refused() -> list[dict]:
            return [
                d
                for d in await deliveries(tenant, endpoint["id"])
                if d["attempts"] and d["attempts"][0]["error"]
            ]

        # Every delivery has met a refused connection; the receiver returns before the
        # schedule (1.4 s after the first attempt) is spent.
        await eventually(
            refused, lambda found: len(found) == 5, interval=0.02, what="refused first attempts"
        )
        await hook.start(port)
        done = await settled(tenant, endpoint["id"], 5)
        assert len(hook.unique_ids()) == 5
        assert all(d["attempts"][0]["status_code"] is None for d in done)
        assert all(d["attempts"][-1]["status_code"] == 200 for d in done)
    finally:
        await hook.stop()


async def test_failed_deliveries_since_a_time_are_recovered_in_one_call(tenant: Client):
    hook = await started()
    port = hook.port
    await hook.stop()
    try:
        since = datetime.now(UTC) - timedelta(seconds=1)
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        record = await StockRecord.create(tenant, quantity=1)
        for _ in range(5):
            await record.restock()
        failed = await settled(tenant, endpoint["id"], 6, status="failed")
        assert all(len(d["attempts"]) == 4 for d in failed), "the whole schedule was spent"

        await hook.start(port)
        path = f"/webhooks/endpoints/{endpoint['id']}/recover"
        future = await tenant.post(
            path, {"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
        )
        assert future.status == 422, future
        recovered = await tenant.post(path, {"since": since.isoformat()})
        assert recovered.status == 202, recovered
        assert recovered.body == {"recovered": 6}

        done = await settled(tenant, endpoint["id"], 6)
        assert {d["webhook_id"] for d in done} == {d["webhook_id"] for d in failed}
        assert hook.unique_ids() == {d["webhook_id"] for d in failed}
        again = await tenant.post(path, {"since": since.isoformat()})
        assert again.body == {"recovered": 0}
    finally:
        await hook.stop()


async def test_a_single_failed_delivery_can_be_resent(tenant: Client):
    hook = await started(scripted(500, 500, 500, 500))
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        await StockRecord.create(tenant, quantity=1)
        [failed] = await settled(tenant, endpoint["id"], 1, status="failed")
        resent = await tenant.post(f"/webhooks/deliveries/{failed['id']}/resend")
        assert resent.status == 202, resent
        [done] = await settled(tenant, endpoint["id"], 1)
        assert done["id"] == failed["id"] and done["webhook_id"] == failed["webhook_id"]
        assert [a["status_code"] for a in done["attempts"]] == [500, 500, 500, 500, 200]
        again = await tenant.post(f"/webhooks/deliveries/{failed['id']}/resend")
        assert again.status == 202
    finally:
        await hook.stop()


async def test_410_disables_the_endpoint_and_announces_it(tenant: Client, infrastructure):
    gone = await started(scripted(410))
    watcher = await started()
    try:
        endpoint = await register(tenant, gone.url, event_types=["stock.changed"])
        await register(tenant, watcher.url, event_types=["webhook.*", "stock.changed"])
        record = await StockRecord.create(tenant, quantity=1)

        async def state() -> dict:
            return (await tenant.get(f"/webhooks/endpoints/{endpoint['id']}")).body

        disabled = await eventually(
            state, lambda e: e["enabled"] is False, what="the endpoint disabled"
        )
        assert "410" in disabled["disabled_reason"]
        assert len(gone.received) == 1, "410 disables at once: no retry"
        [delivery] = await deliveries(tenant, endpoint["id"])
        assert delivery["status"] == "failed" and delivery["last_status_code"] == 410

        async def announced() -> list[dict]:
            records = await read_all(infrastructure.bootstrap_servers, c.WEBHOOKS_TOPIC)
            events = [e for r in records if (e := as_event(r)) is not None]
            return [
                e
                for e in events
                if e["type"] == c.WEBHOOK_ENDPOINT_DISABLED and e["data"]["id"] == endpoint["id"]
            ]

        [event] = await eventually(
            announced,
            lambda found: len(found) >= 1,
            what="webhook.endpoint_disabled on webhooks.events",
        )
        assert event["tenantid"] == tenant.tenant_id
        assert event["data"]["enabled"] is False
        assert event["data"]["version"] == disabled["version"]
        assert event["data"]["url"] == gone.url and "410" in event["data"]["reason"]
        assert "secret" not in event["data"] and "headers" not in event["data"]

        await eventually(
            polled(lambda: watcher.of_type(c.WEBHOOK_ENDPOINT_DISABLED)),
            bool,
            what="the disabled event delivered to the tenant's other endpoint",
        )
        [told] = watcher.of_type(c.WEBHOOK_ENDPOINT_DISABLED)
        assert told.json["data"]["id"] == endpoint["id"]

        # Disabled: new events are not queued for it (the watcher shows the event was
        # handled). Enabled again: they flow.
        await record.restock()
        await received_count(watcher, 3, what="the restock seen by the other endpoint")
        enabled = await tenant.call(
            "PATCH", f"/webhooks/endpoints/{endpoint['id']}", json={"enabled": True}
        )
        assert enabled.status == 200 and enabled.body["disabled_reason"] is None
        await record.restock()
        await received_count(gone, 2, what="a delivery after re-enabling")
        assert len(await deliveries(tenant, endpoint["id"])) == 2
    finally:
        await gone.stop()
        await watcher.stop()


async def test_continuous_failure_past_the_window_disables(tenant: Client, infrastructure):
    hook = await started(lambda _, __: web.Response(status=500))
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        # The endpoint has been failing for ten days (WEBHOOK_DISABLE_AFTER_FAILING_SECONDS
        # is five days): its next failure disables it.
        since = datetime.now(UTC) - timedelta(days=10)
        await db.execute(
            "UPDATE webhooks.endpoints SET failing_since = $2 WHERE id = $1",
            uuid.UUID(endpoint["id"]),
            since,
        )
        await StockRecord.create(tenant, quantity=1)

        async def state() -> dict:
            return (await tenant.get(f"/webhooks/endpoints/{endpoint['id']}")).body

        disabled = await eventually(
            state, lambda e: e["enabled"] is False, what="the endpoint disabled"
        )
        assert disabled["disabled_reason"].startswith("every delivery failed since")
        [delivery] = await deliveries(tenant, endpoint["id"])
        assert delivery["status"] == "pending" and delivery["next_attempt_at"] is None, (
            "the queue of a disabled endpoint waits for it to be enabled again"
        )
    finally:
        await db.close()
        await hook.stop()
