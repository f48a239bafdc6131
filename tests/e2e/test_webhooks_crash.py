"""Killing `webhooks` in the middle of a burst loses nothing: every event arrives at least once,
and the receiver deduplicates by `webhook-id`."""

import asyncio
from collections import Counter

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import Arrival, Hook, polled, register, started
from tests.support import Client, eventually, ref

SALES = 100
EVENTS_PER_SALE = 2  # sale.created, then sale.status_changed to pending
IN_FLIGHT = 20


HELD = 5  # requests the receiver holds unanswered when the service is killed


async def test_webhooks_killed_mid_burst_loses_no_event(tenant: Client, platform):
    killed = asyncio.Event()

    async def respond(_: Arrival, hook: Hook) -> web.Response:
        if len(hook.unique_ids()) > 2 * HELD and not killed.is_set():
            await killed.wait()  # in flight when the service dies: never recorded
        return web.Response(text="ok")

    hook = await started(respond)
    service = platform["webhooks"]
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.*"])
        sku, location, _ = await stocked_product(tenant, quantity=SALES)
        sale_ids = [ref("S") for _ in range(SALES)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for sale_id in sale_ids:
            queue.put_nowait(sale_id)

        async def create() -> None:
            while not queue.empty():
                sale_id = queue.get_nowait()
                answer = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
                assert answer.status == 201, answer

        burst = asyncio.gather(*(create() for _ in range(IN_FLIGHT)))
        expected = SALES * EVENTS_PER_SALE
        await eventually(
            polled(lambda: hook.open_requests), lambda n: n >= HELD, what="requests in flight"
        )
        service.kill()
        killed.set()
        at_kill = len(hook.unique_ids())
        assert at_kill < expected, "the kill must land mid-burst to prove anything"
        await burst
        await asyncio.to_thread(service.start)
        await asyncio.to_thread(service.wait_ready, 60)

        await eventually(
            polled(lambda: len(hook.unique_ids())),
            lambda n: n >= expected,
            timeout=90,
            what="every event delivered after the restart",
        )
        # The requests in flight at the kill were never recorded: each is sent again, with the
        # same webhook-id, once its lease (WEBHOOK_LEASE_SECONDS) runs out.
        await eventually(
            polled(lambda: len(hook.received) - expected),
            lambda n: n >= HELD,
            timeout=60,
            what="the unrecorded requests sent again",
        )
        assert len(hook.unique_ids()) == expected
        seen = Counter((a.json["data"]["sale_id"], a.type) for a in hook.received)
        assert {sale for sale, _ in seen} == set(sale_ids)
        assert {t for _, t in seen} == {"sale.created", "sale.status_changed"}
        by_id: dict[str, set[bytes]] = {}
        for arrival in hook.received:
            by_id.setdefault(arrival.webhook_id, set()).add(arrival.body)
            Webhook(endpoint["secret"]).verify(arrival.body, arrival.headers)
        assert all(len(bodies) == 1 for bodies in by_id.values()), (
            "a webhook-id always carries the same event"
        )
        duplicates = len(hook.received) - expected
        print(
            f"killed after {at_kill} deliveries, {HELD}+ of them in flight;"
            f" {duplicates} repeated request(s) in all"
        )
    finally:
        if not service.is_running():
            await asyncio.to_thread(service.start)
            await asyncio.to_thread(service.wait_ready, 60)
        await hook.stop()
