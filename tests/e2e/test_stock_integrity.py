"""The stock integrity check and rebuild: through the API (admin only) and the `fulfil`
command line, against a record corrupted directly in PostgreSQL."""

import asyncio
import sys
from pathlib import Path
from uuid import UUID

import asyncpg

from deploy.local.services import Platform
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.test_cli import fulfil
from tests.support import Client, ref

ROOT = Path(__file__).resolve().parents[2]


async def reserved_record(client: Client, quantity: int = 10, reserve: int = 3) -> dict:
    """A stock record with `reserve` of its `quantity` reserved by a pending sale."""
    sku, location, record = await stocked_product(client, quantity)
    sale = await client.post("/sales", sale_body(ref("S"), location, (sku, reserve)))
    assert sale.status == 201, sale
    assert sale.body["status"] == "pending", sale
    return record


async def corrupt_reserved(database_url: str, record_id: str) -> None:
    """What a bug or a hand-made fix could do: `reserved` no longer matches reservations."""
    conn = await asyncpg.connect(database_url)
    try:
        status = await conn.execute(
            "UPDATE stock.stock_records SET reserved = reserved + 1 WHERE id = $1", UUID(record_id)
        )
    finally:
        await conn.close()
    assert status == "UPDATE 1"


async def current(client: Client, record_id: str) -> dict:
    answer = await client.get(f"/stock/stock-records/{record_id}")
    assert answer.status == 200, answer
    return answer.body


async def ledger_sums(client: Client, record: dict) -> tuple[int, int]:
    answer = await client.get(
        "/stock/movements", sku=record["sku"], location_id=record["location_id"], limit=1000
    )
    assert answer.status == 200, answer
    rows = answer.body["data"]
    return sum(r["quantity_change"] for r in rows), sum(r["reserved_change"] for r in rows)


async def integrity_cli(platform: Platform, *args: str) -> tuple[int, str]:
    """`fulfil stock integrity ...` with the admin token, its stdout and stderr together."""
    env = {"FULFIL_URL": platform.gateway_url, "FULFIL_ADMIN_TOKEN": platform.admin_token}
    run = await fulfil("stock", "integrity", *args, env=env)
    return run.code, run.out + run.err


async def test_a_fresh_tenant_is_consistent(tenant: Client):
    answer = await tenant.get("/stock/integrity")
    assert answer.status == 200, answer
    assert answer.body == {"ok": True, "records_checked": 0, "discrepancies": [], "repaired": 0}


async def test_ordinary_activity_keeps_stock_consistent(tenant: Client):
    record = await reserved_record(tenant)
    changed = await tenant.post(
        "/stock/stock-records/change",
        {"stock_records": [{"id": record["id"], "quantity_change": 5}]},
    )
    assert changed.status == 200, changed
    lost = await tenant.post(
        "/stock/stock-level-updates",
        {
            "sku": record["sku"],
            "location_id": record["location_id"],
            "quantity": 2,
            "update_type": "loss",
        },
    )
    assert lost.status == 200, lost
    answer = await tenant.get("/stock/integrity")
    assert answer.status == 200, answer
    assert (answer.body["ok"], answer.body["records_checked"], answer.body["discrepancies"]) == (
        True,
        1,
        [],
    )


async def test_corrupted_reserved_is_reported_for_that_record_only_to_its_tenant(
    infrastructure,
    tenant: Client,
    other_tenant: Client,
):
    record = await reserved_record(tenant, quantity=10, reserve=3)
    healthy = await reserved_record(tenant, quantity=4, reserve=1)
    await reserved_record(other_tenant)
    await corrupt_reserved(infrastructure.database_url, record["id"])

    answer = await tenant.get("/stock/integrity")
    assert answer.status == 200, answer
    assert answer.body["ok"] is False
    assert answer.body["records_checked"] == 2
    found = {(d["stock_record_id"], d["check"]): d for d in answer.body["discrepancies"]}
    assert {rid for rid, _ in found} == {record["id"]}
    bad = found[(record["id"], "reserved_vs_reservations")]
    assert (bad["sku"], bad["location_id"], bad["recorded"], bad["expected"]) == (
        record["sku"],
        record["location_id"],
        4,
        3,
    )
    assert healthy["id"] not in {d["stock_record_id"] for d in answer.body["discrepancies"]}

    theirs = await other_tenant.get("/stock/integrity")
    assert (theirs.body["ok"], theirs.body["records_checked"]) == (True, 1)


async def test_rebuild_repairs_reserved_and_the_ledger_still_adds_up(
    infrastructure,
    tenant: Client,
):
    record = await reserved_record(tenant, quantity=10, reserve=3)
    await corrupt_reserved(infrastructure.database_url, record["id"])
    assert (await current(tenant, record["id"]))["reserved"] == 4

    rebuilt = await tenant.post("/stock/integrity/rebuild")
    assert rebuilt.status == 200, rebuilt
    assert (rebuilt.body["ok"], rebuilt.body["repaired"], rebuilt.body["discrepancies"]) == (
        True,
        1,
        [],
    )

    after = await current(tenant, record["id"])
    assert (after["quantity"], after["reserved"], after["available"]) == (10, 3, 7)
    assert await ledger_sums(tenant, after) == (10, 3)
    check = await tenant.get("/stock/integrity")
    assert check.body["ok"] is True

    again = await tenant.post("/stock/integrity/rebuild")
    assert (again.body["ok"], again.body["repaired"]) == (True, 0)
    assert (await current(tenant, record["id"]))["reserved"] == 3


async def test_integrity_needs_the_admin_scope(platform, tenant: Client):
    admin = Client(tenant.session, platform.gateway_url, platform.admin_token)
    issued = await admin.post(
        f"/admin/tenants/{tenant.tenant_id}/keys", {"scopes": ["stock:read", "stock:write"]}
    )
    assert issued.status == 201, issued
    clerk = Client(tenant.session, tenant.base_url, issued.body["api_key"], tenant.tenant_id)

    assert (await clerk.get("/stock/stock-records")).status == 200
    for method, path in (
        ("GET", "/stock/integrity"),
        ("GET", "/stock/integrity/"),
        ("POST", "/stock/integrity/rebuild"),
    ):
        answer = await clerk.call(method, path)
        assert answer.status == 403, (method, path, answer)
        assert answer.problem_code == "no_permission"
    assert (await tenant.get("/stock/integrity")).status == 200


async def test_cli_reports_the_corrupted_record_and_rebuild_fixes_it(
    infrastructure,
    platform: Platform,
    tenant: Client,
):
    record = await reserved_record(tenant, quantity=10, reserve=3)
    await corrupt_reserved(infrastructure.database_url, record["id"])

    code, output = await integrity_cli(platform, "check", "--tenant", tenant.tenant_id)
    assert code == 1, output
    for text in (record["id"], record["location_id"], record["sku"], "reserved_vs_reservations"):
        assert text in output, output
    assert "checked 1 stock records" in output and "discrepancies remain" in output

    code, output = await integrity_cli(platform, "rebuild", "--tenant", tenant.tenant_id)
    assert code == 0, output
    assert "checked 1 stock records, repaired 1: ok" in output

    code, output = await integrity_cli(platform, "check", "--tenant", tenant.tenant_id)
    assert code == 0, output
    assert (await current(tenant, record["id"]))["reserved"] == 3
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_the_old_entry_point_points_to_fulfil():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stock.integrity",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "fulfil stock integrity check" in err.decode()
