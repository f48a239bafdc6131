"""The API the console and the `fulfil` CLI read: admin tenants, the overview, the stock
integrity check over tenants, sale_id search, deliveries across endpoints, endpoint health
and attempt details. Shapes field by field, and the 4xx paths."""

import asyncio
import time
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp import web

from deploy.local.services import Platform
from gateway.domain import SCOPES
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import Arrival, Hook, register, started
from tests.support import Client, eventually, ref

SERVICES = ["orders", "stock", "fulfilment", "webhooks"]


@pytest.fixture
async def admin(platform: Platform, http) -> Client:
    return Client(http, platform.gateway_url, platform.admin_token)


@pytest.fixture
async def anonymous(platform: Platform, http) -> Client:
    return Client(http, platform.gateway_url, None)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- (a) tenants ------------------------------------------------------------------------------


async def test_admin_lists_and_shows_tenants_with_key_counts(admin: Client, tenant: Client):
    created = await admin.post("/admin/tenants", {"name": ref("shop"), "scopes": list(SCOPES)})
    assert created.status == 201, created
    tenant_id = created.body["tenant"]["id"]
    second = await admin.post(f"/admin/tenants/{tenant_id}/keys", {"scopes": ["sales:read"]})
    third = await admin.post(f"/admin/tenants/{tenant_id}/keys", {"scopes": ["sales:read"]})
    assert second.status == third.status == 201
    assert (await admin.call("DELETE", f"/admin/keys/{third.body['id']}")).status == 204

    shown = await admin.get(f"/admin/tenants/{tenant_id}")
    assert shown.status == 200, shown
    assert set(shown.body) == {"id", "name", "created_at", "keys"}
    assert shown.body["id"] == tenant_id
    assert shown.body["name"] == created.body["tenant"]["name"]
    assert _time(shown.body["created_at"]) == _time(created.body["tenant"]["created_at"])
    assert shown.body["keys"] == {"active": 2, "revoked": 1}

    first = await admin.get("/admin/tenants", limit=1)
    assert first.status == 200, first
    total = first.body["pagination"]["total_count"]
    assert first.body["pagination"] == {"total_count": total, "offset": 0, "limit": 1}
    assert first.headers["Total-Count"] == str(total) and 'rel="next"' in first.headers["Link"]
    assert total >= 2
    # oldest first: the tenant just made is the last one
    last = await admin.get("/admin/tenants", limit=1, offset=total - 1)
    assert last.status == 200 and last.body["data"] == [shown.body]
    by_pages = await admin.get("/admin/tenants", pageSize=1, pageNumber=total)
    assert by_pages.status == 200 and by_pages.body["data"] == [shown.body]
    assert by_pages.headers["Page-Number"] == str(total)


async def test_admin_tenants_refusals(admin: Client, anonymous: Client, tenant: Client):
    for path in ("/admin/tenants", f"/admin/tenants/{tenant.tenant_id}"):
        missing = await anonymous.get(path)
        assert missing.status == 401 and missing.problem_code == "invalid_token", missing
        # a tenant's key, even one with the `admin` scope, is not the admin token
        refused = await tenant.get(path)
        assert refused.status == 401 and refused.problem_code == "invalid_token", refused
    unknown = await admin.get(f"/admin/tenants/{uuid4()}")
    assert unknown.status == 404 and unknown.problem_code == "no_content", unknown
    malformed = await admin.get("/admin/tenants/not-a-uuid")
    assert malformed.status == 422 and malformed.body["errors"][0]["field"] == "/tenant_id"
    too_big = await admin.get("/admin/tenants", limit=100000)
    assert too_big.status == 422 and too_big.body["errors"][0]["field"] == "/limit", too_big


# --- (b) overview -----------------------------------------------------------------------------


def _assert_ready_service(found: dict, name: str) -> None:
    assert set(found) == {
        "service",
        "status",
        "checks",
        "consumer_lag",
        "outbox_backlog_rows",
        "dead_letters",
        "error",
    }, found
    assert found["service"] == name and found["status"] == "ready", found
    assert found["error"] is None
    assert found["checks"]["database"] is True and found["checks"]["broker"] is True
    assert all(value is True for value in found["checks"].values())
    for lag in found["consumer_lag"]:
        assert set(lag) == {"group", "topic", "lag"}
        assert lag["group"] == name and isinstance(lag["lag"], int) and lag["lag"] >= 0
    assert isinstance(found["outbox_backlog_rows"], int) and found["outbox_backlog_rows"] >= 0
    assert set(found["dead_letters"]) == {"dead", "replayed"}
    assert all(isinstance(v, int) and v >= 0 for v in found["dead_letters"].values())


