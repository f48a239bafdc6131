"""An operator sees an event stock gave up on, fixes the cause, replays it through the admin
API, and the sale gets its reservation; replaying it again, or asking wrongly, is answered.

The cause is one an operator can fix: a trigger on stock's reservation lines that refuses
one SKU (as a constraint added by hand, or a bad migration, would)."""

import uuid
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson
import pytest

from deploy.local.services import Platform
from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.kafka_tools import produce
from tests.support import Answer, Client, eventually, ref

DEAD_LETTERS = "/admin/dead-letters"


@pytest.fixture
async def admin(platform: Platform, http) -> Client:
    return Client(http, platform.gateway_url, platform.admin_token)


class BlockedSku:
    """A trigger that makes stock's reservation of one SKU fail."""

    def __init__(self, dsn: str, sku: str) -> None:
        self.dsn = dsn
        self.sku = sku
        self.name = ref("block").replace("-", "_")

    async def _run(self, sql: str) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def install(self) -> None:
        await self._run(
            f"CREATE FUNCTION stock.{self.name}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN IF NEW.sku = '{self.sku}' THEN"
            "  RAISE EXCEPTION 'sku % is blocked by the operator', NEW.sku; END IF;"
            " RETURN NEW; END $$;"
            f" CREATE TRIGGER {self.name} BEFORE INSERT ON stock.reservation_lines"
            f" FOR EACH ROW EXECUTE FUNCTION stock.{self.name}()"
        )

    async def remove(self) -> None:
        await self._run(
            f"DROP TRIGGER IF EXISTS {self.name} ON stock.reservation_lines;"
            f" DROP FUNCTION IF EXISTS stock.{self.name}()"
        )


async def sale_of(tenant: Client, sale_id: str) -> dict:
    return (await tenant.get(f"/sales/{sale_id}")).body


async def dead_letter_of(admin: Client, key: str) -> dict | None:
    listed = await admin.get(DEAD_LETTERS, service="stock", type=c.SALE_CREATED, limit=1000)
    assert listed.status == 200, listed
    return next((d for d in listed.body["data"] if d["key"] == key), None)


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"] == "application/problem+json", answer
    assert (answer.body["status"], answer.body["code"]) == (status, code), answer


