"""Routes under /api/v1/webhooks: endpoints, their secrets, test pings, deliveries."""

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Query, Request, Response

from fulfilkit import idempotency
from fulfilkit.http.internal import TenantId
from fulfilkit.http.openapi import problems
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import AwareTimestamp, Text
from fulfilkit.service import Pool
from webhooks.domain import (
    DeliveryFilter,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    fingerprinted_endpoint,
)
from webhooks.resources import WebhookResources
from webhooks.schemas import (
    NO_STORE,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    IdempotencyKey,
    PingResult,
    Recovered,
    RecoverIn,
    SecretRotated,
)
from webhooks.store import SCHEMA
from webhooks.usecases import deliveries, endpoints

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=StrictJsonRoute)


def _endpoint(
    endpoint: Endpoint, response: Response | None = None, stats: EndpointStats | None = None
) -> EndpointOut:
    if response is not None:
        response.headers["ETag"] = etag(endpoint.version)
    return EndpointOut.of(endpoint, stats)


# --- endpoints -----------------------------------------------------------------------------


@router.post("/endpoints", status_code=201, response_model=EndpointCreated)
async def create_endpoint(
    body: EndpointIn,
    tenant: TenantId,
    pool: Pool,
    resources: WebhookResources,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The answer carries the signing secret: `Cache-Control: no-store`. A retry with the
    same `Idempotency-Key` answers the endpoint it created, with its secret."""
    if not await idempotency.has_answer(pool, SCHEMA, tenant, request):
        await endpoints.check_destination(resources, tenant, body.url)

    async def create(conn: asyncpg.Connection) -> Answer:
        created = await endpoints.create_endpoint(conn, resources, tenant, body.new())
        endpoint = created.endpoint
        out = EndpointCreated(**EndpointOut.of(endpoint).model_dump(), secret=created.secret)
        headers = {"Location": f"{request.url.path}/{endpoint.id}", "ETag": etag(endpoint.version)}
        return _with_secret(out, endpoint.secret_generation, 201, headers)

    async def replay(conn: asyncpg.Connection, kept: Answer) -> Answer:
        return await _secret_again(conn, resources, tenant, kept, EndpointCreated)

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
    resources: WebhookResources,
    tenant: UUID,
    kept: Answer,
    shape: type[EndpointCreated | SecretRotated],
) -> Answer:
    fields = orjson.loads(kept.body)
    generation = fields.pop(KEPT_GENERATION)
    secret = await endpoints.endpoint_secret(
        conn, resources, tenant, UUID(fields["id"]), generation
    )
    out = shape.model_validate({**fields, "secret": secret})
    return Answer.json(out, kept.status_code, headers=kept.headers)


@router.get("/endpoints")
async def list_endpoints(
    tenant: TenantId, pool: Pool, page: Page, request: Request, response: Response
) -> dict[str, Any]:
    """Oldest first, each with its `stats`: health over the last 24 hours."""
    found, total = await endpoints.list_endpoints(pool, tenant, page.limit, page.offset)
    stats = await endpoints.stats_of(pool, [e.id for e in found])
    items = [_endpoint(e, stats=stats[e.id]) for e in found]
    return paginated(request, response, page, items, total)


@router.get("/endpoints/{endpoint_id}")
async def get_endpoint(
    endpoint_id: UUID, tenant: TenantId, pool: Pool, response: Response
) -> EndpointOut:
    """The endpoint with its `stats`: health over the last 24 hours."""
    endpoint = await endpoints.get_endpoint(pool, tenant, endpoint_id)
    stats = await endpoints.stats_of(pool, [endpoint.id])
    return _endpoint(endpoint, response, stats[endpoint.id])


@router.patch("/endpoints/{endpoint_id}")
async def update_endpoint(
    endpoint_id: UUID,
    body: EndpointPatch,
    tenant: TenantId,
    pool: Pool,
    resources: WebhookResources,
    response: Response,
    if_match: IfMatch = None,
) -> EndpointOut:
    expected = expected_version(if_match)
    endpoint = await endpoints.update_endpoint(
        pool, resources, tenant, endpoint_id, body.changes(), expected
    )
    return _endpoint(endpoint, response)


@router.delete("/endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: UUID, tenant: TenantId, pool: Pool) -> Response:
    await endpoints.delete_endpoint(pool, tenant, endpoint_id)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    endpoint_id: UUID,
    tenant: TenantId,
    pool: Pool,
    resources: WebhookResources,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The answer carries the new secret: `Cache-Control: no-store`. A retry with the same
    `Idempotency-Key` answers the secret that rotation produced, without rotating again."""

    async def rotate(conn: asyncpg.Connection) -> Answer:
        rotated = await endpoints.rotate_secret(conn, resources, tenant, endpoint_id)
        endpoint = rotated.endpoint
        out = SecretRotated(
            id=endpoint.id,
            secret=rotated.secret,
            version=endpoint.version,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
        )
        return _with_secret(out, endpoint.secret_generation, 200)

    async def replay(conn: asyncpg.Connection, kept: Answer) -> Answer:
        return await _secret_again(conn, resources, tenant, kept, SecretRotated)

    # The request has no body to speak of: the endpoint in the path is all that counts.
    return await idempotency.once(
        pool, SCHEMA, tenant, request, rotate, replay, fingerprinted_body=b""
    )


@router.post("/endpoints/{endpoint_id}/test")
async def test_endpoint(
    endpoint_id: UUID, tenant: TenantId, pool: Pool, resources: WebhookResources
) -> PingResult:
    """Send a signed `webhook.test` ping now and report how the endpoint answered."""
    return PingResult.of(await endpoints.send_test(pool, resources, tenant, endpoint_id))


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
    where = DeliveryFilter(status, event_type, subject, event_id, since, until)
    found, total = await deliveries.list_deliveries(
        pool, tenant, endpoint_id, where, page.limit, page.offset
    )
    items = [DeliveryOut.of(d) for d in found]
    return paginated(request, response, page, items, total)


@router.get("/deliveries", responses=problems(404))
async def list_all_deliveries(
    tenant: TenantId,
    pool: Pool,
    page: Page,
    request: Request,
    response: Response,
    endpoint_id: Annotated[UUID | None, Query(description="One endpoint's only.")] = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    event_type: Annotated[Text | None, Query(max_length=200)] = None,
    subject: Annotated[
        Text | None,
        Query(
            max_length=500,
            description="The event's subject: `sale/<id>` (a sale's `id`, not its `sale_id`)"
            " for the sale's and its reservation's events.",
        ),
    ] = None,
    event_id: Annotated[UUID | None, Query()] = None,
    since: Annotated[AwareTimestamp | None, Query(description="created at or after")] = None,
    until: Annotated[AwareTimestamp | None, Query(description="created before")] = None,
) -> dict[str, Any]:
    """Deliveries across the tenant's endpoints, newest first, each with its attempts;
    filters combine (`subject=sale/<id>`: the deliveries of a sale's events)."""
    where = DeliveryFilter(status, event_type, subject, event_id, since, until)
    found, total = await deliveries.list_tenant_deliveries(
        pool, tenant, endpoint_id, where, page.limit, page.offset
    )
    items = [DeliveryOut.of(d) for d in found]
    return paginated(request, response, page, items, total)


@router.get("/deliveries/{delivery_id}")
async def get_delivery(delivery_id: UUID, tenant: TenantId, pool: Pool) -> DeliveryOut:
    return DeliveryOut.of(await deliveries.get_delivery(pool, tenant, delivery_id))


@router.post("/deliveries/{delivery_id}/resend", status_code=202)
async def resend_delivery(delivery_id: UUID, tenant: TenantId, pool: Pool) -> DeliveryOut:
    """Queue a finished delivery again, with a fresh retry schedule and the same webhook-id."""
    return DeliveryOut.of(await deliveries.resend_delivery(pool, tenant, delivery_id))


@router.post("/endpoints/{endpoint_id}/recover", status_code=202)
async def recover_deliveries(
    endpoint_id: UUID, body: RecoverIn, tenant: TenantId, pool: Pool
) -> Recovered:
    """Queue again every failed delivery of the endpoint created since `since` (and before
    `until`), each with a fresh retry schedule and its webhook-id unchanged."""
    count = await deliveries.recover_deliveries(pool, tenant, endpoint_id, body.since, body.until)
    return Recovered(recovered=count)
