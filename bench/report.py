"""What one benchmark measured, kept for `bench/run_all.py`: named figures with their units,
latency samples and completion times for the plots.

A benchmark run on its own prints its figures as before; with `BENCH_REPORT=<file>` in its
environment it also writes them there as JSON when it finishes (`make bench` sets it).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import orjson

REPORT_ENV = "BENCH_REPORT"
MAX_SAMPLES = 20_000  # latencies kept per series: enough for a p99 and a histogram


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _thinned(values: list[float]) -> list[float]:
    if len(values) <= MAX_SAMPLES:
        return values
    step = len(values) / MAX_SAMPLES
    return [values[int(i * step)] for i in range(MAX_SAMPLES)]


class Report:
    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.figures: dict[str, dict[str, Any]] = {}
        self.latencies: dict[str, list[float]] = {}
        self.timelines: dict[str, dict[str, Any]] = {}

    def figure(self, name: str, value: float, unit: str) -> None:
        self.figures[name] = {"value": value, "unit": unit}

    def latency(self, name: str, milliseconds: list[float]) -> None:
        """A latency distribution: its p50/p99/max become figures, a sample is kept for plots."""
        self.latencies[name] = _thinned(milliseconds)
        self.figure(f"{name} p50", statistics.median(milliseconds), "ms")
        self.figure(f"{name} p99", percentile(milliseconds, 0.99), "ms")
        self.figure(f"{name} max", max(milliseconds), "ms")

    def timeline(self, name: str, seconds_since_start: list[float]) -> None:
        """When each unit of work completed, for a throughput-over-time plot; a thinned sample
        carries the units each of its points stands for (`weight`)."""
        kept = _thinned(sorted(seconds_since_start))
        weight = len(seconds_since_start) / len(kept) if kept else 1.0
        self.timelines[name] = {"weight": weight, "at": kept}

    def save(self, command: list[str]) -> None:
        path = os.environ.get(REPORT_ENV)
        if not path:
            return
        Path(path).write_bytes(
            orjson.dumps(
                {
                    "benchmark": self.benchmark,
                    "command": command,
                    "figures": self.figures,
                    "latencies_ms": self.latencies,
                    "timelines_s": self.timelines,
                }
            )
        )
