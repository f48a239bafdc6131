"""The faults, each as what breaks, how long it stays broken, and how it comes back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from deploy.local.services import SERVICES
from tests.chaos.receivers import StoppableReceiver
from tests.chaos.stack import ChaosStack


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str  # "service", "kafka", "postgres" or "receiver"
    target: str = ""
    down_for: float = 0.0  # seconds between breaking it and bringing it back

    async def inject(self, stack: ChaosStack, receiver: StoppableReceiver) -> None:
        if self.kind == "service":
            await asyncio.to_thread(stack.kill_service, self.target)
        elif self.kind == "kafka":
            await asyncio.to_thread(stack.kill_kafka)
        elif self.kind == "postgres":
            await asyncio.to_thread(stack.kill_postgres)
        else:
            await receiver.stop()

    async def restore(self, stack: ChaosStack, receiver: StoppableReceiver) -> None:
        """Bring it back. Services are started again by the harness, as a supervisor would;
        Kafka and PostgreSQL are started again, and everything else must find them by itself."""
        if self.kind == "service":
            await asyncio.to_thread(stack.start_service, self.target)
        elif self.kind == "kafka":
            await asyncio.to_thread(stack.restart_kafka)
        elif self.kind == "postgres":
            await asyncio.to_thread(stack.restart_postgres)
        else:
            await receiver.start()


def faults(*, kafka_down: float, postgres_down: float, receiver_down: float) -> list[Fault]:
    return [
        *(Fault(f"kill -9 {s.name}", "service", s.name) for s in SERVICES),
        Fault(f"Kafka down {kafka_down:g} s", "kafka", down_for=kafka_down),
        Fault(f"PostgreSQL down {postgres_down:g} s", "postgres", down_for=postgres_down),
        Fault(f"receiver down {receiver_down:g} s", "receiver", down_for=receiver_down),
    ]


FULL = faults(kafka_down=20, postgres_down=15, receiver_down=60)
SHORT = faults(kafka_down=8, postgres_down=6, receiver_down=10)


def by_kind(selection: list[Fault], kind: str, target: str = "") -> Fault:
    return next(f for f in selection if f.kind == kind and (not target or f.target == target))
