"""The `fulfil` command line as installed (`.venv/bin/fulfil`, a subprocess) against the real
platform: each group, `--json` parsed field by field, and the exit codes of the failure
paths (0 ok, 1 check failed, 2 usage, 3 not found, 4 conflict, 5 auth, 6 unavailable)."""

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from deploy.local.services import Platform
from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.test_dead_letters import BlockedSku, dead_letter_of
from tests.e2e.test_operator_api import _corrupt_reserved
from tests.e2e.webhook_tools import Arrival, Hook, register, started
from tests.support import Client, eventually, ref

FULFIL = Path(sys.executable).parent / "fulfil"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> dict[str, Any]:
        return json.loads(self.err)["error"]


async def fulfil(*args: str, env: dict[str, str] | None = None) -> Run:
    """Runs `fulfil` with only the configuration given (never the caller's FULFIL_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FULFIL_")}
    process = await asyncio.create_subprocess_exec(
        str(FULFIL),
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
def admin_env(platform: Platform) -> dict[str, str]:
    return {"FULFIL_URL": platform.gateway_url, "FULFIL_ADMIN_TOKEN": platform.admin_token}


@pytest.fixture
def tenant_env(platform: Platform, tenant: Client) -> dict[str, str]:
    assert tenant.key is not None
    return {"FULFIL_URL": platform.gateway_url, "FULFIL_API_KEY": tenant.key}


def test_the_binary_is_installed_and_documents_itself():
    assert FULFIL.exists() and os.access(FULFIL, os.X_OK)


async def test_help_names_configuration_and_exit_codes():
    shown = await fulfil("--help")
    assert shown.code == 0
    for text in ("FULFIL_URL", "FULFIL_API_KEY", "FULFIL_ADMIN_TOKEN", "Exit codes", "never"):
        assert text in shown.out
    for group in ("tenants", "dead-letters", "stock", "webhooks", "sales", "overview"):
        assert group in shown.out
    assert (await fulfil("tenants", "--help")).code == 0
    assert (await fulfil("no-such-command")).code == 2


async def test_tenants(admin_env: dict[str, str]):
    name = ref("cli-shop")
    created = await fulfil(
        "tenants", "create", name, "--scope", "sales:read", "--json", env=admin_env
    )
    assert created.code == 0, created
    body = created.json
    tenant_id = body["tenant"]["id"]
    assert body["tenant"]["name"] == name and uuid.UUID(tenant_id)
    assert body["api_key"].startswith("fk_") and body["scopes"] == ["sales:read"]
    assert uuid.UUID(body["key_id"])
    # without --json: the key alone on the last line of stdout
    human = await fulfil("tenants", "create", ref("cli-shop"), env=admin_env)
    assert human.code == 0 and human.out.strip().splitlines()[-1].startswith("fk_")

    key = await fulfil(
        "tenants",
        "create-key",
        tenant_id,
        "--scope",
        "stock:read",
        "--name",
        "erp",
        "--json",
        env=admin_env,
    )
    assert key.code == 0, key
    assert key.json["tenant_id"] == tenant_id and key.json["name"] == "erp"
    assert key.json["scopes"] == ["stock:read"] and key.json["api_key"].startswith("fk_")
    revoked = await fulfil("tenants", "revoke-key", key.json["id"], "--json", env=admin_env)
    assert (revoked.code, revoked.json) == (0, {"id": key.json["id"], "revoked": True})

    keys = await fulfil("tenants", "keys", tenant_id, "--json", env=admin_env)
    assert keys.code == 0, keys
    assert [k["id"] for k in keys.json] == [body["key_id"], key.json["id"]]
    assert keys.json[0]["revoked_at"] is None and keys.json[1]["revoked_at"] is not None
    assert all("api_key" not in k for k in keys.json)

    shown = await fulfil("tenants", "show", tenant_id, "--json", env=admin_env)
    assert shown.code == 0, shown
    assert shown.json["id"] == tenant_id and shown.json["name"] == name
    assert shown.json["keys"] == {"active": 1, "revoked": 1} and shown.json["created_at"]
    listed = await fulfil("tenants", "list", "--json", env=admin_env)
    assert listed.code == 0
    assert shown.json in listed.json
    table = await fulfil("tenants", "list", env=admin_env)
    assert table.code == 0 and name in table.out

    # failure paths
    unknown = await fulfil("tenants", "show", str(uuid.uuid4()), "--json", env=admin_env)
    assert unknown.code == 3 and unknown.error["code"] == "no_content" and unknown.out == ""
    malformed = await fulfil("tenants", "show", "nope", "--json", env=admin_env)
    assert malformed.code == 2 and malformed.error["errors"][0]["field"] == "/tenant_id"
    taken = await fulfil("tenants", "create", name, env=admin_env)
    assert taken.code == 4 and "already exists" in taken.err
    no_token = await fulfil("tenants", "list", env={"FULFIL_URL": admin_env["FULFIL_URL"]})
    assert no_token.code in (2, 5), no_token  # refused here (no token) or by the API
    wrong = await fulfil(
        "tenants", "list", "--json", env={**admin_env, "FULFIL_ADMIN_TOKEN": "x" * 40}
    )
    assert wrong.code == 5 and wrong.error["code"] == "invalid_token"
    no_url = await fulfil("tenants", "list", env={"FULFIL_ADMIN_TOKEN": "x"})
    assert no_url.code == 2 and "FULFIL_URL" in no_url.err
    missing_scope = await fulfil("tenants", "create-key", tenant_id, env=admin_env)
    assert missing_scope.code == 2


async def test_secrets_come_from_files_not_arguments(admin_env: dict[str, str], tmp_path: Path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(admin_env["FULFIL_ADMIN_TOKEN"] + "\n")
    listed = await fulfil(
        "--url",
        admin_env["FULFIL_URL"],
        "--admin-token-file",
        str(token_file),
        "tenants",
        "list",
        "--limit",
        "1",
        "--json",
    )
    assert listed.code == 0 and len(listed.json) == 1, listed
    assert (await fulfil("--admin-token", "x", "tenants", "list")).code == 2


async def test_unavailable_within_the_timeout(admin_env: dict[str, str]):
    down = await fulfil(
        "--timeout",
        "2",
        "tenants",
        "list",
        "--json",
        env={**admin_env, "FULFIL_URL": "http://127.0.0.1:9"},
    )
    assert down.code == 6, down
    assert down.error["status"] == 0


async def test_sales_get_and_cancel_with_if_match(tenant: Client, tenant_env: dict[str, str]):
    sku, location, _ = await stocked_product(tenant, 5)
    sale_id = ref("SO")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 2)))
    assert created.status == 201 and created.body["status"] == "pending", created

    got = await fulfil("sales", "get", sale_id, "--json", env=tenant_env)
    assert got.code == 0, got
    assert got.json["sale_id"] == sale_id and got.json["id"] == created.body["id"]
    assert got.json["status"] == "pending" and got.json["version"] == created.body["version"]
    assert got.json["lines"][0]["sku"] == sku and got.json["lines"][0]["quantity"] == 2
    human = await fulfil("sales", "get", sale_id, env=tenant_env)
    assert human.code == 0 and sale_id in human.out and sku in human.out

    stale = await fulfil(
        "sales",
        "cancel",
        sale_id,
        "--reason",
        "other",
        "--version",
        str(got.json["version"] + 5),
        "--json",
        env=tenant_env,
    )
    assert stale.code == 4 and stale.error["code"] == "conflict", stale
    canceled = await fulfil(
        "sales", "cancel", sale_id, "--reason", "customer_request", "--json", env=tenant_env
    )
    assert canceled.code == 0, canceled
    assert canceled.json == {"id": created.body["id"], "sale_id": sale_id, "status": "canceled"}
    after = (await tenant.get(f"/sales/{sale_id}")).body
    assert after["status"] == "canceled" and after["cancel_reason"] == "customer_request"

    assert (await fulfil("sales", "get", ref("nope"), env=tenant_env)).code == 3
    bad_reason = await fulfil("sales", "cancel", sale_id, "--reason", "bored", env=tenant_env)
    assert bad_reason.code == 2
    no_key = await fulfil("sales", "get", sale_id, env={"FULFIL_URL": tenant_env["FULFIL_URL"]})
    assert no_key.code in (2, 5)


async def test_stock_integrity(tenant: Client, admin_env: dict[str, str], infrastructure):
    sku, location, record = await stocked_product(tenant, 10)
    sale = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 3)))
    assert sale.status == 201, sale
    args = ("--tenant", str(tenant.tenant_id), "--json")

    clean = await fulfil("stock", "integrity", "check", *args, env=admin_env)
    assert clean.code == 0, clean
    assert clean.json == {"ok": True, "records_checked": 1, "discrepancies": [], "repaired": 0}

    await _corrupt_reserved(infrastructure.database_url, record["id"])
    found = await fulfil("stock", "integrity", "check", *args, env=admin_env)
    assert found.code == 1, found
    assert found.json["ok"] is False and found.json["records_checked"] == 1
    assert found.json["discrepancies"][0] == {
        "stock_record_id": record["id"],
        "location_id": location,
        "sku": sku,
        "check": "reserved_vs_reservations",
        "recorded": 4,
        "expected": 3,
    }
    assert {d["check"] for d in found.json["discrepancies"]} == {
        "reserved_vs_reservations",
        "reserved_vs_ledger",
    }
    human = await fulfil(
        "stock", "integrity", "check", "--tenant", str(tenant.tenant_id), env=admin_env
    )
    assert human.code == 1 and "discrepancies remain" in human.out and sku in human.out
    rebuilt = await fulfil("stock", "integrity", "rebuild", *args, env=admin_env)
    assert rebuilt.code == 0, rebuilt
    assert rebuilt.json == {"ok": True, "records_checked": 1, "discrepancies": [], "repaired": 1}

    bad = await fulfil("stock", "integrity", "check", "--tenant", "nope", env=admin_env)
    assert bad.code == 2
    assert (
        await fulfil(
            "stock",
            "integrity",
            "check",
            env={"FULFIL_URL": admin_env["FULFIL_URL"], "FULFIL_ADMIN_TOKEN": "y" * 40},
        )
    ).code == 5


def _fail_until_fixed(state: dict[str, bool]):
    def respond(arrival: Arrival, hook: Hook) -> web.Response:
        return web.Response(status=200 if state["fixed"] else 500, text="ok")

    return respond


async def test_webhook_deliveries(tenant: Client, tenant_env: dict[str, str]):
    state = {"fixed": False}
    hook = await started(_fail_until_fixed(state))
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.created"])
        sku, location, _ = await stocked_product(tenant, 5)
        created = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
        assert created.status == 201, created
        subject = f"sale/{created.body['id']}"

        async def failed() -> Run:
            return await fulfil(
                "webhooks", "deliveries", "list", "--subject", subject, "--json", env=tenant_env
            )

        listed = await eventually(
            failed,
            lambda run: run.code == 0 and [d["status"] for d in run.json] == ["failed"],
            what="the delivery failed for good",
        )
        [delivery] = listed.json
        assert delivery["endpoint_id"] == endpoint["id"] and delivery["subject"] == subject
        assert delivery["event_type"] == "sale.created" and len(delivery["attempts"]) == 4
        assert delivery["attempts"][0]["status_code"] == 500
        assert "webhook-signature" not in delivery["attempts"][0]["request_headers"]
        by_endpoint = await fulfil(
            "webhooks",
            "deliveries",
            "list",
            "--endpoint",
            endpoint["id"],
            "--status",
            "failed",
            "--json",
            env=tenant_env,
        )
        assert [d["id"] for d in by_endpoint.json] == [delivery["id"]]
        human = await fulfil("webhooks", "deliveries", "list", "--subject", subject, env=tenant_env)
        assert human.code == 0 and delivery["id"][:8] in human.out

        # recover: every failed delivery since then, on every endpoint of the tenant
        state["fixed"] = True
        recovered = await fulfil(
            "webhooks",
            "deliveries",
            "recover",
            "--since",
            delivery["created_at"],
            "--json",
            env=tenant_env,
        )
        assert recovered.code == 0, recovered
        assert recovered.json == {"recovered": 1, "endpoints": {endpoint["id"]: 1}}
        await eventually(
            failed,
            lambda run: [d["status"] for d in run.json] == ["succeeded"],
            what="the recovered delivery succeeded",
        )

        # resend: a finished delivery again
        resent = await fulfil(
            "webhooks", "deliveries", "resend", delivery["id"], "--json", env=tenant_env
        )
        assert resent.code == 0, resent
        assert [d["id"] for d in resent.json["resent"]] == [delivery["id"]]
        assert resent.json["resent"][0]["status"] == "pending" and resent.json["refused"] == []
        await eventually(
            failed,
            lambda run: [d["status"] for d in run.json] == ["succeeded"],
            what="the resent delivery succeeded",
        )

        # failure paths
        unknown = await fulfil(
            "webhooks", "deliveries", "resend", str(uuid.uuid4()), env=tenant_env
        )
        assert unknown.code == 3
        naive = await fulfil(
            "webhooks", "deliveries", "recover", "--since", "2026-01-01T00:00:00", env=tenant_env
        )
        assert naive.code == 2 and "offset" in naive.err
        foreign = await fulfil(
            "webhooks", "deliveries", "list", "--endpoint", str(uuid.uuid4()), env=tenant_env
        )
        assert foreign.code == 3
    finally:
        await hook.stop()


async def test_dead_letters_replay_and_purge(
    tenant: Client, admin_env: dict[str, str], infrastructure, platform: Platform, http
):
    admin = Client(http, platform.gateway_url, platform.admin_token)
    sku, location, _ = await stocked_product(tenant, quantity=5)
    blocked = BlockedSku(infrastructure.database_url, sku)
    await blocked.install()
    try:
        sale_id = ref("S")
        created = await tenant.post(
            "/sales", sale_body(sale_id, location, (sku, 2)), headers={"Prefer": "respond-async"}
        )
        assert created.status == 202, created
        key = c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(created.body["id"]))
        letter = await eventually(
            lambda: dead_letter_of(admin, key),
            lambda found: found is not None,
            timeout=30,
            what="the sale.created in stock's dead letters",
        )
    finally:
        await blocked.remove()

    listed = await fulfil(
        "dead-letters",
        "list",
        "--service",
        "stock",
        "--type",
        c.SALE_CREATED,
        "--state",
        "dead",
        "--limit",
        "1000",
        "--json",
        env=admin_env,
    )
    assert listed.code == 0, listed
    [mine] = [d for d in listed.json if d["id"] == letter["id"]]
    assert mine == letter
    shown = await fulfil(
        "dead-letters", "show", "--service", "stock", str(letter["id"]), "--json", env=admin_env
    )
    assert shown.code == 0 and json.loads(shown.json["value"])["data"]["sale_id"] == sale_id

    replayed = await fulfil(
        "dead-letters", "replay", "--service", "stock", str(letter["id"]), "--json", env=admin_env
    )
    assert replayed.code == 0, replayed
    assert replayed.json["results"][0]["id"] == letter["id"]
    assert replayed.json["results"][0]["outcome"] == "replayed"
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["status"] == "pending",
        timeout=30,
        what="the replayed sale reserved",
    )
    again = await fulfil(
        "dead-letters",
        "replay",
        "--service",
        "stock",
        str(letter["id"]),
        str(2**62),
        "--json",
        env=admin_env,
    )
    assert again.code == 1, again
    assert [(r["id"], r["outcome"]) for r in again.json["results"]] == [
        (letter["id"], "already_replayed"),
        (2**62, "not_found"),
    ]

    purged = await fulfil(
        "dead-letters", "purge", "--service", "stock", str(letter["id"]), "--json", env=admin_env
    )
    assert (purged.code, purged.json) == (0, {"purged": 1})
    gone = await fulfil(
        "dead-letters", "show", "--service", "stock", str(letter["id"]), env=admin_env
    )
    assert gone.code == 3
    nothing_old = await fulfil(
        "dead-letters",
        "purge",
        "--service",
        "stock",
        "--older-than",
        "2000-01-01T00:00:00Z",
        "--json",
        env=admin_env,
    )
    assert (nothing_old.code, nothing_old.json) == (0, {"purged": 0})

    assert (await fulfil("dead-letters", "list", env=admin_env)).code == 2  # no --service
    assert (
        await fulfil("dead-letters", "replay", "--service", "stock", env=admin_env)
    ).code == 2  # no ids, no --all


async def test_overview(admin_env: dict[str, str]):
    async def overview() -> Run:
        return await fulfil("overview", "--json", env=admin_env)

    ready = await eventually(overview, lambda run: run.code == 0, what="every service ready")
    services = ready.json["services"]
    assert [s["service"] for s in services] == ["orders", "stock", "fulfilment", "webhooks"]
    for found in services:
        assert found["status"] == "ready" and found["checks"]["database"] is True
        assert set(found["dead_letters"]) == {"dead", "replayed"}
        assert isinstance(found["outbox_backlog_rows"], int)
    human = await fulfil("overview", env=admin_env)
    assert human.code == 0 and "fulfilment" in human.out
