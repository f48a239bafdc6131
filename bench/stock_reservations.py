"""Stock reservations per second: `sale.created` straight onto Kafka, the stock service alone.

Starts only the stock service on the Kafka and PostgreSQL named by KAFKA_BOOTSTRAP_SERVERS
and DATABASE_URL (`make bench` provides them), creates a location, products and stock
records through its own API, produces N `sale.created` events to `sales.events` as fast as
one producer can, and reads `stock.events` until every sale's `stock.reserved` has arrived.
Prints reservations per second, send-to-reserved latency, the CPU milliseconds per
reservation of the service, Kafka, PostgreSQL and this client, and the command line;
`--py-spy DIR` samples the service with py-spy during each measured scenario.
`--replicas N` runs N processes of the stock service (one consumer group, the partitions
shared among them; one of them relays the outbox), as `deploy.local` runs replicas.

    python bench/stock_reservations.py --sales 20000 --scenario both [--replicas 2]

Scenarios, each on fresh SKUs: `many` spreads one-unit sales over 1,000 SKUs; `hot` puts
every one-unit sale on a single SKU. Every record holds enough stock for all its sales.
All N events are produced as one burst, so the latency is mostly the time a sale waits
behind those produced before it: it measures the backlog, not a lightly loaded service.
"""

import argparse
import asyncio
import os
import platform as host
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner
from single_service import Running, setting, single_service

from bench import invariants
from bench.cpu import CpuMeter
from bench.report import Report
from deploy.local.services import ServiceProcess, free_ports
from fulfilkit import contracts as c
from fulfilkit.events import CONTENT_TYPE, utcnow

MANY_SKUS = 1000
WARM_UP_SALES = 200
LOCATION = "wh-1"
HEADERS = [("content-type", CONTENT_TYPE.encode())]
SALES_DLQ = c.dlq_topic(c.SALES_TOPIC)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@dataclass
class Result:
    name: str
    sales: int
    skus: int
    elapsed: float
    produce: float
    latencies_ms: list[float]
    verified: str
    reserved_at: list[float]  # seconds from the first send
    cpu_ms: dict[str, float]  # CPU ms per reservation: in all, and per component


class StockApi:
    """The stock service's own HTTP API, called as the gateway would (internal token, tenant)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, tenant: uuid.UUID):
        self.session = session
        self.api = f"{url}/api/v1"
        self.headers = {"X-Internal-Token": token, "X-Tenant-Id": str(tenant)}

    async def post(self, path: str, body: dict) -> dict:
        async with self.session.post(f"{self.api}{path}", json=body, headers=self.headers) as r:
            if r.status != 201:
                raise RuntimeError(f"POST {path} {body}: {r.status} {await r.text()}")
            return await r.json()

    async def stock_records(self, skus: list[str]) -> list[dict]:
        found: list[dict] = []
        for i in range(0, len(skus), 100):
            params = [("sku", sku) for sku in skus[i : i + 100]] + [("limit", "1000")]
            async with self.session.get(
                f"{self.api}/stock/stock-records", params=params, headers=self.headers
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"GET stock-records: {r.status} {await r.text()}")
                found += (await r.json())["data"]
        return found

    async def stock(self, skus: list[str], quantity: int) -> set[str]:
        """Products and stock records for `skus`; returns the records' ids."""
        ids: set[str] = set()
        pending = iter(skus)

        async def worker() -> None:
            for sku in pending:
                await self.post("/products", {"sku": sku, "name": sku})
                record = await self.post(
                    "/stock/stock-records",
                    {"sku": sku, "location_id": LOCATION, "quantity": quantity},
                )
                ids.add(record["id"])

        await asyncio.gather(*(worker() for _ in range(16)))
        return ids


