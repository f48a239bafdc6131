"""The outcome writer gathers outcomes into fewer writes, except those something waits for."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from webhooks import recorder
from webhooks.domain import PENDING, SUCCEEDED, Attempt, Outcome, Verdict
from webhooks.recorder import OutcomeWriter
from webhooks.settings import WebhookSettings


def outcome(status: str = SUCCEEDED) -> Outcome:
    verdict = Verdict(status, retry_in=5.0 if status == PENDING else None)
    return Outcome(uuid4(), uuid4(), Attempt(datetime.now(UTC), 1, status_code=200), verdict)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, list[Outcome]]]:
    written: list[tuple[float, list[Outcome]]] = []

    async def record(_: Any, batch: list[Outcome], __: float, marked: Any) -> Any:
        written.append((time.monotonic(), list(batch)))
        return marked

    monkeypatch.setattr(recorder, "record_outcomes", record)
    return written


async def test_outcomes_arriving_together_are_written_together(
    writes: list[tuple[float, list[Outcome]]],
) -> None:
    done: list[list[Outcome]] = []
    writer = OutcomeWriter(None, WebhookSettings(), done.append)  # type: ignore[arg-type]
    running = asyncio.create_task(writer.run())
    first = [outcome() for _ in range(3)]
    for o in first:
        writer.put(o)
        await asyncio.sleep(recorder.WRITE_LINGER_SECONDS / 10)
    writer.stop()
    await asyncio.wait_for(running, 5)
    assert [batch for _, batch in writes] == [first]
    assert done == [first]


async def test_an_urgent_outcome_or_a_retry_is_written_without_lingering(
    writes: list[tuple[float, list[Outcome]]],
) -> None:
    writer = OutcomeWriter(None, WebhookSettings())  # type: ignore[arg-type]
    running = asyncio.create_task(writer.run())
    try:
        for urgent, status in ((True, SUCCEEDED), (False, PENDING)):
            put_at = time.monotonic()
            writer.put(outcome(status), urgent=urgent)
            deadline = time.monotonic() + 5
            while len(writes) < (1 if urgent else 2) and time.monotonic() < deadline:
                await asyncio.sleep(0)
            assert writes[-1][0] - put_at < recorder.WRITE_LINGER_SECONDS
    finally:
        writer.stop()
        await asyncio.wait_for(running, 5)


def test_outcome_rows_are_json_with_the_ids_that_claims_return() -> None:
    import orjson
    from asyncpg.pgproto.pgproto import UUID as ClaimedUUID

    from webhooks.store.dispatching import outcome_rows

    claimed = outcome()
    claimed = Outcome(
        ClaimedUUID(str(claimed.delivery_id)),  # as asyncpg returns it from a claim
        claimed.endpoint_id,
        Attempt(datetime.now(UTC), 3, 200, "ok", request_headers={"webhook-id": "msg_1"}),
        claimed.verdict,
    )
    [row] = orjson.loads(outcome_rows([claimed]))
    assert row["id"] == str(claimed.delivery_id)
    assert row["status"] == SUCCEEDED and row["status_code"] == 200 and row["latency_ms"] == 3
    assert row["request_headers"] == {"webhook-id": "msg_1"} and row["error"] is None
    assert datetime.fromisoformat(row["attempted_at"]) == claimed.attempt.attempted_at
