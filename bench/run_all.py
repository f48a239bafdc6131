"""`make bench`: measures the machine, then runs every benchmark, each on a fresh Kafka and
PostgreSQL, and prints every figure with its ratio to the machine limit it depends on.

A fresh pair per benchmark keeps one run's events from loading the next: the webhooks
service, for one, would otherwise start by consuming everything the earlier runs left.
PostgreSQL keeps fsync on (INFRA_DURABLE=1), as in production.

    python bench/run_all.py [--quick] [--only NAME ...] [--out DIR]

`--only sales_flow_2x` runs the lifecycle bench with two processes of every service beside
one (`sales_flow.py --replicas 2`); it is not in the default set (two platforms in turn).

Each run writes a folder (default `bench/results/<UTC time>-<commit>/`, not committed):
`run.json` (the machine, the commit, the limits, every figure and its ratio), one log per
benchmark, `throughput.png` (work completed over time) and `latency.png` (the latency
distributions). The limits come from `bench/calibrate.py`, taken first, in the same sitting.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    default: bool = True  # run by `make bench`; the others by `--only NAME`


BENCHMARKS = [
    Benchmark("sales_flow", "sales_flow.py", (), ("--sales", "500", "--warmup", "500")),
    Benchmark("stock_reservations", "stock_reservations.py", (), ("--sales", "2000")),
    Benchmark(
        "webhook_delivery",
        "webhook_delivery.py",
        ("--endpoints", "1"),
        ("--endpoints", "1", "--burst", "3000", "--seconds", "5"),
    ),
    Benchmark(
        "webhook_delivery_4",
        "webhook_delivery.py",
        ("--endpoints", "4", "--burst", "10000"),
        ("--endpoints", "4", "--burst", "1000", "--seconds", "5"),
    ),
    # not in the default set: two platforms one after the other, twice the processes
    Benchmark(
        "sales_flow_2x",
        "sales_flow.py",
        ("--replicas", "2", "--sales", "3000", "--warmup", "2000"),
        ("--replicas", "2", "--sales", "500", "--warmup", "500"),
        default=False,
    ),
]


@dataclass(frozen=True)
class Ratio:
    """A figure put against a limit of the machine: `figure / limit` for a rate, or, for a
    cost (`cost`: CPU ms), `figure x limit / 1000`: that cost in units of the limit's work (a
    lifecycle's CPU in loopback requests). Without a limit the target is absolute."""

    benchmark: str
    figure: str
    limit: str | None
    target: float | None
    at_least: bool = True
    cost: bool = False


RATIOS = [
    Ratio("sales_flow", "lifecycles/s", "loopback requests/s", 0.077),
    Ratio("sales_flow", "CPU ms per lifecycle", "loopback requests/s", None, cost=True),
    Ratio("sales_flow", "create-to-pending at half the rate p99", None, 100, at_least=False),
    Ratio("sales_flow_2x", "lifecycles/s", "loopback requests/s", None),
    Ratio("sales_flow_2x", "1 replica: lifecycles/s", "loopback requests/s", None),
    Ratio("sales_flow_2x", "CPU ms per lifecycle", "loopback requests/s", None, cost=True),
    Ratio(
        "sales_flow_2x", "1 replica: CPU ms per lifecycle", "loopback requests/s", None, cost=True
    ),
    Ratio("sales_flow_2x", "create-to-pending at half the rate p99", None, None),
    Ratio("sales_flow_2x", "1 replica: create-to-pending at half the rate p99", None, None),
    Ratio("stock_reservations", "hot SKU: reservations/s", "hot-row updates/s", 1.8),
    Ratio("stock_reservations", "many SKUs: reservations/s", "pgbench TPC-B tps", None),
    Ratio("webhook_delivery", "burst: deliveries/s", "loopback requests/s", 0.46),
    Ratio("webhook_delivery", "steady 500/s: commit-to-delivery p99", None, 100, at_least=False),
    Ratio("webhook_delivery_4", "burst: deliveries/s", "loopback requests/s", None),
    Ratio("webhook_delivery_4", "steady 500/s: commit-to-delivery p99", None, 200, at_least=False),
]


def commit() -> str:
    found = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
    )
    return found.stdout.strip() or "unknown"


def machine() -> dict[str, object]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    return {"cores": os.cpu_count(), "cpu": model, "platform": host.platform()}


def infra(command: list[str], env: dict[str, str], log: Path) -> None:
    """`command` on a fresh Kafka and PostgreSQL, its output to `log`."""
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "deploy.local", "infra", "--", *command],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def rated(results: dict[str, dict], limits: dict[str, float]) -> list[dict[str, object]]:
    rows = []
    for r in RATIOS:
        figure = results.get(r.benchmark, {}).get("figures", {}).get(r.figure)
        if figure is None:
            continue
        value = figure["value"]
        ratio = None
        if r.limit:
            ratio = value * limits[r.limit] / 1000 if r.cost else value / limits[r.limit]
        compared = value if ratio is None else ratio
        met = None
        if r.target is not None:
            met = compared >= r.target if r.at_least else compared < r.target
        rows.append(
            {
                "benchmark": r.benchmark,
                "figure": r.figure,
                "value": value,
                "unit": figure["unit"],
                "limit": r.limit,
                "ratio": ratio,
                "target": None
                if r.target is None
                else ("≥ " if r.at_least else "< ") + f"{r.target:g}",
                "met": met,
            }
        )
    return rows


