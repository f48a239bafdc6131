"""Crash points: where a crash test may kill this process to prove nothing is lost.

Production code marks a point with `crash_point("<service>.<where>")`. It does nothing
unless the point is armed by `FAULT_POINTS` (a comma-separated list of names), which the
settings accept only with `ENVIRONMENT=development`. An armed point ends the process at
once with exit status 70, as a power cut would: no cleanup, no `finally`, no flush.
"""

import os

CRASH_EXIT_STATUS = 70

_armed: frozenset[str] = frozenset()


def arm(points: str | frozenset[str]) -> None:
    """Arms the named points for this process (replacing any armed before)."""
    global _armed
    names = points.split(",") if isinstance(points, str) else points
    _armed = frozenset(name.strip() for name in names if name.strip())


def crash_point(name: str) -> None:
    if _armed and name in _armed:
        os._exit(CRASH_EXIT_STATUS)