async def test_a_dead_lettered_sale_is_replayed_once_its_cause_is_fixed(
    tenant: Client, admin: Client, infrastructure
):
    sku, location, record = await stocked_product(tenant, quantity=5)
    blocked = BlockedSku(infrastructure.database_url, sku)
    await blocked.install()
    try:
        sale_ids = [ref("S"), ref("S")]
        keys = []
        for sale_id in sale_ids:
            created = await tenant.post(
                "/sales",
                sale_body(sale_id, location, (sku, 2)),
                headers={"Prefer": "respond-async"},
            )
            assert (created.status, created.body["status"]) == (202, "awaiting_stock"), created
            keys.append(c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(created.body["id"])))

        first, second = [
            await eventually(
                lambda key=key: dead_letter_of(admin, key),
                lambda found: found is not None,
                timeout=30,
                what="the sale.created in stock's dead letters",
            )
            for key in keys
        ]
    finally:
        await blocked.remove()

    # What the operator sees
    assert first["consumer"] == "stock"
    assert (first["topic"], first["event_type"], first["state"]) == (
        c.SALES_TOPIC,
        c.SALE_CREATED,
        "dead",
    )
    assert f"sku {sku} is blocked by the operator" in first["error"], first
    assert first["replayable"] is True
    assert first["replayed_at"] is None
    assert isinstance(first["partition"], int) and isinstance(first["offset"], int)
    assert "value" not in first, "a list leaves the values out"
    shown = await admin.get(f"{DEAD_LETTERS}/{first['id']}", service="stock")
    assert shown.status == 200, shown
    assert {k: v for k, v in shown.body.items() if k in first} == first
    event = orjson.loads(shown.body["value"])
    assert (event["id"], event["type"]) == (first["event_id"], c.SALE_CREATED)
    assert event["data"]["sale_id"] == sale_ids[0]
    assert {"key": "content-type", "value": "application/cloudevents+json"} in shown.body["headers"]
    for sale_id in sale_ids:
        sale = await sale_of(tenant, sale_id)
        assert (sale["status"], sale["reservation"]) == ("awaiting_stock", None), sale

    # Replayed once the trigger is gone: the sale gets its reservation
    replayed = await admin.post(f"{DEAD_LETTERS}/{first['id']}/replay?service=stock")
    assert replayed.status == 200, replayed
    assert (replayed.body["id"], replayed.body["state"]) == (first["id"], "replayed")
    assert replayed.body["replayed_at"] is not None
    await eventually(
        lambda: sale_of(tenant, sale_ids[0]),
        lambda sale: (
            sale["status"] == "pending" and (sale["reservation"] or {}).get("status") == "active"
        ),
        timeout=30,
        what="the replayed sale reserved",
    )

    # Several at once: each id answered
    missing = 2**62
    many = await admin.post(
        f"{DEAD_LETTERS}/replay?service=stock", {"ids": [second["id"], first["id"], missing]}
    )
    assert many.status == 200, many
    assert [(r["id"], r["outcome"]) for r in many.body["results"]] == [
        (second["id"], "replayed"),
        (first["id"], "already_replayed"),
        (missing, "not_found"),
    ]
    await eventually(
        lambda: tenant.get(f"/stock/stock-records/{record['id']}"),
        lambda a: a.body["reserved"] == 4,
        timeout=30,
        what="both sales reserved, once each",
    )

    # A second replay is refused, clearly, and changes nothing
    again = await admin.post(f"{DEAD_LETTERS}/{first['id']}/replay?service=stock")
    assert_problem(again, 409, "conflict")
    assert again.body["outcome"] == "already_replayed"
    assert f"Dead letter {first['id']} was replayed already" in again.body["detail"]
    listed = await dead_letter_of(admin, keys[0])
    assert listed is not None and listed["state"] == "replayed"
    stock = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
    assert (stock["quantity"], stock["reserved"]) == (5, 4)

    # Purged: one, then the other through the purge request
    gone = await admin.call("DELETE", f"{DEAD_LETTERS}/{first['id']}", service="stock")
    assert gone.status == 204, gone
    assert_problem(
        await admin.get(f"{DEAD_LETTERS}/{first['id']}", service="stock"), 404, "no_content"
    )
    purged = await admin.post(f"{DEAD_LETTERS}/purge?service=stock", {"ids": [second["id"]]})
    assert (purged.status, purged.body) == (200, {"purged": 1})
    assert await dead_letter_of(admin, keys[1]) is None


async def test_unreadable_records_are_listed_and_not_replayable(admin: Client, infrastructure):
    marker = ref("garbage")
    await produce(infrastructure.bootstrap_servers, c.STOCK_TOPIC, [(b"k", marker.encode())])

    async def garbage() -> dict | None:
        listed = await admin.get(
            DEAD_LETTERS, service="orders", topic=c.STOCK_TOPIC, state="dead", limit=1000
        )
        assert listed.status == 200, listed
        for d in listed.body["data"]:
            shown = await admin.get(f"{DEAD_LETTERS}/{d['id']}", service="orders")
            if shown.body["value"] == marker:
                return shown.body
        return None

    found = await eventually(garbage, lambda d: d is not None, timeout=30, what="garbage listed")
    assert (found["event_id"], found["event_type"], found["key"]) == (None, None, "k")
    assert found["error"].startswith("unparseable event:"), found
    assert found["replayable"] is False
    refused = await admin.post(f"{DEAD_LETTERS}/{found['id']}/replay?service=orders")
    assert_problem(refused, 409, "conflict")
    assert refused.body["outcome"] == "not_replayable"
    assert "Purge it instead" in refused.body["detail"]
    older_than = found["failed_at"]
    purged = await admin.post(
        f"{DEAD_LETTERS}/purge?service=orders", {"ids": [found["id"]], "older_than": older_than}
    )
    assert_problem(purged, 422, "validation")


