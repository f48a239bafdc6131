"""Sales through the whole platform: create (waits for the reservation) and shipping init.

Starts every service on the Kafka and PostgreSQL named by KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL (`make bench` provides them), drives the public API through the gateway and
prints throughput and latency with the command line that produced them.

    python bench/sales_flow.py --sales 5000 --concurrency 64 --skus 100
"""

import argparse
import asyncio
import os
import platform as host
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from deploy.local.services import SERVICES, Platform, free_ports

QUIET = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_PER_SECOND": "1000000",
    "RATE_LIMIT_BURST": "1000000",
    "DB_POOL_MAX_SIZE": "40",
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def post(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, dict]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def setup_tenant(
    session: aiohttp.ClientSession, gateway: str, admin: str, skus: int, per_sku: int
) -> tuple[dict[str, str], list[str]]:
    async with session.post(
        f"{gateway}/api/v1/admin/tenants",
        json={"name": f"bench-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {admin}"},
    ) as r:
        key = (await r.json())["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{gateway}/api/v1"
    async with session.post(
        f"{api}/locations", json={"location_id": "wh-1", "name": "W"}, headers=headers
    ) as r:
        assert r.status == 201, await r.text()
    names = [f"SKU-{i:05d}" for i in range(skus)]
    for sku in names:
        async with session.post(
            f"{api}/products", json={"sku": sku, "name": sku}, headers=headers
        ) as r:
            assert r.status == 201
        async with session.post(
            f"{api}/stock/stock-records",
            json={"sku": sku, "location_id": "wh-1", "quantity": per_sku},
            headers=headers,
        ) as r:
            assert r.status == 201
    return headers, names


async def create_sales(
    session: aiohttp.ClientSession,
    api: str,
    headers: dict[str, str],
    skus: list[str],
    total: int,
    concurrency: int,
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    sale_ids: list[str] = []
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            sale_id = f"B-{uuid.uuid4().hex[:12]}"
            body = {
                "sale_id": sale_id,
                "shop": {"channel": "web", "shop_name": "bench"},
                "location_id": "wh-1",
                "lines": [{"sku": skus[n % len(skus)], "quantity": 1}],
            }
            started = time.perf_counter()
            async with session.post(f"{api}/sales", json=body, headers=headers) as r:
                payload = await r.json()
            latencies.append(time.perf_counter() - started)
            if payload.get("status") != "pending":
                raise RuntimeError(f"sale not pending: {r.status} {payload}")
            sale_ids.append(sale_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, sale_ids, time.perf_counter() - started


async def ship(
    session: aiohttp.ClientSession,
    api: str,
    headers: dict[str, str],
    sale_ids: list[str],
    concurrency: int,
) -> float:
    batches = [sale_ids[i : i + 100] for i in range(0, len(sale_ids), 100)]
    pending = iter(batches)

    async def worker() -> None:
        for batch in pending:
            async with session.post(
                f"{api}/fulfillment/shipping/init", json={"sale_ids": batch}, headers=headers
            ) as r:
                body = await r.json()
                if r.status != 200 or body["errors"]:
                    raise RuntimeError(f"shipping init failed: {r.status} {body}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, 8))))
    return time.perf_counter() - started


async def run(args: argparse.Namespace, gateway: str, admin: str) -> None:
    connector = aiohttp.TCPConnector(limit=args.concurrency + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers, skus = await setup_tenant(
            session, gateway, admin, args.skus, args.sales // args.skus + 10
        )
        api = f"{gateway}/api/v1"
        await create_sales(session, api, headers, skus, min(200, args.sales), 8)  # warm up
        latencies, sale_ids, elapsed = await create_sales(
            session, api, headers, skus, args.sales, args.concurrency
        )
        ship_elapsed = await ship(session, api, headers, sale_ids, args.concurrency)
    ms = [v * 1000 for v in latencies]
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, {host.platform()}")
    print(
        f"sales created (201 pending, reservation awaited): {len(ms)} in {elapsed:.1f}s"
        f" = {len(ms) / elapsed:,.0f}/s at {args.concurrency} in flight over {args.skus} SKUs"
    )
    print(
        f"create-to-pending latency: p50 {statistics.median(ms):.1f} ms,"
        f" p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )
    print(
        f"shipping init: {len(sale_ids)} sales in {ship_elapsed:.1f}s"
        f" = {len(sale_ids) / ship_elapsed:,.0f} sales/s (batches of 100)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skus", type=int, default=100)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    with Platform(
        database_url=os.environ["DATABASE_URL"],
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        log_dir=log_dir,
        ports=ports,
        extra_env=QUIET,
    ) as running:
        asyncio.run(run(args, running.gateway_url, running.admin_token))
    print(f"service logs: {log_dir}")


if __name__ == "__main__":
    main()
