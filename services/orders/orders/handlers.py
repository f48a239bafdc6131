"""Kafka-side entry points: reservation and fulfilment outcomes and new products in, sale
changes out."""

from typing import Any

from fulfilkit import contracts as c
from fulfilkit.inbox import RecordingApply
from fulfilkit.service import Consumer, Runtime
from orders import usecases


def outcomes(runtime: Runtime[Any]) -> RecordingApply:
    return usecases.apply_outcomes


CONSUMERS = [
    Consumer(
        topics=[c.STOCK_TOPIC, c.FULFILLMENT_TOPIC],
        event_types=[
            c.STOCK_RESERVED,
            c.STOCK_RESERVATION_FAILED,
            c.STOCK_RELEASED,
            c.STOCK_COMMITTED,
            c.FULFILLMENT_CREATED,
            c.FULFILLMENT_STATUS_CHANGED,
            c.PRODUCT_CREATED,  # orders' copy of the catalogue
        ],
        apply=outcomes,
        records_inbox=True,  # with the lock of the sales, in one statement
    ),
]
