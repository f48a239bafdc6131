"""The console's sessions on the real PostgreSQL: a session lives while its key does, until
it idles too long or reaches its absolute expiry; the pruner removes what has ended."""

from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from gateway import store
from gateway.console import store as sessions
from gateway.console.sessions import admin_fingerprint, new_session
from gateway.domain import new_api_key
from tests.support import ref

pytestmark = pytest.mark.integration

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)


async def tenant_session(pool: asyncpg.Pool, absolute: timedelta = ABSOLUTE):
    tenant = await store.insert_tenant(pool, uuid4(), ref("console-tenant"))
    assert tenant is not None
    key = await store.insert_key(pool, tenant.id, new_api_key(["sales:read", "stock:read"]))
    assert key is not None
    opened = new_session()
    await sessions.insert_tenant_session(
        pool, opened.id_hash, opened.csrf_token, key.id, tenant.id, key.scopes, absolute
    )
    return opened, key


async def test_a_session_acts_for_its_key_with_the_keys_scopes(pool: asyncpg.Pool) -> None:
    opened, key = await tenant_session(pool)
    found = await sessions.touch_session(pool, opened.id_hash, IDLE)
    assert found is not None
    assert (found.kind, found.key_id, found.tenant_id) == ("tenant", key.id, key.tenant_id)
    assert found.scopes == {"sales:read", "stock:read"}
    assert found.csrf_token == opened.csrf_token
    assert found.actor == f"key:{key.id}"


async def test_a_revoked_key_ends_its_sessions(pool: asyncpg.Pool) -> None:
    opened, key = await tenant_session(pool)
    await store.revoke_key(pool, key.id)
    assert await sessions.touch_session(pool, opened.id_hash, IDLE) is None


async def test_an_idle_session_ends_and_a_request_restarts_the_idle_clock(
    pool: asyncpg.Pool,
) -> None:
    opened, _ = await tenant_session(pool)
    await pool.execute(
        "UPDATE gateway.console_sessions SET last_seen_at = now() - interval '29 minutes'"
        " WHERE id_hash = $1",
        opened.id_hash,
    )
    assert await sessions.touch_session(pool, opened.id_hash, IDLE) is not None  # restarted
    assert await sessions.touch_session(pool, opened.id_hash, timedelta(seconds=0)) is None
    await pool.execute(
        "UPDATE gateway.console_sessions SET last_seen_at = now() - interval '31 minutes'"
        " WHERE id_hash = $1",
        opened.id_hash,
    )
    assert await sessions.touch_session(pool, opened.id_hash, IDLE) is None
    assert await sessions.prune_sessions(pool, IDLE) >= 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM gateway.console_sessions WHERE id_hash = $1", opened.id_hash
        )
        == 0
    )


async def test_a_session_ends_at_its_absolute_expiry_however_busy(pool: asyncpg.Pool) -> None:
    opened, _ = await tenant_session(pool, absolute=timedelta(seconds=-1))
    assert await sessions.touch_session(pool, opened.id_hash, IDLE) is None


async def test_an_operator_session_keeps_a_fingerprint_of_the_token_and_signs_out(
    pool: asyncpg.Pool,
) -> None:
    opened = new_session()
    fingerprint = admin_fingerprint("admin-" + ref("token"))
    await sessions.insert_admin_session(
        pool, opened.id_hash, opened.csrf_token, fingerprint, ABSOLUTE
    )
    found = await sessions.touch_session(pool, opened.id_hash, IDLE)
    assert found is not None and found.is_admin and found.admin_fingerprint == fingerprint
    assert found.key_id is None and found.scopes == frozenset()
    await sessions.delete_session(pool, opened.id_hash)
    assert await sessions.touch_session(pool, opened.id_hash, IDLE) is None
