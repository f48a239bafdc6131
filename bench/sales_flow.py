"""Full sale lifecycles through the platform: create (20 sales a request, or one each with
`--create-batch 1`; the request waits for the reservations), shipping init, mark shipped
(in waves of up to 100, or one request each with `--mark one`), until the stock is
committed; then create-to-pending latency at a fixed rate.

Starts every service on the Kafka and PostgreSQL named by KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL (`make bench` provides them), drives the public API through the gateway and
prints the figures with the command line that produced them.

    python bench/sales_flow.py --sales 4000 --warmup 4000 --concurrency 64 --skus 100 \
        --create-batch 20 --mark waves [--split-share 0.2]

With `--split-share S`, that share of the sales names no location and needs two: one line of
a SKU stocked at `wh-1` only, one of a SKU stocked at `wh-2` only, so stock routes it and
splits it; the others name `wh-1` as before.

With `--replicas N` every service runs N processes on this machine, sharing each service's
port (`deploy.local.replica`): the bench first runs the same load on one process of each
(unless `--alone`), on the same Kafka and PostgreSQL, then on N, and prints the figures side
by side. Every run ends by shipping what the fixed-rate phase created and checking the
invariants (`bench/invariants.py`: every sale shipped once, stock integrity clean, nothing
oversold, nothing reserved, no dead letters); it exits 1 when one does not hold.
"""

import argparse
import asyncio
import itertools
import os
import platform as host
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from bench import hops, invariants
from bench.cpu import CpuMeter
from bench.report import Report
from deploy.local.infra import TEST_STATE_DIR
from deploy.local.services import SERVICES, Platform, free_ports
from fulfilkit import contracts as c
from fulfilkit.contracts import DOMAIN_TOPICS
from gateway.domain import SCOPES

QUIET = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_PER_SECOND": "1000000",
    "RATE_LIMIT_BURST": "1000000",
    "DB_POOL_MAX_SIZE": "40",
}
DONE = "done"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


class Api:
    def __init__(self, session: aiohttp.ClientSession, gateway: str, key: str) -> None:
        self.session = session
        self.base = f"{gateway}/api/v1"
        self.headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        async with self.session.post(f"{self.base}{path}", json=body, headers=self.headers) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> tuple[int, dict]:
        async with self.session.get(f"{self.base}{path}", headers=self.headers) as r:
            return r.status, await r.json(content_type=None)

    async def until_committed(self, deadline_seconds: float = 60) -> None:
        """Wait until every reservation is committed: the last lifecycle's stock is out of
        the warehouse, so the work it set off is inside the measured time."""
        deadline = time.perf_counter() + deadline_seconds
        while True:
            status, page = await self.get("/stock/stock-records?limit=1000")
            if status == 200 and all(r["reserved"] == 0 for r in page["data"]):
                return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"stock still reserved after {deadline_seconds}s: {page}")
            await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Stocked:
    """The tenant's SKUs: `skus` at `wh-1`; `elsewhere` at `wh-2` only, for the split share
    of sales (`split_share`), each of which takes one of each."""

    skus: list[str]
    elsewhere: list[str] = field(default_factory=list)
    split_share: float = 0.0

    def splits(self, n: int) -> bool:
        """Whether the n-th sale is split: `split_share` of them, spread evenly."""
        return int((n + 1) * self.split_share) > int(n * self.split_share)


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    units_stocked: int


