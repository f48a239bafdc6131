"""Migration 003 announces the products that existed before stock published
`product.created`, so that orders' copy of the catalogue holds them too."""

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.received import decode_event

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[1] / "stock" / "migrations"


async def test_products_made_before_the_migration_are_announced_once(infrastructure, tmp_path):
    name = f"stock_announce_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infrastructure.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
    pool = await create_pool(dsn, application_name="stock-tests")
    try:
        for script in sorted(MIGRATIONS.glob("00[12]_*.sql")):  # the schema as it was
            shutil.copy(script, tmp_path)
        await migrate(pool, "stock", tmp_path)
        tenant = uuid.uuid4()
        await pool.execute(
            "INSERT INTO stock.products (tenant_id, sku, name, ean, is_bulky, min_level)"
            " VALUES ($1, 'A', 'Apple', '4006381333931', true, 2), ($1, 'B', 'Pear', NULL,"
            " false, 0)",
            tenant,
        )
        applied = await migrate(pool, "stock", MIGRATIONS)
        # the announcement and every migration after it
        assert applied == sorted(p.stem for p in MIGRATIONS.glob("*.sql") if p.stem >= "003")
        assert applied[0] == "003_announce_products"
        rows = await pool.fetch("SELECT key, payload, event_type, topic FROM stock.outbox")
        events = sorted((decode_event(bytes(r["payload"])) for r in rows), key=lambda e: e.subject)
        assert sorted((r["key"], r["event_type"], r["topic"]) for r in rows) == [
            (f"{tenant}:product:A", c.PRODUCT_CREATED, c.STOCK_TOPIC),
            (f"{tenant}:product:B", c.PRODUCT_CREATED, c.STOCK_TOPIC),
        ]
        products = {
            r["sku"]: r for r in await pool.fetch("SELECT * FROM stock.products ORDER BY sku")
        }
        for event in events:
            sku = event.data.sku
            assert (event.type, event.source, event.subject, event.tenantid) == (
                c.PRODUCT_CREATED,
                "/stock",
                f"product/{sku}",
                tenant,
            )
            row = products[sku]
            assert event.data.model_dump() == {
                "sku": sku,
                "name": row["name"],
                "ean": row["ean"],
                "unit_type": "unit",
                "min_level": row["min_level"],
                "is_bulky": row["is_bulky"],
                "version": 1,
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
                # stock policies, added later: their defaults
                "backorders": "allow",
                "out_of_stock_threshold": 0,
                "preorder": None,
                "infinite": False,
                # a bundle's fields, added later: their defaults
                "components": None,
                "assembled": False,
            }
        assert await migrate(pool, "stock", MIGRATIONS) == [], "announced once"
    finally:
        await pool.close()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
