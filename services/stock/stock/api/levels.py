"""Stock routes: records, level updates and changes, transfers, the ledger, integrity."""

from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request, Response

from fulfilkit import idempotency
from fulfilkit.faults import crash_point
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import Timestamp
from fulfilkit.service import Pool
from stock.domain import StockRecord
from stock.schemas import (
    BuildIn,
    BuildOut,
    CodeFilter,
    DerivedRecordOut,
    IntegrityReport,
    LevelUpdateIn,
    Movement,
    ReasonFilter,
    RecordsChangeIn,
    RecordsOut,
    RecordsUpdateIn,
    ReferenceFilter,
    StockRecordIn,
    StockRecordOut,
    TransferIn,
    TransferOut,
)
from stock.usecases import bundles, inbound, integrity, levels

router = APIRouter(prefix="/api/v1/stock", tags=["stock"], route_class=StrictJsonRoute)


async def _out(
    conn: asyncpg.Connection, tenant: UUID, records: list[StockRecord]
) -> list[StockRecordOut]:
    """The records as answered, each with its `incoming` units."""
    incoming = await inbound.incoming(conn, tenant, records)
    return [StockRecordOut.of(r, n) for r, n in zip(records, incoming, strict=True)]


async def _read_out(
    pool: asyncpg.Pool, tenant: UUID, records: list[StockRecord]
) -> list[StockRecordOut]:
    incoming = await inbound.incoming_read(pool, tenant, records)
    return [StockRecordOut.of(r, n) for r, n in zip(records, incoming, strict=True)]


def _etag(records: list[StockRecord]) -> dict[str, str]:
    """An answer about one record carries its version as the `ETag` (what `If-Match` takes
    back on the next update); an answer about several carries none."""
    return {"ETag": etag(records[0].version)} if len(records) == 1 else {}


@router.post("/stock-records", status_code=201, response_model=StockRecordOut)
async def create_stock_record(
    body: StockRecordIn, tenant: TenantId, actor: Actor, pool: Pool, response: Response
) -> StockRecordOut:
    record = await levels.create_stock_record(
        pool, tenant, body.location_id, body.sku, body.quantity, actor
    )
    response.headers.update(_etag([record]))
    return (await _read_out(pool, tenant, [record]))[0]


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
    """Records by location and SKU. A bundle that is not assembled, named by `sku`, has no
    record: after the records come its derived rows, one per location holding any of its
    components (`derived: true`, `id`, `version` and `updated_at` null, `reserved` 0, the
    other figures what its components can make)."""
    records, derived, total = await bundles.list_records_and_derived(
        pool, tenant, sku or [], location_id or [], page.limit, page.offset
    )
    items = [r.model_dump(mode="json") for r in await _read_out(pool, tenant, records)]
    items += [DerivedRecordOut.of(d).model_dump(mode="json") for d in derived]
    return paginated(request, response, page, items, total)


@router.get("/stock-records/{record_id}", response_model=StockRecordOut)
async def get_stock_record(
    record_id: UUID, tenant: TenantId, pool: Pool, response: Response
) -> StockRecordOut:
    record = await levels.get_stock_record(pool, tenant, record_id)
    response.headers.update(_etag([record]))
    return (await _read_out(pool, tenant, [record]))[0]


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
    """Set quantities, all or none: on hand, or (`quantity_basis: "available"`) available, the
    open reservations added. `compare_quantity`/`version`/If-Match guard them; an update of
    one record answers its new version as the `ETag`."""
    updates = body.updates(expected_version(if_match))

    async def update(conn: asyncpg.Connection) -> Answer:
        records = await levels.update_stock(conn, tenant, updates, actor, body.notes)
        out = RecordsOut(stock_records=await _out(conn, tenant, records))
        return Answer.json(out, headers=_etag(records))

    return await _once(request, pool, tenant, update)


@router.post("/stock-records/change", response_model=RecordsOut)
async def change_stock_records(
    request: Request, body: RecordsChangeIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    """Add to or subtract from on-hand quantities, all or none."""

    async def change(conn: asyncpg.Connection) -> Answer:
        records = await levels.change_stock(conn, tenant, body.changes(), actor, body.notes)
        return Answer.json(RecordsOut(stock_records=await _out(conn, tenant, records)))

    return await _once(request, pool, tenant, change)


@router.post("/stock-level-updates", response_model=StockRecordOut)
async def stock_level_update(
    request: Request, body: LevelUpdateIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    """`audit` sets the counted quantity (on hand, or available with `quantity_basis:
    "available"`), `restock` adds, `loss` subtracts. The answer's `ETag` is the record's
    version."""

    async def update(conn: asyncpg.Connection) -> Answer:
        [record] = await levels.update_stock(conn, tenant, [body.update()], actor, body.notes)
        [out] = await _out(conn, tenant, [record])
        return Answer.json(out, headers=_etag([record]))

    return await _once(request, pool, tenant, update)


@router.post("/transfers", response_model=TransferOut, response_model_by_alias=True)
async def transfer_stock(
    request: Request, body: TransferIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    async def move(conn: asyncpg.Connection) -> Answer:
        transfer = await levels.transfer_stock(
            conn,
            tenant,
            body.sku,
            body.from_location_id,
            body.to_location_id,
            body.quantity,
            actor,
            body.notes,
        )
        source, destination = await inbound.incoming(
            conn, tenant, [transfer.source, transfer.destination]
        )
        return Answer.json(TransferOut.of(transfer, (source, destination)), by_alias=True)

    return await _once(request, pool, tenant, move)


@router.post("/builds", response_model=BuildOut)
async def build_bundle(
    request: Request, body: BuildIn, tenant: TenantId, actor: Actor, pool: Pool
) -> Response:
    """Build units of an assembled bundle from its components at a location, or (a
    negative `quantity`) take them apart: the components' and the bundle's ledger rows
    (reason `build`) share the build's id as reference, all or none. 409 when a component
    (or the bundle taken apart) is short."""

    async def build(conn: asyncpg.Connection) -> Answer:
        made = await bundles.build_bundle(
            conn, tenant, body.sku, body.location_id, body.quantity, actor, body.notes
        )
        return Answer.json(BuildOut.of(made))

    return await _once(request, pool, tenant, build)


@router.get("/movements")
async def list_movements(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    sku: CodeFilter = None,
    location_id: CodeFilter = None,
    reason: ReasonFilter = None,
    reference: ReferenceFilter = None,
    created_from: Timestamp | None = None,
    created_to: Timestamp | None = None,
) -> dict:
    """The append-only ledger, oldest first."""
    movements, total = await levels.list_movements(
        pool,
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
    items = [Movement.model_validate(m).model_dump(mode="json") for m in movements]
    return paginated(request, response, page, items, total)


@router.get("/integrity", response_model=IntegrityReport)
async def check_integrity(tenant: TenantId, pool: Pool) -> IntegrityReport:
    """Does every record's `reserved` equal its active reservations, and its ledger sum?"""
    return IntegrityReport.of(await integrity.check_integrity(pool, tenant))


@router.post("/integrity/rebuild", response_model=IntegrityReport)
async def rebuild_reserved(tenant: TenantId, pool: Pool) -> IntegrityReport:
    """Rebuild `reserved` from the active reservations, then check again."""
    return IntegrityReport.of(await integrity.rebuild_reserved(pool, tenant))
