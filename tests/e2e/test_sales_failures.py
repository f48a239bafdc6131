"""Crashes in the gaps of the sales lifecycle, and several replicas of `orders`.

A fulfilment process that dies right after `orders` claimed or shipped a sale leaves the
rest to the reconciler; `orders` killed mid-burst loses and doubles no sale; a sale created
on one replica is woken by the reservation outcome another replica consumed.
"""

import asyncio
import contextlib
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from deploy.local.services import Platform, ServiceProcess, free_ports, python_path
from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref

BURST, BURST_CLIENTS = 300, 24
REPLICA_SALES, REPLICA_CLIENTS = 60, 8


@contextlib.asynccontextmanager
async def extra_process(
    platform: Platform, name: str, app: str, env: Mapping[str, str]
) -> AsyncIterator[ServiceProcess]:
    """One more process of a service (`app` is `<package>.app:create_app`) on the platform's broker
    and database, stopped at the end (if it has not died already).

    It joins the service's consumer group. Afterwards this waits until the group is back to
    the platform's one member (a crashed member stays until its session times out), so the
    tests that follow find the consumers as they were.
    """
    service = app.split(".")[0]
    [port] = free_ports(1)
    # ServiceProcess finds a service's code by the process name; this one has its own name.
    env = {**env, "PYTHONPATH": python_path(service, env.get("PYTHONPATH"))}
    process = ServiceProcess(name, app, port, env, platform["orders"].log_file.parent)
    try:
        await asyncio.to_thread(process.start)
        await asyncio.to_thread(process.wait_ready, 60)
        yield process
    finally:
        await asyncio.to_thread(process.stop)
        with contextlib.suppress(AssertionError):  # hygiene only: never hide the real failure
            await eventually(
                lambda: group_assignment(platform.env["KAFKA_BOOTSTRAP_SERVERS"], service),
                lambda group: group[0] == "Stable" and len(group[1]) == 1,
                timeout=30,
                interval=0.2,
                what=f"{service}'s consumer group back to one member",
            )


def internal_headers(platform: Platform, tenant: Client) -> dict[str, str]:
    """What the gateway would send: calls straight to a service process."""
    return {"X-Internal-Token": platform.internal_token, "X-Tenant-Id": str(tenant.tenant_id)}


async def pending_sale(tenant: Client, quantity: int, stock: int) -> tuple[str, str, dict]:
    sku, location, record = await stocked_product(tenant, quantity=stock)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, quantity)))
    assert (created.status, created.body["status"]) == (201, "pending"), created
    return sale_id, sku, record


async def dies_on(
    http: aiohttp.ClientSession,
    process: ServiceProcess,
    path: str,
    body: dict,
    headers: dict[str, str],
) -> None:
    """POST to the process, which must drop the connection because it exits."""
    with pytest.raises(aiohttp.ClientError):
        async with http.post(f"{process.url}{path}", json=body, headers=headers) as response:
            raise AssertionError(
                f"{process.name} answered {response.status}: {await response.text()}"
            )
    await eventually(
        lambda: asyncio.to_thread(process.is_running),
        lambda alive: not alive,
        what=f"{process.name} exited",
    )


async def fulfillment_rows(db: asyncpg.Connection, tenant: Client, sale_id: str) -> list:
    return await db.fetch(
        "SELECT id, status FROM fulfilment.fulfillments WHERE tenant_id = $1 AND sale_id = $2",
        uuid.UUID(tenant.tenant_id),
        sale_id,
    )


async def test_fulfilment_dying_after_the_claim_leaves_one_fulfillment_from_the_reconciler(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
    infrastructure,
):
    sale_id, _, _ = await pending_sale(tenant, quantity=1, stock=5)
    db = await asyncpg.connect(infrastructure.database_url)
    env = {**platform.service_env("fulfilment"), "FAULT_POINTS": "fulfilment.after_claim"}
    try:
        async with extra_process(
            platform, "fulfilment-faulty", "fulfilment.app:create_app", env
        ) as faulty:
            await dies_on(
                http,
                faulty,
                "/api/v1/fulfillment/shipping/init",
                {"sale_ids": [sale_id]},
                internal_headers(platform, tenant),
            )

        sale = (await tenant.get(f"/sales/{sale_id}")).body
        assert sale["status"] == "in_fulfillment", "orders claimed the sale before the crash"
        rows = await eventually(
            lambda: fulfillment_rows(db, tenant, sale_id),
            bool,
            timeout=40,
            interval=0.1,
            what="a fulfillment made by the reconciler",
        )
        assert len(rows) == 1, rows
        fulfillment_id = str(rows[0]["id"])
        assert rows[0]["status"] == "waiting_for_picking", rows
        sale = (
            await eventually(
                lambda: tenant.get(f"/sales/{sale_id}"),
                lambda a: [f["id"] for f in a.body["fulfillments"]] == [fulfillment_id],
                what="the sale showing its fulfillment",
            )
        ).body
        assert sale["status"] == "in_fulfillment"
        assert [h["to_status"] for h in sale["status_history"]].count("in_fulfillment") == 1

        again = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
        assert again.status == 200, again
        assert [f["id"] for f in again.body["fulfillments"]] == [fulfillment_id], again
        assert again.body["errors"] == [], again
        assert [str(r["id"]) for r in await fulfillment_rows(db, tenant, sale_id)] == [
            fulfillment_id
        ]
    finally:
        await db.close()


