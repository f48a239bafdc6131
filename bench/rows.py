"""What a full sale lifecycle writes, table by table and service by service: the rows
(inserted, updated and how many of those in place, deleted), the WAL (records, full-page
images and bytes, from the WAL itself), the transactions that wrote and the statements each
service sent, and the Kafka records on each topic.

    INFRA_DURABLE=1 python -m deploy.local infra -- python bench/rows.py \\
        [--sales 2000] [--warmup 1000] [--no-statements]

Runs `sales_flow.py`'s lifecycles (create 20 a request, shipping init, mark shipped in waves,
until the stock is committed) on the Kafka and PostgreSQL named by KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL, after a warm-up, and reads around the measured ones:

- `pg_stat_user_tables` (rows inserted, updated, updated in place (HOT), deleted per table)
  and `pg_stat_database` (commits), from a settled platform, as `sales_flow.py` does;
- the WAL between the two positions, through `pg_walinspect`: each record's relations
  (an index or a TOAST table counts as its table's), so WAL records and bytes per table, and
  the transactions that wrote (a commit record) by the schema, hence the service, they wrote
  to; autovacuum's records and those of no relation (commits, checkpoints) apart;
- unless `--no-statements`, `pg_stat_statements` by role (each service connects as its own,
  `fulfilkit.db_roles`): statements and explicit transactions per service, and each
  service's most frequent statements. The bench loads it at the start: it sets
  `shared_preload_libraries` and restarts the server, which must be the local one
  (`deploy.local`). It also keeps the run's WAL (`wal_keep_size`) until it has been read.

Every figure is per lifecycle. `pg_stat_statements` costs every statement a little CPU: the
CPU line is for orientation; take CPU figures from `sales_flow.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench import invariants
from bench.cpu import CpuMeter
from bench.report import Report
from bench.sales_flow import analyze, lifecycles, new_tenant, platform
from deploy.local.infra import postgres_state_dir, restart_postgres, stop_postgres
from deploy.local.services import Platform
from fulfilkit.contracts import DOMAIN_TOPICS
from fulfilkit.db_roles import ROLE_PREFIX

SCHEMAS = invariants.SCHEMAS
AUTOVACUUM = "(autovacuum, no transaction)"
NO_RELATION = "(no relation: commits, checkpoints, ...)"


# Preparing the server


async def prepare_server(database_url: str, statements: bool) -> None:
    """Keep the run's WAL until it is read, and load `pg_stat_statements` (a restart)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER SYSTEM SET wal_keep_size = '4GB'")
        loaded = await conn.fetchval("SHOW shared_preload_libraries")
        if statements and "pg_stat_statements" not in loaded:
            await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        else:
            statements = False  # loaded already, or not wanted
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    if statements:
        state = postgres_state_dir(database_url)
        if state is None:
            raise SystemExit("--statements needs the local PostgreSQL (deploy.local): restart it")
        stop_postgres(state)
        restart_postgres(state)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        if "pg_stat_statements" in await conn.fetchval("SHOW shared_preload_libraries"):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()


# Reading what was written


@dataclass
class Counters:
    tables: dict[str, dict[str, int]]  # schema.table -> ins, upd, hot, del
    commits: int
    wal: dict[str, float]
    lsn: str


TABLE_FIELDS = ("ins", "upd", "hot", "del")