class StockEvents:
    """Reads `stock.events` (and the sales dead-letter topic) without a group, from end
    offsets taken before the traffic it awaits."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            c.STOCK_TOPIC,
            SALES_DLQ,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self.consumer.start()
        deadline = time.monotonic() + 30
        while {tp.topic for tp in self.consumer.assignment()} != {c.STOCK_TOPIC, SALES_DLQ}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions of {c.STOCK_TOPIC} were assigned")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def mark(self) -> None:
        """Read from the current end of every partition on."""
        partitions = sorted(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            self.consumer.seek(tp, ends[tp])

    async def wait_for(
        self, wanted: set[str], match: Callable[[ConsumerRecord], str | None], timeout: float
    ) -> dict[str, float]:
        """perf_counter() arrival time of each id in `wanted`, as `match` finds it in a record."""
        arrivals: dict[str, float] = {}
        deadline = time.perf_counter() + timeout
        while len(arrivals) < len(wanted):
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"only {len(arrivals)} of {len(wanted)} expected events on {c.STOCK_TOPIC}"
                    f" within {timeout:.0f}s"
                )
            batches = await self.consumer.getmany(timeout_ms=100, max_records=20_000)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    found = match(record)
                    if found in wanted and found not in arrivals:
                        arrivals[found] = now
        return arrivals


def opening_stock(record: ConsumerRecord) -> str | None:
    """The record id of a `stock.changed` event (stock records announce their opening count)."""
    if b":stock:" not in (record.key or b""):
        return None
    event = orjson.loads(record.value)
    return event["data"]["id"] if event["type"] == c.STOCK_CHANGED else None


def reservation_of(wanted: set[str]) -> Callable[[ConsumerRecord], str | None]:
    def match(record: ConsumerRecord) -> str | None:
        if b":sale:" not in (record.key or b""):
            return None  # stock.changed and stock.low are keyed by record, not by sale
        event = orjson.loads(record.value)
        if record.topic == SALES_DLQ:
            if event["data"]["id"] in wanted:
                error = dict(record.headers or ()).get("dlq-error", b"").decode()
                raise RuntimeError(f"the stock service dead-lettered a sale.created: {error}")
            return None
        sale = event["data"]["sale"]
        if event["type"] == c.STOCK_RESERVATION_FAILED and sale in wanted:
            raise RuntimeError(f"reservation failed, the benchmark stocks too little: {event}")
        return sale if event["type"] == c.STOCK_RESERVED else None

    return match


def sale_created(tenant: uuid.UUID, n: int, sku: str) -> tuple[str, bytes, bytes]:
    now = utcnow()
    sale = c.SaleSnapshot(
        id=uuid.uuid4(),
        sale_id=f"B-{n:06d}-{secrets.token_hex(3)}",
        status="awaiting_stock",
        version=1,
        shop=c.Shop(channel="web", shop_name="bench"),
        location_id=LOCATION,
        lines=[c.SaleLine(sku=sku, quantity=1)],
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders",
        type=c.SALE_CREATED,
        tenant_id=tenant,
        subject=f"sale/{sale.id}",
        data=sale,
    )
    return str(sale.id), c.sale_key(tenant, sale.id).encode(), event.to_bytes()


async def produce(
    producer: AIOKafkaProducer, messages: list[tuple[str, bytes, bytes]]
) -> tuple[list[float], float]:
    """Send every message without awaiting each; returns each send time and the last ack time.

    Each key's partition is the one the producer's default partitioner picks, computed before
    the first send: aiokafka's murmur2 is pure Python, and the load generator should spend
    its CPU, which it shares with the service it measures, on sending."""
    partitions = sorted(await producer.partitions_for(c.SALES_TOPIC))
    pick = DefaultPartitioner()
    placed = [(key, value, pick(key, partitions, None)) for _, key, value in messages]
    sent_at: list[float] = []
    futures = []
    for key, value, partition in placed:
        sent_at.append(time.perf_counter())
        futures.append(
            await producer.send(
                c.SALES_TOPIC, value=value, key=key, headers=HEADERS, partition=partition
            )
        )
    await asyncio.gather(*futures)
    return sent_at, time.perf_counter()


async def reserve(
    producer: AIOKafkaProducer,
    events: StockEvents,
    messages: list[tuple[str, bytes, bytes]],
    timeout: float,
) -> tuple[float, float, list[float], list[float]]:
    """Produce `messages` and await every reservation: (elapsed, produce time, latencies, when
    each was reserved from the first send)."""
    wanted = {sale for sale, _, _ in messages}
    await events.mark()
    waiting = asyncio.create_task(events.wait_for(wanted, reservation_of(wanted), timeout))
    try:
        sent_at, acked = await produce(producer, messages)
        arrivals = await waiting
    finally:
        waiting.cancel()
    sales = [sale for sale, _, _ in messages]
    latencies = [arrivals[sale] - sent for sale, sent in zip(sales, sent_at, strict=True)]
    reserved_at = [at - sent_at[0] for at in arrivals.values()]
    return max(arrivals.values()) - sent_at[0], acked - sent_at[0], latencies, reserved_at


async def verify(api: StockApi, sold: Counter[str], quantity: int) -> str:
    records = {r["sku"]: r for r in await api.stock_records(sorted(sold))}
    wrong = [
        f"{sku}: reserved {r['reserved']} of {r['quantity']}, sold {sold[sku]}"
        for sku, r in records.items()
        if r["reserved"] != sold[sku] or r["quantity"] != quantity
    ]
    if len(records) != len(sold) or wrong:
        raise RuntimeError(f"stock does not match the sales ({len(records)} records): {wrong[:5]}")
    total = sum(r["reserved"] for r in records.values())
    plural = "s" if len(records) > 1 else ""
    return (
        f"{len(records):,} stock record{plural}: reserved {total:,} = sold {sold.total():,},"
        f" quantity unchanged"
    )


def cpu_meter(service_pids: list[int]) -> CpuMeter:
    """CPU time of the stock service (every process of it), Kafka, PostgreSQL (every backend)
    and this client."""
    return CpuMeter.with_infra({"stock": lambda: list(service_pids)})


async def await_group(bootstrap: str, members: int, timeout: float) -> str:
    """Wait until the stock service's consumer group has `members` members, each assigned
    partitions (a rebalance during a measured scenario would stop every consumer); says
    who holds what."""
    deadline = time.monotonic() + timeout
    while True:
        found = (await invariants.consumer_groups(bootstrap, ["stock"]))["stock"]
        if len(found) == members and all(found):
            return f"{len(found)} members with {'+'.join(str(len(m)) for m in found)} partitions"
        if time.monotonic() > deadline:
            raise TimeoutError(f"the stock consumer group has {found} after {timeout:.0f}s")
        await asyncio.sleep(0.5)


@contextmanager
def stock_replicas(count: int) -> Iterator[tuple[Running, list[int]]]:
    """`count` processes of the stock service sharing one port (`deploy.local.replica`), on
    the Kafka and PostgreSQL of the environment, started one after the other (each migrates
    and joins the consumer group); the first one's address, and every pid."""
    at = setting()
    log_dir, ports, env, token, bootstrap = at.log_dir, at.ports, at.env, at.token, at.bootstrap
    app = at.app("stock")
    processes = [
        ServiceProcess(
            f"stock-{n}", app, port, env, log_dir, service="stock", shared_port=ports["stock"]
        )
        for n, port in enumerate(free_ports(count), start=1)
    ]
    try:
        for process in processes:
            process.start()
            process.wait_ready(60)
        pids = [p.pid for p in processes if p.pid is not None]
        yield Running(processes[0].url, token, bootstrap, pids[0]), pids
    finally:
        for process in processes:
            process.stop()
        print(f"service logs: {log_dir}")


