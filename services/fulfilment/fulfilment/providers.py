"""Shipping-provider adapters. Real carriers plug in behind the same interface."""

from typing import Protocol

import asyncpg

from fulfilment.domain import tracking_number


class ShippingProvider(Protocol):
    name: str

    async def allocate(self, conn: asyncpg.Connection, count: int) -> list[str]:
        """Unique tracking numbers for `count` new fulfillments."""
        ...


class BuiltinProvider:
    """Allocates numbers from a database sequence: unique, gap-tolerant, no network call."""

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self._prefix = prefix

    async def allocate(self, conn: asyncpg.Connection, count: int) -> list[str]:
        serials = await conn.fetch(
            "SELECT nextval('fulfilment.tracking_numbers') AS n FROM generate_series(1, $1)",
            count,
        )
        return [tracking_number(self._prefix, r["n"]) for r in serials]


BUILTIN: tuple[ShippingProvider, ...] = (
    BuiltinProvider("fulfil-post", "FP"),
    BuiltinProvider("fulfil-freight", "FF"),
)
PROVIDERS: dict[str, ShippingProvider] = {p.name: p for p in BUILTIN}