async def test_overview_of_every_service(admin: Client, anonymous: Client, tenant: Client):
    async def probe() -> dict:
        answer = await admin.get("/admin/overview")
        assert answer.status == 200, answer
        return answer.body

    # consumers report lag once they have their partitions assigned
    body = await eventually(
        probe,
        lambda b: all(s["consumer_lag"] for s in b["services"]),
        what="every service's consumer lag",
    )
    assert set(body) == {"services"}
    assert [s["service"] for s in body["services"]] == SERVICES
    for found in body["services"]:
        _assert_ready_service(found, found["service"])
    stock = next(s for s in body["services"] if s["service"] == "stock")
    assert "sales.events" in {lag["topic"] for lag in stock["consumer_lag"]}

    assert (await anonymous.get("/admin/overview")).status == 401
    assert (await tenant.get("/admin/overview")).status == 401


async def test_overview_shows_a_stopped_service_unreachable_without_waiting(
    admin: Client, platform: Platform
):
    fulfilment = platform["fulfilment"]
    await asyncio.to_thread(fulfilment.stop)
    try:
        started_at = time.monotonic()
        answer = await admin.get("/admin/overview")
        took = time.monotonic() - started_at
        assert answer.status == 200, answer
        assert took < 5, took  # OVERVIEW_TIMEOUT_SECONDS is 3; a refused connection is quick
        found = {s["service"]: s for s in answer.body["services"]}
        assert found["fulfilment"] == {
            "service": "fulfilment",
            "status": "unreachable",
            "checks": None,
            "consumer_lag": None,
            "outbox_backlog_rows": None,
            "dead_letters": None,
            "error": found["fulfilment"]["error"],
        }
        assert "fulfilment" in found["fulfilment"]["error"]
        for name in ("orders", "stock", "webhooks"):
            assert found[name]["status"] in ("ready", "not_ready"), found[name]
    finally:
        if not fulfilment.is_running():
            await asyncio.to_thread(fulfilment.start)
        await asyncio.to_thread(fulfilment.wait_ready, 60)


# --- (g) stock integrity over tenants ----------------------------------------------------------


async def _corrupt_reserved(database_url: str, record_id: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        status = await conn.execute(
            "UPDATE stock.stock_records SET reserved = reserved + 1 WHERE id = $1", UUID(record_id)
        )
    finally:
        await conn.close()
    assert status == "UPDATE 1"


async def test_admin_stock_integrity_check_and_rebuild(
    admin: Client, anonymous: Client, tenant: Client, infrastructure
):
    sku, location, record = await stocked_product(tenant, 10)
    sale = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 3)))
    assert sale.status == 201 and sale.body["status"] == "pending", sale

    clean = await admin.get("/admin/stock/integrity", tenant_id=tenant.tenant_id)
    assert clean.status == 200, clean
    assert clean.body == {"ok": True, "records_checked": 1, "discrepancies": [], "repaired": 0}

    await _corrupt_reserved(infrastructure.database_url, record["id"])
    found = await admin.get("/admin/stock/integrity", tenant_id=tenant.tenant_id)
    assert found.status == 200 and found.body["ok"] is False, found
    assert found.body["records_checked"] == 1 and found.body["repaired"] == 0
    assert found.body["discrepancies"][0] == {
        "stock_record_id": record["id"],
        "location_id": location,
        "sku": sku,
        "check": "reserved_vs_reservations",
        "recorded": 4,
        "expected": 3,
    }
    everyone = await admin.get("/admin/stock/integrity")
    assert everyone.status == 200 and everyone.body["ok"] is False
    assert everyone.body["records_checked"] >= 1
    assert record["id"] in {d["stock_record_id"] for d in everyone.body["discrepancies"]}

    rebuilt = await admin.post(f"/admin/stock/integrity/rebuild?tenant_id={tenant.tenant_id}")
    assert rebuilt.status == 200, rebuilt
    assert rebuilt.body == {"ok": True, "records_checked": 1, "discrepancies": [], "repaired": 1}

    assert (await anonymous.get("/admin/stock/integrity")).status == 401
    assert (await tenant.post("/admin/stock/integrity/rebuild")).status == 401
    bad = await admin.get("/admin/stock/integrity", tenant_id="nope")
    assert bad.status == 422 and bad.body["errors"][0]["field"] == "/tenant_id", bad


