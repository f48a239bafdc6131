"""Stock routes: records, level updates, transfers, the ledger and the integrity check."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, get_args
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from fulfilkit import idempotency
from fulfilkit.db import in_transaction
from fulfilkit.faults import crash_point
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import Code, Text, Timestamp
from fulfilkit.service import Pool
from stock import integrity, levels, store
from stock.changes import save_changes
from stock.domain import Reason, StockRecord, opening_entry
from stock.schemas import (
    DiscrepancyOut,
    IntegrityReport,
    LevelUpdateIn,
    Movement,
    RecordsChangeIn,
    RecordsOut,
    RecordsUpdateIn,
    StockRecordIn,
    StockRecordOut,
    TransferIn,
    TransferOut,
)

router = APIRouter(prefix="/api/v1/stock", tags=["stock"], route_class=StrictJsonRoute)

MAX_FILTER_VALUES = 100  # values of one list filter (`sku=..&sku=..`)
CodeFilter = Annotated[list[Code] | None, Query(max_length=MAX_FILTER_VALUES)]


async def _records_out(pool: asyncpg.Pool, ids: list[UUID]) -> list[StockRecordOut]:
    async with pool.acquire() as conn:
        return await _records_in(conn, ids)


async def _records_in(conn: asyncpg.Connection, ids: list[UUID]) -> list[StockRecordOut]:
    rows = await store.get_records(conn, ids)
    return [StockRecordOut.of(rows[i]) for i in ids]


@router.post("/stock-records", status_code=201, response_model=StockRecordOut)
async def create_stock_record(
    body: StockRecordIn, tenant: TenantId, actor: Actor, pool: Pool
) -> StockRecordOut:
    product = None
    async with pool.acquire() as conn:
        product = await store.get_product(conn, tenant, body.sku)
    record = StockRecord(
        uuid.uuid4(),
        tenant,
        body.location_id,
        body.sku,
        body.quantity,
        0,
        1,
        min_level=product["min_level"] if product else 0,
    )

    async def create(conn: asyncpg.Connection) -> None:
        try:
            created = await store.insert_stock_record(conn, record)
        except asyncpg.ForeignKeyViolationError:
            raise Problem(
                "validation",
                "The sku or location does not exist.",
                errors=[
                    {"field": "/sku", "message": "must name an existing product"},
                    {"field": "/location_id", "message": "must name an existing location"},
                ],
            ) from None
        if not created:
            raise Problem(
                "duplicated",
                f"A stock record for {body.sku!r} at {body.location_id!r} already exists.",
            )
        await save_changes(conn, [record], [opening_entry(record)], actor)

    await in_transaction(pool, create)
    return (await _records_out(pool, [record.id]))[0]


@router.get("/stock-records")
async def list_stock_records(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    sku: CodeFilter = None,
    location_id: CodeFilter = None,
) -> dict:
    async with pool.acquire() as conn:
        rows, total = await store.list_rows(
            conn,
            "stock_records",
            tenant,
            "location_id, sku",
            page.limit,
            page.offset,
            filters={"sku": sku or [], "location_id": location_id or []},
        )
    items = [StockRecordOut.of(r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)


@router.get("/stock-records/{record_id}", response_model=StockRecordOut)
async def get_stock_record(record_id: UUID, tenant: TenantId, pool: Pool) -> StockRecordOut:
    async with pool.acquire() as conn:
        row = await store.get_record(conn, tenant, record_id)
    if row is None:
        raise Problem("no_content", f"No stock record {record_id}.")
    return StockRecordOut.of(row)


# The writes below are not keyed by their content (a retry would change stock again), so
# each runs once per Idempotency-Key: the key and its answer commit with the change.


async def _once(
    request: Request,
    pool: asyncpg.Pool,
    tenant: UUID,
    work: Callable[[asyncpg.Connection], Awaitable[Answer]],
) -> Response:
    response = await idempotency.once(pool, "stock", tenant, request, work)
    crash_point("stock.after_commit")  # committed, not yet answered
    return response


@router.post("/stock-records/update", response_model=RecordsOut)
async def update_stock_records(
    request: Request,
    body: RecordsUpdateIn,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
    if_match: IfMatch = None,
) -> Response:
    """Set on-hand quantities, all or none; `compare_quantity`/`version`/If-Match guard them."""
    version = expected_version(if_match)

    async def update(conn: asyncpg.Connection) -> Answer:
        ids = await levels.update_records(
            conn, tenant, body.stock_records, version, actor, body.notes
        )
        return Answer.json(RecordsOut(stock_records=await _records_in(conn, ids)))

    return await _once(request, pool, tenant, update)


@router.post("/stock-records/change", response_model=RecordsOut)
async def change_stock_records(
    request: Request, body: RecordsChangeIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    """Add to or subtract from on-hand quantities, all or none."""

    async def change(conn: asyncpg.Connection) -> Answer:
        ids = await levels.change_records(conn, tenant, body.stock_records, actor, body.notes)
        return Answer.json(RecordsOut(stock_records=await _records_in(conn, ids)))

    return await _once(request, pool, tenant, change)


@router.post("/stock-level-updates", response_model=StockRecordOut)
async def stock_level_update(
    request: Request, body: LevelUpdateIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    """`audit` sets the counted quantity, `restock` adds, `loss` subtracts."""

    async def update(conn: asyncpg.Connection) -> Answer:
        record_id = await levels.level_update(conn, tenant, body, actor)
        return Answer.json((await _records_in(conn, [record_id]))[0])

    return await _once(request, pool, tenant, update)


@router.post("/transfers", response_model=TransferOut, response_model_by_alias=True)
async def transfer_stock(
    request: Request, body: TransferIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    async def move(conn: asyncpg.Connection) -> Answer:
        reference, source, destination = await levels.transfer(conn, tenant, body, actor)
        out = await _records_in(conn, [source, destination])
        return Answer.json(
            TransferOut(transfer_id=reference, source=out[0], destination=out[1]), by_alias=True
        )

    return await _once(request, pool, tenant, move)


@router.get("/movements")
async def list_movements(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    sku: CodeFilter = None,
    location_id: CodeFilter = None,
    reason: Annotated[list[Reason] | None, Query(max_length=len(get_args(Reason)))] = None,
    reference: Annotated[Text | None, Query(max_length=200)] = None,
    created_from: Timestamp | None = None,
    created_to: Timestamp | None = None,
) -> dict:
    """The append-only ledger, oldest first."""
    async with pool.acquire() as conn:
        rows, total = await store.list_movements(
            conn,
            tenant,
            skus=sku or [],
            locations=location_id or [],
            reasons=reason or [],
            reference=reference,
            created_from=created_from,
            created_to=created_to,
            limit=page.limit,
            offset=page.offset,
        )
    items = [Movement(**r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)


def _report(checked: int, found: list, repaired: int = 0) -> IntegrityReport:
    return IntegrityReport(
        ok=not found,
        records_checked=checked,
        repaired=repaired,
        discrepancies=[
            DiscrepancyOut(
                stock_record_id=d.record_id,
                location_id=d.location_id,
                sku=d.sku,
                check=d.check,
                recorded=d.recorded,
                expected=d.expected,
            )
            for d in found
        ],
    )


@router.get("/integrity", response_model=IntegrityReport)
async def check_integrity(tenant: TenantId, pool: Pool) -> IntegrityReport:
    """Does every record's `reserved` equal its active reservations, and its ledger sum?"""
    async with pool.acquire() as conn:
        checked, found = await integrity.check(conn, tenant)
    return _report(checked, found)


@router.post("/integrity/rebuild", response_model=IntegrityReport)
async def rebuild_reserved(tenant: TenantId, pool: Pool) -> IntegrityReport:
    """Rebuild `reserved` from the active reservations, then check again."""
    repaired = await in_transaction(pool, lambda conn: integrity.rebuild(conn, tenant))
    async with pool.acquire() as conn:
        checked, found = await integrity.check(conn, tenant)
    return _report(checked, found, repaired)
