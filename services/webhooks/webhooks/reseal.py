"""Encrypt stored signing secrets with the current key.

At every start the service seals the secrets still stored in plaintext (those saved before
encryption at rest; `webhooks.resources`). `python -m webhooks.reseal` re-encrypts every
secret with the first key of `WEBHOOK_SECRET_KEYS`: the step of a key rotation after which
the old key can be dropped.
"""

import asyncio
import sys

import asyncpg

from fulfilkit.db import create_pool
from webhooks.sealing import SecretSealer
from webhooks.settings import WebhookSettings
from webhooks.store import endpoints as store

PAGE = 500


async def reseal(pool: asyncpg.Pool, sealer: SecretSealer, *, plaintext_only: bool) -> int:
    """Re-encrypt stored secrets (only plaintext ones with `plaintext_only`); how many rows
    were rewritten."""
    changed = 0
    after = None
    while rows := await store.stored_secrets(pool, after, PAGE, plaintext_only=plaintext_only):
        for row in rows:
            old = (row["secret"], row["previous_secret"])
            new = (sealer.reseal(old[0]), None if old[1] is None else sealer.reseal(old[1]))
            changed += await store.replace_secrets(pool, row["id"], old, new)
        after = rows[-1]["id"]
    return changed


async def main() -> int:
    settings = WebhookSettings()
    pool = await create_pool(settings.database_url, 1, 2, application_name="webhooks-reseal")
    try:
        changed = await reseal(pool, SecretSealer(settings.secret_keys), plaintext_only=False)
    finally:
        await pool.close()
    print(f"re-encrypted the secrets of {changed} webhook endpoints with the first key")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
