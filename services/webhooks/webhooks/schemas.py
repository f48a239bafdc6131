"""Request and response models of the routes under /api/v1/webhooks, and how the use cases'
results map onto them."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Header
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from fulfilkit.contracts import FulfillmentStatus, InboundOrderStatus, SaleStatus
from fulfilkit.models import AwareTimestamp, Bool, StrictModel, Text
from webhooks.domain import (
    MASKED,
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointChanges,
    EndpointStats,
    Filters,
    NewEndpoint,
    header_name_error,
    header_value_error,
    headers_error,
    masked_headers,
    normalize_patterns,
    pattern_error,
)
from webhooks.urls import shape_error


def _valid_url(url: str) -> str:
    if error := shape_error(url):
        raise ValueError(error)
    return url


def _valid_pattern(pattern: str) -> str:
    if error := pattern_error(pattern):
        raise ValueError(error)
    return pattern


def _valid_header_name(name: str) -> str:
    if error := header_name_error(name):
        raise ValueError(error)
    return name


def _valid_header_value(value: str) -> str:
    if error := header_value_error(value):
        raise ValueError(error)
    return value


def _valid_headers(headers: dict[str, str]) -> dict[str, str]:
    if error := headers_error(headers):
        raise ValueError(error)
    return headers


WebhookUrl = Annotated[str, Field(max_length=2048), AfterValidator(_valid_url)]
EventTypes = Annotated[
    list[Annotated[str, AfterValidator(_valid_pattern)]],
    Field(min_length=1, max_length=100),
    AfterValidator(normalize_patterns),
]
CustomHeaders = Annotated[
    dict[
        Annotated[str, AfterValidator(_valid_header_name)],
        Annotated[str, AfterValidator(_valid_header_value)],
    ],
    AfterValidator(_valid_headers),
]


Description = Annotated[Text, Field(max_length=1000)]


def _deduplicated(statuses: list[str]) -> list[str]:
    return list(dict.fromkeys(statuses))


class SaleStatusFilter(StrictModel):
    status: Annotated[list[SaleStatus], Field(min_length=1), AfterValidator(_deduplicated)] = Field(
        description="Statuses the sale moved to that are delivered; others are not."
    )


class SaleEditFilter(StrictModel):
    status: Annotated[list[SaleStatus], Field(min_length=1), AfterValidator(_deduplicated)] = Field(
        description="Statuses the sale is in after the edit that are delivered (an edit of its"
        " lines or location makes it `awaiting_stock`); others are not."
    )


class FulfillmentStatusFilter(StrictModel):
    status: Annotated[
        list[FulfillmentStatus], Field(min_length=1), AfterValidator(_deduplicated)
    ] = Field(description="Statuses the fulfillment moved to that are delivered; others are not.")


class InboundOrderStatusFilter(StrictModel):
    status: Annotated[
        list[InboundOrderStatus], Field(min_length=1), AfterValidator(_deduplicated)
    ] = Field(description="Statuses the inbound order moved to that are delivered; others are not.")


class EndpointFilters(StrictModel):
    """Per event type, which of its events the endpoint receives. Only the types below can be
    filtered; an event type without a filter is delivered whole (as `event_types` selects)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_by_name=False)

    sale_status_changed: SaleStatusFilter | None = Field(default=None, alias="sale.status_changed")
    sale_updated: SaleEditFilter | None = Field(default=None, alias="sale.updated")
    fulfillment_status_changed: FulfillmentStatusFilter | None = Field(
        default=None, alias="fulfillment.status_changed"
    )
    inbound_order_status_changed: InboundOrderStatusFilter | None = Field(
        default=None, alias="inbound_order.status_changed"
    )


def _filters_dict(filters: EndpointFilters) -> Filters:
    return filters.model_dump(by_alias=True, exclude_none=True)


FILTERS_DESCRIPTION = (
    'Deliver only the status changes to the statuses named, e.g. `{"sale.status_changed":'
    ' {"status": ["shipped", "canceled"]}}`; `{}` filters nothing.'
)
# Validated as the model, kept (and dumped) as the plain dict it stands for.
EndpointFiltersIn = Annotated[
    EndpointFilters, AfterValidator(_filters_dict), PlainSerializer(dict, return_type=Filters)
]


