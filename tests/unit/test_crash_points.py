"""Crash points (`fulfilkit.faults`) are inert until armed; an armed one ends the process at
once, as a power cut would; and the settings refuse to arm any outside development.

Each case runs in a process of its own, since an armed point ends the process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from fulfilkit.faults import CRASH_EXIT_STATUS
from fulfilkit.settings import ServiceSettings, token_digest

LIBS = Path(__file__).resolve().parents[2] / "libs"
CALLERS = {"gateway": token_digest("a-gateway-token-long-enough-for-production-use")}


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-S", "-c", "from fulfilkit.faults import arm, crash_point\n" + script],
        env={**os.environ, "PYTHONPATH": str(LIBS)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def exit_status(arming: list[str | frozenset[str]], point: str) -> int:
    """The exit status of a process that arms each of `arming` in turn, then passes `point`."""
    calls = "".join(f"arm({points!r})\n" for points in arming)
    return run(f"{calls}crash_point({point!r})\n").returncode


ARMED = " stock.after_commit, ,outbox.after_publish,"


@pytest.mark.parametrize(
    ("arming", "point", "status"),
    [
        pytest.param([], "stock.after_commit", 0, id="nothing armed"),
        pytest.param([ARMED], "outbox.after_publish", CRASH_EXIT_STATUS, id="armed"),
        pytest.param([ARMED], "stock.after_commit", CRASH_EXIT_STATUS, id="armed, spaces cut"),
        pytest.param([ARMED], "stock.before_commit", 0, id="another point"),
        pytest.param([frozenset({"a.b"})], "a.b", CRASH_EXIT_STATUS, id="armed as a set"),
        pytest.param(["a.b", "c.d"], "a.b", 0, id="arming again replaces"),
        pytest.param(["a.b", ""], "a.b", 0, id="arming nothing disarms"),
    ],
)
def test_a_point_ends_the_process_only_when_armed(
    arming: list[str | frozenset[str]], point: str, status: int
) -> None:
    assert exit_status(arming, point) == status


def test_an_armed_point_ends_the_process_at_once_without_cleanup() -> None:
    crashed = run(
        "arm('stock.after_commit')\n"
        "print('before', flush=True)\n"
        "try:\n"
        "    crash_point('stock.after_commit')\n"
        "    print('after', flush=True)\n"
        "finally:\n"
        "    print('cleaned up', flush=True)\n"
    )

    assert crashed.returncode == CRASH_EXIT_STATUS == 70, crashed.stderr
    assert crashed.stdout.splitlines() == ["before"]


@pytest.mark.parametrize("environment", ["production", "staging", ""])
def test_settings_refuse_fault_points_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="FAULT_POINTS arms crash points"):
        ServiceSettings(
            environment=environment, internal_callers=CALLERS, fault_points="stock.after_commit"
        )

    assert ServiceSettings(environment=environment, internal_callers=CALLERS).fault_points == ""


def test_development_settings_take_fault_points_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("FAULT_POINTS", "stock.after_commit,outbox.after_publish")

    assert ServiceSettings().fault_points == "stock.after_commit,outbox.after_publish"
