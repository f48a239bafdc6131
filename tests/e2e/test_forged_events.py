"""An event written straight to Kafka by someone other than the topic's owner is refused:
dead-lettered with the reason, with no effect, while real events flow on."""

from fulfilkit import contracts as c
from tests.e2e.sale_events import event, snapshot
from tests.e2e.stocking import sale_body, stocked_product
from tests.kafka_tools import produce, read_all
from tests.support import Client, eventually, ref


async def test_forged_sale_events_are_dead_lettered_with_the_reason_and_change_nothing(
    tenant: Client,
    infrastructure,
) -> None:
    bootstrap = infrastructure.bootstrap_servers
    sku, location, _ = await stocked_product(tenant, quantity=10)
    forged_sale = snapshot(location, (sku, 7))
    # a real sale.created in every respect but its source
    wrong_source = event(c.SALE_CREATED, tenant.tenant_id, forged_sale).model_copy(
        update={"source": "/attacker"}
    )
    # the owner's source, on the owner's topic, but a type that belongs elsewhere
    wrong_topic = event(c.SALE_CREATED, tenant.tenant_id, forged_sale).model_copy(
        update={"type": c.STOCK_RESERVED}
    )
    keys = {ref("forged-source").encode(): wrong_source, ref("forged-type").encode(): wrong_topic}
    await produce(bootstrap, c.SALES_TOPIC, [(k, e.to_bytes()) for k, e in keys.items()])

    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 2)))
    assert (created.status, created.body["status"]) == (201, "pending"), created

    async def refused_by_stock() -> dict[bytes, dict[str, bytes]]:
        records = await read_all(bootstrap, c.dlq_topic(c.SALES_TOPIC))
        return {
            r.key: dict(r.headers)
            for r in records
            if r.key in keys and dict(r.headers)["dlq-consumer"] == b"stock"
        }

    found = await eventually(
        refused_by_stock, lambda d: len(d) == 2, what="both forged events in sales.events.dlq"
    )
    [source_key, type_key] = keys
    assert found[source_key]["dlq-error"] == (
        b"foreign event: source '/attacker' is not '/orders', the owner of topic 'sales.events'"
    )
    assert found[type_key]["dlq-error"] == (
        b"foreign event: type 'stock.reserved' does not belong to topic 'sales.events'"
    )
    assert found[source_key]["dlq-topic"] == c.SALES_TOPIC.encode()
    # the webhooks service refuses them too
    await eventually(
        lambda: read_all(bootstrap, c.dlq_topic(c.SALES_TOPIC)),
        lambda records: (
            {r.key for r in records if dict(r.headers).get("dlq-consumer") == b"webhooks"}
            >= set(keys)
        ),
        what="webhooks dead-lettered both forged events",
    )

    record = (await tenant.get("/stock/stock-records", sku=sku)).body["data"][0]
    assert (record["quantity"], record["reserved"], record["available"]) == (10, 2, 8)
    assert (await tenant.get(f"/sales/{forged_sale.sale_id}")).status == 404
