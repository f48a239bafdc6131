"""CPU time per component of a local run, read from /proc (Linux), to put a cost on each unit
of work: "orders spent 2.3 ms of CPU per sale" says where time goes better than a rate alone.

Components are the five services, Kafka, PostgreSQL (the postmaster and all its backends)
and the benchmark's own client process.
"""

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.local.infra import TEST_STATE_DIR, kafka_pid, postgres_pid
from deploy.local.services import Platform

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        # the command name may contain spaces and parentheses: split after its last ")"
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND if fields else 0.0


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == parent:
            found.append(int(entry))
    return found


class CpuMeter:
    """`snapshot()` twice, then `per_unit()` the difference."""

    def __init__(self, components: Mapping[str, Callable[[], list[int]]]) -> None:
        self._components = components

    @classmethod
    def with_infra(cls, services: Mapping[str, Callable[[], list[int]]]) -> "CpuMeter":
        """`services`, plus Kafka, PostgreSQL (every backend) and this process (`client`),
        found in the local infrastructure's state dir."""
        state_dir = Path(os.environ.get("TEST_STATE_DIR") or TEST_STATE_DIR)

        def postgres() -> list[int]:
            postmaster = postgres_pid(state_dir / "postgres")
            return [postmaster, *_children(postmaster)] if postmaster else []

        def kafka() -> list[int]:
            pid = kafka_pid(state_dir / "kafka")
            return [pid] if pid else []

        return cls(
            {**services, "kafka": kafka, "postgres": postgres, "client": lambda: [os.getpid()]}
        )

    @classmethod
    def for_local_run(cls, platform: Platform) -> "CpuMeter":
        # a service's replicas count as one component, with the processes each started
        # itself (webhooks' delivery processes)
        def of(name: str) -> Callable[[], list[int]]:
            replicas = platform.replicas_of(name)
            return lambda: [pid for p in replicas if p.pid for pid in (p.pid, *_children(p.pid))]

        return cls.with_infra({name: of(name) for name in platform.processes})

    def snapshot(self) -> dict[str, float]:
        return {
            name: sum(_cpu_seconds(p) for p in pids()) for name, pids in self._components.items()
        }

    async def until_quiet(
        self, share: float = 0.15, seconds: float = 1.0, deadline: float = 60.0
    ) -> float:
        """Wait until everything measured together uses less than `share` of one core for
        `seconds` (say, autovacuum after a burst has finished); returns the time waited."""
        started = time.monotonic()
        before = self.snapshot()
        while time.monotonic() - started < deadline:
            await asyncio.sleep(seconds)
            after = self.snapshot()
            busy = sum(after.values()) - sum(before.values())
            if busy < share * seconds:
                break
            before = after
        return time.monotonic() - started

    @staticmethod
    def ms_per_unit(
        before: Mapping[str, float], after: Mapping[str, float], units: int
    ) -> dict[str, float]:
        """CPU milliseconds per unit, in all (`all`) and for each component."""
        spent = {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}
        return {"all": sum(spent.values()) * 1000 / units} | {
            name: seconds * 1000 / units for name, seconds in spent.items()
        }

    @staticmethod
    def per_unit(
        before: Mapping[str, float], after: Mapping[str, float], units: int, unit: str
    ) -> str:
        """One line: total and per-component CPU milliseconds per unit, largest first."""
        spent = {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}
        total = sum(spent.values())
        parts = ", ".join(
            f"{name} {seconds * 1000 / units:.2f}"
            for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
        )
        return f"CPU ms per {unit}: {total * 1000 / units:.2f} in all ({parts})"
