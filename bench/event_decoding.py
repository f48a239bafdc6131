"""What it costs a consumer to turn a Kafka record's bytes into an event it can use.

Compares, per event, on a realistic batch of sale, reservation and fulfillment events:
- `envelope`: the CloudEvents envelope only, `data` left a dict (consumers before typing);
- `envelope + data`: the envelope, then `data` validated into its contract model (two passes);
- `typed, one pass`: one discriminated union over every event type, so the bytes are parsed
  once, straight into the envelope and its typed `data` (what the consumers use);
- `orjson only`: bytes to dicts with no validation, the floor.

Needs no infrastructure: `python bench/event_decoding.py [--events N] [--rounds R]`.
"""

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson

sys.path[:0] = [str(Path(__file__).parents[1] / "libs")]

from fulfilkit import contracts as c  # noqa: E402
from fulfilkit.events import CloudEvent, utcnow  # noqa: E402
from fulfilkit.received import decode_event  # noqa: E402

TENANT = uuid4()


def _sale(status: str, lines: int) -> c.SaleStatusChanged:
    now = utcnow()
    return c.SaleStatusChanged(
        id=uuid4(),
        sale_id=f"S-{uuid4().hex[:8]}",
        status=status,  # type: ignore[arg-type]
        previous_status="pending",
        version=3,
        shop=c.Shop(channel="web", shop_name="Main street"),
        location_id="wh-1",
        lines=[c.SaleLine(sku=f"SKU-{i}", quantity=i + 1) for i in range(lines)],
        customer={"name": "Ada", "email": "ada@example.com"},
        shipping_address={"line1": "1 Main St", "city": "Springfield", "country": "US"},
        reservation=None,
        fulfillments=[],
        created_at=now,
        updated_at=now,
    )


def _reservation(sale: c.SaleStatusChanged) -> c.ReservationSnapshot:
    return c.ReservationSnapshot(
        id=uuid4(),
        sale=sale.id,
        sale_id=sale.sale_id,
        location_id=sale.location_id,
        status="active",
        lines=[
            c.ReservationLine(sku=ln.sku, quantity=ln.quantity, stock_record_id=uuid4())
            for ln in sale.lines
        ],
        version=1,
        updated_at=utcnow(),
    )


def _fulfillment(sale: c.SaleStatusChanged) -> c.FulfillmentSnapshot:
    return c.FulfillmentSnapshot(
        id=uuid4(),
        fulfillment_id=f"F-{uuid4().hex[:8]}",
        sale=c.FulfillmentSale(
            id=sale.id,
            shop=c.FulfillmentShop(id=uuid4(), channel="web", shop_name="Main"),
            sale_id=sale.sale_id,
            date_created=sale.created_at,
            status="in_fulfillment",
        ),
        location=c.FulfillmentLocation(name="Warehouse 1", location_id=sale.location_id),
        status="waiting_for_picking",
        shipping_provider=c.ShippingProvider(name="DHL", shipping_provider_id="dhl"),
        tracking_number="TRK123",
        is_bulky=False,
        date_created=utcnow(),
        sale_id=sale.sale_id,
        version=1,
    )


def sample(count: int) -> list[bytes]:
    """A mix like the sale flow's: per sale, a status change, a reservation, a fulfillment."""
    records: list[bytes] = []
    while len(records) < count:
        sale = _sale("in_fulfillment", lines=3)
        for type_, source, data in (
            (c.SALE_STATUS_CHANGED, "/orders", sale),
            (c.STOCK_RESERVED, "/stock", _reservation(sale)),
            (c.FULFILLMENT_CREATED, "/fulfilment", _fulfillment(sale)),
        ):
            event = c.make_event(
                source=source, type=type_, tenant_id=TENANT, subject="s", data=data
            )
            records.append(event.to_bytes())
    return records[:count]


def envelope_and_data(raw: bytes) -> Any:
    event = CloudEvent.from_bytes(raw)
    return c.DATA_MODEL_OF_TYPE[event.type].model_validate(event.data)


WAYS: dict[str, Callable[[bytes], Any]] = {
    "orjson only": orjson.loads,
    "envelope": CloudEvent.from_bytes,
    "envelope + data": envelope_and_data,
    "typed, one pass": decode_event,
}


def measure(way: Callable[[bytes], Any], records: list[bytes], rounds: int) -> list[float]:
    """Microseconds per event, one figure per round."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in records:
            way(raw)
        figures.append((time.perf_counter() - started) / len(records) * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    records = sample(args.events)
    print(f"$ python bench/event_decoding.py --events {args.events} --rounds {args.rounds}")
    print(f"python {platform.python_version()} on {platform.machine()},", end=" ")
    print(f"{len(records)} events, mean {statistics.mean(map(len, records)):.0f} bytes")
    for way in WAYS.values():  # warm up every path (pydantic builds validators lazily)
        measure(way, records[:1000], 1)
    print(f"{'decoding':<18}{'median us/event':>16}{'best':>8}{'events/s':>12}")
    for name, way in WAYS.items():
        figures = measure(way, records, args.rounds)
        median = statistics.median(figures)
        print(f"{name:<18}{median:>16.2f}{min(figures):>8.2f}{1e6 / median:>12,.0f}")


if __name__ == "__main__":
    main()