async def test_pages_follow_the_link(admin: Client, infrastructure):
    await produce(
        infrastructure.bootstrap_servers,
        c.FULFILLMENT_TOPIC,
        [(b"k", ref("junk").encode()), (b"k", ref("junk").encode())],
    )

    async def first_page() -> Answer:
        return await admin.get(DEAD_LETTERS, service="orders", topic=c.FULFILLMENT_TOPIC, limit=1)

    page = await eventually(
        first_page, lambda a: "Link" in a.headers, timeout=30, what="a second page"
    )
    assert page.status == 200, page
    assert len(page.body["data"]) == 1
    assert page.body["pagination"]["limit"] == 1
    cursor = page.body["pagination"]["next_cursor"]
    link, rel = page.headers["Link"].split(">; ")
    assert rel == 'rel="next"'
    query = parse_qs(urlsplit(link.lstrip("<")).query)
    assert query["cursor"] == [cursor]
    assert (query["service"], query["topic"], query["limit"]) == (
        ["orders"],
        [c.FULFILLMENT_TOPIC],
        ["1"],
    )
    following = await admin.get(
        DEAD_LETTERS, service="orders", topic=c.FULFILLMENT_TOPIC, limit=1, cursor=cursor
    )
    assert following.status == 200, following
    assert following.body["data"][0]["id"] > page.body["data"][0]["id"]


async def test_bad_requests_are_answered_as_problems(admin: Client, tenant: Client):
    assert_problem(await admin.get(f"{DEAD_LETTERS}/{2**62}", service="stock"), 404, "no_content")
    assert_problem(
        await admin.post(f"{DEAD_LETTERS}/{2**62}/replay?service=webhooks"), 404, "no_content"
    )
    bad_cursor = await admin.get(DEAD_LETTERS, service="stock", cursor="not-a-cursor")
    assert_problem(bad_cursor, 422, "validation")
    assert bad_cursor.body["errors"][0]["field"] == "/cursor"
    unknown = await admin.get(DEAD_LETTERS, service="billing")
    assert_problem(unknown, 422, "validation")
    [error] = unknown.body["errors"]
    assert (error["field"], error["in"]) == ("/service", "query")
    assert "'stock'" in error["message"], error
    missing = await admin.get(DEAD_LETTERS)
    assert_problem(missing, 422, "validation")
    assert_problem(await admin.post(f"{DEAD_LETTERS}/purge?service=stock", {}), 422, "validation")
    assert_problem(
        await admin.post(f"{DEAD_LETTERS}/replay?service=stock", {"ids": []}), 422, "validation"
    )
    assert_problem(await admin.get(f"{DEAD_LETTERS}/0", service="stock"), 422, "validation")
    # a tenant's key, even one with the `admin` scope, is not the admin token
    assert_problem(await tenant.get(DEAD_LETTERS, service="stock"), 401, "invalid_token")
    anonymous = Client(admin.session, admin.base_url, None)
    assert_problem(await anonymous.get(DEAD_LETTERS, service="stock"), 401, "invalid_token")


async def test_the_services_answer_only_the_gateway(platform: Platform, http):
    url = f"{platform['orders'].url}/internal/dead-letters"
    async with http.get(url) as answer:
        assert answer.status == 401
        assert (await answer.json(content_type=None))["code"] == "invalid_token"
    token = platform.internal_tokens["fulfilment"]
    async with http.get(url, headers={"X-Internal-Token": token}) as answer:
        assert answer.status == 403
        assert (await answer.json(content_type=None))["code"] == "no_permission"
    token = platform.internal_tokens["gateway"]
    async with http.get(url, headers={"X-Internal-Token": token}) as answer:
        assert answer.status == 200


async def test_the_admin_routes_are_in_the_api_document(platform: Platform, http):
    async with http.get(f"{platform.gateway_url}/openapi.json") as answer:
        document = await answer.json()
    paths = document["paths"]
    operations = {
        (method.upper(), path)
        for path, item in paths.items()
        if path.startswith("/api/v1/admin/dead-letters")
        for method in item
        if method in ("get", "post", "delete")
    }
    assert operations == {
        ("GET", "/api/v1/admin/dead-letters"),
        ("GET", "/api/v1/admin/dead-letters/{dead_letter_id}"),
        ("POST", "/api/v1/admin/dead-letters/{dead_letter_id}/replay"),
        ("POST", "/api/v1/admin/dead-letters/replay"),
        ("POST", "/api/v1/admin/dead-letters/purge"),
        ("DELETE", "/api/v1/admin/dead-letters/{dead_letter_id}"),
    }
    listing = paths["/api/v1/admin/dead-letters"]["get"]
    assert listing["security"] == [{"adminToken": []}]
    [service] = [p for p in listing["parameters"] if p["name"] == "service"]
    assert service["required"] is True
    assert service["schema"]["enum"] == ["orders", "stock", "fulfilment", "webhooks"]
    assert "/internal/dead-letters" not in paths
