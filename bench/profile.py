"""Where the time goes under the lifecycle load: py-spy samples every service while
`sales_flow.py`'s lifecycles run, and the run counts the events and HTTP requests a
lifecycle costs.

    INFRA_DURABLE=1 python -m deploy.local infra -- python bench/profile.py \\
        [--sales 3000] [--warmup 2000] [--rate 100] [--out DIR]

Starts every service on the Kafka and PostgreSQL from the environment (as `sales_flow.py`),
warms up, then runs `--sales` lifecycles while `py-spy record` samples each service at
`--rate` Hz (idle threads left out). Writes, per service, the folded stacks
(`<service>.txt`, which speedscope and flame-graph tools read), and prints per service the
functions that hold the most samples (self time, and inclusive time of our own code), the
events per lifecycle on each topic, the HTTP requests per lifecycle through the gateway, the
requests Kafka answered per lifecycle by kind (read from the broker's own counters over JMX
by `bench/KafkaRequests.java`, when a JDK is there) and the CPU per lifecycle per component.
`--no-spy` leaves py-spy out: the counts and the CPU as the platform spends them unsampled.
`--fixed-rate R --seconds S` samples `sales_flow.py`'s fixed-rate run instead (creates
arriving at R a second for S seconds, sent by 4 importers up to 20 a request) and gives
every figure per create.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.cpu import CpuMeter
from bench.sales_flow import analyze, at_fixed_rate_batched, lifecycles, new_tenant, platform
from deploy.local.infra import TEST_STATE_DIR, kafka_pid
from deploy.local.services import SERVICES, Platform
from fulfilkit import contracts as c

TOPICS = [c.SALES_TOPIC, c.STOCK_TOPIC, c.FULFILLMENT_TOPIC, c.WEBHOOKS_TOPIC]
KAFKA_REQUESTS = Path(__file__).with_name("KafkaRequests.java")
OURS = ("(fulfilkit/", "(gateway/", "(orders/", "(stock/", "(fulfilment/", "(webhooks/")


async def end_offsets(bootstrap: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in TOPICS
            for p in cluster.partitions_for_topic(topic) or ()
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    totals: Counter[str] = Counter()
    for tp, offset in ends.items():
        totals[tp.topic] += offset
    return dict(totals)


def top(folded: Path, count: int = 12) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, top self-time frames, top inclusive frames of our own code)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        samples = int(n)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            if any(mark in frame for mark in OURS) and "(fulfilkit/serve.py" not in frame:
                inclusive[frame] += samples
    return total, own.most_common(count), inclusive.most_common(count)


def short(frame: str) -> str:
    for mark in ("/site-packages/", "/services/", "/libs/", "/lib/python3.11/"):
        if mark in frame:
            head, _, tail = frame.partition(mark)
            return head.split(" (")[0] + " (" + tail
    return frame


def kafka_requests() -> dict[str, int]:
    """Requests the local broker has answered since it started, by kind (Fetch, Produce...),
    and its record counters; empty when they cannot be read (no JDK, say)."""
    pid = kafka_pid(Path(os.environ.get("TEST_STATE_DIR") or TEST_STATE_DIR) / "kafka")
    java = shutil.which("java")
    if pid is None or java is None:
        return {}
    done = subprocess.run(
        [java, str(KAFKA_REQUESTS), str(pid)], capture_output=True, text=True, timeout=120
    )
    counts = {}
    for line in done.stdout.splitlines():
        name, _, value = line.rpartition(" ")
        if value.isdigit():
            counts[name] = int(value)
    return counts


def kafka_threads() -> Counter[str]:
    """CPU seconds of each kind of thread of the local broker's JVM (its name without
    numbers: the request handlers, the network threads, the JIT compilers, the collector),
    read from /proc."""
    pid = kafka_pid(Path(os.environ.get("TEST_STATE_DIR") or TEST_STATE_DIR) / "kafka")
    spent: Counter[str] = Counter()
    if pid is None:
        return spent
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        kind = re.sub(r"[-_ #]*\d+$", "", name).strip("-_ ") or name
        spent[kind] += (int(fields[11]) + int(fields[12])) / tick
    return spent


async def database_counters(database_url: str) -> Counter[str]:
    """Transactions committed, WAL records and bytes, and WAL flushes of the whole server."""
    conn = await asyncpg.connect(database_url)
    try:
        commits = await conn.fetchval("SELECT sum(xact_commit) FROM pg_stat_database")
        wal = await conn.fetchrow("SELECT wal_records, wal_bytes FROM pg_stat_wal")
    finally:
        await conn.close()
    return Counter(
        {"commits": int(commits), "WAL records": wal["wal_records"], "WAL bytes": wal["wal_bytes"]}
    )


async def run(args: argparse.Namespace, running: Platform, out: Path) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        need = args.warmup + args.sales + int(args.fixed_rate * args.seconds) + 100
        api, skus, _ = await new_tenant(
            session, running.gateway_url, running.admin_token, 100, need // 100 + 10, 0.0
        )
        await lifecycles(api, skus, args.warmup, 64, True, 20)
        await analyze(os.environ["DATABASE_URL"])
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        before = await end_offsets(bootstrap)
        requests_before = await http_requests(session, running)
        kafka_before = kafka_requests()
        threads_before = kafka_threads()
        database_before = await database_counters(os.environ["DATABASE_URL"])
        meter = CpuMeter.for_local_run(running)
        await meter.until_quiet()
        cpu_before = meter.snapshot()
        spies = [] if args.no_spy else spy_on(running, args.rate, out)
        try:
            if args.fixed_rate:
                started = asyncio.get_running_loop().time()
                created: list[str] = []
                await at_fixed_rate_batched(api, skus, args.fixed_rate, args.seconds, 20, created)
                elapsed = asyncio.get_running_loop().time() - started
                args.sales = len(created)  # the unit: one create, not a lifecycle
            else:
                elapsed, _, _ = await lifecycles(api, skus, args.sales, 64, True, 20)
            await meter.until_quiet()
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(30)
        cpu_after = meter.snapshot()
        threads_after = kafka_threads()
        database_after = await database_counters(os.environ["DATABASE_URL"])
        kafka_after = kafka_requests()
        after = await end_offsets(bootstrap)
        requests_after = await http_requests(session, running)
    return {
        "elapsed": elapsed,
        "events": {t: after.get(t, 0) - before.get(t, 0) for t in TOPICS},
        "requests": {s: requests_after[s] - requests_before[s] for s in requests_after},
        "kafka": {k: v - kafka_before.get(k, 0) for k, v in kafka_after.items()},
        "cpu": CpuMeter.per_unit(cpu_before, cpu_after, args.sales, args.unit),
        "kafka_threads": threads_after - threads_before,
        "database": database_after - database_before,
    }


def spy_on(running: Platform, rate: int, out: Path) -> list[subprocess.Popen]:
    """`py-spy record` on every service until it is sent SIGINT."""
    return [
        subprocess.Popen(
            [
                shutil.which("py-spy") or "py-spy",
                "record",
                "--pid",
                str(service.pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out / f"{service.name}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(out / f"{service.name}.py-spy.log").open("wb"),
        )
        for service in running
    ]


async def http_requests(session: aiohttp.ClientSession, running: Platform) -> dict[str, int]:
    """HTTP requests each service has answered, from its Prometheus counter."""
    answered = {}
    for service in running:
        async with session.get(f"{service.url}/metrics") as r:
            text = await r.text()
        answered[service.name] = int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("fulfil_http_requests_total{")
            )
        )
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--fixed-rate",
        type=float,
        default=0,
        help="instead of --sales lifecycles, creates at this rate for --seconds (as sales_flow's"
        " fixed-rate run: 4 importers, up to 20 a request); figures are then per create",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--no-spy", action="store_true", help="count and measure CPU without sampling"
    )
    args = parser.parse_args()
    args.unit = "create" if args.fixed_rate else "lifecycle"  # what the figures are per
    if (
        not args.no_spy
        and shutil.which("py-spy") is None
        and not Path(sys.executable).with_name("py-spy").exists()
    ):
        parser.error("py-spy is not installed (it is in requirements-dev.txt: make install)")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / "logs"
    with platform(log_dir) as running:
        counts = asyncio.run(run(args, running, out))
    sales = args.sales
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    sampled = "" if args.no_spy else f" while py-spy sampled every service at {args.rate} Hz"
    print(
        f"{sales} {args.unit}s in {counts['elapsed']:.1f}s"
        f" = {sales / counts['elapsed']:,.0f}/s{sampled}"
    )
    print(
        f"{counts['cpu']} (until quiet after the last one"
        f"{'; py-spy slows them' if sampled else ''})"
    )
    events = counts["events"]
    assert isinstance(events, dict)
    per = ", ".join(f"{t} {n / sales:.2f}" for t, n in events.items())
    print(f"events per {args.unit}: {sum(events.values()) / sales:.2f} ({per})")
    requests = counts["requests"]
    assert isinstance(requests, dict)
    per = ", ".join(f"{s} {n / sales:.3f}" for s, n in requests.items())
    print(f"HTTP requests answered per {args.unit}: {sum(requests.values()) / sales:.3f} ({per})")
    kafka = counts["kafka"]
    assert isinstance(kafka, dict)
    if kafka:
        per = ", ".join(
            f"{k} {n / sales:.2f}" for k, n in sorted(kafka.items(), key=lambda kv: -kv[1]) if n
        )
        print(f"Kafka, per {args.unit} (requests by kind; broker.* are its record counters): {per}")
    else:
        print("Kafka requests: not read (needs a JDK: java with the attach API)")
    database = counts["database"]
    assert isinstance(database, Counter)
    per = ", ".join(f"{k} {v / sales:,.1f}" for k, v in database.items())
    print(f"PostgreSQL, per {args.unit}: {per}")
    threads = counts["kafka_threads"]
    assert isinstance(threads, Counter)
    per = ", ".join(f"{k} {v * 1000 / sales:.2f}" for k, v in threads.most_common(10) if v)
    print(f"Kafka's CPU ms per {args.unit} by thread: {per}")
    if args.no_spy:
        return
    for service in SERVICES:
        folded = out / f"{service.name}.txt"
        if not folded.exists():
            print(f"{service.name}: no profile (see {out / (service.name + '.py-spy.log')})")
            continue
        total, own, inclusive = top(folded)
        print(f"\n{service.name}: {total} samples")
        print("  self time:")
        for frame, n in own:
            print(f"    {n / total:6.1%}  {short(frame)}")
        print("  inclusive, our code:")
        for frame, n in inclusive:
            print(f"    {n / total:6.1%}  {short(frame)}")
    print(f"\nfolded stacks (speedscope, inferno): {out}")


if __name__ == "__main__":
    main()
