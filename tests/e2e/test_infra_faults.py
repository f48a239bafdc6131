"""PostgreSQL and the Kafka broker killed -9 under the running platform: clients get
503 problem+json with Retry-After meanwhile (never a 500, never a hang), and every service
recovers by itself: its loops start again, sales flow, outboxes empty, `/ready` is 200.

These tests take down the infrastructure the whole suite shares, so whatever happens they
bring it back before they end.
"""

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.infra import (
    crash_kafka,
    crash_postgres,
    kafka_answers,
    kafka_state_dir,
    postgres_dsn,
    postgres_log_file,
    postgres_state_dir,
    restart_postgres,
    start_kafka_again,
)
from deploy.local.services import Platform
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, Receiver, eventually, ref

SCHEMAS_WITH_OUTBOX = ("orders", "stock", "fulfilment", "webhooks")
REQUEST_TIMEOUT = 40.0  # above the gateway's upstream timeout: a hang shows as a timeout here


async def readiness(http: aiohttp.ClientSession, platform: Platform) -> dict[str, tuple[int, dict]]:
    """Every service's `/ready` status and body, asked at the same time."""

    async def ask(url: str) -> tuple[int, dict]:
        try:
            async with http.get(
                f"{url}/ready", timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                return response.status, await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, {"error": repr(exc)}

    services = list(platform)
    answers = await asyncio.gather(*(ask(service.url) for service in services))
    return {service.name: answer for service, answer in zip(services, answers, strict=True)}


def all_ready(answers: dict[str, tuple[int, dict]]) -> bool:
    return all(status == 200 for status, _ in answers.values())


async def outbox_rows(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            schema: await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
            for schema in SCHEMAS_WITH_OUTBOX
        }
    finally:
        await conn.close()


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """The consumer group's state and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    return described["state"], len(described["members"])


async def parked_rows(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            schema: await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox_parked")
            for schema in SCHEMAS_WITH_OUTBOX
        }
    finally:
        await conn.close()


def assert_unavailable(answer: Answer, what: str) -> None:
    """A dependency outage, told as the platform tells it."""
    assert answer.status == 503, (what, answer)
    assert answer.headers["content-type"].startswith("application/problem+json"), (what, answer)
    assert answer.body["code"] == "unavailable" and answer.body["status"] == 503, (what, answer)
    assert int(answer.headers["retry-after"]) > 0, (what, answer)


async def timed(call: asyncio.Future[Answer] | object) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = await asyncio.wait_for(call, REQUEST_TIMEOUT)  # type: ignore[arg-type]
    return answer, time.monotonic() - started


async def sale_reaches(tenant: Client, sale_id: str, status: str, timeout: float = 45) -> None:
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.status == 200 and a.body["status"] == status,
        timeout=timeout,
        interval=0.2,
        what=f"sale {sale_id} {status}",
    )


@contextlib.asynccontextmanager
async def postgres_down(dsn: str) -> AsyncIterator[Path]:
    """PostgreSQL killed -9 (postmaster and backends) for the block; started again after it,
    whatever happened in it, and waited for (crash recovery included)."""
    state_dir = postgres_state_dir(dsn)
    if state_dir is None:
        pytest.skip("needs the local launcher's PostgreSQL (not a container)")
    log_file = postgres_log_file(state_dir)
    # The test server commits asynchronously (synchronous_commit off, for speed): a crash may
    # lose its last commits, which a production server (synchronous_commit on) never does. A
    # checkpoint first makes what the test has done so far as durable as it would be there.
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    await asyncio.to_thread(crash_postgres, state_dir)
    try:
        yield state_dir
    finally:
        if postgres_dsn(state_dir) is None:
            again = await asyncio.to_thread(restart_postgres, state_dir, log_file)
            assert again == dsn, "the server came back somewhere else"


@contextlib.asynccontextmanager
async def kafka_down(bootstrap: str) -> AsyncIterator[Path]:
    """The broker killed -9 for the block; started again after it, whatever happened in it."""
    roots = [Path(os.environ["TEST_STATE_DIR"])] if os.environ.get("TEST_STATE_DIR") else []
    state_dir = kafka_state_dir(bootstrap, roots)
    if state_dir is None:
        pytest.skip("needs the local launcher's Kafka broker (not a container)")
    await asyncio.to_thread(crash_kafka, state_dir)
    try:
        yield state_dir
    finally:
        if not await asyncio.to_thread(kafka_answers, bootstrap):
            await asyncio.to_thread(start_kafka_again, state_dir)


async def test_a_postgres_crash_gives_503s_and_every_loop_recovers_without_a_restart(
    platform: Platform,
    infrastructure,
    http: aiohttp.ClientSession,
    tenant: Client,
):
    dsn = infrastructure.database_url
    receiver = await Receiver().start()
    try:
        await crash_postgres_and_recover(platform, dsn, http, tenant, receiver)
    finally:
        await receiver.stop()


async def crash_postgres_and_recover(
    platform: Platform,
    dsn: str,
    http: aiohttp.ClientSession,
    tenant: Client,
    receiver: Receiver,
) -> None:
    sku, location, _ = await stocked_product(tenant, quantity=50)
    endpoint = await tenant.post(
        "/webhooks/endpoints", {"url": receiver.url, "event_types": ["sale.*"]}
    )
    assert endpoint.status == 201, endpoint
    first = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
    assert first.status == 201, first  # the key is known to the gateway, the platform works
    assert all_ready(await readiness(http, platform))
    admin = Client(http, platform.gateway_url, platform.admin_token)

    async with postgres_down(dsn):
        # Each request answers within its timeout, with a 503 the client can act on.
        outage_answers = []
        for method, path, body in (
            ("POST", "/sales", sale_body(ref("S"), location, (sku, 1))),
            ("GET", "/sales", None),
            ("GET", f"/stock/stock-records?sku={sku}", None),
            ("GET", "/webhooks/endpoints", None),
            # a well-formed id: one that cannot exist is refused without the database
            ("GET", f"/fulfillment/fulfillments/{uuid.uuid4()}", None),
            ("POST", "/admin/tenants", {"name": ref("tenant")}),  # the gateway's own
        ):
            caller = admin if path.startswith("/admin") else tenant
            answer, seconds = await timed(caller.call(method, path, json=body))
            outage_answers.append(answer)
            assert_unavailable(answer, f"{method} {path}")
            assert seconds < 30, (method, path, seconds)
        ready = await eventually(
            lambda: readiness(http, platform),
            lambda r: all(s == 503 for s, _ in r.values()),
            timeout=30,
            interval=0.5,
            what="every /ready at 503",
        )
        assert all(body["checks"]["database"] is False for _, body in ready.values()), ready
        orders_ready = await eventually(
            lambda: readiness(http, platform),
            lambda r: r["orders"][1]["checks"].get("loop:outbox_relay") is False,
            timeout=30,
            interval=0.5,
            what="orders' /ready naming its relay down",
        )
        assert orders_ready["orders"][1]["loops"]["outbox_relay"]["up"] is False

    ready = await eventually(
        lambda: readiness(http, platform),
        all_ready,
        timeout=60,
        interval=0.5,
        what="every service ready again",
    )
    # They were down and came back by themselves: restarted, not still running from before.
    assert ready["orders"][1]["loops"]["outbox_relay"]["failures"] >= 1, ready["orders"]
    assert ready["orders"][1]["loops"]["waiter"]["failures"] >= 1, ready["orders"]
    assert ready["stock"][1]["loops"]["backorder_worker"]["failures"] >= 1, ready["stock"]

    after = ref("S")
    created = await tenant.post("/sales", sale_body(after, location, (sku, 1)))
    assert created.status in (201, 202), created
    await sale_reaches(tenant, after, "pending")
    await eventually(
        lambda: outbox_rows(dsn),
        lambda rows: not any(rows.values()),
        timeout=45,
        interval=0.5,
        what="every outbox empty",
    )
    # The waiter listens again: a create is woken by its reservation, not by its timeout.
    again = ref("S")
    created = await tenant.post("/sales", sale_body(again, location, (sku, 1)))
    assert (created.status, created.body["status"]) == (201, "pending"), created
    # and webhooks are delivered again: the sale's change to pending reaches the endpoint
    await eventually(
        lambda: asyncio.sleep(0, [orjson.loads(r.body) for r in receiver.received]),
        lambda events: any(
            e["data"].get("sale_id") == again and e["data"].get("status") == "pending"
            for e in events
        ),
        timeout=45,
        interval=0.2,
        what="the webhook of a sale after the crash",
    )


async def test_a_kafka_outage_parks_nothing_and_every_consumer_and_relay_resumes(
    platform: Platform,
    infrastructure,
    http: aiohttp.ClientSession,
    tenant: Client,
):
    bootstrap, dsn = infrastructure.bootstrap_servers, infrastructure.database_url
    sku, location, _ = await stocked_product(tenant, quantity=50)
    assert all_ready(await readiness(http, platform))
    parked_before = await parked_rows(dsn)
    log_file = platform["orders"].log_file
    log_start = log_file.stat().st_size

    during = ref("S")
    outage_started = time.monotonic()
    async with kafka_down(bootstrap):
        # Writes are taken (the outbox keeps their events); none waits longer than its bound.
        answer, seconds = await timed(tenant.post("/sales", sale_body(during, location, (sku, 1))))
        assert answer.status == 202 and answer.body["status"] == "awaiting_stock", answer
        assert seconds < 30, seconds
        listed, seconds = await timed(tenant.get("/sales", status="awaiting_stock"))
        assert listed.status == 200 and seconds < 30, listed
        ready = await eventually(
            lambda: readiness(http, platform),
            lambda r: all(s == 503 for n, (s, _) in r.items() if n != "gateway"),
            timeout=30,
            interval=0.5,
            what="/ready at 503 in every service with a broker",
        )
        assert ready["orders"][1]["checks"]["broker"] is False, ready["orders"]
        assert ready["gateway"][0] == 200, "the gateway needs no broker"

    outage = time.monotonic() - outage_started
    await eventually(
        lambda: readiness(http, platform),
        all_ready,
        timeout=60,
        interval=0.5,
        what="every service ready again",
    )
    await sale_reaches(tenant, during, "pending", timeout=60)

    async def orders_log() -> list[str]:
        return log_file.read_bytes()[log_start:].decode(errors="replace").splitlines()

    lines = await eventually(
        orders_log,
        lambda lines: any("Kafka broker reachable again" in x for x in lines),
        timeout=30,
        interval=0.5,
        what="orders saying the broker is back",
    )
    # aiokafka's ten errors a second become a line every 10 s while the broker is away
    broker_lines = [x for x in lines if " aiokafka" in x]
    assert 1 <= len(broker_lines) <= outage / 10 + 4, broker_lines
    await eventually(
        lambda: outbox_rows(dsn),
        lambda rows: not any(rows.values()),
        timeout=45,
        interval=0.5,
        what="every outbox empty",
    )
    assert await parked_rows(dsn) == parked_before, "an outage must park nothing"
    for group in SCHEMAS_WITH_OUTBOX:  # every consumer is back in its group
        await eventually(
            lambda g=group: group_state(bootstrap, g),
            lambda state: state[0] == "Stable" and state[1] >= 1,
            timeout=60,
            interval=0.5,
            what=f"{group}'s consumer group stable again",
        )
