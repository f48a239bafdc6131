"""The consumer's way to the dispatcher of its own process: deliveries it inserts leased to that
dispatcher are handed over once their transaction commits, and sent without a claim (no
`NOTIFY`, no wake-up, no claiming `UPDATE` on their way).

Only what the dispatcher has room for is leased to it, within the same per-endpoint,
per-tenant and total bounds as a claim; the rest is due at once for the claim path, which
also keeps retries, restarts and every other replica's deliveries. A leased delivery that
never reaches a dispatcher (the process dies after the commit, or its dispatcher is
restarting) is due again when its lease ends, like any claimed one.
"""

import logging
from datetime import timedelta
from typing import Protocol

from webhooks.domain import Destination, Room, Target
from webhooks.sealing import SecretSealer, SecretUnreadable

log = logging.getLogger(__name__)


class Taker(Protocol):
    @property
    def accepting(self) -> bool: ...

    def room(self) -> Room: ...

    def take(self, targets: list[Target]) -> None: ...


class Handoff:
    def __init__(self, sealer: SecretSealer, lease_seconds: float) -> None:
        self._sealer = sealer
        self._lease = timedelta(seconds=lease_seconds)
        self._dispatcher: Taker | None = None

    @property
    def lease(self) -> timedelta:
        return self._lease

    def attach(self, dispatcher: Taker) -> None:
        self._dispatcher = dispatcher

    def detach(self, dispatcher: Taker) -> None:
        if self._dispatcher is dispatcher:
            self._dispatcher = None

    def room(self) -> Room | None:
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.accepting:
            return None
        return dispatcher.room()

    def secrets(self, destination: Destination) -> list[str] | None:
        try:
            opened = [self._sealer.open(destination.secret)]
            if destination.previous_secret:
                opened.append(self._sealer.open(destination.previous_secret))
        except SecretUnreadable:
            return None  # the claim path fails its attempt, and says why
        return opened

    def take(self, targets: list[Target]) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.accepting:
            log.info(
                "%d deliveries committed while no dispatcher takes them; due when their lease ends",
                len(targets),
            )
            return
        dispatcher.take(targets)
