"""The dead letters of a service with consumers, over HTTP: internal routes only the gateway
may call (its admin API forwards `/api/v1/admin/dead-letters` here), and the bodies they
answer, which the gateway's API document shows."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from fulfilkit import deadletters as store
from fulfilkit.http.internal import verify_caller
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute

PREFIX = "/internal/dead-letters"
MAX_ID = 2**63 - 1
DeadLetterId = Annotated[int, Path(ge=1, le=MAX_ID, description="The dead letter's id.")]
FilterText = Annotated[str | None, Query(max_length=300)]


class DeadLetterOut(BaseModel):
    id: int
    consumer: str = Field(description="The consumer (the service) that gave up on it.")
    event_id: UUID | None = Field(description="Null when the record was not a readable event.")
    event_type: str | None
    topic: str = Field(description="The topic it was consumed from.")
    partition: int
    offset: int
    key: str | None
    error: str = Field(description="Why the consumer gave up.")
    replayable: bool = Field(
        description="False for a record that would be refused again (not an event of the"
        " topic, or unreadable): purge it."
    )
    failed_at: datetime
    state: Literal["dead", "replayed"]
    replayed_at: datetime | None


class DeadLetterDetailOut(DeadLetterOut):
    value: str | None = Field(description="The record's value, when it is UTF-8 text.")
    value_base64: str = Field(description="The record's value, byte for byte.")
    headers: list[dict[str, str]] = Field(
        description="The record's headers, in order: each a `key` and either `value` (UTF-8"
        " text) or `value_base64`."
    )


class CursorPagination(BaseModel):
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DeadLetterPageOut(BaseModel):
    data: list[DeadLetterOut]
    pagination: CursorPagination


class ReplayMany(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=store.MAX_IDS
    )


class ReplayResult(BaseModel):
    id: int
    outcome: Literal["replayed", "already_replayed", "not_replayable", "not_found"]
    detail: str


class ReplayResults(BaseModel):
    results: list[ReplayResult] = Field(description="One per id, in the order given.")


class PurgeRequest(BaseModel):
    """Either `ids`, or `older_than`: every dead letter that failed before that time."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, min_length=1, max_length=store.MAX_IDS
    )
    older_than: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "PurgeRequest":
        if (self.ids is None) == (self.older_than is None):
            raise ValueError("give either ids or older_than")
        return self


class Purged(BaseModel):
    purged: int = Field(description="How many dead letters were deleted.")


async def gateway_only(request: Request) -> None:
    verify_caller(request, frozenset({"gateway"}))


router = APIRouter(
    prefix=PREFIX,
    include_in_schema=False,
    dependencies=[Depends(gateway_only)],
    route_class=StrictJsonRoute,
)


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


@router.get("")
async def list_dead_letters(
    request: Request,
    consumer: FilterText = None,
    topic: FilterText = None,
    type: FilterText = None,
    state: Literal["dead", "replayed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=store.MAX_LIMIT)] = store.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> DeadLetterPageOut:
    runtime = _runtime(request)
    try:
        page = await store.list_dead_letters(
            runtime.pool,
            runtime.schema,
            consumer=consumer,
            topic=topic,
            event_type=type,
            state=state,
            limit=limit,
            cursor=cursor,
        )
    except store.InvalidCursor as exc:
        raise Problem(
            "validation",
            "The cursor is not one this API gave; start again without it.",
            errors=[{"field": "/cursor", "message": str(exc), "in": "query"}],
        ) from None
    return DeadLetterPageOut.model_validate(
        {
            "data": [vars(d) for d in page.data],
            "pagination": {"limit": limit, "next_cursor": page.next_cursor},
        }
    )


@router.get("/{dead_letter_id}")
async def show_dead_letter(request: Request, dead_letter_id: DeadLetterId) -> DeadLetterDetailOut:
    runtime = _runtime(request)
    found = await store.get_dead_letter(runtime.pool, runtime.schema, dead_letter_id)
    if found is None:
        raise Problem("no_content", f"No dead letter {dead_letter_id} in {runtime.schema}.")
    return DeadLetterDetailOut.model_validate(vars(found))


@router.post("/replay")
async def replay_dead_letters(request: Request, body: ReplayMany) -> ReplayResults:
    runtime = _runtime(request)
    outcomes = await store.replay(runtime.pool, runtime.schema, body.ids)
    return ReplayResults(results=[ReplayResult.model_validate(vars(o)) for o in outcomes])


@router.post("/purge")
async def purge_dead_letters(request: Request, body: PurgeRequest) -> Purged:
    runtime = _runtime(request)
    purged = await store.purge(
        runtime.pool, runtime.schema, ids=body.ids, older_than=body.older_than
    )
    return Purged(purged=purged)


@router.post("/{dead_letter_id}/replay")
async def replay_dead_letter(request: Request, dead_letter_id: DeadLetterId) -> DeadLetterOut:
    runtime = _runtime(request)
    [outcome] = await store.replay(runtime.pool, runtime.schema, [dead_letter_id])
    if outcome.outcome == "not_found":
        raise Problem("no_content", outcome.detail)
    if outcome.outcome != "replayed":
        raise Problem("conflict", outcome.detail, outcome=outcome.outcome)
    found = await store.get_dead_letter(runtime.pool, runtime.schema, dead_letter_id)
    assert found is not None  # replayed dead letters are kept
    return DeadLetterOut.model_validate(
        {k: v for k, v in vars(found).items() if k in DeadLetterOut.model_fields}
    )


@router.delete("/{dead_letter_id}", status_code=status.HTTP_204_NO_CONTENT)
async def purge_dead_letter(request: Request, dead_letter_id: DeadLetterId) -> Response:
    runtime = _runtime(request)
    if not await store.purge(runtime.pool, runtime.schema, ids=[dead_letter_id]):
        raise Problem("no_content", f"No dead letter {dead_letter_id} in {runtime.schema}.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
