"""The background loop: lease due deliveries, `deliver` them concurrently within limits, and
hand every outcome to the recorder. `run_listener`, a loop of its own, wakes it when
deliveries are queued.

With nothing to claim it sleeps until the next delivery falls due (a retry, a lease that
ends), at most `WEBHOOK_IDLE_WAIT_SECONDS`, woken sooner by a notification. It polls every
`WEBHOOK_POLL_INTERVAL_SECONDS` instead while nobody listens (notifications would be lost),
while limits hold due deliveries back, or while due deliveries wait on their subject's head.

A delivery is leased (`next_attempt_at` pushed past the request timeout) before it is sent,
so a crash at any point leaves it due again later: at least once, never lost. Most new
deliveries are not claimed at all: the consumer of this process inserts as many as this
dispatcher has room for already leased to it and hands them over once they are committed
(`take`, through `webhooks.handoff`); claims are for the rest, retries, leases that ran out
and other replicas' deliveries.

Limits: at most `WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT` requests to one endpoint,
`WEBHOOK_MAX_IN_FLIGHT_PER_TENANT` to all endpoints of one tenant and `WEBHOOK_MAX_IN_FLIGHT`
in all, so neither a slow endpoint nor a tenant with many slow endpoints can take every slot.
So that the database round trip of a claim is not on the path of every request, the loop
holds as many claimed deliveries again per endpoint and per tenant, queued here: a finished
request starts the endpoint's next one at once. An endpoint that answers fast may hold more
in its express lane (below), filled by hand-overs and by claims alike. A queued delivery
whose lease could run out before its request finished is dropped unsent; it is due again
when the lease ends.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.service import Runtime
from webhooks.domain import PENDING, Outcome, Room, Target, unsent
from webhooks.handoff import Handoff
from webhooks.recorder import OutcomeWriter
from webhooks.resources import Resources
from webhooks.sealing import SecretSealer, SecretUnreadable
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.store import dispatching as queue
from webhooks.usecases.deliveries import deliver

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 1.0
# The express lane: deliveries handed over beyond the claim's depth, for endpoints that
# answer fast, as many as an endpoint completed in a quarter of the last second (so what
# waits there is sent within about that long), at most this many per endpoint and in all.
EXPRESS_PER_ENDPOINT = 1000
EXPRESS_IN_ALL = 2000
PACE_WINDOW_SECONDS = 1.0


def idle_wait(due_in: float | None, poll: float, longest: float) -> float:
    """How long to sleep with nothing claimed while notifications are heard: until the next
    delivery is due (`due_in` seconds; None when none is pending), at most `longest`. One due
    already was held back (an ordered subject's tail, say): poll for its turn."""
    if due_in is None:
        return longest
    if due_in <= 0:
        return poll
    return min(due_in, longest)


def target_of(row: Any, claimed_at: float, sealer: SecretSealer) -> Target:
    """SecretUnreadable when no key opens a stored secret."""
    secrets = [sealer.open(row["secret"])]
    if row["previous_secret"]:
        secrets.append(sealer.open(row["previous_secret"]))
    return Target(
        row["id"],
        row["endpoint_id"],
        row["tenant_id"],
        row["url"],
        dict(row["headers"]),
        secrets,
        row["webhook_id"],
        bytes(row["payload"]),
        row["attempt_count"],
        row["failing"],
        claimed_at,
        row["traceparent"],
    )


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: Sender,
        settings: WebhookSettings,
        sealer: SecretSealer,
        wake: asyncio.Event,
        listening: Callable[[], bool] = lambda: False,
    ) -> None:
        self._pool = pool
        self._sealer = sealer
        self._sender = sender
        self._settings = settings
        self._schedule = settings.retry_schedule
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._usable_for = (
            settings.webhook_lease_seconds - settings.webhook_timeout_seconds - LEASE_MARGIN_SECONDS
        )
        self._cap = settings.webhook_max_in_flight_per_endpoint
        self._max_in_flight = settings.webhook_max_in_flight
        self._tenant_cap = settings.webhook_max_in_flight_per_tenant
        self._writer = OutcomeWriter(pool, settings, self._recorded)
        self._wake = wake  # set when deliveries may be due: queued, or a slot freed
        self._listening = listening  # whether notifications reach `wake` now
        self._tasks: dict[asyncio.Task[None], Target] = {}
        self._running: Counter[UUID] = Counter()
        self._queued: dict[UUID, deque[Target]] = {}
        self._held = 0  # running and queued
        self._tenant_running: Counter[UUID] = Counter()
        self._tenant_held: Counter[UUID] = Counter()  # running and queued, per tenant
        self._unrecorded: set[UUID] = set()
        self._throttled = False
        self._ordered: set[UUID] = set()  # endpoints whose next events wait on recorded ones
        self.accepting = False  # whether deliveries handed over (`take`) are sent
        # Held in the express lane (handed over beyond a claim's depth): claims and their
        # quotas do not count them.
        self._express: set[UUID] = set()
        self._express_of: Counter[UUID] = Counter()
        self._tenant_express: Counter[UUID] = Counter()
        # Requests each endpoint completed in the current and in the last whole window.
        self._completed: Counter[UUID] = Counter()
        self._pace: Counter[UUID] = Counter()
        # The tenant of each endpoint with a pace (what its express places count against).
        self._completed_tenant: dict[UUID, UUID] = {}
        self._paced_tenant: dict[UUID, UUID] = {}
        self._window_started = time.monotonic()

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer.run())
        self.accepting = True
        try:
            while True:
                self._wake.clear()
                if not await self._claim_and_send():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), await self._idle_wait())
        finally:
            await self._shutdown(writer)

    async def _idle_wait(self) -> float:
        settings = self._settings
        if self._throttled or not self._listening():
            return settings.webhook_poll_interval_seconds
        try:
            due_in = await queue.next_due_in(self._pool)
        except Exception as exc:
            log.warning("cannot read when the next delivery is due: %r", exc)
            return settings.webhook_poll_interval_seconds
        return idle_wait(
            due_in, settings.webhook_poll_interval_seconds, settings.webhook_idle_wait_seconds
        )

    # --- handed over by the consumer (`webhooks.handoff`) ----------------------------------

    def room(self) -> Room:
        """Free places in the local queue, as a claim's quotas count them, and in the express
        lane."""
        depth = 2 * self._cap
        busy = set(self._running) | set(self._queued)
        tenant_depth = 2 * self._tenant_cap
        self._roll_pace()
        express = {e: self._express_depth(e) - self._express_of[e] for e in self._pace}
        return Room(
            {endpoint: depth - self._held_by(endpoint) for endpoint in busy},
            depth,
            {t: tenant_depth - self._tenant_claimed(t) for t in self._tenant_held},
            tenant_depth,
            2 * self._max_in_flight - self._claimed(),
            {e: free for e, free in express.items() if free > 0},
            EXPRESS_IN_ALL - len(self._express),
        )

    def take(self, targets: list[Target]) -> None:
        """Deliveries the consumer inserted leased to this dispatcher, committed: sent as
        claimed ones are. Those beyond a claim's depth are held in the express lane."""
        for target in targets:
            self._hold_counted(target)
        self._pump()

    def _hold_counted(self, target: Target) -> None:
        """Held, in the express lane when the claim's depth (the endpoint's, the tenant's or
        the total) is full."""
        express = (
            self._held_by(target.endpoint_id) >= 2 * self._cap
            or self._tenant_claimed(target.tenant_id) >= 2 * self._tenant_cap
            or self._claimed() >= 2 * self._max_in_flight
        )
        self._hold(target)
        if express:
            self._express.add(target.delivery_id)
            self._express_of[target.endpoint_id] += 1
            self._tenant_express[target.tenant_id] += 1

    def _express_room(self) -> tuple[dict[UUID, int], dict[UUID, int], int]:
        """Free express places: per fast endpoint, per tenant of those (their sum) and in all."""
        self._roll_pace()
        in_all = EXPRESS_IN_ALL - len(self._express)
        endpoints: dict[UUID, int] = {}
        tenants: Counter[UUID] = Counter()
        for endpoint in self._pace:
            free = min(self._express_depth(endpoint) - self._express_of[endpoint], in_all)
            tenant = self._paced_tenant.get(endpoint)
            if free > 0 and tenant is not None:
                endpoints[endpoint] = free
                tenants[tenant] += free
        return endpoints, dict(tenants), max(in_all, 0)

    def _express_depth(self, endpoint: UUID) -> int:
        return min(EXPRESS_PER_ENDPOINT, self._pace[endpoint] // 4)

    def _roll_pace(self) -> None:
        now = time.monotonic()
        if now - self._window_started >= PACE_WINDOW_SECONDS:
            recent = now - self._window_started < 2 * PACE_WINDOW_SECONDS
            self._pace = self._completed if recent else Counter()
            self._paced_tenant = self._completed_tenant if recent else {}
            self._completed = Counter()
            self._completed_tenant = {}
            self._window_started = now

    def _unexpress(self, target: Target) -> None:
        if target.delivery_id in self._express:
            self._express.discard(target.delivery_id)
            for counter, key in (
                (self._express_of, target.endpoint_id),
                (self._tenant_express, target.tenant_id),
            ):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def _claimed(self) -> int:
        """Held in all, as claims count them (the express lane aside)."""
        return self._held - len(self._express)

    def _tenant_claimed(self, tenant: UUID) -> int:
        return self._tenant_held[tenant] - self._tenant_express[tenant]

    # --- claiming ------------------------------------------------------------------------

    def _held_by(self, endpoint: UUID) -> int:
        """Running and queued, as claims count them (the express lane aside)."""
        return (
            self._running[endpoint]
            + len(self._queued.get(endpoint, ()))
            - self._express_of[endpoint]
        )

    async def _claim_and_send(self) -> bool:
        """Claim and start what is due; True when there may be more due right now.

        When the claim was cut short by a limit (in all, or one endpoint's or tenant's
        quota), more may be due: then the dispatcher is `throttled` and finished requests
        wake it.
        """
        express, tenant_express, express_in_all = self._express_room()
        limit = min(
            self._settings.webhook_batch_size, 2 * self._max_in_flight - self._claimed()
        ) + min(sum(express.values()), express_in_all)
        if limit <= 0:
            self._throttled = True
            return False
        depth = 2 * self._cap
        busy = set(self._running) | set(self._queued) | set(express)
        # An endpoint that answers fast may also fill its free express places, counted
        # against no claim quota: a burst to it is claimed in a few large claims.
        quota = {
            endpoint: depth - self._held_by(endpoint) + express.get(endpoint, 0)
            for endpoint in busy
        }
        tenant_depth = 2 * self._tenant_cap
        tenant_quota = {
            t: tenant_depth - self._tenant_claimed(t) + tenant_express.get(t, 0)
            for t in self._tenant_held.keys() | tenant_express.keys()
        }
        quotas = queue.Quotas(quota, depth, tenant_quota, tenant_depth)
        try:
            rows = await queue.claim_due(self._pool, limit, self._lease, quotas)
        except Exception as exc:
            log.warning("cannot claim webhook deliveries, retrying: %r", exc)
            return False
        now = time.monotonic()
        claimed: Counter[UUID] = Counter()
        by_tenant: Counter[UUID] = Counter()
        for row in rows:
            claimed[row["endpoint_id"]] += 1
            by_tenant[row["tenant_id"]] += 1
            if row["ordered"]:
                self._ordered.add(row["endpoint_id"])
            if row["enabled"]:
                try:
                    self._hold_counted(target_of(row, now, self._sealer))
                except SecretUnreadable as exc:
                    self._fail_unsent(row, str(exc))
        self._pump()
        more = len(rows) == limit
        self._throttled = (
            more
            or any(n >= quota.get(endpoint, depth) for endpoint, n in claimed.items())
            or any(n >= tenant_quota.get(tenant, tenant_depth) for tenant, n in by_tenant.items())
        )
        return more

    def _fail_unsent(self, row: Any, reason: str) -> None:
        """An attempt that could not be made (a stored secret no key decrypts) fails like one
        without an answer: retried on the schedule, so fixing the keys lets it through."""
        log.error("delivery %s not sent: %s", row["id"], reason)
        self._writer.put(
            unsent(
                row["id"],
                row["endpoint_id"],
                row["attempt_count"],
                row["failing"],
                reason,
                self._schedule,
                datetime.now(UTC),
            )
        )

    def _hold(self, target: Target) -> None:
        self._queued.setdefault(target.endpoint_id, deque()).append(target)
        self._held += 1
        self._tenant_held[target.tenant_id] += 1
        self._unrecorded.add(target.delivery_id)

    # --- sending -------------------------------------------------------------------------

    def _pump(self, first: UUID | None = None) -> None:
        """Start queued deliveries while their endpoint, their tenant and the total allow
        (`first` first)."""
        order = list(self._queued) if first is None else [first, *self._queued]
        for endpoint in order:
            queue = self._queued.get(endpoint)
            while (
                queue
                and self._running[endpoint] < self._cap
                and self._tenant_running[queue[0].tenant_id] < self._tenant_cap
                and len(self._tasks) < self._max_in_flight
            ):
                target = queue.popleft()
                if time.monotonic() - target.claimed_at > self._usable_for:
                    self._drop(target)
                else:
                    self._start(target)
            if queue is not None and not queue:
                del self._queued[endpoint]
            if len(self._tasks) >= self._max_in_flight:
                return

    def _drop(self, target: Target) -> None:
        self._unexpress(target)
        self._held -= 1
        self._release_tenant(target.tenant_id, running=False)
        self._unrecorded.discard(target.delivery_id)
        log.info(
            "delivery %s waited too long for a slot; it is due when its lease ends",
            target.delivery_id,
        )

    def _start(self, target: Target) -> None:
        self._running[target.endpoint_id] += 1
        self._tenant_running[target.tenant_id] += 1
        task = asyncio.create_task(self._deliver(target))
        self._tasks[task] = target
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        target = self._tasks.pop(task)
        endpoint = target.endpoint_id
        self._unexpress(target)
        self._roll_pace()
        self._completed[endpoint] += 1
        self._completed_tenant[endpoint] = target.tenant_id
        self._running[endpoint] -= 1
        if self._running[endpoint] <= 0:
            del self._running[endpoint]
        self._held -= 1
        self._release_tenant(target.tenant_id, running=True)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("delivery %s crashed", target.delivery_id, exc_info=task.exception())
        self._unrecorded.discard(target.delivery_id)
        self._pump(endpoint)
        if self._throttled and (
            self._held_by(endpoint) <= self._cap
            or self._tenant_claimed(target.tenant_id) <= self._tenant_cap
        ):
            self._wake.set()

    def _release_tenant(self, tenant: UUID, *, running: bool) -> None:
        for counter in (
            (self._tenant_held, self._tenant_running) if running else (self._tenant_held,)
        ):
            counter[tenant] -= 1
            if counter[tenant] <= 0:
                del counter[tenant]

    async def _deliver(self, target: Target) -> None:
        outcome = await deliver(self._sender, target, self._schedule)
        # an ordered subject's next event waits for this record: no lingering
        self._writer.put(outcome, urgent=target.endpoint_id in self._ordered)
        self._unrecorded.discard(target.delivery_id)

    # --- waking --------------------------------------------------------------------------

    def _recorded(self, batch: list[Outcome]) -> None:
        """A finished head of an ordered subject lets the subject's next event go: claim now.
        A retry scheduled may fall due before the sleep that began before it ends: look again.
        """
        ordered = self._ordered
        if any(o.verdict.status == PENDING or o.endpoint_id in ordered for o in batch):
            self._wake.set()

    # --- stopping ------------------------------------------------------------------------

    async def _shutdown(self, writer: asyncio.Task[None]) -> None:
        """Let posts in flight finish within the grace period, record them, hand back the
        rest (queued ones included)."""
        self.accepting = False
        self._queued.clear()
        self._express.clear()
        grace = self._settings.webhook_shutdown_grace_seconds
        in_flight = set(self._tasks)
        if in_flight:
            _, unfinished = await asyncio.wait(in_flight, timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        self._writer.stop()
        try:
            await asyncio.wait_for(writer, timeout=grace + 5)
        except Exception:
            writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(queue.release(self._pool, list(self._unrecorded)), 5)


async def run_dispatcher(runtime: Runtime[Resources]) -> None:
    """The dispatcher on a pool of its own, with the service's sender (which outlives it, so
    a dispatcher restarted by its supervisor sends through the same open session), taking the
    deliveries the consumer of this process hands over; its share of the in-flight caps when
    delivery processes take the rest (`WebhookSettings.dispatcher_share`)."""
    resources = runtime.resources
    await dispatch(
        resources.settings.dispatcher_share(own=True),
        resources.sender,
        resources.sealer,
        resources.deliveries_due,
        lambda: resources.listener.connected,
        resources.handoff,
    )


async def dispatch(
    settings: WebhookSettings,
    sender: Sender,
    sealer: SecretSealer,
    wake: asyncio.Event,
    listening: Callable[[], bool],
    handoff: Handoff | None = None,
) -> None:
    """A dispatcher on a pool of its own until cancelled; `handoff`: the way the consumer of
    this process hands deliveries over (None in a process of its own, which claims them
    all)."""
    pool = await _dispatch_pool(settings)
    try:
        dispatcher = Dispatcher(pool, sender, settings, sealer, wake, listening)
        if handoff is not None:
            handoff.attach(dispatcher)
        try:
            await dispatcher.run()
        finally:
            if handoff is not None:
                handoff.detach(dispatcher)
    finally:
        await pool.close()


async def run_listener(runtime: Runtime[Resources]) -> None:
    """LISTEN for new deliveries and wake the dispatcher; it reconnects by itself."""
    await runtime.resources.listener.run()


async def _dispatch_pool(settings: WebhookSettings) -> asyncpg.Pool:
    """Waits for the database: the dispatcher must outlive an outage at start too."""
    delay = 0.5
    while True:
        try:
            return await queue.create_dispatch_pool(settings.database_url)
        except Exception as exc:
            log.warning("cannot connect the dispatcher yet, retrying: %r", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