# --- (f) sale_id search -----------------------------------------------------------------------


async def test_sales_search_by_sale_id_prefix(tenant: Client):
    sku, location, _ = await stocked_product(tenant, 10)
    stem = ref("order").upper()
    for sale_id in (f"{stem}-1", f"{stem}-2", f"{stem}_X", f"other-{stem}"):
        created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.status == 201, created

    prefix = await tenant.get("/sales", sale_id=f"{stem}-")
    assert prefix.status == 200, prefix
    assert [s["sale_id"] for s in prefix.body["data"]] == [f"{stem}-1", f"{stem}-2"]
    assert prefix.body["pagination"]["total_count"] == 2
    exact = await tenant.get("/sales", sale_id=f"{stem}-2")
    assert [s["sale_id"] for s in exact.body["data"]] == [f"{stem}-2"]
    # `_` and `%` are themselves, not wildcards
    literal = await tenant.get("/sales", sale_id=f"{stem}_")
    assert [s["sale_id"] for s in literal.body["data"]] == [f"{stem}_X"]
    assert (await tenant.get("/sales", sale_id=f"{stem}%")).body["data"] == []
    combined = await tenant.get("/sales", sale_id=stem, status="pending", limit=1)
    assert combined.body["pagination"] == {"total_count": 3, "offset": 0, "limit": 1}

    empty = await tenant.get("/sales", sale_id="")
    assert empty.status == 422 and empty.body["errors"][0]["field"] == "/sale_id", empty
    long = await tenant.get("/sales", sale_id="x" * 101)
    assert long.status == 422 and long.body["errors"][0]["field"] == "/sale_id", long


# --- (c) deliveries across endpoints, (d) endpoint health, (e) attempt details ----------------


def _failing(arrival: Arrival, hook: Hook) -> web.Response:
    return web.Response(status=500, text="nope: " + "x" * 5000)


