"""The stock store's queries against the real, migrated PostgreSQL."""

import uuid

import pytest

from stock import store
from stock.domain import LedgerEntry, Place, Policy, Reservation, StockRecord
from stock.store.reservations import Backorder

pytestmark = pytest.mark.integration


async def catalogue_of(conn, tenant, skus=("A", "B"), locations=("wh-1", "wh-2")) -> None:
    for sku in skus:
        await store.catalogue.insert_product(conn, tenant, sku, sku, None, "unit", 2, sku == "B")
    for location in locations:
        await store.catalogue.insert_location(conn, tenant, location, location, None)


async def record_at(conn, tenant, location, sku, quantity=5) -> StockRecord:
    record = StockRecord(uuid.uuid4(), tenant, location, sku, quantity, 0, 1)
    assert await store.records.insert_stock_record(conn, record)
    return record


async def test_catalogue_rows_insert_once_and_update_at_a_version(pool, tenant):
    async with pool.acquire() as conn:
        made = await store.catalogue.insert_product(
            conn, tenant, "A", "Apple", "12345678", "kg", 1, False
        )
        assert (made.ean, made.unit_type, made.version) == ("12345678", "kg", 1)
        assert (
            await store.catalogue.insert_product(conn, tenant, "A", "x", None, "unit", 0, False)
            is None
        )
        assert await store.catalogue.update_product(conn, tenant, "A", {"name": "Pear"}, 2) is None
        changed = await store.catalogue.update_product(conn, tenant, "A", {"name": "Pear"}, 1)
        assert (changed.name, changed.version) == ("Pear", 2)
        assert changed.updated_at >= made.updated_at
        same = await store.catalogue.update_product(conn, tenant, "A", {}, None)
        assert same.version == 2
        assert await store.catalogue.get_product(conn, uuid.uuid4(), "A") is None
        loc = await store.catalogue.insert_location(conn, tenant, "wh-1", "N", {"zip": "1"})
        assert loc.address == {"zip": "1"}
        assert await store.catalogue.insert_location(conn, tenant, "wh-1", "N", None) is None
        moved = await store.catalogue.update_location(conn, tenant, "wh-1", {"name": "S"}, None)
        assert (moved.name, moved.version) == ("S", 2)
        page, total = await store.catalogue.list_locations(conn, tenant, 10, 0)
        assert ([x.location_id for x in page], total) == (["wh-1"], 1)
        assert await store.catalogue.known_skus(conn, [(tenant, "A"), (tenant, "Z")]) == {
            (tenant, "A")
        }


async def test_records_lock_in_the_global_order_with_their_product(pool, tenant):
    async with pool.acquire() as conn, conn.transaction():
        await catalogue_of(conn, tenant)
        b = await record_at(conn, tenant, "wh-1", "B")
        a = await record_at(conn, tenant, "wh-2", "A")
        assert not await store.records.insert_stock_record(conn, b), "one record per SKU there"
        locked = await store.records.lock_records(conn, [a.key, b.key, (tenant, "wh-9", "A")])
        assert list(locked) == [b.key, a.key], "by location, then SKU"
        assert (locked[b.key].min_level, locked[b.key].is_bulky) == (2, True)
        by_id = await store.records.lock_records_by_id(conn, tenant, [a.id, uuid.uuid4()])
        assert list(by_id) == [a.id]
        assert await store.records.lock_records_by_id(conn, uuid.uuid4(), [a.id]) == {}
        assert await store.records.record_exists(conn, tenant, "wh-1", "B")
        assert not await store.records.record_exists(conn, tenant, "wh-1", "A")


