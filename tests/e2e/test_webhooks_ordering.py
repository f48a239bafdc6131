"""Ordered endpoints: one subject's events arrive in the order they happened, one at a time,
while other subjects keep flowing."""

from aiohttp import web

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import Arrival, Hook, deliveries, polled, register, started
from tests.support import Client, eventually, ref

HOLD_SECONDS = 3  # Retry-After of the failed first attempt


def types_of(hook: Hook, sale_id: str) -> list[str]:
    return [a.type for a in hook.received if a.json["data"]["sale_id"] == sale_id]


async def test_a_failing_head_holds_back_only_its_own_subject(tenant: Client):
    held = ref("S")  # the sale whose first event fails once

    def respond(arrival: Arrival, hook: Hook) -> web.Response:
        first_try = types_of(hook, held) == ["sale.created"]
        if arrival.json["data"]["sale_id"] == held and first_try:
            return web.Response(status=503, headers={"Retry-After": str(HOLD_SECONDS)})
        return web.Response(text="ok")

    hook = await started(respond)
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.*"], ordered=True)
        assert endpoint["ordered"] is True
        sku, location, _ = await stocked_product(tenant, quantity=10)
        first = await tenant.post("/sales", sale_body(held, location, (sku, 1)))
        assert first.status == 201 and first.body["status"] == "pending", first
        other = ref("S")
        second = await tenant.post("/sales", sale_body(other, location, (sku, 1)))
        assert second.status == 201 and second.body["status"] == "pending", second
        cancel = await tenant.post(
            "/sales/cancel", {"sale_id": held, "cancel_reason": "customer_request"}
        )
        assert cancel.status == 200, cancel

        # The other sale's events go out while the held sale's head waits for its retry.
        await eventually(
            polled(lambda: types_of(hook, other)),
            lambda t: t == ["sale.created", "sale.status_changed"],
            what="the other sale's events",
        )
        assert types_of(hook, held) == ["sale.created"]
        subject = f"sale/{first.body['id']}"

        async def queued() -> list[dict]:
            return await deliveries(tenant, endpoint["id"], subject=subject)

        found = await eventually(queued, lambda q: len(q) == 4, what="the held sale's queue")
        assert types_of(hook, held) == ["sale.created"]
        waiting = sorted(d["event_type"] for d in found if not d["attempts"])
        assert waiting == ["sale.canceled", "sale.status_changed", "sale.status_changed"], found

        # Then the head succeeds and the rest of its subject follows, in order.
        await eventually(
            polled(lambda: types_of(hook, held)),
            lambda t: len(t) == 5,
            timeout=HOLD_SECONDS + 10,
            what="the held sale's events",
        )
        assert types_of(hook, held) == [
            "sale.created",
            "sale.created",
            "sale.status_changed",
            "sale.status_changed",
            "sale.canceled",
        ]
        statuses = [
            a.json["data"]["status"] for a in hook.received if a.json["data"]["sale_id"] == held
        ]
        assert statuses == ["awaiting_stock", "awaiting_stock", "pending", "canceled", "canceled"]
        versions = [
            a.json["data"]["version"] for a in hook.received if a.json["data"]["sale_id"] == held
        ]
        assert versions == sorted(versions)
    finally:
        await hook.stop()


async def test_an_unordered_endpoint_does_not_wait(tenant: Client):
    held = ref("S")

    def respond(arrival: Arrival, hook: Hook) -> web.Response:
        # The first attempt at sale.created fails and may not be retried for HOLD_SECONDS.
        if arrival.type == "sale.created" and types_of(hook, held).count("sale.created") == 1:
            return web.Response(status=503, headers={"Retry-After": str(HOLD_SECONDS)})
        return web.Response(text="ok")

    hook = await started(respond)
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.*"])
        assert endpoint["ordered"] is False
        sku, location, _ = await stocked_product(tenant, quantity=10)
        assert (await tenant.post("/sales", sale_body(held, location, (sku, 1)))).status == 201
        # Both arrive well before sale.created may be retried: the later event did not wait
        # for the earlier one to succeed (the two may be sent in either order).
        arrived = await eventually(
            polled(lambda: types_of(hook, held)),
            lambda t: "sale.created" in t and "sale.status_changed" in t,
            timeout=HOLD_SECONDS - 1,
            what="the later event delivered while the earlier fails",
        )
        assert arrived.count("sale.created") == 1, "sale.created is still held"
    finally:
        await hook.stop()