async def test_deliveries_of_a_sale_across_endpoints_with_health_and_attempts(
    tenant: Client, other_tenant: Client
):
    good_hook, bad_hook = await started(), await started(_failing)
    try:
        good = await register(
            tenant, good_hook.url, event_types=["sale.created"], headers={"X-Shop-Token": "s3"}
        )
        bad = await register(tenant, bad_hook.url, event_types=["sale.created"])
        sku, location, _ = await stocked_product(tenant, 10)
        sale = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
        assert sale.status == 201, sale
        subject = f"sale/{sale.body['id']}"

        async def both_finished() -> list[dict]:
            answer = await tenant.get("/webhooks/deliveries", subject=subject)
            assert answer.status == 200, answer
            return answer.body["data"]

        found = await eventually(
            both_finished,
            lambda ds: len(ds) == 2 and all(d["status"] != "pending" for d in ds),
            what="both deliveries finished",
        )
        by_endpoint = {d["endpoint_id"]: d for d in found}
        assert set(by_endpoint) == {good["id"], bad["id"]}
        delivered, failed = by_endpoint[good["id"]], by_endpoint[bad["id"]]
        assert delivered["status"] == "succeeded" and failed["status"] == "failed"
        for d in found:
            assert d["subject"] == subject and d["event_type"] == "sale.created"
            assert d["payload"]["data"]["sale_id"] == sale.body["sale_id"]

        # (e) attempt details: headers without the signature, custom values masked
        [ok_attempt] = delivered["attempts"]
        assert ok_attempt["status_code"] == 200 and ok_attempt["response_body"] == "ok"
        headers = ok_attempt["request_headers"]
        assert headers["X-Shop-Token"] == "***"
        assert headers["webhook-id"] == delivered["webhook_id"]
        assert headers["content-type"] == "application/json"
        assert int(headers["webhook-timestamp"]) > 0 and "traceparent" in headers
        assert not any(name.lower() == "webhook-signature" for name in headers)
        assert "s3" not in str(delivered)
        assert len(failed["attempts"]) == 4  # the first try and three retries
        for attempt in failed["attempts"]:
            assert attempt["status_code"] == 500 and attempt["error"] is None
            assert attempt["response_body"].startswith("nope: x")
            assert len(attempt["response_body"]) <= 1024  # an excerpt
            assert "webhook-signature" not in attempt["request_headers"]

        # (c) filters combine; every filter of the per-endpoint list, plus endpoint_id
        one = await tenant.get("/webhooks/deliveries", subject=subject, endpoint_id=bad["id"])
        assert [d["id"] for d in one.body["data"]] == [failed["id"]]
        assert one.body["pagination"]["total_count"] == 1
        by_status = await tenant.get("/webhooks/deliveries", subject=subject, status="succeeded")
        assert [d["id"] for d in by_status.body["data"]] == [delivered["id"]]
        by_event = await tenant.get(
            "/webhooks/deliveries", event_id=delivered["event_id"], event_type="sale.created"
        )
        assert {d["id"] for d in by_event.body["data"]} == {delivered["id"], failed["id"]}
        window = await tenant.get(
            "/webhooks/deliveries",
            subject=subject,
            since=delivered["created_at"],
            until="2999-01-01T00:00:00Z",
        )
        assert len(window.body["data"]) == 2
        paged = await tenant.get("/webhooks/deliveries", subject=subject, limit=1)
        assert len(paged.body["data"]) == 1 and paged.body["pagination"]["total_count"] == 2
        assert 'rel="next"' in paged.headers["Link"]
        # another tenant sees none of them, and not these endpoints
        theirs = await other_tenant.get("/webhooks/deliveries", subject=subject)
        assert theirs.status == 200 and theirs.body["data"] == []
        foreign = await other_tenant.get("/webhooks/deliveries", endpoint_id=good["id"])
        assert foreign.status == 404 and foreign.problem_code == "no_content", foreign
        bad_status = await tenant.get("/webhooks/deliveries", status="lost")
        assert bad_status.status == 422 and bad_status.body["errors"][0]["field"] == "/status"
        naive = await tenant.get("/webhooks/deliveries", since="2024-01-01T00:00:00")
        assert naive.status == 422 and naive.body["errors"][0]["field"] == "/since"
        bad_id = await tenant.get("/webhooks/deliveries", endpoint_id="x")
        assert bad_id.status == 422 and bad_id.body["errors"][0]["field"] == "/endpoint_id"

        # (d) endpoint health over the last 24 hours, on the list and on one endpoint
        healthy = await tenant.get(f"/webhooks/endpoints/{good['id']}")
        assert healthy.body["stats"] == {
            "success_rate": 1.0,
            "deliveries": 1,
            "failed": 0,
            "last_failure_at": None,
            "last_failure_status": None,
            "last_failure_error": None,
        }
        failing = await tenant.get(f"/webhooks/endpoints/{bad['id']}")
        stats = failing.body["stats"]
        assert stats["success_rate"] == 0.0 and stats["deliveries"] == 1 and stats["failed"] == 1
        assert stats["last_failure_status"] == 500 and stats["last_failure_error"] is None
        last_attempt = failed["attempts"][-1]["attempted_at"]
        assert _time(stats["last_failure_at"]) == _time(last_attempt)
        listed = await tenant.get("/webhooks/endpoints")
        listed_stats = {e["id"]: e["stats"] for e in listed.body["data"]}
        assert listed_stats == {good["id"]: healthy.body["stats"], bad["id"]: stats}
    finally:
        await good_hook.stop()
        await bad_hook.stop()


async def test_a_new_endpoint_has_empty_stats(tenant: Client):
    endpoint = await register(tenant, "http://127.0.0.1:9/idle", event_types=["sale.created"])
    got = await tenant.get(f"/webhooks/endpoints/{endpoint['id']}")
    assert got.body["stats"] == {
        "success_rate": None,
        "deliveries": 0,
        "failed": 0,
        "last_failure_at": None,
        "last_failure_status": None,
        "last_failure_error": None,
    }
