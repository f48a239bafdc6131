"""Shipping-provider adapters. Real carriers plug in behind the same interface."""

from typing import Protocol

import asyncpg

from fulfilment.domain import tracking_number


class ShippingProvider(Protocol):
    name: str  # its code, the `shipping_provider_id` clients see and settings name
    display_name: str  # what people read: the `name` clients see

    async def allocate(self, conn: asyncpg.Connection, count: int) -> list[str]:
        """Unique tracking numbers for `count` new fulfillments."""
        ...


class BuiltinProvider:
    """Allocates numbers from a database sequence: unique, gap-tolerant, no network call."""

    def __init__(self, name: str, display_name: str, prefix: str) -> None:
        self.name = name
        self.display_name = display_name
        self._prefix = prefix

    async def allocate(self, conn: asyncpg.Connection, count: int) -> list[str]:
        serials = await conn.fetch(
            "SELECT nextval('fulfilment.tracking_numbers') AS n FROM generate_series(1, $1)",
            count,
        )
        return [tracking_number(self._prefix, r["n"]) for r in serials]


BUILTIN: tuple[ShippingProvider, ...] = (
    BuiltinProvider("fulfil-post", "Fulfil Post", "FP"),
    BuiltinProvider("fulfil-freight", "Fulfil Freight", "FF"),
)
PROVIDERS: dict[str, ShippingProvider] = {p.name: p for p in BUILTIN}


def display_name(code: str) -> str:
    """The provider's name for people; a code no provider has any more is its own name."""
    provider = PROVIDERS.get(code)
    return provider.display_name if provider is not None else code