class EndpointIn(StrictModel):
    def new(self) -> NewEndpoint:
        return NewEndpoint(**self.model_dump())

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: ["*"])
    headers: CustomHeaders = Field(default_factory=dict)
    description: Description = ""
    enabled: Bool = True
    ordered: Bool = Field(
        default=False,
        description="Deliver the events of one subject (one sale, one stock record) one at a"
        " time, in the order they happened; other subjects still go out in parallel.",
    )
    filters: EndpointFiltersIn = Field(default_factory=lambda: {}, description=FILTERS_DESCRIPTION)


class EndpointPatch(StrictModel):
    """Only the fields given are changed."""

    url: WebhookUrl = ""
    event_types: EventTypes = Field(default_factory=list)
    headers: CustomHeaders = Field(default_factory=dict)
    description: Description = ""
    enabled: Bool = True
    ordered: Bool = False
    filters: EndpointFiltersIn = Field(
        default_factory=lambda: {}, description=f"{FILTERS_DESCRIPTION} Replaces them whole."
    )

    def changes(self) -> EndpointChanges:
        return EndpointChanges(**self.model_dump(include=self.model_fields_set))


class EndpointStatsOut(BaseModel):
    """Health over the last 24 hours (the current hour and the 24 whole hours before it)."""

    success_rate: float | None = Field(
        description="Succeeded / finished deliveries, 0 to 1; null when none finished."
    )
    deliveries: int = Field(description="Deliveries that finished: succeeded or failed.")
    failed: int = Field(description="Deliveries that failed for good (retries exhausted).")
    last_failure_at: datetime | None = Field(description="The last failed attempt.")
    last_failure_status: int | None = Field(description="Its HTTP status; null: no answer.")
    last_failure_error: str | None = Field(description="Its error (timeout, refused...).")

    @classmethod
    def of(cls, stats: EndpointStats) -> "EndpointStatsOut":
        return cls(
            success_rate=stats.success_rate,
            deliveries=stats.deliveries,
            failed=stats.failed,
            last_failure_at=stats.last_failure_at,
            last_failure_status=stats.last_failure_status,
            last_failure_error=stats.last_failure_error,
        )


class EndpointOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    headers: dict[str, str] = Field(
        description=f"Custom header names; every value reads as {MASKED!r} (write-only)."
    )
    description: str
    enabled: bool
    ordered: bool
    filters: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description='Per event type, the statuses delivered (`{"sale.status_changed":'
        ' {"status": ["shipped"]}}`); `{}` when the endpoint filters nothing.',
    )
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = None
    stats: EndpointStatsOut | None = Field(
        default=None,
        description="Health over the last 24 hours; on `GET` of endpoints (one or a page).",
    )

    @classmethod
    def of(cls, endpoint: Endpoint, stats: EndpointStats | None = None) -> "EndpointOut":
        out = {**asdict(endpoint), "headers": masked_headers(endpoint.headers)}
        if stats is not None:
            out["stats"] = EndpointStatsOut.of(stats)
        return cls.model_validate(out)


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret; shown only in this response.")


class SecretRotated(BaseModel):
    id: UUID
    secret: str
    version: int
    previous_secret_expires_at: datetime | None


class PingResult(BaseModel):
    success: bool
    status_code: int | None
    latency_ms: int
    error: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> "PingResult":
        return cls(
            success=attempt.succeeded,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )


class RecoverIn(StrictModel):
    since: AwareTimestamp = Field(description="Failed deliveries created at or after this time.")
    until: AwareTimestamp | None = Field(default=None, description="... and before this one.")


class Recovered(BaseModel):
    recovered: int = Field(description="How many failed deliveries were queued again.")


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None = Field(description="The first KB of the endpoint's answer.")
    error: str | None
    request_headers: dict[str, str] | None = Field(
        default=None,
        description="The headers sent, without `webhook-signature`; custom header values"
        " read `***`. Null for attempts logged before headers were kept.",
    )


class DeliveryOut(BaseModel):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    subject: str
    occurred_at: datetime
    webhook_id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    payload: dict[str, Any]
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Delivery) -> "DeliveryOut":
        return cls.model_validate({**asdict(delivery), "payload": orjson.loads(delivery.payload)})


NO_STORE = "no-store"
# Declared for the OpenAPI and checked like `idempotency.check_key`; `idempotency.once` reads it.
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key (per tenant) answers the first request's result"
        " instead of acting again.",
    ),
]
