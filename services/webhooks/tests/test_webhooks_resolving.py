"""Name resolution with a deadline and bounded threads, against a lookup that blocks its
thread the way a slow DNS server does."""

import asyncio
import socket
import threading
import time
from typing import Any
from uuid import uuid4

import pytest

from webhooks.resolving import BoundedResolver, ResolutionTimeout, on_behalf_of


class SlowDns:
    """getaddrinfo that blocks its thread for names under `slow.` until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int, family: int, kind: int) -> list[tuple[Any, ...]]:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if host.startswith("slow."):
                self.released.wait(10)
            return [(socket.AF_INET, kind, 6, "", ("93.184.216.34", port))]
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def dns() -> Any:
    slow = SlowDns()
    yield slow
    slow.released.set()


async def test_a_lookup_past_its_deadline_fails_with_a_clear_reason(dns: SlowDns) -> None:
    resolver = BoundedResolver(total=4, per_tenant=2, timeout=0.3, lookup=dns)
    started = time.monotonic()
    with pytest.raises(ResolutionTimeout) as failed:
        await resolver.resolve("slow.example", 443)
    assert time.monotonic() - started < 2
    assert str(failed.value) == "resolving slow.example took longer than 0.3 s"
    assert isinstance(failed.value, OSError), "the connector reports it as a connection error"
    await resolver.close()


async def test_one_tenants_slow_names_cannot_take_every_resolver(dns: SlowDns) -> None:
    resolver = BoundedResolver(total=4, per_tenant=2, timeout=0.5, lookup=dns)
    hoarder, other = uuid4(), uuid4()

    async def lookup(tenant: Any, host: str) -> Any:
        with on_behalf_of(tenant):
            return await resolver.resolve(host, 443)

    slow = [asyncio.create_task(lookup(hoarder, f"slow.{n}.example")) for n in range(10)]
    await asyncio.sleep(0.1)
    assert dns.running == 2, "the tenant's share of threads, not all of them"
    found = await lookup(other, "fast.example")
    assert found[0]["host"] == "93.184.216.34" and found[0]["port"] == 443
    results = await asyncio.gather(*slow, return_exceptions=True)
    assert all(isinstance(r, ResolutionTimeout) for r in results)
    # The stuck threads still count: the tenant gets no more threads until they are free.
    assert dns.running == 2
    with pytest.raises(ResolutionTimeout):
        await lookup(hoarder, "fast.again.example")
    dns.released.set()
    assert (await lookup(hoarder, "fast.again.example"))[0]["host"] == "93.184.216.34"
    await resolver.close()


async def test_the_total_bounds_threads_across_tenants(dns: SlowDns) -> None:
    resolver = BoundedResolver(total=3, per_tenant=2, timeout=0.3, lookup=dns)

    async def lookup(n: int) -> Any:
        with on_behalf_of(uuid4()):
            return await resolver.resolve(f"slow.{n}.example", 80)

    results = await asyncio.gather(*(lookup(n) for n in range(12)), return_exceptions=True)
    assert all(isinstance(r, ResolutionTimeout) for r in results)
    assert dns.most_running == 3
    await resolver.close()