async def test_saved_records_and_movements_read_back(pool, tenant):
    async with pool.acquire() as conn:
        await catalogue_of(conn, tenant)
        a = await record_at(conn, tenant, "wh-1", "A", 0)
        a.quantity, a.reserved, a.version, a.low = 4, 1, 2, True
        await store.records.save_records(conn, [a])
        [saved] = (await store.records.get_records(conn, tenant, [a.id])).values()
        assert (saved.quantity, saved.reserved, saved.version, saved.low) == (4, 1, 2, True)
        assert saved.updated_at is not None
        entries = [
            LedgerEntry(a.id, tenant, "wh-1", "A", "restock", 4, 0, 4, 0, 2),
            LedgerEntry(a.id, tenant, "wh-1", "A", "reservation", 0, 1, 4, 1, 3, "S-1"),
        ]
        await store.records.insert_movements(conn, entries, "tester", "a note")
        rows, total = await store.records.list_movements(
            conn,
            tenant,
            skus=["A"],
            locations=[],
            reasons=["reservation"],
            reference="S-1",
            created_from=None,
            created_to=None,
            limit=10,
            offset=0,
        )
        assert total == 1
        assert (rows[0].actor, rows[0].notes, rows[0].reserved_after) == ("tester", "a note", 1)
        records, total = await store.records.list_records(conn, tenant, [], ["wh-1"], 10, 0)
        assert ([r.id for r in records], total) == ([a.id], 1)
        checked, active, ledger = await store.records.integrity_inputs(conn, tenant)
        assert ([r.id for r in checked], active, ledger) == ([a.id], {}, {a.id: (4, 1)})


async def test_reservations_read_back_with_their_lines(pool, tenant):
    async with pool.acquire() as conn:
        await catalogue_of(conn, tenant)
        a, b = (
            await record_at(conn, tenant, "wh-1", "A"),
            await record_at(conn, tenant, "wh-1", "B"),
        )
        sale = uuid.uuid4()
        row = Reservation(
            uuid.uuid4(), tenant, sale, "S-1", "wh-1", "active", 1, [("A", 2, a.id), ("B", 1, b.id)]
        )
        await store.reservations.insert_reservations(conn, [row])
        found = await store.reservations.reservations_for(
            conn, [(tenant, sale), (tenant, uuid.uuid4())]
        )
        assert found == {(tenant, sale): row}
        row.status, row.version = "committed", 2
        await store.reservations.update_reservations(conn, [row])
        found = await store.reservations.reservations_for(conn, [(tenant, sale)], lock=True)
        assert (found[(tenant, sale)].status, found[(tenant, sale)].version) == ("committed", 2)
        assert await store.reservations.reservations_for(conn, []) == {}
        _, active, _ = await store.records.integrity_inputs(conn, tenant)
        assert active == {}, "a committed reservation holds nothing"


async def test_the_backorder_queue_and_its_wakeups(pool, tenant):
    async with pool.acquire() as conn:
        await catalogue_of(conn, tenant)
        first, second = uuid.uuid4(), uuid.uuid4()
        lines = [{"sku": "A", "quantity": 1}]
        await store.reservations.insert_backorders(
            conn,
            [
                Backorder(tenant, first, "S-1", "wh-1", lines),
                Backorder(tenant, second, "S-2", "wh-1", lines),
            ],
        )
        await store.reservations.insert_backorders(
            conn, [Backorder(tenant, first, "S-1", "wh-1", lines)]
        )
        waiting = await store.reservations.waiting_backorders(conn, tenant, "wh-1", 10)
        assert [(b.sale_id, b.lines) for b in waiting] == [("S-1", lines), ("S-2", lines)]
        locations, skus, queued = await store.reservations.known_for_batch(
            conn,
            [(tenant, "wh-1"), (tenant, "wh-9")],
            [(tenant, "B"), (tenant, "Z")],
            [(tenant, first)],
        )
        assert (skus, queued) == ({(tenant, "B"): Policy()}, {(tenant, first)})
        assert locations == {(tenant, "wh-1"): Place("wh-1", None)}
        async with conn.transaction():
            units = await store.reservations.queued_units(
                conn, [(tenant, "wh-1", "A"), (tenant, "wh-1", "B"), (tenant, "wh-2", "A")]
            )
        assert units == {(tenant, "wh-1", "A"): 2}
        await store.reservations.delete_backorders(conn, [(tenant, first)])
        async with conn.transaction():
            still = await store.reservations.lock_backorders(conn, [b.seq for b in waiting])
        assert still == {waiting[1].seq}

        await store.reservations.request_backorder_retry(conn, [(tenant, "wh-1"), (tenant, "wh-1")])
        assert (tenant, "wh-1") in await store.reservations.claim_wakeups(conn)
        assert (tenant, "wh-1") not in await store.reservations.claim_wakeups(conn)
        await store.reservations.wake_every_backordered_location(conn)
        assert (tenant, "wh-1") in await store.reservations.claim_wakeups(conn)
