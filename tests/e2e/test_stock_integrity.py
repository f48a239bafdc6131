"""The stock integrity check and rebuild: through the API (admin only) and the operator CLI,
against a record corrupted directly in PostgreSQL."""

import asyncio
import os
import sys
from pathlib import Path
from uuid import UUID

import asyncpg

from tests.e2e.stocking import sale_body, stocked_product
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


async def integrity_cli(database_url: str, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("services/stock", "libs", ".")),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stock.integrity",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode()


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
    tenant: Client,
):
    record = await reserved_record(tenant, quantity=10, reserve=3)
    await corrupt_reserved(infrastructure.database_url, record["id"])
    dsn = infrastructure.database_url

    code, output = await integrity_cli(dsn, "--tenant", tenant.tenant_id)
    assert code == 1, output
    assert (
        f"{record['id']} {record['location_id']}/{record['sku']}: reserved_vs_reservations"
        f" recorded 4, expected 3" in output
    )
    assert "checked 1 stock records" in output

    code, output = await integrity_cli(dsn, "--tenant", tenant.tenant_id, "--rebuild")
    assert code == 0, output
    assert "repaired 1 stock records" in output
    assert "checked 1 stock records: 0 discrepancies" in output

    code, output = await integrity_cli(dsn, "--tenant", tenant.tenant_id)
    assert code == 0, output
    assert (await current(tenant, record["id"]))["reserved"] == 3
    assert (await tenant.get("/stock/integrity")).body["ok"] is True
