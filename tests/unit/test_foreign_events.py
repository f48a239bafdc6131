"""Consumers refuse events that cannot come from the owner of their topic."""

import uuid

import pytest

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import foreign_event_reason


def event(type_: str, source: str) -> CloudEvent:
    return CloudEvent(source=source, type=type_, tenantid=uuid.uuid4(), subject="s", data={})


@pytest.mark.parametrize("type_", c.EVENT_TYPES)
def test_every_event_type_from_its_owner_on_its_topic_is_accepted(type_: str) -> None:
    topic = c.TOPIC_OF_TYPE[type_]
    assert foreign_event_reason(topic, event(type_, c.SOURCE_OF_TOPIC[topic])) is None


def test_every_topic_has_an_owner() -> None:
    assert set(c.SOURCE_OF_TOPIC) == set(c.DOMAIN_TOPICS)


@pytest.mark.parametrize(
    ("topic", "type_", "source", "reason"),
    [
        (
            c.STOCK_TOPIC,
            c.SALE_CREATED,
            "/orders",
            "foreign event: type 'sale.created' does not belong to topic 'stock.events'",
        ),
        (
            c.SALES_TOPIC,
            "sale.invented",
            "/orders",
            "foreign event: type 'sale.invented' does not belong to topic 'sales.events'",
        ),
        (
            c.SALES_TOPIC,
            c.SALE_STATUS_CHANGED,
            "/stock",
            "foreign event: source '/stock' is not '/orders', the owner of topic 'sales.events'",
        ),
        (
            c.SALES_TOPIC,
            c.SALE_CREATED,
            "/orders/",
            "foreign event: source '/orders/' is not '/orders', the owner of topic 'sales.events'",
        ),
        (
            "unknown.events",
            c.SALE_CREATED,
            "/orders",
            "foreign event: type 'sale.created' does not belong to topic 'unknown.events'",
        ),
    ],
)
def test_a_foreign_event_is_named_with_the_reason(
    topic: str, type_: str, source: str, reason: str
) -> None:
    assert foreign_event_reason(topic, event(type_, source)) == reason


def test_each_service_publishes_with_the_source_its_topic_expects() -> None:
    from fulfilment.events import SOURCE as FULFILMENT
    from orders.events import SOURCE as ORDERS
    from stock.events import SOURCE as STOCK
    from webhooks.domain import SOURCE as WEBHOOKS

    assert c.SOURCE_OF_TOPIC == {
        c.SALES_TOPIC: ORDERS,
        c.STOCK_TOPIC: STOCK,
        c.FULFILLMENT_TOPIC: FULFILMENT,
        c.WEBHOOKS_TOPIC: WEBHOOKS,
    }
