"""Sale events built and published by hand, to drive the stock service directly on Kafka."""

import uuid

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from tests.kafka_tools import produce
from tests.support import ref


def snapshot(
    location: str,
    *lines: tuple[str, int],
    status: str = "awaiting_stock",
    sale: uuid.UUID | None = None,
    sale_id: str | None = None,
) -> c.SaleSnapshot:
    now = utcnow()
    return c.SaleSnapshot(
        id=sale or uuid.uuid4(),
        sale_id=sale_id or ref("S"),
        status=status,
        version=1,  # type: ignore[arg-type]
        shop=c.Shop(channel="web", shop_name="t"),
        location_id=location,
        lines=[c.SaleLine(sku=sku, quantity=q) for sku, q in lines],
        created_at=now,
        updated_at=now,
    )


def event(type_: str, tenant_id: str, sale: c.SaleSnapshot) -> CloudEvent:
    return c.make_event(
        source="/orders",
        type=type_,
        tenant_id=uuid.UUID(tenant_id),
        subject=f"sale/{sale.id}",
        data=sale,
    )


def as_status(sale: c.SaleSnapshot, status: str) -> c.SaleStatusChanged:
    """The `sale.status_changed` (or `sale.canceled`) data of `sale` moving to `status`."""
    return c.SaleStatusChanged(
        **{
            **sale.model_dump(),
            "status": status,
            "version": sale.version + 1,
            "previous_status": sale.status,
        }
    )


async def publish(bootstrap: str, events: list[CloudEvent]) -> None:
    await produce(
        bootstrap,
        c.SALES_TOPIC,
        [(c.sale_key(e.tenantid, uuid.UUID(e.data["id"])).encode(), e.to_bytes()) for e in events],
    )
