"""Name resolution that a slow DNS server cannot take over.

`getaddrinfo` blocks a thread until the system resolver gives up, which can take far longer
than any delivery may wait. So lookups run on threads of their own (not the loop's default
executor), at most `total` at once and at most `per_tenant` for one tenant, and each has a
deadline: waiting for a slot counts against it. A lookup that runs past its deadline fails
the attempt (to be retried on the schedule) but keeps its slot until its thread is free
again, so stuck threads are counted and can never pile up beyond the bounds.
"""

import asyncio
import contextlib
import contextvars
import errno
import functools
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from aiohttp.abc import AbstractResolver, ResolveResult

Lookup = Callable[..., list[tuple[Any, ...]]]

_tenant: contextvars.ContextVar[UUID | None] = contextvars.ContextVar(
    "webhooks_resolving_tenant", default=None
)


@contextlib.contextmanager
def on_behalf_of(tenant: UUID | None) -> Iterator[None]:
    """Lookups started inside count against `tenant`'s share."""
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)


class ResolutionTimeout(OSError):
    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(errno.ETIMEDOUT, f"resolving {host} took longer than {seconds:g} s")

    def __str__(self) -> str:
        return str(self.strerror)


class _Slots:
    """A counting bound per key, created on first use and forgotten when idle."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._held: dict[Any, int] = {}
        self._semaphores: dict[Any, asyncio.Semaphore] = {}

    async def acquire(self, key: Any) -> None:
        semaphore = self._semaphores.setdefault(key, asyncio.Semaphore(self._size))
        self._held[key] = self._held.get(key, 0) + 1
        try:
            await semaphore.acquire()
        except BaseException:
            self._forget(key)
            raise

    def release(self, key: Any) -> None:
        self._semaphores[key].release()
        self._forget(key)

    def _forget(self, key: Any) -> None:
        self._held[key] -= 1
        if not self._held[key]:
            del self._held[key], self._semaphores[key]


class BoundedResolver(AbstractResolver):
    def __init__(
        self, total: int, per_tenant: int, timeout: float, lookup: Lookup = socket.getaddrinfo
    ) -> None:
        self._timeout = timeout
        self._lookup = lookup
        self._executor = ThreadPoolExecutor(total, thread_name_prefix="webhooks-dns")
        self._total = asyncio.Semaphore(total)
        self._tenants = _Slots(per_tenant)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self.getaddrinfo(host, port, family)
        results: list[ResolveResult] = []
        for found_family, _, proto, _, address in infos:
            if found_family == socket.AF_INET6 and len(address) < 3:
                continue  # IPv6 not supported by this Python build
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address[0]),
                    port=int(address[1]),
                    family=found_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise OSError(socket.EAI_NONAME, f"{host} has no address")
        return results

    async def getaddrinfo(
        self, host: str, port: int = 0, family: int = socket.AF_UNSPEC
    ) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        tenant = _tenant.get()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._tenants.acquire(tenant)
                try:
                    await self._total.acquire()
                except BaseException:
                    self._tenants.release(tenant)
                    raise
        except TimeoutError:
            raise ResolutionTimeout(host, self._timeout) from None
        lookup = functools.partial(self._lookup, host, port, family, socket.SOCK_STREAM)
        future = loop.run_in_executor(self._executor, lookup)

        def free(done: asyncio.Future[list[tuple[Any, ...]]]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: a late failure is nobody's to report
            self._total.release()
            self._tenants.release(tenant)

        future.add_done_callback(free)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(future)
        except TimeoutError:
            raise ResolutionTimeout(host, self._timeout) from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
