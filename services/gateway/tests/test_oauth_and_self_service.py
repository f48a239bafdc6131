"""OAuth2 client credentials and a tenant's own keys and clients, end to end through real
gateways (two of them where revocation must cross replicas) on real PostgreSQL."""

import asyncio
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode
from uuid import UUID

import asyncpg
import pytest

from gateway.domain import SCOPES
from services.gateway.tests.harness import (
    ADMIN_TOKEN,
    FakeService,
    RunningGateway,
    StartGateway,
)
from tests.support import eventually, ref

pytestmark = pytest.mark.integration
PROBLEM_JSON = "application/problem+json"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# long enough that only a notification can explain a revoked key refused on another replica
LONG_CACHE = {"api_key_cache_seconds": 300}


def assert_problem(answer: tuple[int, Any, Any], expected: int, code: str) -> None:
    status, body, headers = answer
    assert status == expected, body
    assert headers["Content-Type"].startswith(PROBLEM_JSON)
    assert body["code"] == code and body["status"] == expected


def assert_oauth_error(answer: tuple[int, Any, Any], expected: int, error: str) -> None:
    """RFC 6749 section 5.2: JSON with `error` and `error_description`, never cached."""
    status, body, headers = answer
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error and body["error_description"]
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    if expected == 401:
        assert headers["WWW-Authenticate"] == 'Basic realm="fulfil"'


async def admin_tenant(gateway: RunningGateway, scopes: list[str] | None = None) -> dict[str, Any]:
    """A tenant whose first key has every scope, `admin` included (or `scopes`)."""
    status, body, _ = await gateway.call(
        "POST",
        "/api/v1/admin/tenants",
        key=ADMIN_TOKEN,
        json={"name": ref("gw-oauth"), "scopes": scopes or list(SCOPES)},
    )
    assert status == 201, body
    return body


async def new_client(gateway: RunningGateway, admin_key: str, scopes: list[str]) -> dict[str, Any]:
    status, body, headers = await gateway.call(
        "POST",
        "/api/v1/oauth/clients",
        key=admin_key,
        json={"name": "warehouse sync", "scopes": scopes},
    )
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    return body


