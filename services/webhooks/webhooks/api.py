"""Routes under /api/v1/webhooks: endpoints, their secrets, test pings, deliveries."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import asyncpg
import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field

from fulfilkit import idempotency
from fulfilkit.http.internal import TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import AwareTimestamp, Bool, StrictModel, Text
from fulfilkit.service import Pool
from webhooks import store
from webhooks.domain import (
    MASKED,
    TEST_EVENT_TYPE,
    DeliveryStatus,
    VersionConflict,
    active_secrets,
    can_resend,
    fingerprinted_endpoint,
    header_name_error,
    header_value_error,
    headers_error,
    masked_headers,
    merge_masked,
    normalize_patterns,
    pattern_error,
    recover_window_error,
    webhook_payload,
)
from webhooks.reseal import SEALER_KEY
from webhooks.resolving import on_behalf_of
from webhooks.sealing import SecretSealer
from webhooks.sender import SENDER_KEY, Sender
from webhooks.settings import WebhookSettings
from webhooks.signing import new_secret
from webhooks.store import SCHEMA
from webhooks.urls import UrlRefused, check_url, shape_error

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=StrictJsonRoute)


# --- request and response shapes -------------------------------------------------------------


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


class EndpointIn(StrictModel):
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


class EndpointPatch(StrictModel):
    """Only the fields given are changed."""

    url: WebhookUrl = ""
    event_types: EventTypes = Field(default_factory=list)
    headers: CustomHeaders = Field(default_factory=dict)
    description: Description = ""
    enabled: Bool = True
    ordered: Bool = False

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


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
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = None


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


class RecoverIn(StrictModel):
    since: AwareTimestamp = Field(description="Failed deliveries created at or after this time.")
    until: AwareTimestamp | None = Field(default=None, description="... and before this one.")


class Recovered(BaseModel):
    recovered: int = Field(description="How many failed deliveries were queued again.")


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None


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


# --- helpers -------------------------------------------------------------------------------


def _settings(request: Request) -> WebhookSettings:
    return request.app.state.settings


def _sender(request: Request) -> Sender:
    return request.app.state.runtime.extras[SENDER_KEY]


def _sealer(request: Request) -> SecretSealer:
    return request.app.state.runtime.extras[SEALER_KEY]


def _no_endpoint() -> Problem:
    return Problem("no_content", "No such webhook endpoint.")


def _no_delivery() -> Problem:
    return Problem("no_content", "No such webhook delivery.")


async def _check_url(request: Request, url: str, tenant: UUID) -> None:
    sender = _sender(request)
    try:
        with on_behalf_of(tenant):
            await check_url(url, sender.allow, sender.resolver)
    except UrlRefused as exc:
        raise Problem(
            "validation",
            "The URL cannot receive webhooks.",
            errors=[{"field": "/url", "message": str(exc), "in": "body"}],
        ) from None


def _endpoint(row: Any, response: Response | None = None) -> EndpointOut:
    if response is not None:
        response.headers["ETag"] = etag(row["version"])
    return EndpointOut.model_validate({**row, "headers": masked_headers(row["headers"])})


def _delivery(row: Any, attempts: list[Any]) -> DeliveryOut:
    return DeliveryOut.model_validate(
        {
            **dict(row),
            "payload": orjson.loads(row["payload"]),
            "attempts": [dict(a) for a in attempts],
        }
    )


async def _delivery_out(pool: Any, tenant: UUID, delivery_id: UUID) -> DeliveryOut:
    row = await store.get_delivery(pool, tenant, delivery_id)
    if row is None:
        raise _no_delivery()
    attempts = await store.attempts_of(pool, [delivery_id])
    return _delivery(row, attempts[delivery_id])


# --- endpoints -----------------------------------------------------------------------------


@router.post("/endpoints", status_code=201, response_model=EndpointCreated)
async def create_endpoint(
    body: EndpointIn,
    tenant: TenantId,
    pool: Pool,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The answer carries the signing secret: `Cache-Control: no-store`. A retry with the
    same `Idempotency-Key` answers the endpoint it created, with its secret."""
    if not await idempotency.has_answer(pool, SCHEMA, tenant, request):
        await _check_url(request, body.url, tenant)
    cap = _settings(request).webhook_max_endpoints_per_tenant
    sealer = _sealer(request)

    async def create(conn: asyncpg.Connection) -> Answer:
        if await store.lock_tenant_endpoints(conn, tenant) >= cap:
            raise Problem(
                "conflict",
                f"A tenant can have at most {cap} webhook endpoints;"
                " delete one before creating another.",
                limit=cap,
            )
        secret = new_secret()
        row = await store.create_endpoint(
            conn, tenant, uuid4(), body.model_dump(), sealer.seal(secret)
        )
        created = EndpointCreated(**_endpoint(row).model_dump(), secret=secret)
        return _with_secret(
            created,
            row["secret_generation"],
            201,
            {"Location": f"{request.url.path}/{row['id']}", "ETag": etag(row["version"])},
        )

    async def replay(conn: asyncpg.Connection, kept: Answer) -> Answer:
        return await _secret_again(conn, tenant, kept, EndpointCreated, sealer)

    return await idempotency.once(
        pool,
        SCHEMA,
        tenant,
        request,
        create,
        replay,
        fingerprinted_body=fingerprinted_endpoint(body.model_dump()),
    )


