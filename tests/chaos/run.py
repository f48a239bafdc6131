"""One fault under load, start to finish: fresh tenants and receivers, load, the fault, the
time until a canary sale goes through end to end, more load, settling, and the checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from tests.chaos.checks import Findings, check, dead_letters, wait_settled
from tests.chaos.faults import Fault
from tests.chaos.load import Api, Ledger, Lifecycles, Seen, Tenant, new_tenant, sale_body
from tests.chaos.receivers import StoppableReceiver
from tests.chaos.stack import ChaosStack

STATUS_CHANGED = "sale.status_changed"


@dataclass(frozen=True)
class Load:
    """How hard and how long: sales a second, clients, seconds before and after the fault,
    and how long the platform gets to recover and to settle."""

    rate: float
    workers: int
    before: float
    after: float
    recover_within: float
    settle_within: float
    request_timeout: float


FULL_LOAD = Load(
    rate=20,
    workers=16,
    before=20,
    after=20,
    recover_within=300,
    settle_within=240,
    request_timeout=30,
)
SHORT_LOAD = Load(
    rate=6, workers=6, before=2, after=2, recover_within=90, settle_within=90, request_timeout=20
)


def allowed(outcome: str, *, gateway_down: bool) -> bool:
    return (
        outcome in ("2xx", "503") or outcome.startswith("4") or (gateway_down and outcome == "conn")
    )


@dataclass
class Row:
    fault: str
    recovered_in: float | None
    seen: Counter[str]
    findings: Findings
    sales: int
    settle_seconds: float
    notes: list[str] = field(default_factory=list)
    calls: dict[str, Counter[str]] = field(default_factory=dict)  # outcome -> calls

    def bad(self, fault: Fault) -> Counter[str]:
        """Answers clients must never get: a 500, a hang, a 503 without problem+json and
        `Retry-After`; a refused connection too, unless the gateway itself was killed."""
        return Counter(
            {
                o: n
                for o, n in self.seen.items()
                if not allowed(o, gateway_down=fault.target == "gateway")
            }
        )

    @property
    def errors(self) -> Counter[str]:
        return Counter({o: n for o, n in self.seen.items() if o != "2xx"})


class Scenario:
    """Runs faults one after another on one running stack."""

    def __init__(self, stack: ChaosStack, session: aiohttp.ClientSession, load: Load) -> None:
        self.stack = stack
        self.session = session
        self.load = load
        self.phase = 0

    async def run(self, fault: Fault) -> Row:
        self.phase += 1
        platform = self.stack.running
        seen = Seen()
        ledger = Ledger()
        run_id = f"c{self.phase}-{uuid.uuid4().hex[:6]}"
        receivers = [await StoppableReceiver(f"{run_id}-{n}").start() for n in ("a1", "a2", "b1")]
        tenants = list(
            await asyncio.gather(
                *(
                    new_tenant(
                        self.session,
                        platform.gateway_url,
                        platform.admin_token,
                        seen,
                        self.load.request_timeout,
                        f"{run_id}-{label}",
                        [(r, [STATUS_CHANGED]) for r in subscribed],
                    )
                    for label, subscribed in (("a", receivers[:2]), ("b", receivers[2:]))
                )
            )
        )
        db = await asyncpg.connect(self.stack.database_url)
        try:
            dead_before = await dead_letters(db, self.stack.bootstrap_servers)
        finally:
            await db.close()
        lifecycles = Lifecycles(
            tenants, ledger, workers=self.load.workers, rate=self.load.rate, run=run_id
        )
        log_sizes = self._log_sizes()
        lifecycles.start()
        notes: list[str] = []
        try:
            await asyncio.sleep(self.load.before)
            await fault.inject(self.stack, receivers[0])
            down_since = time.monotonic()
            ready_during = {}
            if fault.kind in ("kafka", "postgres"):
                await asyncio.sleep(min(3.0, fault.down_for / 2))
                ready_during = await self._readiness()
            await asyncio.sleep(max(0.0, fault.down_for - (time.monotonic() - down_since)))
            back = time.monotonic()
            await fault.restore(self.stack, receivers[0])
            recovered = await self._canary(tenants[0], back, run_id, notes)
            await asyncio.sleep(self.load.after)
        finally:
            await lifecycles.stop()
            if not receivers[0].up:
                await receivers[0].start()
        db = await asyncpg.connect(self.stack.database_url)
        try:
            settle = await wait_settled(db, tenants, self.load.settle_within)
            findings = await check(db, tenants, ledger, dead_before, self.stack.bootstrap_servers)
            notes += [
                f"{name} /ready {status}: {body}"
                for name, (status, body) in (await self._readiness()).items()
                if status != 200
            ]
            notes += self._errors_logged(log_sizes)
            if ready_during:
                notes.append(
                    "/ready during the outage: "
                    + ", ".join(f"{name} {status}" for name, (status, _) in ready_during.items())
                )
            # The gateway does not use Kafka: only services that check the broker must say so.
            findings.broken += [
                f"{name} /ready answered 200 while {fault.kind} was down: {body}"
                for name, (status, body) in ready_during.items()
                if status == 200 and (fault.kind == "postgres" or '"broker"' in body)
            ]
        finally:
            await db.close()
            for receiver in receivers:
                await receiver.stop()
        counts = seen.counts()
        return Row(
            fault.name,
            recovered,
            counts,
            findings,
            len(ledger.created),
            settle,
            notes,
            {o: seen.calls(o) for o in counts if o != "2xx"},
        )

    async def _readiness(self) -> dict[str, tuple[int, str]]:
        """Each service's `GET /ready`: status and the start of the body (0: no answer)."""

        async def ask(url: str) -> tuple[int, str]:
            try:
                async with self.session.get(
                    f"{url}/ready", timeout=aiohttp.ClientTimeout(total=5)
                ) as answer:
                    return answer.status, (await answer.text())[:300]
            except (aiohttp.ClientError, TimeoutError) as exc:
                return 0, repr(exc)

        services = list(self.stack.running)
        answers = await asyncio.gather(*(ask(s.url) for s in services))
        return {s.name: a for s, a in zip(services, answers, strict=True)}

    def _log_sizes(self) -> dict[str, int]:
        return {
            s.name: s.log_file.stat().st_size if s.log_file.exists() else 0
            for s in self.stack.running
        }

    def _errors_logged(self, since: dict[str, int]) -> list[str]:
        """Per service, the ERROR lines and tracebacks it logged during the phase."""
        notes = []
        for service in self.stack.running:
            with open(service.log_file, "rb") as log:
                log.seek(since.get(service.name, 0))
                lines = log.read().decode(errors="replace").splitlines()
            errors = [ln for ln in lines if " ERROR " in ln or " CRITICAL " in ln]
            if errors:
                notes.append(
                    f"{service.name} logged {len(errors)} ERROR line(s), first: {errors[0][:300]}"
                )
        return notes

    async def _canary(
        self, tenant: Tenant, back: float, run_id: str, notes: list[str]
    ) -> float | None:
        """Seconds from the fault's end until a new sale is created, pending, and its status
        change delivered to each of the tenant's endpoints; None if not within the limit."""
        deadline = back + self.load.recover_within
        n = 0
        while time.monotonic() < deadline:
            n += 1
            sale_id = f"{run_id}-canary-{n}"
            if await self._canary_once(tenant.api, tenant, sale_id, deadline):
                return time.monotonic() - back
            await asyncio.sleep(1.0)
        notes.append(f"no canary went through within {self.load.recover_within:.0f}s")
        return None

    async def _canary_once(self, api: Api, tenant: Tenant, sale_id: str, deadline: float) -> bool:
        created = await api.post(
            "/sales",
            sale_body(sale_id, tenant),
            record=False,
            retry_for=max(1.0, deadline - time.monotonic()),
        )
        if created is None or created.status not in (201, 202, 228):
            return False
        while time.monotonic() < deadline:
            if all(
                any(d.sale_id == sale_id and d.status == "pending" for d in r.received)
                for r, _ in tenant.receivers
            ):
                return True
            await asyncio.sleep(0.2)
        return False
