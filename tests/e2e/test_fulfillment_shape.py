"""A fulfillment has one shape everywhere it is shown, the common one of fulfilment APIs:
`sale {id, shop {id, channel, shop_name}, sale_id, date_created, status}`,
`location {name, location_id}` and `shipping_provider {name, shipping_provider_id}` beside
`fulfillment_id`, `status`, `tracking_number`, `date_created`, `is_bulky` (and the platform's
own `sale_id` and `version`): shipping init, reading a fulfillment, moving it, the sale's
copy, and the webhook of its event (data version 2)."""

import uuid
from datetime import datetime
from typing import Any

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import polled, register, started
from tests.support import Client, eventually, ref

FULFILLMENT_FIELDS = {
    "id",
    "sale",
    "location",
    "fulfillment_id",
    "status",
    "shipping_provider",
    "tracking_number",
    "date_created",
    "is_bulky",
    "sale_id",
    "version",
}


def derived_shop_id(channel: str, shop_name: str) -> str:
    """The shop id as the platform documents it: UUIDv5 of `<channel>\\n<shop_name>` in the
    platform's namespace."""
    namespace = uuid.UUID("6f1c1f4e-5b8a-4c59-9d0e-3b1f5f3f8a10")
    return str(uuid.uuid5(namespace, f"{channel}\n{shop_name}"))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_shape(f: dict[str, Any], sale: dict[str, Any], location: str, status: str) -> None:
    """`f` is the fulfillment of `sale` (as POST /sales answered it), field by field."""
    assert set(f) == FULFILLMENT_FIELDS, f
    assert uuid.UUID(f["id"])
    shop = sale["shop"]
    assert f["sale"] == {
        "id": sale["id"],
        "shop": {
            "id": derived_shop_id(shop["channel"], shop["shop_name"]),
            "channel": shop["channel"],
            "shop_name": shop["shop_name"],
        },
        "sale_id": sale["sale_id"],
        "date_created": f["sale"]["date_created"],
        "status": {"shipped": "shipped", "delivered": "delivered"}.get(status, "in_fulfillment"),
    }
    assert moment(f["sale"]["date_created"]) == moment(sale["created_at"])
    assert f["location"] == {"name": "Main warehouse", "location_id": location}
    assert f["fulfillment_id"].startswith("F-")
    assert f["status"] == status
    assert f["shipping_provider"] == {"name": "Fulfil Post", "shipping_provider_id": "fulfil-post"}
    assert f["tracking_number"].startswith("FP")
    assert moment(f["date_created"]) >= moment(sale["created_at"])
    assert f["is_bulky"] is False
    assert f["sale_id"] == sale["sale_id"]
    assert isinstance(f["version"], int)


async def test_every_view_of_a_fulfillment_has_the_nested_shape(tenant: Client):
    hook = await started()
    try:
        await register(tenant, hook.url, event_types=["fulfillment.*"])
        sku, location, _ = await stocked_product(tenant, quantity=5)
        sale_id = ref("S")
        created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.status == 201, created
        sale = created.body
        assert sale["shop"] == {
            "id": derived_shop_id("web", "Test shop"),
            "channel": "web",
            "shop_name": "Test shop",
        }

        init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
        assert init.status == 200 and init.body["errors"] == [], init
        [fulfillment] = init.body["fulfillments"]
        assert_shape(fulfillment, sale, location, "waiting_for_picking")
        assert fulfillment["version"] == 1

        got = await tenant.get(f"/fulfillment/fulfillments/{fulfillment['id']}")
        assert got.status == 200 and got.body == fulfillment, got

        on_sale = await eventually(
            lambda: tenant.get(f"/sales/{sale_id}"),
            lambda r: r.body["fulfillments"] != [],
            what="the sale's copy of its fulfillment",
        )
        assert on_sale.body["fulfillments"] == [fulfillment]
        assert on_sale.body["shop"] == sale["shop"]

        picked = await tenant.post(
            f"/fulfillment/fulfillments/{fulfillment['id']}/status", {"status": "picking"}
        )
        assert picked.status == 200, picked
        assert_shape(picked.body, sale, location, "picking")
        shipped = await tenant.post(
            "/fulfillment/fulfillments/status",
            {"updates": [{"id": fulfillment["id"], "status": "shipped"}]},
        )
        assert shipped.status == 200 and shipped.body["errors"] == [], shipped
        [moved] = shipped.body["fulfillments"]
        assert_shape(moved, sale, location, "shipped")
        assert moved["version"] == 3
        assert {k: v for k, v in moved.items() if k not in ("status", "sale", "version")} == {
            k: v for k, v in fulfillment.items() if k not in ("status", "sale", "version")
        }, "nothing but the status (and the sale's) moves"

        await eventually(
            lambda: tenant.get(f"/sales/{sale_id}"),
            lambda r: r.body["fulfillments"] == [moved],
            what="the sale's copy follows the fulfillment",
        )

        arrivals = await eventually(
            polled(lambda: [a.json for a in hook.of_type("fulfillment.status_changed")]),
            lambda found: len(found) >= 2,
            what="two fulfillment.status_changed webhooks",
        )
        [announced] = [a.json for a in hook.of_type("fulfillment.created")]
        assert announced["dataversion"] == "2"
        assert announced["data"] == fulfillment
        last = max(arrivals, key=lambda a: a["data"]["version"])
        assert last["dataversion"] == "2"
        assert last["data"] == {**moved, "previous_status": "picking"}
    finally:
        await hook.stop()


async def test_a_shops_id_is_the_same_for_every_sale_of_it(tenant: Client, other_tenant: Client):
    """Derived from the channel and the shop's name: the same shop, the same id, on every
    sale and for every tenant; another name or channel, another id."""
    sku, location, _ = await stocked_product(tenant, quantity=10)
    shops = []
    for channel, name in (("web", "Ripple"), ("web", "Ripple"), ("tiktok", "Ripple")):
        body = sale_body(ref("S"), location, (sku, 1))
        body["shop"] = {"channel": channel, "shop_name": name}
        created = await tenant.post("/sales", body)
        assert created.status == 201, created
        shops.append(created.body["shop"])
    same, again, elsewhere = shops
    assert (
        same
        == again
        == {
            "id": derived_shop_id("web", "Ripple"),
            "channel": "web",
            "shop_name": "Ripple",
        }
    )
    assert elsewhere["id"] != same["id"]

    sku, location, _ = await stocked_product(other_tenant, quantity=1)
    body = sale_body(ref("S"), location, (sku, 1))
    body["shop"] = {"channel": "web", "shop_name": "Ripple"}
    theirs = await other_tenant.post("/sales", body)
    assert theirs.status == 201 and theirs.body["shop"] == same, theirs
