"""The dispatch loop's limits and local queue, with the database and the network faked."""

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from webhooks import dispatcher as dispatching
from webhooks.dispatcher import Dispatcher, idle_wait, target_of
from webhooks.domain import Attempt, Outcome
from webhooks.handoff import Handoff
from webhooks.sealing import SecretSealer
from webhooks.settings import WebhookSettings
from webhooks.store import dispatching as store

CAP = 3
TENANT = uuid4()


class FakeQueue:
    """Due deliveries per endpoint, claimed the way CLAIM_SQL does: per-endpoint quota, limit."""

    def __init__(self) -> None:
        self.due: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
        self.claims: list[dict[UUID, int]] = []
        self.tenant_claims: list[dict[UUID, int]] = []
        self.released: list[UUID] = []
        self.next_due: float | None = None  # when nothing is due: seconds until a retry

    def add(self, endpoint: UUID, count: int, tenant: UUID = TENANT) -> None:
        for n in range(count):
            self.due[endpoint].append(
                {
                    "id": uuid4(),
                    "endpoint_id": endpoint,
                    "tenant_id": tenant,
                    "url": f"http://hook/{endpoint}",
                    "headers": {},
                    "secret": "whsec_x",
                    "previous_secret": None,
                    "webhook_id": f"msg_{n}",
                    "payload": b"{}",
                    "attempt_count": 0,
                    "failing": False,
                    "enabled": True,
                    "ordered": False,
                    "traceparent": None,
                }
            )

    async def claim_due(
        self, _: Any, limit: int, __: timedelta, quotas: store.Quotas
    ) -> list[dict[str, Any]]:
        self.claims.append(dict(quotas.endpoints))
        self.tenant_claims.append(dict(quotas.tenants))
        rows: list[dict[str, Any]] = []
        taken: Counter[UUID] = Counter()
        for endpoint, queue in self.due.items():
            if not queue:
                continue
            tenant = queue[0]["tenant_id"]
            tenant_left = quotas.tenants.get(tenant, quotas.tenant_default) - taken[tenant]
            take = min(
                quotas.endpoints.get(endpoint, quotas.endpoint_default),
                limit - len(rows),
                tenant_left,
            )
            rows += queue[: max(take, 0)]
            taken[tenant] += max(take, 0)
            del queue[: max(take, 0)]
        return rows

    async def release(self, _: Any, ids: list[UUID]) -> None:
        self.released += ids

    async def next_due_in(self, _: Any) -> float | None:
        return 0.0 if any(self.due.values()) else self.next_due


class FakeSender:
    """Holds every request until its endpoint is released."""

    def __init__(self) -> None:
        self.open: dict[str, int] = defaultdict(int)
        self.most_open: dict[str, int] = defaultdict(int)
        self.sent: list[str] = []
        self.gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def post(
        self,
        url: str,
        _: dict,
        __: list,
        msg_id: str,
        ___: bytes,
        tenant: UUID | None = None,
        traceparent: str | None = None,
    ) -> Attempt:
        self.open[url] += 1
        self.most_open[url] = max(self.most_open[url], self.open[url])
        self.sent.append(url)
        try:
            await self.gates[url].wait()
        finally:
            self.open[url] -= 1
        return Attempt(datetime.now(UTC), 1, status_code=200)

    async def close(self) -> None:
        pass


class FakeWriter:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.urgent: list[Outcome] = []
        self._stop = asyncio.Event()

    def put(self, outcome: Outcome, *, urgent: bool = False) -> None:
        self.outcomes.append(outcome)
        if urgent:
            self.urgent.append(outcome)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self._stop.wait()


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeQueue, FakeSender]]:
    queue, sender = FakeQueue(), FakeSender()
    monkeypatch.setattr(dispatching.queue, "claim_due", queue.claim_due)
    monkeypatch.setattr(dispatching.queue, "release", queue.release)
    monkeypatch.setattr(dispatching.queue, "next_due_in", queue.next_due_in)
    yield queue, sender