def plot(results: dict[str, dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    timelines = [
        (f"{name}: {series}", timeline["at"], timeline["weight"])
        for name, result in results.items()
        for series, timeline in result.get("timelines_s", {}).items()
        if timeline["at"]
    ]
    if timelines:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for label, times, weight in timelines:
            width = max(times[-1] / 60, 0.25)
            bins = [i * width for i in range(int(times[-1] / width) + 2)]
            counts = [0] * (len(bins) - 1)
            for at in times:
                counts[min(int(at / width), len(counts) - 1)] += 1
            ax.plot(bins[:-1], [n * weight / width for n in counts], label=label)
        ax.set_xlabel("seconds from the start of the measured run")
        ax.set_ylabel("completed per second")
        ax.set_title("Throughput over time")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=110)
        plt.close(fig)
        written.append(out / "throughput.png")
    latencies = [
        (f"{name}: {series}", sorted(values))
        for name, result in results.items()
        for series, values in result.get("latencies_ms", {}).items()
        if values
    ]
    if latencies:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for label, values in latencies:
            share = [(i + 1) / len(values) for i in range(len(values))]
            ax.plot(values, share, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (log scale)")
        ax.set_ylabel("share of requests at or below")
        ax.set_title("Latency distribution")
        ax.axhline(0.99, color="grey", linewidth=0.5, linestyle="--")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        written.append(out / "latency.png")
    return written


def show(console: Console, limits: dict[str, float], rows: list[dict[str, object]]) -> None:
    table = Table(title="Limits of this machine, measured first")
    table.add_column("limit")
    table.add_column("value", justify="right")
    for name, value in limits.items():
        table.add_row(name, f"{value:,.0f}")
    console.print(table)
    table = Table(title="Figures and their ratio to the limit they depend on")
    for column in ("benchmark", "figure", "value", "÷ limit", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for row in rows:
        ratio = row["ratio"]
        met = {True: "yes", False: "NO", None: ""}[row["met"]]  # type: ignore[index]
        table.add_row(
            str(row["benchmark"]),
            str(row["figure"]),
            f"{row['value']:,.1f} {row['unit']}",
            str(row["limit"] or "(absolute)"),
            "" if ratio is None else f"{ratio:.3f}",
            str(row["target"] or ""),
            met,
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs: to check the bench")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--out", type=Path, help="folder for this run's results")
    parser.add_argument("--calibrate-seconds", type=int, default=20)
    args = parser.parse_args()
    started = datetime.now(UTC)
    version = commit()
    out = args.out or HERE / "results" / f"{started:%Y%m%dT%H%M%SZ}-{version}"
    out.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["INFRA_DURABLE"] = "1"
    chosen = [b for b in BENCHMARKS if (b.name in args.only if args.only else b.default)]
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    console.print(f"results: {out}")
    results: dict[str, dict] = {}
    seconds = 5 if args.quick else args.calibrate_seconds
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        steps = progress.add_task("calibrating the machine", total=len(chosen) + 1)
        calibration = out / "calibration.json"
        infra(
            [
                sys.executable,
                str(HERE / "calibrate.py"),
                "--seconds",
                str(seconds),
                "--json",
                str(calibration),
            ],
            env,
            out / "calibrate.log",
        )
        limits = orjson.loads(calibration.read_bytes())
        progress.advance(steps)
        for bench in chosen:
            progress.update(steps, description=f"running {bench.name}")
            report = out / f"{bench.name}.json"
            t0 = time.monotonic()
            infra(
                [
                    sys.executable,
                    str(HERE / bench.script),
                    *(bench.quick if args.quick else bench.args),
                ],
                env | {"BENCH_REPORT": str(report)},
                out / f"{bench.name}.log",
            )
            results[bench.name] = orjson.loads(report.read_bytes()) | {
                "seconds": time.monotonic() - t0
            }
            progress.advance(steps)
        progress.update(steps, description="done")
    rows = rated(results, limits)
    show(console, limits, rows)
    plots = plot(results, out)
    summary = {
        "started_at": started.isoformat(),
        "commit": version,
        "machine": machine(),
        "command": [sys.executable, *sys.argv],
        "quick": args.quick,
        "limits": limits,
        "ratios": rows,
        "benchmarks": {
            name: {k: v for k, v in r.items() if k not in ("latencies_ms", "timelines_s")}
            for name, r in results.items()
        },
    }
    (out / "run.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    console.print(f"written: {out / 'run.json'}, " + ", ".join(str(p) for p in plots))


if __name__ == "__main__":
    main()
