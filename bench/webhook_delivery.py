"""Webhook deliveries per second, and commit-to-delivery latency at a steady event rate.

Starts only the webhooks service on the Kafka and PostgreSQL named by KAFKA_BOOTSTRAP_SERVERS
and DATABASE_URL (`make bench` provides them), registers endpoints through its own API that
point at a real aiohttp receiver in this process, and publishes `stock.changed` CloudEvents
straight to `stock.events` (as the stock service's relay would after its commit).

    python bench/webhook_delivery.py --burst 30000 --rate 500 --seconds 20

Two runs, each on a fresh tenant and endpoint(s):
- burst: N events produced as fast as one producer can; deliveries per second is N times the
  number of endpoints over the time from the first send to the last delivery.
- steady: events at a fixed rate; latency runs from the event's `time` (set as it is
  published, i.e. just after its commit) to its arrival at the receiver.
Every delivery is counted once by `webhook-id`; a sample of signatures is verified. Each
run also prints the CPU milliseconds per delivery of the webhooks service (its processes),
PostgreSQL, Kafka and this process (the receiver and the producer), and `--py-spy DIR`
samples the service's processes with py-spy during each run (raw folded stacks, which
speedscope and flame-graph tools read).
"""

import argparse
import asyncio
import os
import platform as host
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from single_service import single_service
from standardwebhooks.webhooks import Webhook

from bench.cpu import CpuMeter, _children
from bench.report import Report
from fulfilkit import contracts as c
from fulfilkit.events import CONTENT_TYPE, utcnow

HEADERS = [("content-type", CONTENT_TYPE.encode())]
RECORDS = 1000  # distinct stock records (subjects, Kafka keys) the events are spread over
VERIFY_EVERY = 97
WARM_UP_EVENTS = 500


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@dataclass
class Receiver:
    """Counts each webhook-id once, with its arrival time and the event's time."""

    secrets: dict[str, str] = field(default_factory=dict)  # path -> whsec_
    arrivals: dict[str, tuple[float, float]] = field(default_factory=dict)
    requests: int = 0
    bad_signatures: int = 0
    wanted: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        self.requests += 1
        msg_id = request.headers["webhook-id"]
        if msg_id not in self.arrivals:
            event_time = datetime.fromisoformat(orjson.loads(body)["timestamp"]).timestamp()
            self.arrivals[msg_id] = (now, event_time)
            if len(self.arrivals) % VERIFY_EVERY == 0:
                try:
                    Webhook(self.secrets[request.path]).verify(body, dict(request.headers))
                except Exception:
                    self.bad_signatures += 1
            if len(self.arrivals) >= self.wanted:
                self.done.set()
        return web.Response(text="ok")

    def expect(self, count: int) -> None:
        self.arrivals.clear()
        self.requests = 0
        self.wanted = count
        self.done.clear()


class WebhooksApi:
    """The webhooks service's own API, called as the gateway would (internal token, tenant)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = f"{url}/api/v1/webhooks"
        self.token = token

    async def endpoint(self, tenant: uuid.UUID, url: str) -> dict:
        headers = {"X-Internal-Token": self.token, "X-Tenant-Id": str(tenant)}
        body = {"url": url, "event_types": ["stock.changed"]}
        async with self.session.post(f"{self.url}/endpoints", json=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"cannot register an endpoint: {r.status} {await r.text()}")
            return await r.json()


def api_session() -> aiohttp.ClientSession:
    """For the service's API, called now and then: an idle connection is closed here before
    uvicorn closes it (after 5 s), or the next call may go out on a closing connection
    (`ServerDisconnectedError`)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=2))


def service_meter(pid: int | None) -> CpuMeter:
    """CPU time of the webhooks service (its process and any it started), Kafka, PostgreSQL
    and this process."""
    return CpuMeter.with_infra({"webhooks": lambda: [pid, *_children(pid)] if pid else []})


class Spy:
    """`py-spy record` on every process of the webhooks service during a run (`--py-spy`);
    nothing when no directory is given."""

    def __init__(self, out: Path | None, pid: int | None, rate: int = 100) -> None:
        self.out, self.pid, self.rate = out, pid, rate
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str) -> None:
        if self.out is None or self.pid is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        for n, pid in enumerate([self.pid, *_children(self.pid)]):
            stem = self.out / f"webhooks-{name}-{n}"
            self.processes.append(
                subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--rate", str(self.rate)]
                    + ["--format", "raw", "--output", f"{stem}.txt", "--nonblocking"],
                    stdout=subprocess.DEVNULL,
                    stderr=open(f"{stem}.py-spy.log", "wb"),
                )
            )

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            process.wait(30)
        self.processes.clear()


def stock_changed(tenant: uuid.UUID, n: int) -> tuple[bytes, bytes]:
    now = utcnow()
    record = uuid.UUID(int=n % RECORDS + 1)
    data = c.StockChanged(
        id=record,
        location_id="wh-1",
        sku=f"SKU-{n % RECORDS:04d}",
        quantity=100 + n,
        reserved=0,
        available=100 + n,
        version=n + 1,
        updated_at=now,
        quantity_change=1,
        reserved_change=0,
        reason="restock",
    )
    event = c.make_event(
        source="/stock",
        type=c.STOCK_CHANGED,
        tenant_id=tenant,
        subject=f"stock-record/{record}",
        data=data,
    )
    return c.stock_level_key(tenant, "wh-1", data.sku).encode(), event.to_bytes()


