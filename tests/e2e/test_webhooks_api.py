"""The endpoints and deliveries API through the gateway."""

from datetime import UTC, datetime, timedelta

from tests.e2e.webhook_tools import (
    StockRecord,
    deliveries,
    received_count,
    register,
    started,
)
from tests.support import Client, eventually


async def test_endpoint_crud(tenant: Client):
    created = await tenant.post(
        "/webhooks/endpoints",
        {
            "url": "http://127.0.0.1:9/erp",
            "event_types": ["sale.*", "stock.low", "sale.*"],
            "headers": {"X-Shop": "1"},
            "description": "ERP",
            "ordered": True,
        },
    )
    assert created.status == 201, created
    endpoint = created.body
    assert endpoint["event_types"] == ["sale.*", "stock.low"]
    assert endpoint["enabled"] is True and endpoint["ordered"] is True
    assert endpoint["version"] == 1 and endpoint["secret"].startswith("whsec_")
    assert created.headers["Location"].endswith(f"/webhooks/endpoints/{endpoint['id']}")
    path = f"/webhooks/endpoints/{endpoint['id']}"

    got = await tenant.get(path)
    assert got.status == 200 and got.headers["ETag"] == '"1"'
    assert "secret" not in got.body

    stale = await tenant.call("PATCH", path, json={"description": "x"}, headers={"If-Match": '"7"'})
    assert stale.status == 409 and stale.problem_code == "conflict"
    patched = await tenant.call(
        "PATCH",
        path,
        json={"event_types": ["*"], "ordered": False, "enabled": False},
        headers={"If-Match": '"1"'},
    )
    assert patched.status == 200, patched
    assert patched.body["event_types"] == ["*"] and patched.body["ordered"] is False
    assert patched.body["enabled"] is False and patched.body["disabled_reason"]
    assert patched.body["description"] == "ERP" and patched.body["version"] == 2

    bad = await tenant.post(
        "/webhooks/endpoints", {"url": "http://127.0.0.1:9/", "event_types": ["orders.*"]}
    )
    assert bad.status == 422 and bad.problem_code == "validation"
    unknown = await tenant.post(
        "/webhooks/endpoints", {"url": "http://127.0.0.1:9/", "colour": "red"}
    )
    assert unknown.status == 422

    await register(tenant, "http://127.0.0.1:9/second")
    page = await tenant.get("/webhooks/endpoints", limit=1)
    assert page.status == 200 and len(page.body["data"]) == 1
    assert page.body["pagination"]["total_count"] == 2
    assert 'rel="next"' in page.headers["Link"]

    assert (await tenant.call("DELETE", path)).status == 204
    assert (await tenant.get(path)).status == 404
    assert (await tenant.call("DELETE", path)).status == 404


async def test_deliveries_are_listed_with_filters_and_pages(tenant: Client):
    hook = await started()
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.*"])
        first, second = (
            await StockRecord.create(tenant, quantity=2),
            await StockRecord.create(tenant, quantity=2),
        )
        await received_count(hook, 2)
        middle = datetime.now(UTC)
        for _ in range(3):
            await second.restock()
        await received_count(hook, 5)
        path = f"/webhooks/endpoints/{endpoint['id']}/deliveries"

        async def succeeded() -> list[dict]:
            return await deliveries(tenant, endpoint["id"], status="succeeded")

        everything = await eventually(succeeded, lambda d: len(d) == 5)
        assert [d["created_at"] for d in everything] == sorted(
            (d["created_at"] for d in everything), reverse=True
        )
        one = everything[0]
        assert one["payload"]["type"] == one["event_type"] == "stock.changed"
        assert one["attempts"][0]["status_code"] == 200
        assert one["subject"].startswith("stock-record/")

        mine = await deliveries(tenant, endpoint["id"], subject=first.subject)
        assert len(mine) == 1 and mine[0]["payload"]["data"]["id"] == first.id
        later = await deliveries(tenant, endpoint["id"], since=middle.isoformat())
        assert len(later) == 3
        earlier = await deliveries(tenant, endpoint["id"], until=middle.isoformat())
        assert len(earlier) == 2
        by_event = await deliveries(tenant, endpoint["id"], event_id=one["event_id"])
        assert [d["id"] for d in by_event] == [one["id"]]
        assert await deliveries(tenant, endpoint["id"], status="failed") == []
        assert await deliveries(tenant, endpoint["id"], event_type="stock.low") == []

        page = await tenant.get(path, limit=2, offset=2)
        assert [d["id"] for d in page.body["data"]] == [d["id"] for d in everything[2:4]]
        assert page.body["pagination"] == {"total_count": 5, "offset": 2, "limit": 2}
        assert (await tenant.get(path, status="lost")).status == 422
        single = await tenant.get(f"/webhooks/deliveries/{one['id']}")
        assert single.status == 200 and single.body["webhook_id"] == one["webhook_id"]

        in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        recover = f"/webhooks/endpoints/{endpoint['id']}/recover"
        assert (await tenant.post(recover, {"since": in_an_hour})).status == 422
        assert (await tenant.post(recover, {"since": "2025-01-01T00:00:00"})).status == 422
        none = await tenant.post(recover, {"since": middle.isoformat()})
        assert none.status == 202 and none.body == {"recovered": 0}
    finally:
        await hook.stop()