async def new_tenant(
    session: aiohttp.ClientSession,
    gateway: str,
    admin: str,
    skus: int,
    per_sku: int,
    split_share: float = 0.0,
) -> tuple[Api, Stocked, Tenant]:
    # every scope, `admin` included: the checks afterwards read GET /stock/integrity
    async with session.post(
        f"{gateway}/api/v1/admin/tenants",
        json={"name": f"bench-{uuid.uuid4().hex[:8]}", "scopes": list(SCOPES)},
        headers={"Authorization": f"Bearer {admin}"},
    ) as r:
        created = await r.json()
        api = Api(session, gateway, created["api_key"])
    assert (await api.post("/locations", {"location_id": "wh-1", "name": "W"}))[0] == 201
    names = [f"SKU-{i:05d}" for i in range(skus)]
    elsewhere = [f"SPLIT-{i:05d}" for i in range(max(1, skus // 5))] if split_share else []
    if elsewhere:
        body = {"location_id": "wh-2", "name": "W2", "routing_priority": 1}
        assert (await api.post("/locations", body))[0] == 201
    # every sale takes one unit at wh-1; the split ones one more at wh-2, from fewer SKUs
    per_other = int(per_sku * len(names) * split_share / max(1, len(elsewhere))) + 10
    stock = [(n, "wh-1", per_sku) for n in names] + [(n, "wh-2", per_other) for n in elsewhere]
    for sku, at, quantity in stock:
        assert (await api.post("/products", {"sku": sku, "name": sku}))[0] == 201
        status, _ = await api.post(
            "/stock/stock-records", {"sku": sku, "location_id": at, "quantity": quantity}
        )
        assert status == 201
    tenant = Tenant(uuid.UUID(created["tenant"]["id"]), sum(q for _, _, q in stock))
    return api, Stocked(names, elsewhere, split_share), tenant


def sale(n: int, stocked: Stocked) -> dict:
    skus = stocked.skus
    body = {
        "sale_id": f"B-{uuid.uuid4().hex[:12]}",
        "shop": {"channel": "web", "shop_name": "bench"},
        "location_id": "wh-1",
        "lines": [{"sku": skus[n % len(skus)], "quantity": 1}],
    }
    if stocked.splits(n):  # routed: wh-1 has the first line, only wh-2 the second
        del body["location_id"]
        # the k-th split sale takes the k-th of those SKUs, round the list
        other = stocked.elsewhere[int(n * stocked.split_share) % len(stocked.elsewhere)]
        body["lines"].append({"sku": other, "quantity": 1})
    return body


def units(count: int, stocked: Stocked) -> int:
    """Units the sales numbered 0 to count - 1 take."""
    return sum(len(sale(n, stocked)["lines"]) for n in range(count))


async def ship(api: Api, sale_ids: list[str]) -> None:
    """Shipping init, then mark shipped, 100 a request; then wait for the stock commits."""
    for start in range(0, len(sale_ids), 100):
        status, answer = await api.post(
            "/fulfillment/shipping/init", {"sale_ids": sale_ids[start : start + 100]}
        )
        if status != 200 or answer["errors"]:
            raise RuntimeError(f"shipping init failed: {status} {answer}")
        updates = [{"id": f["id"], "status": "shipped"} for f in answer["fulfillments"]]
        status, answer = await api.post("/fulfillment/fulfillments/status", {"updates": updates})
        if status != 200 or answer["errors"]:
            raise RuntimeError(f"mark shipped failed: {status} {answer}")
    await api.until_committed()


async def create_pending(api: Api, body: dict) -> float:
    started = time.perf_counter()
    status, answer = await api.post("/sales", body)
    if answer.get("status") != "pending":
        raise RuntimeError(f"sale not pending: {status} {answer}")
    return time.perf_counter() - started


async def create_pending_batch(api: Api, bodies: list[dict]) -> float:
    started = time.perf_counter()
    status, answer = await api.post("/sales/batch", {"sales": bodies})
    if status != 200 or answer["errors"] or any(s["status"] != "pending" for s in answer["sales"]):
        raise RuntimeError(f"sales not all pending: {status} {answer}")
    return time.perf_counter() - started


async def lifecycles(
    api: Api, skus: Stocked, total: int, concurrency: int, waves: bool, create_batch: int = 1
) -> tuple[float, list[float], list[float]]:
    """create (one request per sale, or `create_batch` sales a request) -> pending ->
    shipping init (batches of up to 100) -> shipped (one request per fulfillment, or waves of
    up to 100 with `waves`), pipelined; `concurrency` sales being created at a time.
    Returns the elapsed seconds, each sale's create-to-pending latency and when it was
    pending (seconds from the start)."""
    to_ship: asyncio.Queue[str] = asyncio.Queue()
    to_mark: asyncio.Queue[str] = asyncio.Queue()
    latencies: list[float] = []
    pending_at: list[float] = []
    numbers = iter(range(total))

    async def creator() -> None:
        for n in numbers:
            body = sale(n, skus)
            latencies.append(await create_pending(api, body))
            pending_at.append(time.perf_counter() - started)
            to_ship.put_nowait(body["sale_id"])

    async def batch_creator() -> None:
        while bodies := [sale(n, skus) for n in itertools.islice(numbers, create_batch)]:
            latency = await create_pending_batch(api, bodies)
            latencies.extend([latency] * len(bodies))
            pending_at.extend([time.perf_counter() - started] * len(bodies))
            for body in bodies:
                to_ship.put_nowait(body["sale_id"])

    async def batcher() -> None:
        shipped_inits = 0
        while shipped_inits < total:
            batch = [await to_ship.get()]
            while len(batch) < 100 and not to_ship.empty():
                batch.append(to_ship.get_nowait())
            status, answer = await api.post("/fulfillment/shipping/init", {"sale_ids": batch})
            if status != 200 or answer["errors"]:
                raise RuntimeError(f"shipping init failed: {status} {answer}")
            for f in answer["fulfillments"]:
                to_mark.put_nowait(f["id"])
            shipped_inits += len(batch)

    async def marker() -> None:
        while (fid := await to_mark.get()) != DONE:
            status, answer = await api.post(
                f"/fulfillment/fulfillments/{fid}/status", {"status": "shipped"}
            )
            if status != 200:
                raise RuntimeError(f"mark shipped failed: {status} {answer}")

    async def wave_marker() -> None:
        """Marks shipped what is waiting, up to 100 fulfillments a request."""
        done = False
        while not done:
            wave = [await to_mark.get()]
            while len(wave) < 100 and not to_mark.empty():
                wave.append(to_mark.get_nowait())
            if (dones := wave.count(DONE)) > 0:
                done = True
                wave = [fid for fid in wave if fid != DONE]
                for _ in range(dones - 1):  # those were meant for the other markers
                    to_mark.put_nowait(DONE)
            if not wave:
                continue
            status, answer = await api.post(
                "/fulfillment/fulfillments/status",
                {"updates": [{"id": fid, "status": "shipped"} for fid in wave]},
            )
            if status != 200 or answer["errors"]:
                raise RuntimeError(f"mark shipped failed: {status} {answer}")

    started = time.perf_counter()
    markers = (
        [asyncio.create_task(wave_marker()) for _ in range(4)]
        if waves
        else [asyncio.create_task(marker()) for _ in range(concurrency // 4 or 1)]
    )
    batchers = [asyncio.create_task(batcher())]
    if create_batch > 1:
        await asyncio.gather(*(batch_creator() for _ in range(max(1, concurrency // create_batch))))
    else:
        await asyncio.gather(*(creator() for _ in range(concurrency)))
    await asyncio.gather(*batchers)
    for _ in markers:
        to_mark.put_nowait(DONE)
    await asyncio.gather(*markers)
    await api.until_committed()
    return time.perf_counter() - started, latencies, pending_at


async def analyze(database_url: str) -> None:
    """Refresh the planner's statistics, as autovacuum does about once a minute in a running
    system. The warm-up grows empty tables faster than that, and until it has run, statements
    keep plans made for empty tables (a lookup by id can scan a whole tenant's rows)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def at_fixed_rate(
    api: Api, skus: Stocked, rate: float, seconds: float, created: list[str]
) -> list[float]:
    """Open loop: start one create every 1/rate s, whatever the answers are doing. The ids
    of the sales go to `created`."""
    tasks = []
    started = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = sale(n, skus)
        created.append(body["sale_id"])
        tasks.append(asyncio.create_task(create_pending(api, body)))
    return list(await asyncio.gather(*tasks))


async def at_fixed_rate_batched(
    api: Api,
    skus: Stocked,
    rate: float,
    seconds: float,
    most: int,
    created: list[str],
    senders: int = 4,
) -> list[float]:
    """Sales arrive every 1/rate s; each of `senders` importers sends whatever has arrived,
    up to `most` a request, as soon as its previous request is answered. A sale's latency
    runs from its arrival, so the time it waited for a sender counts. The ids of the sales
    go to `created`."""
    arrived: list[tuple[dict, float]] = []
    wake = asyncio.Event()
    latencies: list[float] = []
    total = int(rate * seconds)

    async def sender() -> None:
        while len(latencies) < total:
            await wake.wait()
            batch, arrived[:most] = arrived[:most], []
            if not arrived:
                wake.clear()
            if batch:
                await create_pending_batch(api, [body for body, _ in batch])
                answered = time.perf_counter()
                latencies.extend(answered - at for _, at in batch)
        wake.set()  # let the others see the end

    workers = [asyncio.create_task(sender()) for _ in range(senders)]
    started = time.perf_counter()
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = sale(n, skus)
        created.append(body["sale_id"])
        arrived.append((body, time.perf_counter()))
        wake.set()
    await asyncio.gather(*workers)
    return latencies


def ms(values: list[float]) -> str:
    v = [x * 1000 for x in values]
    return (
        f"p50 {statistics.median(v):.1f} ms, p99 {percentile(v, 0.99):.1f} ms, max {max(v):.1f} ms"
    )


@dataclass
class Outcome:
    """One run's figures (as `Report` names them), the lines it printed and what broke."""

    replicas: int
    figures: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def kafka_data_dir() -> Path:
    return Path(os.environ.get("TEST_STATE_DIR") or TEST_STATE_DIR) / "kafka" / "data"


async def run(
    args: argparse.Namespace, platform: Platform, meter: CpuMeter, report: Report
) -> Outcome:
    outcome = Outcome(platform.replicas)
    gateway, admin = platform.gateway_url, platform.admin_token
    database_url, bootstrap = os.environ["DATABASE_URL"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = "" if platform.replicas == args.replicas else f"{platform.replicas} replica: "

    def figure(name: str, value: float, unit: str) -> None:
        outcome.figures[name] = value
        report.figure(prefix + name, value, unit)

    def say(line: str) -> None:
        outcome.lines.append(line)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        need = args.warmup + args.sales + int(args.rate or 500) * args.seconds + 100
        api, skus, tenant = await new_tenant(
            session, gateway, admin, args.skus, need // args.skus + 10, args.split_share
        )
        # The broker's JVM compiles its hot paths during the first minute or so; measured
        # cold, Kafka costs about twice its steady-state CPU per event.
        warmup_seconds, _, _ = await lifecycles(
            api, skus, args.warmup, args.concurrency, args.waves, args.create_batch
        )
        await analyze(database_url)
        # PostgreSQL's statistics of the warm-up reported before the count starts
        await meter.until_quiet()
        await asyncio.sleep(invariants.STATISTICS_DELAY_SECONDS)
        before = meter.snapshot()
        written = await invariants.database_counters(database_url)
        records = await invariants.end_offsets(bootstrap, list(DOMAIN_TOPICS))
        log_bytes = invariants.kafka_log_bytes(kafka_data_dir())
        elapsed, create_latencies, pending_at = await lifecycles(
            api, skus, args.sales, args.concurrency, args.waves, args.create_batch
        )
        after = meter.snapshot()
        # and those of the measured run, autovacuum's work after it included
        settled_seconds = await meter.until_quiet()
        await asyncio.sleep(invariants.STATISTICS_DELAY_SECONDS)
        written = {
            k: v - written[k] for k, v in (await invariants.database_counters(database_url)).items()
        }
        records_after = await invariants.end_offsets(bootstrap, list(DOMAIN_TOPICS))
        log_bytes = {
            k: v - log_bytes[k] for k, v in invariants.kafka_log_bytes(kafka_data_dir()).items()
        }
        lifecycle_cpu = meter.per_unit(before, after, args.sales, "lifecycle")
        lifecycle_ms = meter.ms_per_unit(before, after, args.sales)
        rate = args.rate or round(args.sales / elapsed / 2)
        groups = await invariants.consumer_groups(
            bootstrap, [s.name for s in SERVICES if s.name != "gateway"]
        )
        partitions = await invariants.partitions_of(bootstrap, list(DOMAIN_TOPICS))
        # from a settled system: not while autovacuum cleans up after the burst
        settled_seconds += await meter.until_quiet() + invariants.STATISTICS_DELAY_SECONDS
        start = await hops.offsets(bootstrap, [c.SALES_TOPIC, c.STOCK_TOPIC])
        before = meter.snapshot()
        fixed_sales: list[str] = []
        fixed = (
            await at_fixed_rate_batched(
                api, skus, rate, args.seconds, args.create_batch, fixed_sales
            )
            if args.create_batch > 1
            else await at_fixed_rate(api, skus, rate, args.seconds, fixed_sales)
        )
        create_cpu = meter.per_unit(before, meter.snapshot(), len(fixed), "create")
        hop_lines = await hops.create_to_pending(
            database_url, bootstrap, tenant.id, fixed_sales, start
        )
        # the fixed-rate sales are shipped too, so that every sale can be checked
        await ship(api, fixed_sales)
        expected = invariants.Expected(
            tenant=tenant.id,
            sales=args.warmup + args.sales + len(fixed_sales),
            units=units(args.warmup, skus) + units(args.sales, skus) + units(len(fixed), skus),
            stocked=tenant.units_stocked,
        )
        outcome.broken = await invariants.check(database_url, bootstrap, api, expected)
    figure("lifecycles/s", args.sales / elapsed, "1/s")
    for component, cpu_ms in lifecycle_ms.items():
        figure(
            "CPU ms per lifecycle" + ("" if component == "all" else f", {component}"), cpu_ms, "ms"
        )
    events = sum(records_after.values()) - sum(records.values())
    figure("events per lifecycle", events / args.sales, "")
    per = {
        "WAL bytes per lifecycle": written["wal_bytes"],
        "WAL records per lifecycle": written["wal_records"],
        "WAL full-page images per lifecycle": written["wal_fpi"],
        "transactions that wrote, per lifecycle": written["write_transactions"],
        "commits per lifecycle": written["xact_commit"],
        "rows written per lifecycle": written["tup_inserted"]
        + written["tup_updated"]
        + written["tup_deleted"],
        **{
            f"rows written per lifecycle, {schema}": written[f"rows written, {schema}"]
            for schema in invariants.SCHEMAS
        },
        "Kafka log bytes per lifecycle, domain topics": log_bytes["domain topics"],
        "Kafka log bytes per lifecycle, consumer offsets": log_bytes["consumer offsets"],
    }
    for name, total in per.items():
        figure(name, total / args.sales, "B" if "bytes" in name else "")
    latency_name = "create-to-pending under the burst"
    report.latency(prefix + latency_name, [v * 1000 for v in create_latencies])
    report.timeline(prefix + "sales pending", pending_at)
    figure("fixed create rate", rate, "1/s")
    report.latency(prefix + "create-to-pending at half the rate", [v * 1000 for v in fixed])
    outcome.figures["create-to-pending under the burst p99"] = 1000 * percentile(
        create_latencies, 0.99
    )
    outcome.figures["create-to-pending at half the rate p50"] = 1000 * statistics.median(fixed)
    outcome.figures["create-to-pending at half the rate p99"] = 1000 * percentile(fixed, 0.99)

    processes = "one process" if platform.replicas == 1 else f"{platform.replicas} processes"
    say(f"--- every service as {processes} ---")
    say(f"warm-up: {args.warmup} lifecycles in {warmup_seconds:.1f}s, not counted")
    marked = "in waves of up to 100" if args.waves else "one request each"
    created = f"{args.create_batch} a request" if args.create_batch > 1 else "one request each"
    say(
        f"full lifecycles (create -> pending -> shipping init -> shipped -> stock committed):"
        f" {args.sales} in"
        f" {elapsed:.1f}s = {args.sales / elapsed:,.0f}/s, {args.concurrency} sales in flight,"
        f" {args.skus} SKUs, created {created}, marked shipped {marked}"
    )
    if args.split_share:
        say(
            f"  of which {args.split_share:.0%} named no location and were split across wh-1"
            " and wh-2 (two lines each); the others named wh-1 (one line)"
        )
    say(f"  create-to-pending under that load: {ms(create_latencies)}")
    say(f"  {lifecycle_cpu}")
    say(
        "  per lifecycle: "
        + ", ".join(
            f"{name.replace(', per lifecycle', '').replace(' per lifecycle', '')}"
            f" {outcome.figures[name]:,.1f}"
            for name in ("events per lifecycle", *per)
        )
    )
    say("  partitions: " + ", ".join(f"{topic} {count}" for topic, count in partitions.items()))
    say(
        "  consumer groups: "
        + "; ".join(
            f"{group} {len(members)} member(s) with {'+'.join(str(len(m)) for m in members)}"
            " partitions"
            for group, members in groups.items()
        )
    )
    sent = (
        f"4 importers each sending what has arrived, up to {args.create_batch} a request,"
        " latency from arrival"
        if args.create_batch > 1
        else "one request each"
    )
    say(
        f"create-to-pending at a fixed {rate}/s for {args.seconds}s ({sent}), started once"
        f" the platform was quiet ({settled_seconds:.1f}s after the burst): {ms(fixed)}"
    )
    say(f"  {create_cpu}")
    for line in hop_lines:
        say(f"  {line}")
    say(
        f"invariants over {expected.sales} sales ({expected.units} units): "
        + ("all hold" if not outcome.broken else "BROKEN: " + "; ".join(outcome.broken))
    )
    return outcome


SIDE_BY_SIDE = (
    ("lifecycles/s", "{:,.0f}"),
    ("CPU ms per lifecycle", "{:.2f}"),
    *(
        (f"CPU ms per lifecycle, {name}", "{:.2f}")
        for name in ("gateway", "orders", "stock", "fulfilment", "webhooks", "kafka", "postgres")
    ),
    ("create-to-pending under the burst p99", "{:.0f} ms"),
    ("fixed create rate", "{:.0f}/s"),
    ("create-to-pending at half the rate p50", "{:.1f} ms"),
    ("create-to-pending at half the rate p99", "{:.1f} ms"),
    ("events per lifecycle", "{:.1f}"),
    ("transactions that wrote, per lifecycle", "{:.1f}"),
    ("commits per lifecycle", "{:.1f}"),
    ("rows written per lifecycle", "{:.1f}"),
    ("WAL records per lifecycle", "{:.0f}"),
    ("WAL bytes per lifecycle", "{:,.0f}"),
    ("Kafka log bytes per lifecycle, domain topics", "{:,.0f}"),
)


def side_by_side(outcomes: list[Outcome]) -> list[str]:
    heads = [f"{o.replicas} replica" + ("s" if o.replicas > 1 else "") for o in outcomes]
    rows = [("", *heads)] + [
        (name, *(form.format(o.figures[name]) if name in o.figures else "" for o in outcomes))
        for name, form in SIDE_BY_SIDE
    ]
    rows.append(("invariants", *("hold" if not o.broken else "BROKEN" for o in outcomes)))
    width = max(len(r[0]) for r in rows)
    return [f"{r[0]:<{width}}  " + "  ".join(f"{c:>12}" for c in r[1:]) for r in rows]


def platform(log_dir: Path, replicas: int = 1) -> Platform:
    """Every service (`replicas` processes of each) on the Kafka and PostgreSQL of the
    environment, on free ports, logging quietly to `log_dir`."""
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    # the same connections in all whatever the replicas: PostgreSQL takes 300
    quiet = QUIET | {"DB_POOL_MAX_SIZE": str(int(QUIET["DB_POOL_MAX_SIZE"]) // replicas)}
    return Platform(
        database_url=os.environ["DATABASE_URL"],
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        log_dir=log_dir,
        ports=ports,
        extra_env=quiet,
        replicas=replicas,
    )


def start_platform(args: argparse.Namespace, replicas: int, log_dir: Path) -> Platform:
    return platform(log_dir / (f"{replicas}x" if args.replicas > 1 else ""), replicas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=4000)
    parser.add_argument(
        "--warmup", type=int, default=4000, help="lifecycles run first and not measured"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="sales being created at a time")
    parser.add_argument("--skus", type=int, default=100)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="fixed create rate for the latency run (default: half the measured lifecycle rate)",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--create-batch",
        type=int,
        default=20,
        help="sales created per request (POST /sales/batch); 1: POST /sales for each",
    )
    parser.add_argument(
        "--mark",
        choices=("waves", "one"),
        default="waves",
        help="mark fulfillments shipped in waves of up to 100 a request"
        " (POST /fulfillments/status) or one request each",
    )
    parser.add_argument(
        "--split-share",
        type=float,
        default=0.0,
        help="share of sales (0 to 1) that name no location and need two (routed, split)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of every service; above 1, the same run on one process first",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="with --replicas N > 1: only the run on N, not the one-process run beside it",
    )
    args = parser.parse_args()
    if not 0 <= args.split_share <= 1:
        parser.error("--split-share is a share, from 0 to 1")
    if args.replicas < 1:
        parser.error("--replicas is at least 1")
    args.waves = args.mark == "waves"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    report = Report("sales_flow" if args.replicas == 1 else f"sales_flow_{args.replicas}x")
    counts = [args.replicas] if args.replicas == 1 or args.alone else [1, args.replicas]
    outcomes = []
    for replicas in counts:
        with start_platform(args, replicas, log_dir) as running:
            outcomes.append(
                asyncio.run(run(args, running, CpuMeter.for_local_run(running), report))
            )
    report.save([sys.executable, *sys.argv])
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, {host.platform()}; client, services, Kafka and"
        " PostgreSQL all on it"
    )
    for outcome in outcomes:
        print("\n".join(outcome.lines))
    if len(outcomes) > 1:
        print("--- side by side (the same Kafka and PostgreSQL, one run after the other) ---")
        print("\n".join(side_by_side(outcomes)))
    print(f"service logs: {log_dir}")
    if any(o.broken for o in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()