# The answers below carry a secret, which no idempotency record may hold: the record keeps the
# answer without it, plus the endpoint's secret generation (under this name, taken out again on
# a replay), and a replay adds the endpoint's stored secret while it is still that generation's.
KEPT_GENERATION = "secret_generation"


def _with_secret(
    out: EndpointCreated | SecretRotated,
    generation: int,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Answer:
    answer = Answer.json(out, status_code, headers={"Cache-Control": NO_STORE, **(headers or {})})
    kept = {**out.model_dump(mode="json", exclude={"secret"}), KEPT_GENERATION: generation}
    return replace(answer, kept=Answer(status_code, orjson.dumps(kept), answer.headers))


async def _secret_again(
    conn: asyncpg.Connection,
    tenant: UUID,
    kept: Answer,
    shape: type[EndpointCreated | SecretRotated],
    sealer: SecretSealer,
) -> Answer:
    fields = orjson.loads(kept.body)
    generation = fields.pop(KEPT_GENERATION)
    row = await store.get_endpoint(conn, tenant, UUID(fields["id"]))
    if row is None:
        raise Problem("conflict", "The endpoint of this Idempotency-Key has been deleted since.")
    if row["secret_generation"] != generation:
        raise Problem(
            "conflict",
            "The endpoint's secret has been rotated again since this"
            " Idempotency-Key's request; rotate with a new key for a new secret.",
        )
    out = shape.model_validate({**fields, "secret": sealer.open(row["secret"])})
    return Answer.json(out, kept.status_code, headers=kept.headers)


@router.get("/endpoints")
async def list_endpoints(
    tenant: TenantId, pool: Pool, page: Page, request: Request, response: Response
) -> dict[str, Any]:
    rows, total = await store.list_endpoints(pool, tenant, page.limit, page.offset)
    return paginated(request, response, page, [_endpoint(r) for r in rows], total)


@router.get("/endpoints/{endpoint_id}")
async def get_endpoint(
    endpoint_id: UUID, tenant: TenantId, pool: Pool, response: Response
) -> EndpointOut:
    row = await store.get_endpoint(pool, tenant, endpoint_id)
    if row is None:
        raise _no_endpoint()
    return _endpoint(row, response)


@router.patch("/endpoints/{endpoint_id}")
async def update_endpoint(
    endpoint_id: UUID,
    body: EndpointPatch,
    tenant: TenantId,
    pool: Pool,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> EndpointOut:
    expected = expected_version(if_match)
    changes = body.changes()
    if "url" in changes:
        await _check_url(request, changes["url"], tenant)
    try:
        async with pool.acquire() as conn, conn.transaction():
            if MASKED in changes.get("headers", {}).values():
                changes["headers"] = await _unmasked(conn, tenant, endpoint_id, changes["headers"])
            row = await store.update_endpoint(conn, tenant, endpoint_id, changes, expected)
    except VersionConflict as exc:
        raise Problem("conflict", str(exc)) from None
    if row is None:
        raise _no_endpoint()
    return _endpoint(row, response)


async def _unmasked(
    conn: Any, tenant: UUID, endpoint_id: UUID, given: dict[str, str]
) -> dict[str, str]:
    current = await store.get_endpoint(conn, tenant, endpoint_id)
    if current is None:
        raise _no_endpoint()
    try:
        return merge_masked(given, current["headers"])
    except KeyError as missing:
        raise Problem(
            "validation",
            "A masked header value can only keep a value already stored.",
            errors=[
                {
                    "field": f"/headers/{missing.args[0]}",
                    "in": "body",
                    "message": f"no stored value of {missing.args[0]!r} to keep",
                }
            ],
        ) from None


@router.delete("/endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: UUID, tenant: TenantId, pool: Pool) -> Response:
    if not await store.delete_endpoint(pool, tenant, endpoint_id):
        raise _no_endpoint()
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    endpoint_id: UUID,
    tenant: TenantId,
    pool: Pool,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The answer carries the new secret: `Cache-Control: no-store`. A retry with the same
    `Idempotency-Key` answers the secret that rotation produced, without rotating again."""
    overlap = timedelta(seconds=_settings(request).webhook_secret_overlap_seconds)
    sealer = _sealer(request)

    async def rotate(conn: asyncpg.Connection) -> Answer:
        secret = new_secret()
        row = await store.rotate_secret(conn, tenant, endpoint_id, sealer.seal(secret), overlap)
        if row is None:
            raise _no_endpoint()
        rotated = SecretRotated(
            id=row["id"],
            secret=secret,
            version=row["version"],
            previous_secret_expires_at=row["previous_secret_expires_at"],
        )
        return _with_secret(rotated, row["secret_generation"], 200)

    async def replay(conn: asyncpg.Connection, kept: Answer) -> Answer:
        return await _secret_again(conn, tenant, kept, SecretRotated, sealer)

    # The request has no body to speak of: the endpoint in the path is all that counts.
    return await idempotency.once(
        pool, SCHEMA, tenant, request, rotate, replay, fingerprinted_body=b""
    )


@router.post("/endpoints/{endpoint_id}/test")
async def test_endpoint(
    endpoint_id: UUID, tenant: TenantId, pool: Pool, request: Request
) -> PingResult:
    """Send a signed `webhook.test` ping now and report how the endpoint answered."""
    row = await store.get_endpoint(pool, tenant, endpoint_id)
    if row is None:
        raise _no_endpoint()
    now = datetime.now(UTC)
    sealer = _sealer(request)
    secrets = active_secrets(
        sealer.open(row["secret"]),
        sealer.open_optional(row["previous_secret"]),
        row["previous_secret_expires_at"],
        now,
    )
    body = webhook_payload(TEST_EVENT_TYPE, now, {"endpoint_id": str(endpoint_id)})
    attempt = await _sender(request).post(
        row["url"], dict(row["headers"]), secrets, f"msg_test_{uuid4().hex}", body, tenant
    )
    return PingResult(
        success=attempt.succeeded,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
    )


# --- deliveries ----------------------------------------------------------------------------


@router.get("/endpoints/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: UUID,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    request: Request,
    response: Response,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    event_type: Annotated[Text | None, Query(max_length=200)] = None,
    subject: Annotated[Text | None, Query(max_length=500)] = None,
    event_id: Annotated[UUID | None, Query()] = None,
    since: Annotated[AwareTimestamp | None, Query(description="created at or after")] = None,
    until: Annotated[AwareTimestamp | None, Query(description="created before")] = None,
) -> dict[str, Any]:
    """Newest first, each with its attempts; filters combine."""
    if await store.get_endpoint(pool, tenant, endpoint_id) is None:
        raise _no_endpoint()
    where = store.DeliveryFilter(status, event_type, subject, event_id, since, until)
    rows, total = await store.list_deliveries(
        pool, tenant, endpoint_id, where, page.limit, page.offset
    )
    attempts = await store.attempts_of(pool, [r["id"] for r in rows])
    items = [_delivery(r, attempts[r["id"]]) for r in rows]
    return paginated(request, response, page, items, total)


@router.get("/deliveries/{delivery_id}")
async def get_delivery(delivery_id: UUID, tenant: TenantId, pool: Pool) -> DeliveryOut:
    return await _delivery_out(pool, tenant, delivery_id)


@router.post("/deliveries/{delivery_id}/resend", status_code=202)
async def resend_delivery(delivery_id: UUID, tenant: TenantId, pool: Pool) -> DeliveryOut:
    """Queue a finished delivery again, with a fresh retry schedule and the same webhook-id."""
    async with pool.acquire() as conn, conn.transaction():
        current = await store.lock_delivery(conn, tenant, delivery_id)
        if current is None:
            raise _no_delivery()
        if not can_resend(current["status"]):
            raise Problem("conflict", "The delivery is still pending; it will be sent.")
        await store.requeue_delivery(conn, delivery_id)
    return await _delivery_out(pool, tenant, delivery_id)


@router.post("/endpoints/{endpoint_id}/recover", status_code=202)
async def recover_deliveries(
    endpoint_id: UUID, body: RecoverIn, tenant: TenantId, pool: Pool
) -> Recovered:
    """Queue again every failed delivery of the endpoint created since `since` (and before
    `until`), each with a fresh retry schedule and its webhook-id unchanged."""
    if error := recover_window_error(body.since, body.until, datetime.now(UTC)):
        raise Problem(
            "validation",
            "Nothing can be recovered in that window.",
            errors=[{"field": "/since", "message": error, "in": "body"}],
        )
    async with pool.acquire() as conn, conn.transaction():
        if await store.get_endpoint(conn, tenant, endpoint_id) is None:
            raise _no_endpoint()
        count = await store.recover_failed(conn, tenant, endpoint_id, body.since, body.until)
    return Recovered(recovered=count)