@pytest.mark.parametrize("in_a_batch", [False, True], ids=["one", "batch"])
async def test_fulfilment_dying_after_orders_shipped_is_finished_and_commits_once(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
    in_a_batch: bool,
):
    sale_id, sku, record = await pending_sale(tenant, quantity=3, stock=10)
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]
    path = f"/fulfillment/fulfillments/{fulfillment['id']}"
    env = {**platform.service_env("fulfilment"), "FAULT_POINTS": "fulfilment.after_ship_call"}
    async with extra_process(
        platform, "fulfilment-faulty", "fulfilment.app:create_app", env
    ) as faulty:
        if in_a_batch:
            request = (
                "/api/v1/fulfillment/fulfillments/status",
                {"updates": [{"id": fulfillment["id"], "status": "shipped"}]},
            )
        else:
            request = (f"/api/v1{path}/status", {"status": "shipped"})
        await dies_on(http, faulty, *request, internal_headers(platform, tenant))

    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert sale["status"] == "shipped", "orders shipped the sale before the crash"
    await eventually(
        lambda: tenant.get(path),
        lambda a: a.body["status"] == "shipped",
        timeout=40,
        interval=0.1,
        what="the reconciler marking it shipped",
    )
    # Once orders shows the shipped fulfillment, every event of the sale has been applied.
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: [f["status"] for f in a.body["fulfillments"]] == ["shipped"],
        what="the sale showing its shipped fulfillment",
    )

    async def commits() -> list[dict]:
        rows = (await tenant.get("/stock/movements", sku=sku, reason="commit")).body["data"]
        return [r for r in rows if r["reference"] == sale_id]

    [commit] = await eventually(commits, bool, what="the stock committed")
    assert (commit["quantity_change"], commit["reserved_change"]) == (-3, -3), commit
    now = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
    assert (now["quantity"], now["reserved"]) == (7, 0), now
    assert len(await commits()) == 1
    assert (await tenant.get("/stock/integrity")).body["ok"] is True
    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert [h["to_status"] for h in sale["status_history"]].count("shipped") == 1


