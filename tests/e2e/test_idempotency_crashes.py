"""An Idempotency-Key retry applies a stock change once, whichever process dies and when.

The service keys the change with the key in the transaction of the change itself, so the
retry replays what was committed: after stock dies right after its commit, after the gateway
dies before it saved the answer, and when duplicates race each other.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from deploy.local.services import Platform, ServiceProcess
from tests.e2e.stocking import stocked_product
from tests.support import Answer, Client, eventually, ref

CHANGE = "/stock/stock-records/change"


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def restart(service: ServiceProcess) -> None:
    if not service.is_running():
        await asyncio.to_thread(service.start)
    await asyncio.to_thread(service.wait_ready, 60)


def change(record: dict, by: int) -> dict:
    return {"stock_records": [{"id": record["id"], "quantity_change": by}]}


async def quantity_and_adjustments(tenant: Client, record: dict) -> tuple[int, int]:
    now = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
    moves = (await tenant.get("/stock/movements", sku=record["sku"], reason="adjustment")).body[
        "data"
    ]
    return now["quantity"], len(moves)


async def answered_within(
    post: Callable[[], Awaitable[Answer]], seconds: float
) -> tuple[Answer, float]:
    """Retries as a client would (409 in progress, connection errors) until an answer."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            answer = await post()
            if answer.status != 409:
                return answer, time.monotonic() - started
            assert "in progress" in answer.body["detail"], answer
        assert time.monotonic() - started < seconds, f"no answer within {seconds}s"
        await asyncio.sleep(0.2)


async def test_stock_dying_right_after_its_commit_replays_the_change_to_the_retry(
    tenant: Client,
    platform: Platform,
    infrastructure,
):
    _, _, record = await stocked_product(tenant, quantity=10)
    stock = platform["stock"]
    log_dir = stock.log_file.parent / "faulty"
    log_dir.mkdir(exist_ok=True)
    faulty = ServiceProcess(
        "stock",
        stock.app,
        stock.port,
        {**platform.env, "FAULT_POINTS": "stock.after_commit"},
        log_dir,
    )
    key = ref("idem")
    post = {"headers": {"Idempotency-Key": key}}
    try:
        await asyncio.to_thread(stock.stop)
        await restart(faulty)

        first = await tenant.post(CHANGE, change(record, 5), **post)
        assert first.status == 503 and first.problem_code == "unavailable", first
        await eventually(
            lambda: asyncio.to_thread(faulty.is_running),
            lambda up: not up,
            what="stock died after its commit",
        )
        async with database(infrastructure.database_url) as db:
            committed = await db.fetchrow(
                "SELECT r.quantity, k.status_code FROM stock.stock_records r,"
                " stock.idempotent_requests k WHERE r.id = $1 AND k.tenant_id = $2"
                " AND k.key = $3",
                uuid.UUID(record["id"]),
                uuid.UUID(tenant.tenant_id),
                key,
            )
        assert tuple(committed) == (15, 200), "the change committed before the crash"
        await restart(stock)

        retry = await tenant.post(CHANGE, change(record, 5), **post)
        assert retry.status == 200, retry
        assert retry.headers["Idempotent-Replayed"] == "true"
        [out] = retry.body["stock_records"]
        assert (out["id"], out["quantity"], out["reserved"], out["available"]) == (
            record["id"],
            15,
            0,
            15,
        )
        assert await quantity_and_adjustments(tenant, record) == (15, 1)
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        faulty.stop()
        await restart(stock)


async def test_the_gateway_dying_before_it_saved_the_answer_replays_within_seconds(
    tenant: Client,
    platform: Platform,
    infrastructure,
):
    _, _, record = await stocked_product(tenant, quantity=10)
    key = ref("idem")
    tenant_id = uuid.UUID(tenant.tenant_id)
    gateway = platform["gateway"]
    async with (
        database(infrastructure.database_url) as stock_lock,
        database(infrastructure.database_url) as gateway_lock,
        database(infrastructure.database_url) as db,
    ):
        try:
            # Hold the record, so that the change waits inside stock until the gateway's
            # record is held as well: then stock commits, and the gateway cannot save.
            await stock_lock.execute("BEGIN")
            await stock_lock.execute(
                "SELECT 1 FROM stock.stock_records WHERE id = $1 FOR UPDATE",
                uuid.UUID(record["id"]),
            )
            first = asyncio.create_task(
                tenant.post(CHANGE, change(record, 5), headers={"Idempotency-Key": key})
            )
            await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) FROM gateway.idempotency_keys WHERE tenant_id = $1"
                    " AND key = $2",
                    tenant_id,
                    key,
                ),
                lambda n: n == 1,
                what="the gateway's claim",
            )
            await gateway_lock.execute("BEGIN")
            await gateway_lock.execute(
                "SELECT 1 FROM gateway.idempotency_keys WHERE tenant_id = $1 AND key = $2"
                " FOR UPDATE",
                tenant_id,
                key,
            )
            await stock_lock.execute("ROLLBACK")
            await eventually(
                lambda: db.fetchval(
                    "SELECT status_code FROM stock.idempotent_requests WHERE tenant_id = $1"
                    " AND key = $2",
                    tenant_id,
                    key,
                ),
                lambda status: status == 200,
                what="stock committed the change and its answer",
            )
            saving = (
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'gateway'"
                " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE gateway.idempotency%'"
            )
            [waiting] = await eventually(
                lambda: db.fetch(saving),
                lambda found: len(found) == 1,
                what="the gateway saving the answer, held",
            )
            gateway.kill()
            # A statement waiting on a lock would still finish once its client is gone; end
            # it as PostgreSQL ends the session of a client it finds dead.
            assert await db.fetchval("SELECT pg_terminate_backend($1)", waiting["pid"])
            await gateway_lock.execute("ROLLBACK")
            with pytest.raises(aiohttp.ClientError):
                await first
            saved = await db.fetchval(
                "SELECT status_code FROM gateway.idempotency_keys"
                " WHERE tenant_id = $1 AND key = $2",
                tenant_id,
                key,
            )
            assert saved is None, "the gateway died before it saved the answer"
            assert (
                await db.fetchval(
                    "SELECT quantity FROM stock.stock_records WHERE id = $1",
                    uuid.UUID(record["id"]),
                )
                == 15
            )
        finally:
            await restart(gateway)

        retry, waited = await answered_within(
            lambda: tenant.post(CHANGE, change(record, 5), headers={"Idempotency-Key": key}),
            seconds=20,
        )
        assert retry.status == 200, retry
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.body["stock_records"][0]["quantity"] == 15
        assert waited < 15, "a retry after a crash waits seconds, not a minute"
        assert await quantity_and_adjustments(tenant, record) == (15, 1)
        again = await tenant.post(CHANGE, change(record, 5), headers={"Idempotency-Key": key})
        assert (again.status, again.body) == (200, retry.body)
        assert (
            await db.fetchval(
                "SELECT status_code FROM gateway.idempotency_keys"
                " WHERE tenant_id = $1 AND key = $2",
                tenant_id,
                key,
            )
            == 200
        )