async def request_token(
    gateway: RunningGateway,
    fields: dict[str, str],
    *,
    basic: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    all_headers = dict(FORM)
    if basic is not None:
        pair = f"{quote_plus(basic[0])}:{quote_plus(basic[1])}".encode()
        all_headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    all_headers.update(headers or {})
    async with gateway.http.post(
        gateway.url + "/api/v1/oauth/token", data=urlencode(fields), headers=all_headers
    ) as response:
        return response.status, await response.json(content_type=None), response.headers


async def token_of(gateway: RunningGateway, client: dict[str, Any], **fields: str) -> str:
    answer = await request_token(
        gateway,
        {"grant_type": "client_credentials", **fields},
        basic=(client["client_id"], client["client_secret"]),
    )
    assert answer[0] == 200, answer[1]
    return answer[1]["access_token"]


# --- the token endpoint ------------------------------------------------------------------------


async def test_a_client_gets_a_bearer_token_by_basic_that_works_like_a_key_with_its_scopes(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read", "stock:read"])

    status, body, headers = await request_token(
        gateway,
        {"grant_type": "client_credentials"},
        basic=(client["client_id"], client["client_secret"]),
    )

    assert status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == gateway.settings.oauth_token_seconds == 3600
    assert body["scope"] == "sales:read stock:read"
    assert body["access_token"].startswith("fkt_")
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    token = body["access_token"]
    assert (await gateway.call("GET", "/api/v1/sales", key=token))[0] == 200
    [seen] = fakes["orders"].requests_to("/api/v1/sales")
    assert seen.headers["X-Tenant-Id"] == tenant["tenant"]["id"]
    assert seen.headers["X-Actor"] == f"client:{client['client_id']}"
    assert (await gateway.call("GET", "/api/v1/products", key=token))[0] == 200
    # a scope the client lacks
    denied = await gateway.call("POST", "/api/v1/sales", key=token, json={})
    assert_problem(denied, 403, "no_permission")
    assert "sales:write" in denied[1]["detail"]
    assert fakes["orders"].requests_to("/api/v1/sales") == [seen]


async def test_a_client_authenticates_by_form_fields_and_may_ask_for_fewer_scopes(
    gateway: RunningGateway,
) -> None:
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read", "stock:read"])

    status, body, _ = await request_token(
        gateway,
        {
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "scope": "stock:read",
        },
    )

    assert status == 200, body
    assert body["scope"] == "stock:read"
    assert (await gateway.call("GET", "/api/v1/products", key=body["access_token"]))[0] == 200
    missing = await gateway.call("GET", "/api/v1/sales", key=body["access_token"])
    assert_problem(missing, 403, "no_permission")


async def test_wrong_credentials_are_401_invalid_client(gateway: RunningGateway) -> None:
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read"])
    grant = {"grant_type": "client_credentials"}

    wrong_secret = await request_token(gateway, grant, basic=(client["client_id"], "fks_wrong"))
    unknown_client = await request_token(
        gateway, grant, basic=("00000000-0000-4000-8000-000000000000", client["client_secret"])
    )
    not_an_id = await request_token(gateway, grant, basic=("someone", client["client_secret"]))
    wrong_field = await request_token(
        gateway, {**grant, "client_id": client["client_id"], "client_secret": "nope"}
    )
    no_credentials = await request_token(gateway, grant)

    for answer in (wrong_secret, unknown_client, not_an_id, wrong_field, no_credentials):
        assert_oauth_error(answer, 401, "invalid_client")


async def test_malformed_token_requests_get_rfc_6749_errors(gateway: RunningGateway) -> None:
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read"])
    credentials = (client["client_id"], client["client_secret"])

    both_ways = await request_token(
        gateway,
        {"grant_type": "client_credentials", "client_id": client["client_id"]},
        basic=credentials,
    )
    assert_oauth_error(both_ways, 400, "invalid_request")
    no_grant = await request_token(gateway, {}, basic=credentials)
    assert_oauth_error(no_grant, 400, "invalid_request")
    password = await request_token(gateway, {"grant_type": "password"}, basic=credentials)
    assert_oauth_error(password, 400, "unsupported_grant_type")
    too_much = await request_token(
        gateway,
        {"grant_type": "client_credentials", "scope": "sales:read admin"},
        basic=credentials,
    )
    assert_oauth_error(too_much, 400, "invalid_scope")
    as_json = await request_token(
        gateway,
        {"grant_type": "client_credentials"},
        basic=credentials,
        headers={"Content-Type": "application/json"},
    )
    assert_oauth_error(as_json, 400, "invalid_request")


async def test_an_expired_token_is_refused(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(oauth_token_seconds=1)
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read"])
    status, body, _ = await request_token(
        gateway,
        {"grant_type": "client_credentials"},
        basic=(client["client_id"], client["client_secret"]),
    )
    assert status == 200 and body["expires_in"] == 1
    token = body["access_token"]
    assert (await gateway.call("GET", "/api/v1/sales", key=token))[0] == 200  # cached now

    expired = await eventually(
        lambda: gateway.call("GET", "/api/v1/sales", key=token),
        lambda answer: answer[0] != 200,
        timeout=5,
        what="the token expires",
    )

    assert_problem(expired, 401, "invalid_token")
    assert expired[2]["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in expired[1]["detail"]
    # the client itself still gets new tokens
    assert await token_of(gateway, client) != token


async def test_failed_token_requests_are_limited_per_address(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(
        unauthenticated_rate_limit_per_second=0.01, unauthenticated_rate_limit_burst=2
    )
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read"])
    grant = {"grant_type": "client_credentials"}
    # a good client gives its token back: it never runs the address's bucket dry
    for _ in range(3):
        await token_of(gateway, client)

    for _ in range(2):
        wrong = await request_token(gateway, grant, basic=(client["client_id"], "fks_wrong"))
        assert_oauth_error(wrong, 401, "invalid_client")
    limited = await request_token(gateway, grant, basic=(client["client_id"], "fks_wrong"))

    assert limited[0] == 429, limited[1]
    assert limited[1]["error"] == "too_many_requests" and int(limited[2]["Retry-After"]) >= 1


async def test_a_clients_token_requests_share_its_rate_limit(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(rate_limit_per_second=0.01, rate_limit_burst=2)
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["sales:read"])
    token = await token_of(gateway, client)
    assert (await gateway.call("GET", "/api/v1/sales", key=token))[0] == 200

    limited = await request_token(
        gateway,
        {"grant_type": "client_credentials"},
        basic=(client["client_id"], client["client_secret"]),
    )

    assert limited[0] == 429, limited[1]
    assert limited[1]["error"] == "too_many_requests" and int(limited[2]["Retry-After"]) >= 1
    assert_problem(await gateway.call("GET", "/api/v1/sales", key=token), 429, "rate_limit")


# --- self-service: keys and clients ------------------------------------------------------------


async def test_an_admin_key_creates_lists_and_revokes_its_tenants_keys(
    gateway: RunningGateway,
) -> None:
    tenant = await admin_tenant(gateway)
    admin_key = tenant["api_key"]

    status, created, headers = await gateway.call(
        "POST",
        "/api/v1/api-keys",
        key=admin_key,
        json={"name": "  shop sync  ", "scopes": ["sales:read", "sales:read", "stock:read"]},
    )

    assert status == 201, created
    assert set(created) == {
        "id",
        "tenant_id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "revoked_at",
        "api_key",
    }
    assert created["tenant_id"] == tenant["tenant"]["id"]
    assert created["name"] == "shop sync"
    assert created["scopes"] == ["sales:read", "stock:read"]
    assert created["api_key"].startswith(created["prefix"]) and created["prefix"].startswith("fk_")
    assert created["revoked_at"] is None and created["created_at"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Location"] == f"/api/v1/api-keys/{created['id']}"
    new_key = created["api_key"]
    assert (await gateway.call("GET", "/api/v1/sales", key=new_key))[0] == 200

    status, listing, headers = await gateway.call("GET", "/api/v1/api-keys", key=admin_key)
    assert status == 200, listing
    assert [k["id"] for k in listing["data"]] == [tenant["key_id"], created["id"]]
    assert listing["pagination"] == {"total_count": 2, "offset": 0, "limit": 100}
    assert headers["Total-Count"] == "2"
    assert all("api_key" not in k for k in listing["data"])
    assert listing["data"][0]["name"] is None  # the operator's key has none
    assert listing["data"][1] == {k: v for k, v in created.items() if k != "api_key"}

    status, *_ = await gateway.call("DELETE", f"/api/v1/api-keys/{created['id']}", key=admin_key)
    assert status == 204
    assert_problem(await gateway.call("GET", "/api/v1/sales", key=new_key), 401, "invalid_token")
    status, listing, _ = await gateway.call("GET", "/api/v1/api-keys", key=admin_key)
    assert listing["data"][1]["revoked_at"] is not None


async def test_a_retried_create_with_its_idempotency_key_creates_nothing_again(
    gateway: RunningGateway,
) -> None:
    tenant = await admin_tenant(gateway)
    admin_key = tenant["api_key"]
    for path, body, id_field in (
        ("/api/v1/api-keys", {"name": "erp", "scopes": ["sales:read"]}, "id"),
        ("/api/v1/oauth/clients", {"name": "wms", "scopes": ["stock:read"]}, "client_id"),
    ):
        key = {"Idempotency-Key": ref("create")}
        status, first, _ = await gateway.call("POST", path, key=admin_key, json=body, headers=key)
        assert status == 201, first

        retried = await gateway.call("POST", path, key=admin_key, json=body, headers=key)
        other = await gateway.call(
            "POST", path, key=admin_key, json={**body, "name": "other"}, headers=key
        )

        assert_problem(retried, 409, "conflict")
        assert first[id_field] in retried[1]["detail"] and "secret" in retried[1]["detail"]
        assert_problem(other, 409, "conflict")
        assert "different request" in other[1]["detail"]
        _, listing, _ = await gateway.call("GET", path, key=admin_key)
        assert [item["name"] for item in listing["data"]].count(body["name"]) == 1


async def test_self_service_needs_an_admin_key_of_the_same_tenant(
    gateway: RunningGateway,
) -> None:
    tenant = await admin_tenant(gateway)
    other = await admin_tenant(gateway)
    plain = await admin_tenant(gateway, scopes=["sales:read", "sales:write"])
    status, others_client, _ = await gateway.call(
        "POST",
        "/api/v1/oauth/clients",
        key=other["api_key"],
        json={"name": "x", "scopes": ["admin"]},
    )
    assert status == 201

    for method, path in (
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/oauth/clients"),
        ("DELETE", f"/api/v1/oauth/clients/{others_client['client_id']}"),
    ):
        body = {"name": "x", "scopes": ["admin"]} if method == "POST" else None
        assert_problem(
            await gateway.call(method, path, key=plain["api_key"], json=body),
            403,
            "no_permission",
        )
        assert_problem(await gateway.call(method, path, json=body), 401, "invalid_token")
        assert_problem(
            await gateway.call(method, path, key="fk_unknown", json=body), 401, "invalid_token"
        )

    # another tenant's key or client is not there for this tenant
    for path in (
        f"/api/v1/api-keys/{other['key_id']}",
        f"/api/v1/oauth/clients/{others_client['client_id']}",
    ):
        assert_problem(await gateway.call("DELETE", path, key=tenant["api_key"]), 404, "no_content")
    assert (await gateway.call("GET", "/api/v1/sales", key=other["api_key"]))[0] == 200
    assert await token_of(gateway, others_client)
    # invalid bodies are 422 with a pointer
    for body, field in (
        ({"scopes": ["sales:read"]}, "/name"),
        ({"name": "x", "scopes": []}, "/scopes"),
        ({"name": "x", "scopes": ["everything"]}, "/scopes/0"),
        ({"name": " ", "scopes": ["sales:read"]}, "/name"),
    ):
        answer = await gateway.call("POST", "/api/v1/api-keys", key=tenant["api_key"], json=body)
        assert_problem(answer, 422, "validation")
        assert answer[1]["errors"][0]["field"] == field, answer[1]


async def test_clients_are_listed_without_secrets_and_revoking_one_ends_its_tokens(
    gateway: RunningGateway,
) -> None:
    tenant = await admin_tenant(gateway)
    admin_key = tenant["api_key"]
    client = await new_client(gateway, admin_key, ["sales:read"])
    assert set(client) == {
        "client_id",
        "tenant_id",
        "name",
        "secret_prefix",
        "scopes",
        "created_at",
        "revoked_at",
        "client_secret",
    }
    assert client["name"] == "warehouse sync" and client["scopes"] == ["sales:read"]
    assert client["tenant_id"] == tenant["tenant"]["id"] and client["revoked_at"] is None
    assert client["client_secret"].startswith(client["secret_prefix"])
    assert client["secret_prefix"].startswith("fks_")
    token = await token_of(gateway, client)
    assert (await gateway.call("GET", "/api/v1/sales", key=token))[0] == 200

    status, listing, _ = await gateway.call("GET", "/api/v1/oauth/clients", key=admin_key)
    assert status == 200
    assert listing["data"] == [{k: v for k, v in client.items() if k != "client_secret"}]
    assert listing["pagination"]["total_count"] == 1

    status, *_ = await gateway.call(
        "DELETE", f"/api/v1/oauth/clients/{client['client_id']}", key=admin_key
    )
    assert status == 204
    assert_problem(await gateway.call("GET", "/api/v1/sales", key=token), 401, "invalid_token")
    again = await request_token(
        gateway,
        {"grant_type": "client_credentials"},
        basic=(client["client_id"], client["client_secret"]),
    )
    assert_oauth_error(again, 401, "invalid_client")
    status, listing, _ = await gateway.call("GET", "/api/v1/oauth/clients", key=admin_key)
    assert listing["data"][0]["revoked_at"] is not None


async def test_a_clients_admin_token_manages_keys_too(gateway: RunningGateway) -> None:
    tenant = await admin_tenant(gateway)
    client = await new_client(gateway, tenant["api_key"], ["admin"])
    token = await token_of(gateway, client)

    status, created, _ = await gateway.call(
        "POST", "/api/v1/api-keys", key=token, json={"name": "by token", "scopes": ["sales:read"]}
    )

    assert status == 201, created
    assert created["tenant_id"] == tenant["tenant"]["id"]


# --- revocation across replicas ----------------------------------------------------------------


async def test_a_revoked_key_is_refused_by_another_replica_at_once(
    start_gateway: StartGateway,
) -> None:
    first = await start_gateway(**LONG_CACHE)
    second = await start_gateway(**LONG_CACHE)
    tenant = await admin_tenant(first)
    status, key, _ = await first.call(
        "POST",
        "/api/v1/api-keys",
        key=tenant["api_key"],
        json={"name": "doomed", "scopes": ["sales:read"]},
    )
    assert status == 201
    assert (await second.call("GET", "/api/v1/sales", key=key["api_key"]))[0] == 200  # cached

    status, *_ = await first.call("DELETE", f"/api/v1/api-keys/{key['id']}", key=tenant["api_key"])
    assert status == 204

    refused = await eventually(
        lambda: second.call("GET", "/api/v1/sales", key=key["api_key"]),
        lambda answer: answer[0] != 200,
        timeout=2,
        what="the other replica refuses the revoked key",
    )
    assert_problem(refused, 401, "invalid_token")
    # the operator's revocation crosses replicas the same way
    status, *_ = await first.call(
        "DELETE", f"/api/v1/admin/keys/{tenant['key_id']}", key=ADMIN_TOKEN
    )
    assert status == 204
    refused = await eventually(
        lambda: second.call("GET", "/api/v1/api-keys", key=tenant["api_key"]),
        lambda answer: answer[0] != 200,
        timeout=2,
        what="the other replica refuses the key the operator revoked",
    )
    assert_problem(refused, 401, "invalid_token")


async def test_a_revoked_clients_tokens_are_refused_by_another_replica_at_once(
    start_gateway: StartGateway,
) -> None:
    first = await start_gateway(**LONG_CACHE)
    second = await start_gateway(**LONG_CACHE)
    tenant = await admin_tenant(first)
    client = await new_client(first, tenant["api_key"], ["sales:read"])
    tokens = [await token_of(first, client), await token_of(second, client)]
    for token in tokens:
        assert (await second.call("GET", "/api/v1/sales", key=token))[0] == 200  # cached

    status, *_ = await first.call(
        "DELETE", f"/api/v1/oauth/clients/{client['client_id']}", key=tenant["api_key"]
    )
    assert status == 204

    for token in tokens:
        refused = await eventually(
            lambda token=token: second.call("GET", "/api/v1/sales", key=token),
            lambda answer: answer[0] != 200,
            timeout=2,
            what="the other replica refuses the revoked client's token",
        )
        assert_problem(refused, 401, "invalid_token")


async def test_a_replica_that_missed_revocations_forgets_its_cache_when_it_listens_again(
    start_gateway: StartGateway, pool: asyncpg.Pool
) -> None:
    gateway = await start_gateway(**LONG_CACHE)
    tenant = await admin_tenant(gateway)
    assert (await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]))[0] == 200

    # revoked without a notification while the gateway's connections (its listener's among
    # them) are cut: as if the notification was sent while nobody listened
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE gateway.api_keys SET revoked_at = now() WHERE id = $1", UUID(tenant["key_id"])
        )
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'gateway' AND pid <> pg_backend_pid()"
        )

    refused = await eventually(
        lambda: gateway.call("GET", "/api/v1/sales", key=tenant["api_key"]),
        lambda answer: answer[0] == 401,
        timeout=10,
        what="the listener, connected again, empties the cache",
    )
    assert_problem(refused, 401, "invalid_token")


async def run_cli(gateway: RunningGateway, *args: str) -> str:
    service_root = Path(__file__).resolve().parents[1]
    repo = service_root.parents[1]
    env = {
        **os.environ,
        "DATABASE_URL": gateway.settings.database_url,
        "PYTHONPATH": os.pathsep.join([str(service_root), str(repo / "libs"), str(repo)]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_a_key_the_cli_revokes_is_refused_by_a_running_gateway_at_once(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**LONG_CACHE)
    tenant = await admin_tenant(gateway)
    record = json.loads(
        await run_cli(
            gateway,
            "--json",
            "create-key",
            tenant["tenant"]["id"],
            "--scope",
            "sales:read",
            "--name",
            "nightly export",
        )
    )
    assert (await gateway.call("GET", "/api/v1/sales", key=record["api_key"]))[0] == 200
    _, listing, _ = await gateway.call("GET", "/api/v1/api-keys", key=tenant["api_key"])
    assert [k["name"] for k in listing["data"]] == [None, "nightly export"]

    await run_cli(gateway, "revoke-key", record["key_id"])

    refused = await eventually(
        lambda: gateway.call("GET", "/api/v1/sales", key=record["api_key"]),
        lambda answer: answer[0] != 200,
        timeout=2,
        what="the gateway refuses the key the CLI revoked",
    )
    assert_problem(refused, 401, "invalid_token")