class Spy:
    """`py-spy record` on the stock service while the measured scenarios run (`--py-spy`),
    raw folded stacks for speedscope or a flame graph; nothing when no directory is given."""

    def __init__(self, out: Path | None, pid: int | None, rate: int = 100) -> None:
        self.out, self.pid, self.rate = out, pid, rate
        self.process: subprocess.Popen | None = None

    def start(self, name: str) -> None:
        if self.out is None or self.pid is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        stem = self.out / f"stock-{name.replace(' ', '-')}"
        self.process = subprocess.Popen(
            [spy, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw"]
            + ["--output", f"{stem}.txt", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=open(f"{stem}.py-spy.log", "wb"),
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)
            self.process = None


async def scenario(
    name: str,
    skus: list[str],
    total: int,
    api: StockApi,
    producer: AIOKafkaProducer,
    events: StockEvents,
    tenant: uuid.UUID,
    timeout: float,
    spy: Spy | None = None,
    pids: list[int] | None = None,
) -> Result:
    sold = Counter(skus[n % len(skus)] for n in range(total))
    quantity = max(sold.values()) + 10
    await events.mark()
    ids = await api.stock(skus, quantity)
    # Let the outbox relay publish the records' opening stock.changed before the clock starts.
    await events.wait_for(ids, opening_stock, timeout)
    messages = [sale_created(tenant, n, skus[n % len(skus)]) for n in range(total)]
    if spy is not None:
        spy.start(name)
    meter = cpu_meter(pids or [])
    before = meter.snapshot()
    try:
        elapsed, produce_time, latencies, reserved_at = await reserve(
            producer, events, messages, timeout
        )
    finally:
        if spy is not None:
            spy.stop()
    cpu_ms = CpuMeter.ms_per_unit(before, meter.snapshot(), total)
    verified = await verify(api, sold, quantity)
    return Result(
        name,
        total,
        len(skus),
        elapsed,
        produce_time,
        [v * 1000 for v in latencies],
        verified,
        reserved_at,
        cpu_ms,
    )


async def run(
    args: argparse.Namespace, url: str, token: str, bootstrap: str, spy: Spy, pids: list[int]
) -> list[Result]:
    tenant = uuid.uuid4()
    run_id = secrets.token_hex(3).upper()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    events = StockEvents(bootstrap)
    results: list[Result] = []
    if len(pids) > 1:
        print(f"stock consumer group: {await await_group(bootstrap, len(pids), args.timeout)}")
    async with aiohttp.ClientSession() as session:
        api = StockApi(session, url, token, tenant)
        await api.post("/locations", {"location_id": LOCATION, "name": "Bench warehouse"})
        await producer.start()
        try:
            await events.start()
            try:
                # Warm up: the stock consumer has joined its group and the relay is running.
                await scenario(
                    "warm-up",
                    [f"W{run_id}"],
                    WARM_UP_SALES,
                    api,
                    producer,
                    events,
                    tenant,
                    args.timeout,
                )
                if args.scenario in ("many", "both"):
                    skus = [f"M{run_id}-{i:04d}" for i in range(MANY_SKUS)]
                    results.append(
                        await scenario(
                            "many SKUs",
                            skus,
                            args.sales,
                            api,
                            producer,
                            events,
                            tenant,
                            args.timeout,
                            spy,
                            pids,
                        )
                    )
                if args.scenario in ("hot", "both"):
                    results.append(
                        await scenario(
                            "hot SKU",
                            [f"H{run_id}"],
                            args.sales,
                            api,
                            producer,
                            events,
                            tenant,
                            args.timeout,
                            spy,
                            pids,
                        )
                    )
            finally:
                await events.stop()
        finally:
            await producer.stop()
    return results


def report(results: list[Result], replicas: int = 1) -> None:
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, {host.platform()}")
    print(f"stock service: {replicas} process{'es' if replicas > 1 else ''}")
    for r in results:
        ms = r.latencies_ms
        print(
            f"{r.name}: {r.sales:,} sales over {r.skus:,} SKU{'s' if r.skus > 1 else ''}"
            f" reserved in {r.elapsed:.1f}s = {r.sales / r.elapsed:,.0f} reservations/s,"
            f" send-to-reserved latency p50 {statistics.median(ms):,.0f} ms,"
            f" p99 {percentile(ms, 0.99):,.0f} ms, max {max(ms):,.0f} ms"
        )
        print(
            f"  producing (first send to last ack): {r.produce:.2f}s"
            f" = {r.sales / r.produce:,.0f} events/s"
        )
        print(
            f"  CPU ms per reservation: {r.cpu_ms['all']:.3f} in all ("
            + ", ".join(f"{k} {v:.3f}" for k, v in r.cpu_ms.items() if k != "all")
            + ")"
        )
        print(f"  verified: {r.verified}")
    saved = Report("stock_reservations")
    for r in results:
        saved.figure(f"{r.name}: reservations/s", r.sales / r.elapsed, "1/s")
        saved.figure(f"{r.name}: CPU per reservation", r.cpu_ms["all"], "ms")
        saved.figure(f"{r.name}: stock service CPU per reservation", r.cpu_ms["stock"], "ms")
        saved.latency(f"{r.name}: send-to-reserved", r.latencies_ms)
        saved.timeline(f"{r.name}: reserved", r.reserved_at)
    saved.save([sys.executable, *sys.argv])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=20000)
    parser.add_argument("--scenario", choices=["many", "hot", "both"], default="both")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the events of one step"
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="processes of the stock service (default 1)"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample the stock service with py-spy during each measured scenario, into DIR",
    )
    args = parser.parse_args()
    if args.sales < 1:
        parser.error("--sales must be at least 1")
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.replicas == 1:
        with single_service("stock") as service:
            spy = Spy(args.py_spy, service.pid)
            pids = [service.pid] if service.pid else []
            results = asyncio.run(
                run(args, service.url, service.token, service.bootstrap, spy, pids)
            )
    else:
        with stock_replicas(args.replicas) as (service, pids):
            spy = Spy(args.py_spy, service.pid)  # the first process only
            results = asyncio.run(
                run(args, service.url, service.token, service.bootstrap, spy, pids)
            )
    report(results, args.replicas)


if __name__ == "__main__":
    main()
