"""CPU an idle platform uses: every process `python -m deploy.local up` started (Kafka's JVM,
PostgreSQL's postmaster and every process under it, the five services and anything under
them), read from /proc (Linux) over N seconds, per process and in all, as % of one core.

Reads the pids the launcher records in STATE_DIR (default .local), so it measures a platform
started with the same STATE_DIR; run it with no traffic:

    make up && python bench/idle_cpu.py [--seconds 60]
    STATE_DIR=.local/idle GATEWAY_PORT=19650 KAFKA_PORT=19660 python bench/idle_cpu.py

A process's share counts its own CPU time and that of its children which exited and were
reaped in the window (PostgreSQL's autovacuum workers, say). The machine's busy share over
the same window is printed beside it: other load slows nothing here, but says how loaded
the machine was while the figure was taken.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.local.__main__ import recorded_services, settings_from_env
from deploy.local.infra import kafka_pid, postgres_pid

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One process's CPU seconds: its own (`own`) and its reaped children's (`reaped`)."""

    name: str
    own: float
    reaped: float


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    index 1 is the parent pid, 11/12 utime/stime, 13/14 cutime/cstime, in clock ticks."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def command_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def descendants(root: int) -> list[int]:
    """Every live process under `root` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))):
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def sample(pid: int, label: str) -> Sample | None:
    fields = stat_fields(pid)
    if fields is None:
        return None
    own = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    reaped = (int(fields[13]) + int(fields[14])) / TICKS_PER_SECOND
    return Sample(label, own, reaped)


def short_name(component: str, pid: int, root: int) -> str:
    if pid == root:
        return component
    command = command_name(pid)
    # PostgreSQL names its processes ("postgres: checkpointer", "postgres: orders orders [local]
    # idle"); a service's children are rarely more than one, named by their command.
    if command.startswith("postgres: "):
        return f"{component}: {command.removeprefix('postgres: ')[:60]}"
    return f"{component}: {command[:60]}"


def roots(env: dict[str, str]) -> dict[str, int]:
    """The platform's top processes by component, from the launcher's pid files."""
    settings = settings_from_env(env)
    found: dict[str, int] = {}
    if pid := kafka_pid(settings.state_dir / "kafka"):
        found["kafka"] = pid
    if pid := postgres_pid(settings.state_dir / "postgres"):
        found["postgres"] = pid
    for service in recorded_services(settings):
        if service.adopt() and service.pid is not None:
            found[service.name] = service.pid
    return found


def snapshot(tops: dict[str, int]) -> dict[int, Sample]:
    samples: dict[int, Sample] = {}
    for component, root in tops.items():
        for pid in (root, *descendants(root)):
            if (taken := sample(pid, short_name(component, pid, root))) is not None:
                samples[pid] = taken
    return samples


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS_PER_SECOND, sum(values) / TICKS_PER_SECOND


def spent(before: dict[int, Sample], after: dict[int, Sample]) -> dict[str, float]:
    """CPU seconds per process label between two snapshots. A process alive at both counts
    the growth of its own time and of its reaped children's; one born in the window counts
    all its time; one that died in the window shows up in its parent's reaped time."""
    result: dict[str, float] = {}
    for pid, end in after.items():
        start = before.get(pid)
        if start is not None and start.name.split(":")[0] == end.name.split(":")[0]:
            used = (end.own - start.own) + (end.reaped - start.reaped)
        else:
            used = end.own + end.reaped
        result[end.name] = result.get(end.name, 0.0) + max(0.0, used)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait before measuring"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    tops = roots(env)
    missing = [
        name
        for name in (
            "kafka",
            "postgres",
            *(s.name for s in recorded_services(settings_from_env(env))),
        )
        if name not in tops
    ]
    if missing:
        state = settings_from_env(env).state_dir
        sys.exit(f"not running in {state}: {', '.join(missing)} (start it with `make up`)")
    time.sleep(args.settle)
    machine_before = machine_busy()
    before = snapshot(tops)
    started = time.monotonic()
    time.sleep(args.seconds)
    after = snapshot(tops)
    elapsed = time.monotonic() - started
    machine_after = machine_busy()

    used = spent(before, after)
    by_component: dict[str, float] = {}
    for label, seconds in used.items():
        component = label.split(":")[0]
        by_component[component] = by_component.get(component, 0.0) + seconds
    total = sum(used.values())
    busy = machine_after[0] - machine_before[0]
    cores = os.cpu_count() or 1

    def share(seconds: float) -> str:
        return f"{seconds / elapsed * 100:6.2f}%"

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {cores} cores, {host.platform()}; state dir {settings_from_env(env).state_dir}"
    )
    print(
        f"machine busy over the window: {busy / elapsed * 100:.0f}% of one core"
        f" ({busy / elapsed / cores * 100:.0f}% of all {cores}), this platform included"
    )
    print(f"idle platform over {elapsed:.1f}s, % of one core:")
    for component, seconds in sorted(by_component.items(), key=lambda kv: -kv[1]):
        print(f"  {share(seconds)}  {component}")
        parts = [(label, s) for label, s in used.items() if label.split(":")[0] == component]
        if len(parts) > 1:
            for label, seconds_of in sorted(parts, key=lambda kv: -kv[1]):
                if seconds_of > 0:
                    print(f"      {share(seconds_of)}  {label}")
    print(f"  {share(total)}  in all")


if __name__ == "__main__":
    main()
