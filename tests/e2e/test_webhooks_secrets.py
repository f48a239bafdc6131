"""Signing secrets are encrypted at rest: never stored as given, sealed at start when an older
version stored them in plaintext, and re-encrypted by the key-rotation command."""

import asyncio
import os
import subprocess
import sys
from uuid import UUID

import asyncpg
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from tests.e2e.webhook_tools import StockRecord, received_count, register, started
from tests.support import Client


def sealing_key(platform) -> Fernet:
    """The key the test platform gives the webhooks service (a fresh one, as in production)."""
    return Fernet(platform.webhook_secret_key)


async def stored(dsn: str, endpoint_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT secret, previous_secret FROM webhooks.endpoints WHERE id = $1",
            UUID(endpoint_id),
        )
    finally:
        await conn.close()


async def test_created_and_rotated_secrets_are_stored_encrypted(
    tenant: Client, infrastructure, platform
):
    key = sealing_key(platform)
    hook = await started()
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        secret = endpoint["secret"]
        row = await stored(infrastructure.database_url, endpoint["id"])
        assert row["secret"] != secret and secret not in row["secret"]
        assert not row["secret"].startswith("whsec_")
        assert key.decrypt(row["secret"].encode()).decode() == secret

        rotated = await tenant.post(f"/webhooks/endpoints/{endpoint['id']}/rotate-secret")
        assert rotated.status == 200, rotated
        row = await stored(infrastructure.database_url, endpoint["id"])
        assert key.decrypt(row["secret"].encode()).decode() == rotated.body["secret"]
        assert key.decrypt(row["previous_secret"].encode()).decode() == secret

        await StockRecord.create(tenant, quantity=1)
        await received_count(hook, 1)
        arrival = hook.received[0]
        Webhook(rotated.body["secret"]).verify(arrival.body, arrival.headers)
        Webhook(secret).verify(arrival.body, arrival.headers)  # the overlap: both sign
    finally:
        await hook.stop()


async def test_plaintext_secrets_are_sealed_at_start_and_resealed_by_the_command(
    tenant: Client, infrastructure, platform
):
    key = sealing_key(platform)
    hook = await started()
    dsn = infrastructure.database_url
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        plaintext = endpoint["secret"]
        conn = await asyncpg.connect(dsn)
        try:  # as a version without encryption at rest stored it
            await conn.execute(
                "UPDATE webhooks.endpoints SET secret = $2 WHERE id = $1",
                UUID(endpoint["id"]),
                plaintext,
            )
        finally:
            await conn.close()

        await asyncio.to_thread(platform["webhooks"].restart, 60)
        sealed = (await stored(dsn, endpoint["id"]))["secret"]
        assert not sealed.startswith("whsec_")
        assert key.decrypt(sealed.encode()).decode() == plaintext

        other_key = Fernet.generate_key().decode()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "ENVIRONMENT": "development",
            "WEBHOOK_SECRET_KEYS": f"{platform.webhook_secret_key},{other_key}",
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "webhooks.reseal"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "re-encrypted the secrets of" in done.stdout
        resealed = (await stored(dsn, endpoint["id"]))["secret"]
        assert resealed != sealed
        assert key.decrypt(resealed.encode()).decode() == plaintext

        await StockRecord.create(tenant, quantity=1)
        await received_count(hook, 1, timeout=30)
        Webhook(plaintext).verify(hook.received[0].body, hook.received[0].headers)
    finally:
        await hook.stop()
