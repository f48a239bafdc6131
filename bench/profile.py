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
events per lifecycle on each topic, and the HTTP requests per lifecycle through the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.sales_flow import QUIET, analyze, lifecycles, new_tenant
from deploy.local.services import SERVICES, Platform, free_ports
from fulfilkit import contracts as c

TOPICS = [c.SALES_TOPIC, c.STOCK_TOPIC, c.FULFILLMENT_TOPIC, c.WEBHOOKS_TOPIC]
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


async def run(args: argparse.Namespace, running: Platform, out: Path) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        need = args.warmup + args.sales + 100
        api, skus = await new_tenant(
            session, running.gateway_url, running.admin_token, 100, need // 100 + 10, 0.0
        )
        await lifecycles(api, skus, args.warmup, 64, True, 20)
        await analyze(os.environ["DATABASE_URL"])
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        before = await end_offsets(bootstrap)
        requests_before = await http_requests(session, running)
        spies = spy_on(running, args.rate, out)
        try:
            elapsed, _, _ = await lifecycles(api, skus, args.sales, 64, True, 20)
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(30)
        after = await end_offsets(bootstrap)
        requests_after = await http_requests(session, running)
    return {
        "elapsed": elapsed,
        "events": {t: after.get(t, 0) - before.get(t, 0) for t in TOPICS},
        "requests": {s: requests_after[s] - requests_before[s] for s in requests_after},
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
    args = parser.parse_args()
    if shutil.which("py-spy") is None and not Path(sys.executable).with_name("py-spy").exists():
        parser.error("py-spy is not installed (it is in requirements-dev.txt: make install)")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / "logs"
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    with Platform(
        database_url=os.environ["DATABASE_URL"],
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        log_dir=log_dir,
        ports=ports,
        extra_env=QUIET,
    ) as running:
        counts = asyncio.run(run(args, running, out))
    sales = args.sales
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"{sales} lifecycles in {counts['elapsed']:.1f}s = {sales / counts['elapsed']:,.0f}/s"
        f" while py-spy sampled every service at {args.rate} Hz (it slows them)"
    )
    events = counts["events"]
    assert isinstance(events, dict)
    per = ", ".join(f"{t} {n / sales:.2f}" for t, n in events.items())
    print(f"events per lifecycle: {sum(events.values()) / sales:.2f} ({per})")
    requests = counts["requests"]
    assert isinstance(requests, dict)
    per = ", ".join(f"{s} {n / sales:.3f}" for s, n in requests.items())
    print(f"HTTP requests answered per lifecycle: {sum(requests.values()) / sales:.3f} ({per})")
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
