"""The table the chaos run prints (Markdown, so it can be pasted into docs/reliability.md)."""

from __future__ import annotations

from collections import Counter

from tests.chaos.faults import Fault
from tests.chaos.run import Row

HEADER = (
    "| fault | recovered in | client-visible errors | not allowed | lost | doubled"
    " | stuck | broken | sales |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{o} x{n}" for o, n in counter.most_common()) or "none"


def table_row(fault: Fault, row: Row) -> str:
    recovered = f"{row.recovered_in:.1f} s" if row.recovered_in is not None else "**no**"
    f = row.findings
    return (
        f"| {row.fault} | {recovered} | {_counts(row.errors)} | {_counts(row.bad(fault))}"
        f" | {len(f.lost)} | {len(f.doubled)} | {len(f.stuck)} | {len(f.broken)}"
        f" | {row.sales} |"
    )


def passed(fault: Fault, row: Row) -> bool:
    return row.recovered_in is not None and row.findings.clean and not row.bad(fault)


def details(fault: Fault, row: Row) -> list[str]:
    lines = [f"{row.fault}: settled {row.settle_seconds:.0f} s after the load stopped"]
    lines += [f"  {note}" for note in row.notes]
    lines += [
        f"  not allowed: {o} x{n} on {_counts(row.calls.get(o, Counter()))}"
        for o, n in row.bad(fault).items()
    ]
    lines += [f"  {line}" for line in row.findings.lines()]
    return lines