async def test_concurrent_duplicates_at_the_service_wait_for_the_first_and_replay_it(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
    infrastructure,
):
    _, _, record = await stocked_product(tenant, quantity=10)
    headers = {
        "X-Internal-Token": platform.internal_token,
        "X-Tenant-Id": tenant.tenant_id,
        "Idempotency-Key": ref("idem"),
    }
    url = f"{platform['stock'].url}/api/v1{CHANGE}"

    async def post() -> tuple[int, dict, str | None]:
        async with http.post(url, json=change(record, 5), headers=headers) as response:
            return (
                response.status,
                await response.json(),
                response.headers.get("Idempotent-Replayed"),
            )

    async with (
        database(infrastructure.database_url) as lock,
        database(infrastructure.database_url) as db,
    ):
        await lock.execute("BEGIN")
        await lock.execute(
            "SELECT 1 FROM stock.stock_records WHERE id = $1 FOR UPDATE", uuid.UUID(record["id"])
        )
        duplicates = [asyncio.create_task(post()) for _ in range(6)]
        # All six inside stock at once: one waits for the record, five for the key.
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stock'"
                " AND wait_event_type = 'Lock'"
            ),
            lambda n: n == 6,
            timeout=30,
            what="six duplicates waiting in stock",
        )
        await lock.execute("ROLLBACK")
        answers = await asyncio.gather(*duplicates)

    assert {(status, str(body)) for status, body, _ in answers} == {(200, str(answers[0][1]))}
    assert answers[0][1]["stock_records"][0]["quantity"] == 15
    assert sorted(str(replayed) for _, _, replayed in answers) == ["None"] + ["true"] * 5
    assert await quantity_and_adjustments(tenant, record) == (15, 1)


async def test_concurrent_duplicates_through_the_gateway_apply_once(tenant: Client):
    _, _, record = await stocked_product(tenant, quantity=10)
    key = ref("idem")

    async def post() -> Answer:
        return await tenant.post(CHANGE, change(record, 5), headers={"Idempotency-Key": key})

    answers = await asyncio.gather(*(post() for _ in range(8)))
    done = [a for a in answers if a.status == 200]
    assert done and all(a.body == done[0].body for a in done)
    assert all(
        a.status == 409 and "in progress" in a.body["detail"] for a in answers if a.status != 200
    ), answers
    final, _ = await answered_within(post, seconds=20)
    assert (final.status, final.body) == (200, done[0].body)
    assert await quantity_and_adjustments(tenant, record) == (15, 1)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/stock/stock-level-updates", "restock"),
        ("/stock/transfers", "transfer"),
        ("/stock/stock-records/update", "update"),
    ],
)
async def test_every_stock_write_replays_its_first_answer_to_a_retry_with_the_same_key(
    tenant: Client,
    path: str,
    body: str,
):
    sku, location, record = await stocked_product(tenant, quantity=10)
    other = ref("wh")
    assert (await tenant.post("/locations", {"location_id": other, "name": "B"})).status == 201
    bodies = {
        "restock": {"sku": sku, "location_id": location, "quantity": 4, "update_type": "restock"},
        "transfer": {
            "sku": sku,
            "from_location_id": location,
            "to_location_id": other,
            "quantity": 4,
        },
        "update": {"stock_records": [{"id": record["id"], "quantity": 14}]},
    }
    key = {"Idempotency-Key": ref("idem")}
    first = await tenant.post(path, bodies[body], headers=key)
    retry = await tenant.post(path, bodies[body], headers=key)
    assert first.status == retry.status == 200, (first, retry)
    assert retry.body == first.body and retry.headers["Idempotent-Replayed"] == "true"
    moves = (await tenant.get("/stock/movements", sku=sku)).body["data"]
    assert [m["reason"] for m in moves] == {
        "restock": ["audit", "restock"],
        "transfer": ["audit", "transfer", "transfer"],
        "update": ["audit", "audit"],
    }[body]
    other_body = await tenant.post(path, {**bodies[body], "notes": "another"}, headers=key)
    assert other_body.status == 409 and "different request" in other_body.body["detail"]
