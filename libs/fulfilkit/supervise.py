"""Background loops that outlive their own crashes and the outages of what they use.

Each loop runs in a task of its own. When it raises (or returns, which a loop never should),
the failure is logged and counted, and the loop is started again after a delay that doubles
from `first_delay` up to `max_delay`; a run that lasted `max_delay` or longer starts the
doubling over. A lost database or broker connection is logged in one line, anything else
with its traceback.

A loop counts as down from its failure until its next run has lasted `settle` seconds, so
`/ready` does not report a loop up that fails again as soon as it starts.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from fulfilkit.db import CONNECTION_ERRORS

log = logging.getLogger(__name__)

Run = Callable[[], Awaitable[None]]
OUTAGES = (*CONNECTION_ERRORS, KafkaConnectionError, KafkaTimeoutError)


@dataclass
class LoopStatus:
    name: str
    running: bool = False
    failed: bool = False  # the last run ended in a failure
    failures: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)

    def is_up(self, settle: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.running and (not self.failed or now - self.started_at >= settle)


class Supervisor:
    def __init__(
        self, *, first_delay: float = 0.5, max_delay: float = 5.0, settle: float = 1.0
    ) -> None:
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._settle = settle
        self._status: dict[str, LoopStatus] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def loops(self) -> Mapping[str, LoopStatus]:
        return self._status

    def start(self, name: str, run: Run) -> None:
        """Run `run()` under supervision, as `name`, until `stop()`."""
        if name in self._status:
            raise ValueError(f"a loop named {name!r} is already supervised")
        status = self._status[name] = LoopStatus(name, running=True)
        self._tasks.append(asyncio.create_task(self._supervise(status, run), name=name))

    def down(self) -> list[str]:
        """The loops that are not running now, or not yet long enough since they failed."""
        now = time.monotonic()
        return [name for name, s in self._status.items() if not s.is_up(self._settle, now)]

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
            for task in stuck:
                log.error("background loop %s did not stop within %.0fs", task.get_name(), timeout)
        self._tasks.clear()

    async def _supervise(self, status: LoopStatus, run: Run) -> None:
        delay = self._first_delay
        while True:
            status.running, status.started_at = True, time.monotonic()
            try:
                await run()
                error: BaseException = RuntimeError("the loop returned")
            except asyncio.CancelledError:
                status.running = False
                raise
            except Exception as exc:
                error = exc
            if self._stopping:  # it failed while being cancelled: do not start it again
                status.running = False
                return
            lasted = time.monotonic() - status.started_at
            if lasted >= self._max_delay:
                delay = self._first_delay
            status.running, status.failed = False, True
            status.failures += 1
            status.last_error = f"{type(error).__name__}: {error}"[:500]
            if isinstance(error, OUTAGES):
                log.warning(
                    "background loop %s lost a connection (failure %d), restarting in %.1fs: %r",
                    status.name,
                    status.failures,
                    delay,
                    error,
                )
            else:
                log.error(
                    "background loop %s failed (failure %d), restarting in %.1fs",
                    status.name,
                    status.failures,
                    delay,
                    exc_info=error,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