@pytest.mark.parametrize("per_request", [1, 10], ids=["one_sale_a_request", "batches_of_10"])
async def test_orders_killed_mid_burst_stores_every_sale_exactly_once(
    tenant: Client,
    platform: Platform,
    infrastructure,
    per_request: int,
):
    sku, location, record = await stocked_product(tenant, quantity=BURST)
    sale_ids = [ref("S") for _ in range(BURST)]
    groups = [sale_ids[i : i + per_request] for i in range(0, BURST, per_request)]
    answers: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    transport_errors: Counter = Counter()
    done: set[str] = set()
    queue = iter((group, str(uuid.uuid4())) for group in groups)

    def has_them(group: list[str], answer: Any, retried: bool) -> bool:
        """Whether this answer says the platform has every sale of the group."""
        if answer.status == 202 and per_request == 1:
            assert answer.body["sale_id"] == group[0], answer
            assert answer.body["status"] == "awaiting_stock", answer
            return True
        if answer.status == 202:
            created = [s["sale_id"] for s in answer.body["sales"]]
            duplicated = [e["sale_id"] for e in answer.body["errors"]]
            assert sorted(created + duplicated) == sorted(group), answer
            assert retried or not duplicated, answer
            assert {s["status"] for s in answer.body["sales"]} <= {"awaiting_stock"}, answer
            return True
        # an earlier attempt stored it, then lost its answer
        return (answer.status, answer.problem_code) == (409, "duplicated") and retried

    async def send(group: list[str], key: str) -> None:
        """Retry with the same Idempotency-Key until the platform has the sales."""
        bodies = [sale_body(sale_id, location, (sku, 1)) for sale_id in group]
        path, body = (
            ("/sales", bodies[0]) if per_request == 1 else ("/sales/batch", {"sales": bodies})
        )
        headers = {"Prefer": "respond-async", "Idempotency-Key": key}
        tries = answers[group[0]]
        deadline = time.monotonic() + 45
        while True:
            try:
                answer = await tenant.post(path, body, headers=headers)
            except aiohttp.ClientError as exc:  # a dropped connection is retried the same way
                transport_errors[type(exc).__name__] += 1
            else:
                tries.append((answer.status, answer.problem_code))
                if has_them(group, answer, retried=len(tries) > 1):
                    done.update(group)
                    return
                assert answer.status in (503, 409), (group, tries, answer)
                assert answer.problem_code in ("unavailable", "conflict"), answer
            assert time.monotonic() < deadline, (group, tries, transport_errors)
            await asyncio.sleep(0.1)

    async def client() -> None:
        for group, key in queue:
            await send(group, key)

    async def stored_so_far() -> int:
        return len(done)

    async def crash() -> int:
        await eventually(
            stored_so_far,
            lambda n: n >= BURST // 4,
            timeout=30,
            interval=0.005,
            what="a quarter of the burst",
        )
        await asyncio.to_thread(platform["orders"].kill)
        at_kill = len(done)
        await asyncio.to_thread(platform["orders"].start)
        await asyncio.to_thread(platform["orders"].wait_ready, 60)
        return at_kill

    clients = max(2, BURST_CLIENTS // per_request)
    *_, at_kill = await asyncio.gather(*(client() for _ in range(clients)), crash())
    assert at_kill < BURST, "the kill must land mid-burst to prove anything"
    outage = sum(1 for tries in answers.values() for status, _ in tries if status == 503)
    assert outage > 0, "some requests must have met the outage"
    assert done == set(sale_ids)

    tenant_id = uuid.UUID(tenant.tenant_id)
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        stored = Counter(
            r["sale_id"]
            for r in await db.fetch(
                "SELECT sale_id FROM orders.sales WHERE tenant_id = $1", tenant_id
            )
        )
        assert stored == Counter(sale_ids), "every sale exactly once, and no other"

        await eventually(
            lambda: tenant.get("/sales", status="pending", limit=1),
            lambda a: a.body["pagination"]["total_count"] == BURST,
            timeout=45,
            interval=0.2,
            what="every sale pending",
        )
        now = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
        assert (now["quantity"], now["reserved"]) == (BURST, BURST), now
        ledger = Counter(
            r["reference"]
            for r in await db.fetch(
                "SELECT reference FROM stock.movements WHERE tenant_id = $1"
                " AND reason = 'reservation'",
                tenant_id,
            )
        )
        assert ledger == Counter(sale_ids), "one reservation ledger row per sale"
        reservations = Counter(
            (r["sale_id"], r["status"])
            for r in await db.fetch(
                "SELECT sale_id, status FROM stock.reservations WHERE tenant_id = $1", tenant_id
            )
        )
        assert reservations == Counter((s, "active") for s in sale_ids)
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        await db.close()


async def group_assignment(bootstrap: str, group: str) -> tuple[str, list[list[str]]]:
    """The consumer group's state and, per member, the partitions it was assigned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    members: list[list[str]] = []
    for member in described["members"]:
        raw = member["member_assignment"]
        assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        members.append(
            [f"{tp.topic}:{tp.partition}" for tp in assignment.partitions()] if assignment else []
        )
    return described["state"], members


def both_consume_stock_outcomes(group: tuple[str, list[list[str]]]) -> bool:
    state, members = group
    return (
        state == "Stable"
        and len(members) == 2
        and all(any(tp.startswith(c.STOCK_TOPIC + ":") for tp in m) for m in members)
    )


async def test_a_sale_created_on_a_second_orders_replica_answers_pending(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
    infrastructure,
):
    sku, location, _ = await stocked_product(tenant, quantity=REPLICA_SALES + 200)
    headers = internal_headers(platform, tenant)

    async def create(replica: ServiceProcess) -> tuple[int, Any, float]:
        started = time.monotonic()
        async with http.post(
            f"{replica.url}/api/v1/sales",
            headers=headers,
            json=sale_body(ref("S"), location, (sku, 1)),
        ) as response:
            return response.status, await response.json(), time.monotonic() - started

    async with extra_process(
        platform, "orders-2", "orders.app:create_app", platform.service_env("orders")
    ) as replica:
        # The replica joined the consumer group: wait for the rebalance to settle, with
        # both replicas consuming reservation outcomes, and for a sale that answers fast.
        await eventually(
            lambda: group_assignment(infrastructure.bootstrap_servers, "orders"),
            both_consume_stock_outcomes,
            timeout=40,
            interval=0.2,
            what="orders' consumer group rebalanced over two replicas",
        )
        await eventually(
            lambda: create(replica),
            lambda a: a[0] == 201 and a[2] < 2.0,
            timeout=30,
            interval=0.1,
            what="a sale on the replica answering 201",
        )

        sem = asyncio.Semaphore(REPLICA_CLIENTS)

        async def measured() -> tuple[int, Any, float]:
            async with sem:
                return await create(replica)

        results = await asyncio.gather(*(measured() for _ in range(REPLICA_SALES)))
        started = time.monotonic()
        async with http.post(
            f"{replica.url}/api/v1/sales/batch",
            headers=headers,
            json={"sales": [sale_body(ref("S"), location, (sku, 1)) for _ in range(20)]},
        ) as batch:
            batch_answer = batch.status, await batch.json(), time.monotonic() - started
        group = await group_assignment(infrastructure.bootstrap_servers, "orders")

    # After the wait the answer is read anew, so a sale whose outcome another replica applied
    # could still say 201 pending; only its time tells that nobody woke the request up.
    wait = float(platform.env.get("SALE_CREATE_WAIT_SECONDS", "5"))
    late = [
        (status, body["status"], round(took, 2))
        for status, body, took in results
        if (status, body["status"]) != (201, "pending") or took >= wait / 2
    ]
    assert not late, (
        f"{len(late)} of {REPLICA_SALES} not 201 pending at once (status, sale"
        f" status, seconds): {late[:5]}; group {group}"
    )
    status, body, took = batch_answer
    assert status == 200 and took < wait / 2, (status, took, group)
    assert [s["status"] for s in body["sales"]] == ["pending"] * 20, body


async def test_creates_whose_wait_runs_out_answer_awaiting_stock_and_reserve_later(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    headers = internal_headers(platform, tenant)
    one, many = ref("S"), [ref("S") for _ in range(3)]
    env = {**platform.service_env("orders"), "SALE_CREATE_WAIT_SECONDS": "0"}
    async with extra_process(
        platform, "orders-impatient", "orders.app:create_app", env
    ) as impatient:
        async with http.post(
            f"{impatient.url}/api/v1/sales",
            headers=headers,
            json=sale_body(one, location, (sku, 1)),
        ) as single:
            single_answer = single.status, await single.json(), single.headers.get("Location")
        async with http.post(
            f"{impatient.url}/api/v1/sales/batch",
            headers=headers,
            json={"sales": [sale_body(s, location, (sku, 1)) for s in many]},
        ) as batch:
            batch_answer = batch.status, await batch.json()

    status, body, location_header = single_answer
    assert (status, body["status"]) == (202, "awaiting_stock"), single_answer
    assert location_header == f"/api/v1/sales/{one}"
    status, body = batch_answer
    assert status == 200 and body["errors"] == [], batch_answer
    assert [(s["sale_id"], s["status"]) for s in body["sales"]] == [
        (s, "awaiting_stock") for s in many
    ]
    for sale_id in [one, *many]:
        await eventually(
            lambda s=sale_id: tenant.get(f"/sales/{s}"),
            lambda a: a.body["status"] == "pending",
            timeout=40,
            what=f"{sale_id} reserved after its wait ran out",
        )


async def test_a_wave_while_orders_is_unreachable_is_503_and_moves_nothing(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
):
    sale_id, _, _ = await pending_sale(tenant, quantity=1, stock=5)
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]
    [closed] = free_ports(1)  # nothing listens there
    env = {**platform.service_env("fulfilment"), "ORDERS_URL": f"http://127.0.0.1:{closed}"}
    async with extra_process(
        platform, "fulfilment-no-orders", "fulfilment.app:create_app", env
    ) as cut_off:
        async with http.post(
            f"{cut_off.url}/api/v1/fulfillment/fulfillments/status",
            json={"updates": [{"id": fulfillment["id"], "status": "shipped"}]},
            headers=internal_headers(platform, tenant),
        ) as answer:
            assert answer.status == 503
            assert (await answer.json(content_type=None))["code"] == "unavailable"

    still = await tenant.get(f"/fulfillment/fulfillments/{fulfillment['id']}")
    assert still.body["status"] == "waiting_for_picking"
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "in_fulfillment"
