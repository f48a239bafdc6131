"""An operator scrapes every service's `/metrics` around one sale's lifecycle and sees the
counters of what happened move, and no id in any label."""

import re
from collections.abc import Iterable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.services import Platform
from fulfilkit import contracts as c
from tests.e2e.test_sales_lifecycle import pending_sale, shipped_fulfillment, status_of
from tests.e2e.webhook_tools import register, started
from tests.support import Client, eventually

SERVICES = ("gateway", "orders", "stock", "fulfilment", "webhooks")
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, platform: Platform, service: str) -> Samples:
    async with http.get(f"{platform[service].url}/metrics") as answer:
        assert answer.status == 200, service
        assert answer.headers["Content-Type"].startswith("text/plain"), answer.headers
        text = await answer.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape_all(http: aiohttp.ClientSession, platform: Platform) -> dict[str, Samples]:
    return {name: await scrape(http, platform, name) for name in SERVICES}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lb), v in samples.items() if n == name and wanted <= lb)


def moved(before: dict[str, Samples], after: dict[str, Samples], service: str) -> Any:
    def delta(name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    return delta


def label_values(scrapes: Iterable[Samples]) -> set[str]:
    return {v for samples in scrapes for _, labels in samples for _, v in labels}


async def test_one_lifecycle_moves_the_counters_of_every_service(
    platform: Platform, http: aiohttp.ClientSession, tenant: Client
):
    hook = await started()
    try:
        endpoint = await register(tenant, hook.url, event_types=["sale.*"])
        before = await scrape_all(http, platform)

        sale_id, sku, record = await pending_sale(tenant, quantity=1, stock=5)
        fulfillment = await shipped_fulfillment(tenant, sale_id)
        path = f"/fulfillment/fulfillments/{fulfillment['id']}/status"
        for status in ("picking", "packed", "shipped", "delivered"):
            assert (await tenant.post(path, {"status": status})).status == 200
        await eventually(
            lambda: status_of(tenant, sale_id), lambda s: s == "delivered", what="delivered"
        )
        await eventually(
            lambda: _sale_hooks(hook), lambda n: n >= 5, what="the sale's webhooks received"
        )

        def settled(after: dict[str, Samples]) -> bool:
            webhooks = moved(before, after, "webhooks")
            stock = moved(before, after, "stock")
            return (
                webhooks("fulfil_webhooks_delivery_attempts_total", outcome="succeeded") >= 5
                and stock("fulfil_stock_reservations_total", outcome="committed") >= 1
            )

        # counted after commit, read when scraped: poll until the last effects are counted
        after = await eventually(
            lambda: scrape_all(http, platform), settled, what="counters after the lifecycle"
        )
    finally:
        await hook.stop()

    gateway = moved(before, after, "gateway")
    assert gateway("fulfil_http_requests_total", route="/api/v1/sales", method="POST") == 1
    assert (
        gateway(
            "fulfil_http_requests_total",
            route="/api/v1/fulfillment/{path}",
            method="POST",
            status="200",
        )
        == 4 + 1
    )  # four status changes and the shipping init
    assert gateway("fulfil_http_request_duration_seconds_count", route="/api/v1/sales") == 1

    orders = moved(before, after, "orders")
    assert (
        orders("fulfil_http_requests_total", route="/api/v1/sales", method="POST", status="201")
        == 1
    )
    assert orders("fulfil_http_requests_total", route="/api/v1/sales/{sale_id}", method="GET") >= 1
    transitions = "fulfil_orders_sale_status_transitions_total"
    for previous, current in [
        ("awaiting_stock", "pending"),
        ("pending", "in_fulfillment"),
        ("in_fulfillment", "shipped"),
        ("shipped", "delivered"),
    ]:
        assert orders(transitions, from_status=previous, to_status=current) >= 1, current
    assert orders("fulfil_events_published_total", topic=c.SALES_TOPIC) >= 4
    for event_type in (c.STOCK_RESERVED, c.FULFILLMENT_STATUS_CHANGED):
        assert orders("fulfil_events_consumed_total", event_type=event_type) >= 1, event_type
    assert orders("faststream_received_messages_total", app_name="orders") >= 1
    assert orders("faststream_received_processed_messages_duration_seconds_count") >= 1
    assert orders("fulfil_consumer_batch_records_count", service="orders") >= 1

    stock = moved(before, after, "stock")
    assert stock("fulfil_stock_reservations_total", outcome="reserved") >= 1
    assert stock("fulfil_stock_reservations_total", outcome="committed") >= 1
    assert stock("fulfil_events_published_total", topic=c.STOCK_TOPIC) >= 1
    for event_type in (c.SALE_CREATED, c.SALE_STATUS_CHANGED):
        assert (
            stock("fulfil_events_consumed_total", topic=c.SALES_TOPIC, event_type=event_type) >= 1
        ), event_type

    fulfilment = moved(before, after, "fulfilment")
    assert fulfilment("fulfil_events_published_total", topic=c.FULFILLMENT_TOPIC) >= 1
    assert fulfilment("fulfil_http_requests_total", route="/api/v1/fulfillment/shipping/init") == 1

    webhooks = moved(before, after, "webhooks")
    assert webhooks("fulfil_webhooks_delivery_attempts_total", outcome="succeeded") >= 5
    assert webhooks("fulfil_events_consumed_total", topic=c.SALES_TOPIC) >= 5

    # the gauges are there, read from PostgreSQL and Kafka
    for service in ("orders", "stock", "fulfilment", "webhooks"):
        now = after[service]
        assert value(now, "fulfil_metrics_source_up", source="database") == 1, service
        assert value(now, "fulfil_metrics_source_up", source="kafka") == 1, service
        for gauge in ("fulfil_outbox_backlog_rows", "fulfil_outbox_oldest_age_seconds"):
            assert (gauge, frozenset({("service", service)})) in now, (service, gauge)
        assert ("fulfil_inbox_dead_letters", frozenset({("service", service)})) in now
        lag = [lb for n, lb in now if n == "fulfil_consumer_lag_messages"]
        assert lag and all(dict(lb)["group"] == service for lb in lag), service
        assert any(n == "fulfil_dlq_depth_messages" for n, _ in now), service
    assert ("fulfil_stock_backorder_queue_sales", frozenset({("service", "stock")})) in after[
        "stock"
    ]
    for gauge in (
        "fulfil_webhooks_pending_deliveries",
        "fulfil_webhooks_oldest_pending_age_seconds",
        "fulfil_webhooks_disabled_endpoints",
    ):
        assert (gauge, frozenset({("service", "webhooks")})) in after["webhooks"], gauge

    # labels are bounded: no tenant, sale, endpoint, fulfilment, record or event id anywhere
    values = label_values(after.values())
    ids = {tenant.tenant_id, sale_id, sku, record["id"], endpoint["id"], fulfillment["id"]}
    assert not values & ids
    assert not [v for v in values if UUID.search(v) or sale_id in v]


async def _sale_hooks(hook: Any) -> int:
    return len(hook.of_type(c.SALE_CREATED, c.SALE_STATUS_CHANGED))
