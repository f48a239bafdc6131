"""What the gateway's API-version middleware costs a request: the version check and the
`API-Version` header (`gateway.versions`) around an ASGI app that answers at once, called
straight through ASGI (no server, no socket), beside that app alone; without a version
header, with one, and with all three.

    python bench/api_versions.py [--requests 50000] [--rounds 5]

No infrastructure needed. Prints CPU microseconds per request (best of `--rounds`).
"""

import argparse
import asyncio
import platform as host
import shlex
import sys
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.versions import ApiVersionCheckMiddleware, ApiVersionHeaderMiddleware

# What a forwarded request typically carries besides the version headers.
COMMON = [
    (b"host", b"api.example"),
    (b"accept", b"application/json"),
    (b"authorization", b"Bearer fk_" + b"x" * 43),
    (b"content-type", b"application/json"),
    (b"user-agent", b"integration/1.0"),
    (b"x-request-id", b"7f9c2d1e"),
]


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request(target: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/sales",
        "raw_path": b"/api/v1/sales",
        "query_string": b"",
        "headers": [*COMMON, *headers],
    }
    started = time.process_time()
    for _ in range(n):
        await target(dict(scope), receive, send)
    return (time.process_time() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"$ python bench/api_versions.py {shlex.join(sys.argv[1:])}")
    print(f"Python {host.python_version()} on {host.machine()}, best of {args.rounds} rounds")
    versioned = ApiVersionHeaderMiddleware(ApiVersionCheckMiddleware(answer))
    cases: list[tuple[str, Any, list[tuple[bytes, bytes]]]] = [
        ("app alone", answer, []),
        ("with both middleware, no version header", versioned, []),
        ("with both middleware, Accept-Version: 1", versioned, [(b"accept-version", b"1")]),
        (
            "with both middleware, all three headers",
            versioned,
            [
                (b"x-api-version", b"v1"),
                (b"accept-version", b"1"),
                (b"x-oakra-api-version", b"v1"),
            ],
        ),
    ]
    for name, target, headers in cases:
        results = [await per_request(target, headers, args.requests) for _ in range(args.rounds)]
        print(f"{name:45} {min(results):6.2f} us")


if __name__ == "__main__":
    asyncio.run(main())
