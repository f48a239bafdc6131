"""Request and response bodies of fulfilment's routes."""

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from fulfilkit import contracts as c
from fulfilkit.models import StrictModel, Text
from fulfilment import events
from fulfilment.domain import Fulfillment
from fulfilment.usecases import Refusal

MAX_BATCH = 100
# Items of a batch are only checked for what makes them JSON text: an id no sale or
# fulfillment can have is reported on its own item, and the rest of the batch proceeds.
BatchItemId = Annotated[Text, Field(max_length=1000)]


class ShippingInitIn(StrictModel):
    sale_ids: Annotated[list[BatchItemId], Field(min_length=1, max_length=MAX_BATCH)]


# A fulfillment as every route shows it: the model of its events' data (version 2).
FulfillmentOut = c.FulfillmentSnapshot


class ShippingInitOut(BaseModel):
    fulfillments: list[FulfillmentOut]
    errors: list[dict[str, Any]]


Target = Literal["picking", "packed", "shipped", "delivered"]


class StatusIn(StrictModel):
    status: Target


class StatusUpdate(StrictModel):
    id: BatchItemId
    status: Target


def _same_fulfillment(text: str) -> UUID | str:
    try:
        return UUID(text)
    except ValueError:
        return text


class StatusUpdatesIn(StrictModel):
    updates: Annotated[list[StatusUpdate], Field(min_length=1, max_length=MAX_BATCH)]

    @field_validator("updates")
    @classmethod
    def _each_once(cls, updates: list[StatusUpdate]) -> list[StatusUpdate]:
        if len({_same_fulfillment(u.id) for u in updates}) != len(updates):
            raise ValueError("each fulfillment may appear only once")
        return updates


class StatusUpdatesOut(BaseModel):
    fulfillments: list[FulfillmentOut]
    errors: list[dict[str, Any]]


def fulfillment_out(f: Fulfillment) -> FulfillmentOut:
    return events.snapshot(f)


def refusal_out(refusal: Refusal, item_field: str) -> dict[str, Any]:
    """An item of a batch's `errors`: the item under `item_field`, its code and detail."""
    return {
        item_field: refusal.item,
        "code": refusal.code,
        "detail": refusal.detail,
        **refusal.extra,
    }