def start(
    sender: FakeSender, *, listening: bool = False, **overrides: Any
) -> tuple[Dispatcher, asyncio.Task[None]]:
    settings = WebhookSettings(
        **{
            "webhook_max_in_flight_per_endpoint": CAP,
            "webhook_poll_interval_seconds": 0.02,
            "webhook_shutdown_grace_seconds": 0,
            **overrides,
        }
    )
    sealer = SecretSealer(settings.secret_keys)
    loop = Dispatcher(
        None,  # type: ignore[arg-type]
        sender,
        settings,
        sealer,
        asyncio.Event(),
        lambda: listening,
    )
    loop._writer = FakeWriter()  # type: ignore[assignment]
    return loop, asyncio.create_task(loop.run())


async def until(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_endpoint_gets_at_most_its_cap_and_as_many_again_queued(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    endpoint = uuid4()
    url = f"http://hook/{endpoint}"
    queue.add(endpoint, 20)
    loop, task = start(sender)
    try:
        await until(lambda: sender.open[url] == CAP)
        await asyncio.sleep(0.05)
        assert sender.most_open[url] == CAP
        assert len(loop._queued[endpoint]) == CAP, "as many again are held, claimed"
        assert len(queue.due[endpoint]) == 20 - 2 * CAP
        claims = len(queue.claims)
        sender.gates[url].set()
        await until(lambda: len(sender.sent) == 20)
        assert sender.most_open[url] == CAP
        assert len(queue.claims) > claims
    finally:
        await stop(task)
    assert len(loop._writer.outcomes) == 20  # type: ignore[attr-defined]


async def test_a_hanging_endpoint_does_not_hold_back_another(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    hanging, healthy = uuid4(), uuid4()
    queue.add(hanging, 50)
    _, task = start(sender)
    try:
        await until(lambda: sender.open[f"http://hook/{hanging}"] == CAP)
        queue.add(healthy, 30)
        sender.gates[f"http://hook/{healthy}"].set()
        await until(lambda: sender.sent.count(f"http://hook/{healthy}") == 30)
        assert sender.open[f"http://hook/{hanging}"] == CAP
        assert sender.sent.count(f"http://hook/{hanging}") == CAP
        assert all(q.get(hanging, 0) <= 0 for q in queue.claims[-3:]), (
            "a hanging endpoint's quota is spent: nothing more is claimed for it"
        )
    finally:
        await stop(task)
    assert len(queue.released) == 2 * CAP, "queued and unfinished leases are handed back"


async def test_a_queued_delivery_whose_lease_would_run_out_is_not_sent(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    endpoint = uuid4()
    url = f"http://hook/{endpoint}"
    loop, task = start(sender, webhook_lease_seconds=7.5, webhook_timeout_seconds=1)
    try:
        old = time.monotonic() - 10  # claimed 10 s ago; usable for 7.5 - 1 - 1 = 5.5 s
        queue.add(endpoint, 1)
        row = queue.due[endpoint].pop()
        loop._hold(target_of(row, old, loop._sealer))
        loop._pump()
        assert sender.sent == [] and endpoint not in loop._queued
        assert loop._held == 0 and row["id"] not in loop._unrecorded
        sender.gates[url].set()
    finally:
        await stop(task)


async def test_a_tenant_with_many_hanging_endpoints_takes_at_most_its_share(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    hoarder, other = uuid4(), uuid4()
    hanging = [uuid4() for _ in range(10)]
    for endpoint in hanging:
        queue.add(endpoint, 20, tenant=hoarder)
    loop, task = start(sender, webhook_max_in_flight=20, webhook_max_in_flight_per_tenant=8)
    try:
        await until(lambda: sum(sender.open.values()) == 8)
        await asyncio.sleep(0.05)
        assert sum(sender.open.values()) == 8, "the tenant's cap, not 10 endpoints x CAP"
        assert loop._tenant_held[hoarder] == 16, "as many again are held, claimed"
        healthy = uuid4()
        queue.add(healthy, 30, tenant=other)
        sender.gates[f"http://hook/{healthy}"].set()
        await until(lambda: sender.sent.count(f"http://hook/{healthy}") == 30)
        assert sum(sender.open[f"http://hook/{e}"] for e in hanging) == 8
        assert all(q.get(hoarder, 0) <= 0 for q in queue.tenant_claims[-3:]), (
            "a tenant whose quota is spent gets nothing more claimed"
        )
    finally:
        await stop(task)


async def test_a_secret_no_key_decrypts_fails_the_attempt_and_the_loop_goes_on(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    unreadable, healthy = uuid4(), uuid4()
    queue.add(unreadable, 1)
    queue.due[unreadable][0]["secret"] = "gAAAAA-sealed-with-a-key-that-is-gone"
    queue.add(healthy, 2)
    sender.gates[f"http://hook/{healthy}"].set()
    loop, task = start(sender)
    try:
        await until(lambda: sender.sent.count(f"http://hook/{healthy}") == 2)
        await until(lambda: len(loop._writer.outcomes) == 3)  # type: ignore[attr-defined]
    finally:
        await stop(task)
    [failed] = [
        o
        for o in loop._writer.outcomes  # type: ignore[attr-defined]
        if o.endpoint_id == unreadable
    ]
    assert failed.attempt.status_code is None
    assert "not readable with any key of WEBHOOK_SECRET_KEYS" in (failed.attempt.error or "")
    assert failed.verdict.status == "pending" and failed.verdict.retry_in is not None
    assert f"http://hook/{unreadable}" not in sender.sent


def test_an_idle_dispatcher_sleeps_until_the_next_delivery_is_due_within_its_longest_wait() -> None:
    assert idle_wait(None, 0.5, 5) == 5, "nothing pending: the longest wait"
    assert idle_wait(2.0, 0.5, 5) == 2.0, "a retry due in 2 s"
    assert idle_wait(60.0, 0.5, 5) == 5, "never longer than the longest wait"
    assert idle_wait(0.0, 0.5, 5) == 0.5, "due but held back (a subject's tail): poll"
    assert idle_wait(-3.0, 0.5, 5) == 0.5


async def test_a_listening_dispatcher_with_nothing_due_sleeps_until_woken(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    """A short poll interval and a long idle wait: while nothing is due and notifications are
    heard it claims again only when the next retry falls due, and a wake-up sends a new
    delivery at once."""
    queue, sender = rig
    endpoint = uuid4()
    queue.next_due = 0.3  # a retry due in 0.3 s: 30 claims at the poll interval
    loop, task = start(
        sender, listening=True, webhook_poll_interval_seconds=0.01, webhook_idle_wait_seconds=30
    )
    try:
        await until(lambda: len(queue.claims) == 1)
        first = time.monotonic()
        await until(lambda: len(queue.claims) == 2)
        assert time.monotonic() - first >= 0.25, "claimed again when the retry fell due"
        queue.next_due = None  # nothing pending: it sleeps the 30 s idle wait
        queue.add(endpoint, 1)
        loop._wake.set()
        await until(lambda: sender.sent == [f"http://hook/{endpoint}"])
    finally:
        sender.gates[f"http://hook/{endpoint}"].set()
        await stop(task)


async def test_a_dispatcher_that_hears_no_notifications_polls(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    _, task = start(sender, listening=False, webhook_poll_interval_seconds=0.01)
    try:
        await until(lambda: len(queue.claims) >= 5)
        endpoint = uuid4()
        queue.add(endpoint, 1)
        await until(lambda: sender.sent == [f"http://hook/{endpoint}"])
        sender.gates[f"http://hook/{endpoint}"].set()
    finally:
        await stop(task)


async def test_deliveries_handed_over_are_sent_within_the_caps_and_count_against_the_room(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    endpoint = uuid4()
    url = f"http://hook/{endpoint}"
    loop, task = start(sender, listening=True, webhook_max_in_flight_per_tenant=4)
    handoff = Handoff(loop._sealer, 60)
    handoff.attach(loop)
    try:
        await until(lambda: loop.accepting)
        room = handoff.room()
        assert room is not None
        assert (room.endpoint_default, room.tenant_default) == (2 * CAP, 8)
        queue.add(endpoint, 2 * CAP)
        rows = queue.due.pop(endpoint)
        handoff.take([target_of(row, time.monotonic(), loop._sealer) for row in rows])
        await until(lambda: sender.open[url] == CAP)
        room = handoff.room()
        assert room is not None and room.endpoints[endpoint] == 0, "its queue is full"
        assert room.tenants[TENANT] == 8 - 2 * CAP
        assert room.total == 2 * loop._max_in_flight - 2 * CAP
        assert len(queue.claims) == 1, "handed over, not claimed (one claim at the start)"
        sender.gates[url].set()
        await until(lambda: len(loop._writer.outcomes) == 2 * CAP)  # type: ignore[attr-defined]
        assert sender.most_open[url] == CAP
    finally:
        await stop(task)
    assert handoff.room() is None, "a stopped dispatcher takes nothing"
    handoff.take([target_of(row, time.monotonic(), loop._sealer) for row in rows])
    assert len(sender.sent) == 2 * CAP, "and sends nothing handed to it: due when leases end"


async def test_an_endpoint_that_answers_fast_gets_an_express_lane_claims_do_not_count(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    fast, slow = uuid4(), uuid4()
    url = f"http://hook/{fast}"
    loop, task = start(sender, listening=True)
    handoff = Handoff(loop._sealer, 60)
    handoff.attach(loop)
    try:
        await until(lambda: loop.accepting)
        loop._pace[fast] = 40  # completed in the last second: a quarter is 10
        loop._paced_tenant[fast] = TENANT
        loop._window_started = time.monotonic()
        room = handoff.room()
        assert room is not None and room.express == {fast: 10}, "none for an unknown pace"
        queue.add(fast, 2 * CAP + 4)
        rows = queue.due.pop(fast)
        handoff.take([target_of(row, time.monotonic(), loop._sealer) for row in rows])
        await until(lambda: sender.open[url] == CAP)
        assert sender.most_open[url] == CAP, "the express lane adds no request in flight"
        room = handoff.room()
        assert room is not None
        assert room.endpoints[fast] == 0 and room.express[fast] == 10 - 4
        assert room.total == 2 * loop._max_in_flight - 2 * CAP, "claims count no express"
        queue.add(slow, 1)
        loop._wake.set()
        await until(lambda: len(queue.claims) == 2)
        assert queue.claims[-1][fast] == 10 - 4, "its depth is full; its free express places"
        assert queue.tenant_claims[-1][TENANT] == 2 * loop._tenant_cap - 2 * CAP + 10 - 4
        sender.gates[url].set()
        await until(lambda: len(loop._writer.outcomes) == 2 * CAP + 4)  # type: ignore[attr-defined]
        assert not loop._express and not loop._express_of
        assert loop._completed[fast] == 2 * CAP + 4
    finally:
        sender.gates[f"http://hook/{slow}"].set()
        await stop(task)


async def test_a_claim_fills_a_fast_endpoints_express_lane_beyond_its_depth(
    rig: tuple[FakeQueue, FakeSender],
) -> None:
    queue, sender = rig
    fast = uuid4()
    url = f"http://hook/{fast}"
    loop, task = start(sender, listening=True)
    try:
        await until(lambda: loop.accepting)
        loop._pace[fast] = 80  # a quarter is 20 express places
        loop._paced_tenant[fast] = TENANT
        loop._window_started = time.monotonic()
        queue.add(fast, 100)
        loop._wake.set()
        await until(lambda: sender.open[url] == CAP)
        await asyncio.sleep(0.05)
        assert sender.most_open[url] == CAP, "express adds no request in flight"
        assert len(queue.due[fast]) == 100 - 2 * CAP - 20, "its depth, then its express places"
        assert loop._express_of[fast] == 20 and loop._claimed() == 2 * CAP
        assert loop._tenant_claimed(TENANT) == 2 * CAP, "the tenant's quota counts no express"
        sender.gates[url].set()
        await until(lambda: len(sender.sent) == 100)
        assert sender.most_open[url] == CAP
    finally:
        await stop(task)
    assert not loop._express and not loop._express_of