async def new_tenant(api: WebhooksApi, receiver: Receiver, base: str, endpoints: int) -> uuid.UUID:
    tenant = uuid.uuid4()
    for i in range(endpoints):
        path = f"/hooks/{tenant.hex[:8]}-{i}"
        created = await api.endpoint(tenant, f"{base}{path}")
        receiver.secrets[path] = created["secret"]
    return tenant


async def burst(
    producer: AIOKafkaProducer,
    receiver: Receiver,
    tenant: uuid.UUID,
    events: int,
    endpoints: int,
    timeout: float,
) -> tuple[float, float]:
    """(seconds from the first send to the last delivery, seconds to produce)."""
    receiver.expect(events * endpoints)
    messages = [stock_changed(tenant, n) for n in range(events)]
    started = time.time()
    futures = [
        await producer.send(c.STOCK_TOPIC, value=v, key=k, headers=HEADERS) for k, v in messages
    ]
    await asyncio.gather(*futures)
    produced = time.time() - started
    await asyncio.wait_for(receiver.done.wait(), timeout)
    last = max(at for at, _ in receiver.arrivals.values())
    return last - started, produced


async def steady(
    producer: AIOKafkaProducer,
    receiver: Receiver,
    tenant: uuid.UUID,
    rate: int,
    seconds: float,
    endpoints: int,
    timeout: float,
) -> list[float]:
    """Open loop: events at `rate`/s in ticks of 10 ms; returns each delivery's latency."""
    total = int(rate * seconds)
    receiver.expect(total * endpoints)
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        for n in range(sent, due):
            key, value = stock_changed(tenant, n)
            await producer.send(c.STOCK_TOPIC, value=value, key=key, headers=HEADERS)
        sent = due
        await asyncio.sleep(0.01)
    await producer.flush()
    await asyncio.wait_for(receiver.done.wait(), timeout)
    return [at - event_time for at, event_time in receiver.arrivals.values()]


async def run(
    args: argparse.Namespace,
    url: str,
    token: str,
    bootstrap: str,
    report: Report,
    pid: int | None = None,
) -> list[str]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{name}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=512 * 1024
    )
    await producer.start()
    lines = []
    try:
        async with api_session() as session:
            api = WebhooksApi(session, url, token)
            tenant = await new_tenant(api, receiver, base, args.endpoints)
            await burst(producer, receiver, tenant, WARM_UP_EVENTS, args.endpoints, args.timeout)

            meter, spy = service_meter(pid), Spy(args.py_spy, pid)
            tenant = await new_tenant(api, receiver, base, args.endpoints)
            before = meter.snapshot()
            spy.start("burst")
            elapsed, produced = await burst(
                producer, receiver, tenant, args.burst, args.endpoints, args.timeout
            )
            spy.stop()
            total = args.burst * args.endpoints
            after = meter.snapshot()
            burst_cpu = meter.per_unit(before, after, total, "delivery")
            report.figure(
                "burst: webhooks CPU ms per delivery",
                meter.ms_per_unit(before, after, total)["webhooks"],
                "ms",
            )
            report.figure("burst: deliveries/s", total / elapsed, "1/s")
            report.timeline(
                "burst: delivered",
                [
                    at - min(a for a, _ in receiver.arrivals.values())
                    for at, _ in receiver.arrivals.values()
                ],
            )
            lines.append(
                f"burst: {args.burst:,} events x {args.endpoints} endpoint(s) = {total:,}"
                f" deliveries in {elapsed:.1f}s = {total / elapsed:,.0f} deliveries/s"
                f" (produced in {produced:.2f}s; {receiver.requests - total} repeated requests,"
                f" {receiver.bad_signatures} bad signatures in a sample)"
            )
            lines.append(f"burst: {burst_cpu}")

            tenant = await new_tenant(api, receiver, base, args.endpoints)
            before = meter.snapshot()
            spy.start("steady")
            latencies = [
                v * 1000
                for v in await steady(
                    producer,
                    receiver,
                    tenant,
                    args.rate,
                    args.seconds,
                    args.endpoints,
                    args.timeout,
                )
            ]
            spy.stop()
            steady_cpu = meter.per_unit(before, meter.snapshot(), len(latencies), "delivery")
            report.latency(f"steady {args.rate}/s: commit-to-delivery", latencies)
            lines.append(
                f"steady: {args.rate} events/s for {args.seconds:g}s x {args.endpoints}"
                f" endpoint(s): commit-to-delivery p50 {statistics.median(latencies):.1f} ms,"
                f" p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
                f" ({len(latencies):,} deliveries, {receiver.bad_signatures} bad signatures"
                f" in a sample)"
            )
            lines.append(f"steady: {steady_cpu}")
    finally:
        await producer.stop()
        await runner.cleanup()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=30000, help="events in the burst run")
    parser.add_argument("--rate", type=int, default=500, help="events/s in the steady run")
    parser.add_argument("--seconds", type=float, default=20, help="length of the steady run")
    parser.add_argument(
        "--endpoints", type=int, default=1, help="endpoints of the tenant, each gets every event"
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--py-spy", type=Path, help="sample the webhooks service with py-spy, into this directory"
    )
    args = parser.parse_args()
    report = Report("webhook_delivery")
    report.figure("endpoints", args.endpoints, "")
    with single_service("webhooks") as service:
        lines = asyncio.run(
            run(args, service.url, service.token, service.bootstrap, report, service.pid)
        )
    report.save([sys.executable, *sys.argv])
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, {host.platform()}; receiver, producer, webhooks,"
        " Kafka and PostgreSQL all on it"
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