async def counters(conn: asyncpg.Connection) -> Counters:
    rows = await conn.fetch(
        "SELECT schemaname || '.' || relname AS name, n_tup_ins AS ins, n_tup_upd AS upd,"
        " n_tup_hot_upd AS hot, n_tup_del AS del FROM pg_stat_user_tables"
        " WHERE schemaname = any($1::text[])",
        list(SCHEMAS),
    )
    commits = await conn.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    wal = await conn.fetchrow("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
    lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    return Counters(
        {r["name"]: {f: r[f] for f in TABLE_FIELDS} for r in rows},
        commits,
        {k: float(v) for k, v in wal.items()},
        lsn,
    )


async def relations(conn: asyncpg.Connection) -> dict[int, str]:
    """Each relfilenode of the services' schemas (tables, their indexes and TOAST) as the
    table's `schema.table`."""
    rows = await conn.fetch(
        "SELECT c.relfilenode AS node, n.nspname || '.' || c.relname AS name"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = any($1::text[]) AND c.relkind IN ('r', 'S')"
        " UNION ALL SELECT i.relfilenode, n.nspname || '.' || t.relname"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE n.nspname = any($1::text[])"
        " UNION ALL SELECT o.relfilenode, n.nspname || '.' || t.relname FROM pg_class t"
        " JOIN pg_class o ON o.oid = t.reltoastrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = any($1::text[])"
        " UNION ALL SELECT oi.relfilenode, n.nspname || '.' || t.relname FROM pg_class t"
        " JOIN pg_index x ON x.indrelid = t.reltoastrelid JOIN pg_class oi ON oi.oid = x.indexrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = any($1::text[])",
        list(SCHEMAS),
    )
    return {r["node"]: r["name"] for r in rows if r["node"]}


@dataclass
class Wal:
    """The WAL between two positions, by table and by service."""

    records: Counter[str] = field(default_factory=Counter)  # table -> records touching it
    bytes: Counter[str] = field(default_factory=Counter)  # table -> bytes, shared out
    fpi: Counter[str] = field(default_factory=Counter)  # table -> full-page images
    kinds: Counter[str] = field(default_factory=Counter)  # table -> "Heap/INSERT" ...
    kinds_of: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    transactions: Counter[str] = field(default_factory=Counter)  # service -> commits
    total_records: int = 0
    total_bytes: int = 0


async def read_wal(conn: asyncpg.Connection, start: str, end: str) -> Wal:
    names = await relations(conn)
    blocks = await conn.fetch(
        "SELECT start_lsn::text AS lsn, relfilenode AS node, xid::text::bigint AS xid,"
        " resource_manager || '/' || split_part(record_type, ' ', 1) AS kind,"
        " record_length AS length, coalesce(block_fpi_length, 0) AS fpi"
        " FROM pg_get_wal_block_info($1::text::pg_lsn, $2::text::pg_lsn, false)",
        start,
        end,
    )
    records = await conn.fetch(
        "SELECT start_lsn::text AS lsn, xid::text::bigint AS xid,"
        " resource_manager || '/' || split_part(record_type, ' ', 1) AS kind,"
        " record_length AS length FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)",
        start,
        end,
    )
    out = Wal(total_records=len(records), total_bytes=sum(r["length"] for r in records))
    tables_of: dict[str, set[str]] = defaultdict(set)  # record -> tables
    fpi_of: dict[str, Counter[str]] = defaultdict(Counter)
    schemas_of_xid: dict[int, set[str]] = defaultdict(set)
    for b in blocks:
        table = names.get(b["node"], "(other: catalogs, ...)")
        tables_of[b["lsn"]].add(table)
        if b["fpi"]:
            fpi_of[b["lsn"]][table] += 1
        if b["xid"] and "." in table:
            schemas_of_xid[b["xid"]].add(table.split(".")[0])
    for r in records:
        tables = tables_of.get(r["lsn"]) or (
            {AUTOVACUUM} if not r["xid"] and r["kind"].startswith("Heap") else {NO_RELATION}
        )
        for table in tables:
            out.records[table] += 1
            out.bytes[table] += r["length"] / len(tables)
            out.kinds_of[table][r["kind"]] += 1
        out.fpi.update(fpi_of.get(r["lsn"], Counter()))
        if r["kind"] == "Transaction/COMMIT":
            schemas = schemas_of_xid.get(r["xid"], set())
            out.transactions["+".join(sorted(schemas)) or "(no service table)"] += 1
    return out


async def statements(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT r.rolname AS role, s.query, s.calls, s.rows, s.wal_records, s.wal_bytes"
        " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
        " WHERE r.rolname LIKE $1",
        ROLE_PREFIX + "%",
    )


# The run


async def until_orders_know(database_url: str, tenant: object, skus: int) -> None:
    """Wait until orders' copy of the catalogue has the tenant's SKUs, so that no sale of the
    warm-up is refused for a SKU the copy lacks (`SALE_CATALOGUE_WAIT_SECONDS`); when it
    never comes (say, processes of an earlier run still consume from the same broker),
    say how many events wait in stock's outbox."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 30
        query = "SELECT count(*) FROM orders.catalogue WHERE tenant_id = $1"
        while await conn.fetchval(query, tenant) < skus:
            if time.monotonic() > deadline:
                waiting = await conn.fetchval("SELECT count(*) FROM stock.outbox")
                raise RuntimeError(
                    "orders did not learn the tenant's products within 30 s"
                    f" ({waiting} events wait in stock's outbox)"
                )
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def service_of(table: str) -> str:
    return table.split(".")[0] if "." in table and not table.startswith("(") else table


async def run(args: argparse.Namespace, platform: Platform, report: Report) -> list[str]:
    import aiohttp

    database_url, bootstrap = os.environ["DATABASE_URL"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    meter = CpuMeter.for_local_run(platform)
    lines: list[str] = []
    n = args.sales
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        need = args.warmup + args.sales + 100
        api, skus, tenant = await new_tenant(
            session, platform.gateway_url, platform.admin_token, args.skus, need // args.skus + 10
        )
        await until_orders_know(database_url, tenant.id, len(skus.skus))
        await lifecycles(api, skus, args.warmup, args.concurrency, True, args.create_batch)
        await analyze(database_url)
        await meter.until_quiet()
        await asyncio.sleep(invariants.STATISTICS_DELAY_SECONDS)
        conn = await asyncpg.connect(database_url)
        try:
            with_statements = bool(
                await conn.fetchval("SELECT to_regclass('pg_stat_statements') IS NOT NULL")
            )
            if with_statements:
                await conn.execute("SELECT pg_stat_statements_reset()")
            before = await counters(conn)
            records_before = await invariants.end_offsets(bootstrap, list(DOMAIN_TOPICS))
            cpu_before = meter.snapshot()
            elapsed, _, _ = await lifecycles(
                api, skus, n, args.concurrency, True, args.create_batch
            )
            cpu_after = meter.snapshot()
            await meter.until_quiet()
            await asyncio.sleep(invariants.STATISTICS_DELAY_SECONDS)
            after = await counters(conn)
            records_after = await invariants.end_offsets(bootstrap, list(DOMAIN_TOPICS))
            wal = await read_wal(conn, before.lsn, after.lsn)
            done = await statements(conn) if with_statements else []
        finally:
            await conn.close()

    def per(value: float) -> float:
        return value / n

    def fig(name: str, value: float, unit: str = "") -> None:
        report.figure(name, value, unit)

    lines.append(
        f"{n} lifecycles in {elapsed:.1f}s ({n / elapsed:,.0f}/s), after {args.warmup} not"
        f" counted; {meter.per_unit(cpu_before, cpu_after, n, 'lifecycle')}"
    )
    commits = per(after.commits - before.commits)
    wal_records = per(after.wal["wal_records"] - before.wal["wal_records"])
    wal_bytes = per(after.wal["wal_bytes"] - before.wal["wal_bytes"])
    wal_fpi = per(after.wal["wal_fpi"] - before.wal["wal_fpi"])
    lines.append(
        f"per lifecycle: {commits:.2f} commits (all, read-only included),"
        f" {sum(wal.transactions.values()) / n:.2f} that wrote; WAL {wal_records:.1f} records,"
        f" {wal_fpi:.2f} full-page images, {wal_bytes:,.0f} bytes (pg_stat_wal; the WAL read:"
        f" {wal.total_records / n:.1f} records, {wal.total_bytes / n:,.0f} bytes of records)"
    )
    fig("commits per lifecycle", commits)
    fig("WAL records per lifecycle", wal_records)
    fig("WAL bytes per lifecycle", wal_bytes, "B")

    # per table
    delta = {
        t: {f: after.tables[t][f] - before.tables.get(t, {}).get(f, 0) for f in TABLE_FIELDS}
        for t in after.tables
    }
    written = {
        t: d for t, d in delta.items() if any(d.values()) or wal.records.get(t) or wal.fpi.get(t)
    }
    lines.append("")
    lines.append("per table, per lifecycle (WAL records: those touching the table or its indexes)")
    head = (
        f"{'table':<34} {'ins':>6} {'upd':>6} {'(HOT)':>6} {'del':>6} {'WAL rec':>8}"
        f" {'FPI':>6} {'WAL B':>7}  WAL records by kind"
    )
    lines.append(head)
    extra = [AUTOVACUUM, NO_RELATION, "(other: catalogs, ...)"]
    ordered = sorted(written, key=lambda t: (service_of(t), -wal.records.get(t, 0)))
    for table in [*ordered, *(t for t in extra if wal.records.get(t))]:
        d = written.get(table, dict.fromkeys(TABLE_FIELDS, 0))
        kinds = ", ".join(
            f"{k} {v / n:.2f}" for k, v in wal.kinds_of.get(table, Counter()).most_common(4)
        )
        lines.append(
            f"{table:<34} {per(d['ins']):>6.2f} {per(d['upd']):>6.2f} {per(d['hot']):>6.2f}"
            f" {per(d['del']):>6.2f} {per(wal.records.get(table, 0)):>8.2f}"
            f" {per(wal.fpi.get(table, 0)):>6.2f} {per(wal.bytes.get(table, 0)):>7.0f}  {kinds}"
        )
        for f in TABLE_FIELDS:
            if d[f]:
                fig(f"rows per lifecycle, {table}, {f}", per(d[f]))
        if wal.records.get(table):
            fig(f"WAL records per lifecycle, {table}", per(wal.records[table]))

    # per service
    calls: Counter[str] = Counter()
    explicit: Counter[str] = Counter()
    by_statement: dict[str, list[tuple[int, str, int, int]]] = defaultdict(list)
    for s in done:
        service = s["role"].removeprefix(ROLE_PREFIX)
        calls[service] += s["calls"]
        query = " ".join(s["query"].split())
        if query.upper().startswith("BEGIN"):
            explicit[service] += s["calls"]
        by_statement[service].append((s["calls"], query, s["rows"], s["wal_records"]))
    lines.append("")
    lines.append("per service, per lifecycle")
    lines.append(
        f"{'service':<12} {'rows':>6} {'WAL rec':>8} {'WAL B':>7} {'wrote':>6}"
        + (f" {'stmts':>6} {'BEGINs':>7}" if done else "")
    )
    for service in SCHEMAS:
        tables = [t for t in written if service_of(t) == service]
        rows = sum(sum(written[t][f] for f in ("ins", "upd", "del")) for t in tables)
        records = sum(wal.records.get(t, 0) for t in wal.records if service_of(t) == service)
        size = sum(wal.bytes.get(t, 0) for t in wal.bytes if service_of(t) == service)
        wrote = sum(v for k, v in wal.transactions.items() if service in k.split("+"))
        line = (
            f"{service:<12} {per(rows):>6.2f} {per(records):>8.2f} {per(size):>7.0f}"
            f" {per(wrote):>6.2f}"
        )
        if done:
            line += f" {per(calls[service]):>6.2f} {per(explicit[service]):>7.2f}"
        lines.append(line)
        fig(f"rows per lifecycle, {service}", per(rows))
        fig(f"transactions that wrote per lifecycle, {service}", per(wrote))
        if done:
            fig(f"statements per lifecycle, {service}", per(calls[service]))
    odd = {k: v for k, v in wal.transactions.items() if k not in SCHEMAS}
    if odd:
        lines.append(
            "transactions that wrote to no service table or to several: "
            + ", ".join(f"{k} {per(v):.3f}" for k, v in sorted(odd.items()))
        )
    if done:
        lines.append("")
        lines.append(
            f"each service's most frequent statements, per lifecycle (of {args.top} shown):"
            " calls, rows, WAL records"
        )
        for service in SCHEMAS:
            for count, query, rows, records in sorted(by_statement[service], reverse=True)[
                : args.top
            ]:
                lines.append(
                    f"  {service:<11} {per(count):>6.3f} {per(rows):>7.2f} {per(records):>6.2f}"
                    f"  {query[:110]}"
                )

    lines.append("")
    events = {t: per(records_after[t] - records_before.get(t, 0)) for t in records_after}
    lines.append(
        f"Kafka records per lifecycle: {sum(events.values()):.2f} ("
        + ", ".join(f"{t} {v:.2f}" for t, v in events.items())
        + ")"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skus", type=int, default=100)
    parser.add_argument("--create-batch", type=int, default=20)
    parser.add_argument("--top", type=int, default=8, help="statements shown per service")
    parser.add_argument(
        "--no-statements",
        dest="statements",
        action="store_false",
        help="leave pg_stat_statements out (no restart of PostgreSQL)",
    )
    args = parser.parse_args()
    asyncio.run(prepare_server(os.environ["DATABASE_URL"], args.statements))
    report = Report("rows")
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    with platform(log_dir) as running:
        lines = asyncio.run(run(args, running, report))
    report.save([sys.executable, *sys.argv])
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print("\n".join(lines))
    print(f"service logs: {log_dir}")


if __name__ == "__main__":
    main()
