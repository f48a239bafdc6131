"""Side by side with Svix's webhook server: the same fan-out through theirs and through ours,
alternating, on one machine, in one sitting.

    python bench/peer_svix.py --svix-bin PATH [--redis-url redis://127.0.0.1:6379/0] \\
        [--rounds 2] [--messages 30000] [--endpoints 1] [--rate 250] [--seconds 20]

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, as `bench/webhook_delivery.py` does
(`INFRA_DURABLE=1 python -m deploy.local infra -- python bench/peer_svix.py ...`): ours uses
them; Svix gets a database of its own on the same PostgreSQL server and its queue and cache
in the Redis at `--redis-url`. How to build Svix's server and start Redis: bench/README.md.

Each round measures, for each side (the order alternates between rounds):
- burst: N messages sent as fast as one client can (ours: onto Kafka, as a service's outbox
  relay would; theirs: `POST /msg` with 64 in flight, its only way in), first send to last
  delivery;
- delivery only: N messages already queued before the deliverer starts (ours: events in
  Kafka before the webhooks service starts; theirs: accepted by an API-only process before a
  worker-only one starts), first delivery to last, with the deliverer's CPU per delivery;
- steady: messages at `--rate`/s for `--seconds`; latency from the message's `timestamp`
  (set as it is sent: for Svix that includes its own API call and commit) to its arrival.
One aiohttp receiver in this process counts each `webhook-id` once (Svix is started with
Standard Webhooks header names) and verifies a sample of signatures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import aiohttp
import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from single_service import single_service
from webhook_delivery import (
    HEADERS,
    Receiver,
    WebhooksApi,
    api_session,
    burst,
    new_tenant,
    stock_changed,
)

from bench.cpu import _children, _cpu_seconds
from bench.report import percentile
from deploy.local.services import free_ports
from fulfilkit import contracts as c

SVIX_DATABASE = "svix_bench"
EVENT_TYPE = "stock.changed"


@dataclass
class Figures:
    burst_per_s: float
    delivery_only_per_s: float
    cpu_ms_per_delivery: float
    steady_ms: list[float]

    def line(self, side: str, rate: int) -> str:
        ms = self.steady_ms
        return (
            f"{side}: burst {self.burst_per_s:,.0f}/s;"
            f" delivery only {self.delivery_only_per_s:,.0f}/s"
            f" at {self.cpu_ms_per_delivery:.2f} CPU ms each (the deliverer's processes);"
            f" steady {rate}/s p50 {statistics.median(ms):.1f} ms,"
            f" p99 {percentile(ms, 0.99):.1f} ms"
        )


@asynccontextmanager
async def receiving():
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{name}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def spread(arrivals: dict[str, tuple[float, float]]) -> float:
    times = [at for at, _ in arrivals.values()]
    return max(times) - min(times)


# --- Svix ------------------------------------------------------------------------------------


class Svix:
    """Svix's server as processes of this benchmark: one with the API and the worker, or an
    API-only one and a worker-only one (delivery only)."""

    def __init__(self, binary: str, database_url: str, redis_url: str, log_dir: Path) -> None:
        self.binary = binary
        self.log_dir = log_dir
        [self.port] = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = os.environ | {
            "SVIX_JWT_SECRET": secrets.token_urlsafe(32),
            "SVIX_DB_DSN": database_url,
            "SVIX_REDIS_DSN": redis_url,
            "SVIX_QUEUE_TYPE": "redis",
            "SVIX_CACHE_TYPE": "redis",
            "SVIX_LISTEN_ADDRESS": f"127.0.0.1:{self.port}",
            "SVIX_WHITELIST_SUBNETS": "[127.0.0.1/32]",
            "SVIX_WHITELABEL_HEADERS": "true",
            "SVIX_LOG_LEVEL": "info",  # its quietest
        }
        self.processes: list[subprocess.Popen] = []

    def token(self) -> str:
        out = subprocess.run(
            [self.binary, "jwt", "generate"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.strip().split()[-1]

    def start(self, *, api: bool = True, worker: bool = True) -> subprocess.Popen:
        env = self.env | {
            "SVIX_API_ENABLED": str(api).lower(),
            "SVIX_WORKER_ENABLED": str(worker).lower(),
        }
        name = "api" if not worker else "worker" if not api else "server"
        log = (self.log_dir / f"svix-{name}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [self.binary, "--run-migrations"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with session.get(f"{self.url}/api/v1/health/") as r:
                    if r.status in (200, 204):
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Svix did not answer on {self.url} (logs: {self.log_dir})")
            await asyncio.sleep(0.2)


class SvixApi:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = f"{url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict) -> dict:
        async with self.session.post(f"{self.url}{path}", json=body, headers=self.headers) as r:
            if r.status >= 300:
                raise RuntimeError(f"Svix answered {r.status} to {path}: {await r.text()}")
            return await r.json()

    async def get(self, path: str) -> dict:
        async with self.session.get(f"{self.url}{path}", headers=self.headers) as r:
            if r.status >= 300:
                raise RuntimeError(f"Svix answered {r.status} to {path}: {await r.text()}")
            return await r.json()

    async def application(self, receiver: Receiver, base: str, endpoints: int) -> str:
        app = await self.post("/app/", {"name": f"bench-{uuid.uuid4().hex[:8]}"})
        for i in range(endpoints):
            path = f"/hooks/svix-{app['id']}-{i}"
            created = await self.post(
                f"/app/{app['id']}/endpoint/", {"url": f"{base}{path}", "version": 1}
            )
            secret = await self.get(f"/app/{app['id']}/endpoint/{created['id']}/secret/")
            receiver.secrets[path] = secret["key"]
        return app["id"]

    async def send(self, app_id: str, n: int) -> None:
        """One message of the same shape and size as ours (`stock.changed`, ~340 bytes)."""
        _, event = stock_changed(uuid.UUID(int=0), n)
        payload = {
            "type": EVENT_TYPE,
            "timestamp": datetime.now(UTC).isoformat(),
            "data": c.CloudEvent.model_validate_json(event).data,
        }
        await self.post(f"/app/{app_id}/msg/", {"eventType": EVENT_TYPE, "payload": payload})


async def send_all(api: SvixApi, app_id: str, count: int, in_flight: int = 64) -> None:
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            await api.send(app_id, n)

    await asyncio.gather(*(sender() for _ in range(in_flight)))


async def svix_round(args: argparse.Namespace, svix: Svix) -> Figures:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, receiving() as (rx, base):
        api = SvixApi(session, svix.url, svix.token())
        svix.start()
        try:
            await svix.ready(session)
            app_id = await api.application(rx, base, args.endpoints)
            rx.expect(500 * args.endpoints)  # warm-up
            await send_all(api, app_id, 500)
            await asyncio.wait_for(rx.done.wait(), args.timeout)

            app_id = await api.application(rx, base, args.endpoints)
            rx.expect(args.messages * args.endpoints)
            started = time.time()
            await send_all(api, app_id, args.messages)
            await asyncio.wait_for(rx.done.wait(), args.timeout)
            burst_rate = (
                args.messages
                * args.endpoints
                / (max(at for at, _ in rx.arrivals.values()) - started)
            )

            app_id = await api.application(rx, base, args.endpoints)
            rx.expect(int(args.rate * args.seconds) * args.endpoints)
            await at_rate(args.rate, args.seconds, lambda n: api.send(app_id, n))
            await asyncio.wait_for(rx.done.wait(), args.timeout)
            steady = [(at - sent) * 1000 for at, sent in rx.arrivals.values()]
        finally:
            svix.stop()

        # delivery only: an API-only process queues, then a worker-only one delivers
        svix.start(worker=False)
        try:
            await svix.ready(session)
            app_id = await api.application(rx, base, args.endpoints)
            rx.expect(args.messages * args.endpoints)
            await send_all(api, app_id, args.messages)
        finally:
            svix.stop()
        worker = svix.start(api=False)
        try:
            await asyncio.wait_for(rx.done.wait(), args.timeout)
            cpu = sum(_cpu_seconds(pid) for pid in [worker.pid, *_children(worker.pid)])
        finally:
            svix.stop()
        deliveries = args.messages * args.endpoints
        return Figures(
            burst_rate, deliveries / spread(rx.arrivals), cpu * 1000 / deliveries, steady
        )


async def at_rate(rate: int, seconds: float, send) -> None:
    """Open loop: `send(n)` at `rate`/s in ticks of 10 ms, without waiting for the answers."""
    total = int(rate * seconds)
    started = time.perf_counter()
    sent = 0
    pending: set[asyncio.Task] = set()
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        for n in range(sent, due):
            task = asyncio.create_task(send(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent = due
        await asyncio.sleep(0.01)
    await asyncio.gather(*pending)


# --- ours ------------------------------------------------------------------------------------


async def ours_round(args: argparse.Namespace) -> Figures:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        async with api_session() as session, receiving() as (rx, base):
            with single_service("webhooks") as service:
                api = WebhooksApi(session, service.url, service.token)
                tenant = await new_tenant(api, rx, base, args.endpoints)
                await burst(producer, rx, tenant, 500, args.endpoints, args.timeout)  # warm-up
                tenant = await new_tenant(api, rx, base, args.endpoints)
                elapsed, _ = await burst(
                    producer, rx, tenant, args.messages, args.endpoints, args.timeout
                )
                burst_rate = args.messages * args.endpoints / elapsed

                tenant = await new_tenant(api, rx, base, args.endpoints)
                rx.expect(int(args.rate * args.seconds) * args.endpoints)

                async def send(n: int) -> None:
                    key, value = stock_changed(tenant, n)
                    await producer.send(c.STOCK_TOPIC, value=value, key=key, headers=HEADERS)

                await at_rate(args.rate, args.seconds, send)
                await producer.flush()
                await asyncio.wait_for(rx.done.wait(), args.timeout)
                steady = [(at - sent) * 1000 for at, sent in rx.arrivals.values()]
                queued_for = await new_tenant(api, rx, base, args.endpoints)

            # delivery only: the events are in Kafka before the webhooks service starts
            rx.expect(args.messages * args.endpoints)
            for n in range(args.messages):
                key, value = stock_changed(queued_for, n)
                await producer.send(c.STOCK_TOPIC, value=value, key=key, headers=HEADERS)
            await producer.flush()
            with single_service("webhooks") as service:
                await asyncio.wait_for(rx.done.wait(), args.timeout)
                pid = service.pid
                cpu = sum(_cpu_seconds(p) for p in [pid, *_children(pid)]) if pid else 0.0
    finally:
        await producer.stop()
    deliveries = args.messages * args.endpoints
    return Figures(burst_rate, deliveries / spread(rx.arrivals), cpu * 1000 / deliveries, steady)


# --- the run ---------------------------------------------------------------------------------


async def svix_database(database_url: str) -> str:
    """A fresh database for Svix on the run's PostgreSQL server; its DSN in Svix's form."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {SVIX_DATABASE}")
        await conn.execute(f"CREATE DATABASE {SVIX_DATABASE}")
    finally:
        await conn.close()
    parsed = urlparse(database_url)
    # Svix's URL parser wants a host even when `?host=` names the socket's folder
    netloc = parsed.netloc if parsed.hostname else f"{parsed.netloc.rstrip(':')}localhost"
    return urlunparse(parsed._replace(netloc=netloc, path=f"/{SVIX_DATABASE}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svix-bin", required=True, help="Svix's built `svix-server` binary")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-svix-"))
    dsn = asyncio.run(svix_database(os.environ["DATABASE_URL"]))
    svix = Svix(args.svix_bin, dsn, args.redis_url, log_dir)
    results: dict[str, list[Figures]] = {"ours": [], "Svix": []}
    for round_ in range(args.rounds):
        order = ["ours", "Svix"] if round_ % 2 == 0 else ["Svix", "ours"]
        for side in order:
            figures = asyncio.run(ours_round(args) if side == "ours" else svix_round(args, svix))
            results[side].append(figures)
            print(f"round {round_ + 1}, {figures.line(side, args.rate)}", flush=True)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, {host.platform()}; receiver, senders, both servers,"
        " Kafka, PostgreSQL and Redis all on it"
    )
    print(
        f"{args.messages:,} messages x {args.endpoints} endpoint(s) per burst; steady"
        f" {args.rate}/s for {args.seconds:g}s; Svix logs: {log_dir}"
    )
    best = {side: max(f.delivery_only_per_s for f in runs) for side, runs in results.items()}
    p99 = {side: min(percentile(f.steady_ms, 0.99) for f in runs) for side, runs in results.items()}
    print(
        f"delivery only, best of {args.rounds}: ours {best['ours']:,.0f}/s, Svix"
        f" {best['Svix']:,.0f}/s = {best['ours'] / best['Svix']:.2f}x (target >= 1.5x)"
    )
    print(
        f"steady {args.rate}/s p99, best of {args.rounds}: ours {p99['ours']:.1f} ms, Svix"
        f" {p99['Svix']:.1f} ms (target: ours lower)"
    )


if __name__ == "__main__":
    main()
