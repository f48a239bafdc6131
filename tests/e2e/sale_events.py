"""Sale events built and published by hand, to drive the stock service directly on Kafka."""

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

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


async def consumed(
    bootstrap: str, group: str = "stock", topic: str = c.SALES_TOPIC, timeout: float = 30.0
) -> None:
    """Wait until `group`'s consumer has applied `topic` as far as it reaches now: its
    committed offsets (committed only after the batch applied) at the topic's ends. What a
    consumer applies without an inbox row (stock's sale events) shows no other sign of a
    replay that changed nothing."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await reader.start()
    await admin.start()
    try:
        # From the admin client: a consumer that subscribes to nothing need not know the
        # topic's partitions (`topics()` does not add them to its metadata), and waiting on
        # no partition would return at once.
        [described] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not partitions:
            raise AssertionError(f"{topic} has no partitions: {described}")
        ends = await reader.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            behind = {
                tp: end
                for tp, end in ends.items()
                if end > 0 and (tp not in committed or committed[tp].offset < end)
            }
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} did not consume {topic} to {behind}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
        await reader.stop()
