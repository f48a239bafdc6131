"""What the gateway's authentication costs a forwarded request once its key is cached: the
path check every request makes (`is_forwarded`), then `caller_of` finding the key (or an
OAuth2 access token) in the cache, and the scope check. In-process, no infrastructure:
run it in two checkouts (each with its own `.venv`) to compare them.

    python bench/gateway_auth.py [--requests 200000] [--rounds 7]
"""

import argparse
import asyncio
import platform as host
import shlex
import statistics
import sys
import time
from types import SimpleNamespace
from uuid import uuid4

from gateway import domain
from gateway.auth import KeyCache
from gateway.ratelimit import RateLimiter

try:
    from gateway.checks import caller_of
except ImportError:  # a checkout from before the OAuth2 clients kept it in forwarding
    from gateway.forwarding import caller_of  # type: ignore[attr-defined,no-redef]


async def measure(requests: int, rounds: int) -> list[float]:
    keys = KeyCache(pool=None, ttl_seconds=3600)  # type: ignore[arg-type]  # never asked
    secret = domain.API_KEY_PREFIX + "x" * 43
    caller = domain.Caller(uuid4(), uuid4(), frozenset({"sales:read"}))
    keys._found.put(domain.hash_api_key(secret), time.monotonic() + 3600, caller)
    resources = SimpleNamespace(keys=keys, unauthenticated=RateLimiter(5, 50))
    scope = {"client": ("127.0.0.1", 40000)}
    authorization = f"Bearer {secret}"
    path = "/api/v1/sales/S-1"
    per_request = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            assert domain.is_forwarded(path)
            found = await caller_of(resources, scope, authorization)  # type: ignore[arg-type]
            assert domain.required_scope("sales", "GET", path) in found.scopes
        per_request.append((time.perf_counter() - started) / requests * 1e6)
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.requests, args.rounds))
    print(
        f"$ python {shlex.join(sys.argv)}  ({host.python_implementation()} {host.python_version()})"
    )
    median = statistics.median(figures)
    print(
        f"gateway auth, cached key: min {min(figures):.2f} us, median {median:.2f} us"
        f" per request ({args.rounds} rounds of {args.requests})"
    )


if __name__ == "__main__":
    main()
