"""Signed deliveries verify with the `standardwebhooks` library, before and during a rotation."""

import base64
from datetime import UTC, datetime

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e.webhook_tools import StockRecord, received_count, register, started
from tests.support import Client, eventually

STRANGER = "whsec_" + base64.b64encode(b"not the endpoint's secret, 32 b.").decode()


async def test_signatures_verify_before_and_during_a_secret_rotation(tenant: Client):
    hook = await started()
    try:
        endpoint = await register(
            tenant,
            hook.url,
            event_types=["stock.changed"],
            headers={"X-Shop": "42", "Authorization": "Bearer erp-token"},
        )
        old_secret = endpoint["secret"]
        assert old_secret.startswith("whsec_")
        shown = await tenant.get(f"/webhooks/endpoints/{endpoint['id']}")
        assert "secret" not in shown.body and "whsec_" not in str(shown.body)

        record = await StockRecord.create(tenant, quantity=5)
        await received_count(hook, 1, what="the opening stock.changed")
        [before] = hook.received
        payload = Webhook(old_secret).verify(before.body, before.headers)
        assert set(payload) == {"type", "timestamp", "dataversion", "data"}
        assert payload["dataversion"] == "1"
        assert payload["type"] == "stock.changed"
        assert payload["data"]["id"] == record.id and payload["data"]["quantity"] == 5
        assert payload["data"]["version"] >= 1
        assert before.headers["x-shop"] == "42"
        assert before.headers["authorization"] == "Bearer erp-token"
        assert before.headers["content-type"] == "application/json"
        assert len(before.headers["webhook-signature"].split()) == 1

        rotated = await tenant.post(f"/webhooks/endpoints/{endpoint['id']}/rotate-secret")
        assert rotated.status == 200, rotated
        new_secret = rotated.body["secret"]
        assert new_secret != old_secret and new_secret.startswith("whsec_")
        expires = datetime.fromisoformat(rotated.body["previous_secret_expires_at"])
        assert expires > datetime.now(UTC)

        await record.restock(3)
        await received_count(hook, 2, what="the stock.changed after the rotation")
        during = hook.received[-1]
        assert len(during.headers["webhook-signature"].split()) == 2
        assert Webhook(old_secret).verify(during.body, during.headers)["data"]["quantity"] == 8
        assert Webhook(new_secret).verify(during.body, during.headers)["data"]["quantity"] == 8
        with pytest.raises(WebhookVerificationError):
            Webhook(STRANGER).verify(during.body, during.headers)
    finally:
        await hook.stop()


async def test_signature_headers_cannot_be_overridden(tenant: Client):
    for name in ("webhook-signature", "Webhook-Id", "webhook-timestamp", "Content-Type"):
        answer = await tenant.post(
            "/webhooks/endpoints", {"url": "http://127.0.0.1:9/x", "headers": {name: "forged"}}
        )
        assert answer.status == 422, (name, answer)
        assert answer.problem_code == "validation"


async def test_test_ping_is_signed_and_reports_the_outcome(tenant: Client):
    hook = await started(lambda arrival, hook: web.Response(status=204))
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.*"])
        ping = await tenant.post(f"/webhooks/endpoints/{endpoint['id']}/test")
        assert ping.status == 200, ping
        assert ping.body["success"] is True and ping.body["status_code"] == 204
        assert ping.body["error"] is None and ping.body["latency_ms"] >= 0
        [arrival] = hook.received
        payload = Webhook(endpoint["secret"]).verify(arrival.body, arrival.headers)
        assert payload["type"] == "webhook.test"
        assert payload["data"]["endpoint_id"] == endpoint["id"]
    finally:
        await hook.stop()

    down = await tenant.post(f"/webhooks/endpoints/{endpoint['id']}/test")
    assert down.status == 200
    assert down.body["success"] is False and down.body["status_code"] is None
    assert down.body["error"]

    async def listed() -> int:
        page = await tenant.get(f"/webhooks/endpoints/{endpoint['id']}/deliveries")
        return page.body["pagination"]["total_count"]

    # A ping is not a delivery: nothing is queued or retried for it.
    assert await eventually(listed, lambda n: n == 0) == 0
