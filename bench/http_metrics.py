"""What the HTTP metrics cost a request: the same service app (`create_service`, every
middleware of a real service) answering the same route straight through ASGI, with and
without `HttpMetricsMiddleware` and its `RouteNamer`; and what one scrape of `/metrics`
costs once the registry holds the series of a busy service. No infrastructure needed.

    python bench/http_metrics.py [--requests 20000] [--rounds 5]
"""

import argparse
import asyncio
import os
import platform as host
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from fulfilkit.metrics import HttpMetricsMiddleware, RouteNamer
from fulfilkit.service import ServiceDefinition, create_service
from fulfilkit.settings import ServiceSettings

router = APIRouter()


@router.get("/api/v1/sales/{sale_id}")
async def get_sale(sale_id: str) -> dict[str, str]:
    return {"sale_id": sale_id}


async def bare(scope: Any, receive: Any, send: Any) -> None:
    """An app that does nothing but answer, so that what wraps it is all that is measured."""
    scope["route"] = router.routes[0]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def app(name: str, metrics: bool) -> Any:
    made = create_service(
        ServiceDefinition(
            name=name,
            settings=ServiceSettings(environment="development"),
            migrations=Path(__file__).parent,
            routers=[router],
            uses_kafka=False,
        )
    )
    if not metrics:
        made.user_middleware = [
            m for m in made.user_middleware if m.cls not in (HttpMetricsMiddleware, RouteNamer)
        ]
    return made


async def call(target: Any, path: str) -> bytes:
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        body.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await target(scope, receive, send)
    return bytes(body)


async def per_request(target: Any, requests: int) -> float:
    """Microseconds per request, CPU time of this process."""
    for n in range(200):  # warm up: routes compiled, series created
        await call(target, f"/api/v1/sales/S-{n}")
    started = time.process_time()
    for n in range(requests):
        await call(target, f"/api/v1/sales/S-{n}")
    return (time.process_time() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    without, with_metrics = app("bench-plain", False), app("bench-metrics", True)
    wrapped = HttpMetricsMiddleware(RouteNamer(bare), "bench-bare")
    rounds: dict[str, list[float]] = {"plain": [], "metrics": [], "bare": [], "wrapped": []}
    for _ in range(args.rounds):  # interleaved, so that drift hits both alike
        rounds["plain"].append(await per_request(without, args.requests))
        rounds["metrics"].append(await per_request(with_metrics, args.requests))
        rounds["bare"].append(await per_request(bare, args.requests))
        rounds["wrapped"].append(await per_request(wrapped, args.requests))
    best = {name: min(values) for name, values in rounds.items()}  # the least disturbed
    # a busy service's registry: every route, method and status seen
    for status_route in range(60):
        await call(with_metrics, f"/api/v1/no-such-route-{status_route}")
    scrapes = []
    for _ in range(50):
        started = time.process_time()
        await call(with_metrics, "/metrics")
        scrapes.append((time.process_time() - started) * 1e3)
    size = len(await call(with_metrics, "/metrics"))

    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {host.python_version()}, {os.cpu_count()} CPUs")
    print(f"best of {args.rounds} rounds of {args.requests} requests, CPU time per request:")
    print(f"  a service's app without metrics: {best['plain']:.1f} us")
    print(f"  the same app with metrics:       {best['metrics']:.1f} us")
    print(f"  difference:                      {best['metrics'] - best['plain']:.1f} us")
    print(
        f"  the middleware alone:            {best['wrapped'] - best['bare']:.1f} us"
        f" ({best['bare']:.1f} us bare, {best['wrapped']:.1f} us wrapped)"
    )
    print(f"/metrics scrape:         {statistics.median(scrapes):.2f} ms, {size} bytes")


if __name__ == "__main__":
    asyncio.run(main())
