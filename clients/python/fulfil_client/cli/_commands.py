"""The `fulfil` commands: tenants, dead letters, stock integrity, webhook deliveries, sales and
the overview. Each is one or a few REST calls through `fulfil_client`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.markup import escape

from fulfil_client.cli._app import (
    CHECK_FAILED,
    TIME,
    batches,
    cli,
    command,
    emit_json,
    fields,
    plain,
    progress,
    say,
    settings,
    table,
)
from fulfil_client.errors import Conflict

SERVICES = ("orders", "stock", "fulfilment", "webhooks")
SCOPES_HELP = "A scope (repeat for several): sales:read, sales:write, stock:read, ... admin."
REPLAY_BATCH = 500  # the most ids the API takes in one replay or purge


# --- tenants (admin token) --------------------------------------------------------------------


@cli.group(help="Tenants and their API keys (the admin token).")
def tenants() -> None:
    pass


@command(tenants, "create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, help=SCOPES_HELP + " Default: all but admin.")
def tenants_create(name: str, scopes: tuple[str, ...]) -> None:
    """Creates a tenant and its first API key, printed once (store it safely)."""
    created = settings().client().admin.tenants.create(name, list(scopes) or None)
    if settings().json:
        return emit_json(created)
    tenant = created.tenant
    fields(
        "tenant created",
        {
            "id": tenant.id,
            "name": tenant.name,
            "key_id": created.key_id,
            "scopes": " ".join(created.scopes),
        },
    )
    say("API key (shown only now):")
    click.echo(created.api_key)


@command(tenants, "list")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (default: all).")
def tenants_list(limit: int | None) -> None:
    """Every tenant, oldest first, with its active and revoked key counts."""
    pages = settings().client().admin.tenants.list(limit=min(limit or 100, 100))
    found = plain(pages.to_list(limit))
    if settings().json:
        return emit_json(found)
    table(
        f"{len(found)} tenants",
        ["id", "name", "created_at", "active keys", "revoked keys"],
        [
            (t["id"], t["name"], t["created_at"], t["keys"]["active"], t["keys"]["revoked"])
            for t in found
        ],
    )


@command(tenants, "show")
@click.argument("tenant_id")
def tenants_show(tenant_id: str) -> None:
    """One tenant with its key counts."""
    found = plain(settings().client().admin.tenants.get(tenant_id))
    if settings().json:
        return emit_json(found)
    fields(
        found["name"],
        {
            "id": found["id"],
            "created_at": found["created_at"],
            "active keys": found["keys"]["active"],
            "revoked keys": found["keys"]["revoked"],
        },
    )


@command(tenants, "keys")
@click.argument("tenant_id")
def tenants_keys(tenant_id: str) -> None:
    """The tenant's keys, revoked ones included (never their secrets)."""
    keys = settings().client().admin.tenants.keys(tenant_id)
    if settings().json:
        return emit_json(keys)
    table(
        f"{len(keys)} keys",
        ["id", "name", "prefix", "scopes", "created_at", "revoked_at"],
        [
            (k.id, k.name, k.prefix, " ".join(k.scopes), plain(k.created_at), plain(k.revoked_at))
            for k in keys
        ],
    )


@command(tenants, "create-key")
@click.argument("tenant_id")
@click.option("--scope", "scopes", multiple=True, required=True, help=SCOPES_HELP)
@click.option("--name", help="A name to tell the key by.")
def tenants_create_key(tenant_id: str, scopes: tuple[str, ...], name: str | None) -> None:
    """Issues another API key for the tenant, printed once."""
    created = settings().client().admin.tenants.create_key(tenant_id, list(scopes), name)
    if settings().json:
        return emit_json(created)
    fields(
        "key created",
        {"id": created.id, "prefix": created.prefix, "scopes": " ".join(created.scopes)},
    )
    say("API key (shown only now):")
    click.echo(created.api_key)


@command(tenants, "revoke-key")
@click.argument("key_id")
def tenants_revoke_key(key_id: str) -> None:
    """Revokes a key on every gateway, from its next request on."""
    settings().client().admin.tenants.revoke_key(key_id)
    if settings().json:
        return emit_json({"id": key_id, "revoked": True})
    say(f"revoked key {escape(key_id)}")


# --- dead letters (admin token) ---------------------------------------------------------------

service_option = click.option(
    "--service",
    type=click.Choice(SERVICES),
    required=True,
    help="The service whose consumers gave up on the events.",
)


@cli.group("dead-letters", help="Events a service's consumers gave up on (the admin token).")
def dead_letters() -> None:
    pass


def _dead_letter_row(d: Any) -> tuple[Any, ...]:
    return (d.id, d.consumer, d.event_type, d.topic, d.state, plain(d.failed_at), d.error)


@command(dead_letters, "list")
@service_option
@click.option("--state", type=click.Choice(["dead", "replayed"]))
@click.option("--type", "event_type", help="An event type, e.g. sale.created.")
@click.option("--consumer")
@click.option("--topic")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def dead_letters_list(
    service: str,
    state: str | None,
    event_type: str | None,
    consumer: str | None,
    topic: str | None,
    limit: int,
) -> None:
    """Dead letters, oldest first (without their values: `show` has them)."""
    pages = (
        settings()
        .client()
        .admin.dead_letters.list(
            service,
            state=state,
            type=event_type,
            consumer=consumer,
            topic=topic,  # type: ignore[arg-type]
            limit=min(limit, 1000),
        )
    )
    found = pages.to_list(limit)
    if settings().json:
        return emit_json(found)
    table(
        f"{len(found)} dead letters of {service}",
        ["id", "consumer", "type", "topic", "state", "failed_at", "error"],
        [_dead_letter_row(d) for d in found],
    )


@command(dead_letters, "show")
@service_option
@click.argument("dead_letter_id", type=int)
def dead_letters_show(service: str, dead_letter_id: int) -> None:
    """One dead letter with the record as consumed and its error."""
    found = settings().client().admin.dead_letters.get(service, dead_letter_id)  # type: ignore[arg-type]
    if settings().json:
        return emit_json(found)
    fields(f"dead letter {dead_letter_id} of {service}", plain(found))


def _dead_ids(service: str) -> list[int]:
    pages = settings().client().admin.dead_letters.list(service, state="dead", limit=1000)  # type: ignore[arg-type]
    return [d.id for d in pages]


@command(dead_letters, "replay")
@service_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every dead letter still `dead`.")
def dead_letters_replay(service: str, ids: tuple[int, ...], every: bool) -> int:
    """Replays dead letters once the cause is fixed: each goes back on its topic. Exit 1
    when any was not replayed (already replayed, unreadable, unknown)."""
    if bool(ids) == every:
        raise click.UsageError("name the ids to replay, or --all")
    wanted = _dead_ids(service) if every else list(ids)
    results: list[Any] = []
    with progress(f"replaying {len(wanted)} dead letters of {service}", len(wanted)) as advance:
        for batch in batches(wanted, REPLAY_BATCH):
            answer = settings().client().admin.dead_letters.replay_many(service, list(batch))  # type: ignore[arg-type]
            results += answer.results
            advance(len(batch))
    refused = [r for r in results if r.outcome != "replayed"]
    if settings().json:
        emit_json({"results": results})
    else:
        table(
            f"replayed {len(results) - len(refused)} of {len(results)}",
            ["id", "outcome", "detail"],
            [(r.id, r.outcome, r.detail) for r in results],
        )
    return CHECK_FAILED if refused else 0


@command(dead_letters, "purge")
@service_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--older-than", type=TIME, help="Every dead letter that failed before this time.")
def dead_letters_purge(service: str, ids: tuple[int, ...], older_than: datetime | None) -> None:
    """Deletes the dead letters named, or every one that failed before --older-than."""
    if bool(ids) == (older_than is not None):
        raise click.UsageError("name the ids to purge, or --older-than TIME")
    letters = settings().client().admin.dead_letters
    purged = 0
    if older_than is not None:
        with progress(f"purging dead letters of {service} older than {older_than}", None):
            purged = letters.purge(service, older_than=older_than).purged  # type: ignore[arg-type]
    else:
        with progress(f"purging {len(ids)} dead letters of {service}", len(ids)) as advance:
            for batch in batches(list(ids), REPLAY_BATCH):
                purged += letters.purge(service, ids=list(batch)).purged  # type: ignore[arg-type]
                advance(len(batch))
    if settings().json:
        return emit_json({"purged": purged})
    say(f"purged {purged} dead letters of {service}")


# --- stock integrity (admin token) ------------------------------------------------------------


@cli.group(help="Stock, as the operator sees it (the admin token).")
def stock() -> None:
    pass


@stock.group(help="Do records, reservations and the ledger agree? Exit 1 while they do not.")
def integrity() -> None:
    pass


tenant_option = click.option("--tenant", "tenant_id", help="One tenant's records (default: all).")


def _integrity(report: dict[str, Any]) -> int:
    if settings().json:
        emit_json(report)
    else:
        if report["discrepancies"]:
            table(
                f"{len(report['discrepancies'])} discrepancies",
                ["stock record", "location", "sku", "check", "recorded", "expected"],
                [
                    (
                        d["stock_record_id"],
                        d["location_id"],
                        d["sku"],
                        d["check"],
                        d["recorded"],
                        d["expected"],
                    )
                    for d in report["discrepancies"]
                ],
            )
        repaired = f", repaired {report['repaired']}" if report["repaired"] else ""
        verdict = "[green]ok[/]" if report["ok"] else "[red]discrepancies remain[/]"
        say(f"checked {report['records_checked']} stock records{repaired}: {verdict}")
    return 0 if report["ok"] else CHECK_FAILED


@command(integrity, "check")
@tenant_option
def integrity_check(tenant_id: str | None) -> int:
    """Checks every record's `reserved` against its reservations, and the ledger."""
    with progress("checking stock integrity", None):
        report = plain(settings().client().admin.stock.check_integrity(tenant_id))
    return _integrity(report)


@command(integrity, "rebuild")
@tenant_option
def integrity_rebuild(tenant_id: str | None) -> int:
    """Rebuilds `reserved` from the active reservations, then checks again."""
    with progress("rebuilding reserved quantities", None):
        report = plain(settings().client().admin.stock.rebuild_integrity(tenant_id))
    return _integrity(report)


# --- webhook deliveries (a tenant's API key) --------------------------------------------------


@cli.group(help="Webhook endpoints' deliveries (a tenant's API key).")
def webhooks() -> None:
    pass


@webhooks.group(help="Deliveries across the tenant's endpoints.")
def deliveries() -> None:
    pass


def _delivery_row(d: dict[str, Any]) -> tuple[Any, ...]:
    return (
        d["id"],
        d["endpoint_id"],
        d["event_type"],
        d["subject"],
        d["status"],
        d["attempt_count"],
        d["last_status_code"],
        d["created_at"],
    )


DELIVERY_COLUMNS = [
    "id",
    "endpoint",
    "event type",
    "subject",
    "status",
    "attempts",
    "last status",
    "created_at",
]


@command(deliveries, "list")
@click.option("--endpoint", "endpoint_id", help="One endpoint's only.")
@click.option("--status", type=click.Choice(["pending", "succeeded", "failed"]))
@click.option("--event-type")
@click.option("--subject", help="sale/<id> for a sale's deliveries.")
@click.option("--event-id")
@click.option("--since", type=TIME, help="Created at or after.")
@click.option("--until", type=TIME, help="Created before.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def deliveries_list(
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    subject: str | None,
    event_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """Deliveries, newest first, each with its attempts (in --json)."""
    pages = (
        settings()
        .client()
        .webhooks.deliveries.list(
            endpoint_id=endpoint_id,
            status=status,  # type: ignore[arg-type]
            event_type=event_type,
            subject=subject,
            event_id=event_id,
            since=since,
            until=until,
            limit=min(limit, 100),
        )
    )
    found = plain(pages.to_list(limit))
    if settings().json:
        return emit_json(found)
    table(f"{len(found)} deliveries", DELIVERY_COLUMNS, [_delivery_row(d) for d in found])


@command(deliveries, "resend")
@click.argument("delivery_ids", nargs=-1, required=True)
def deliveries_resend(delivery_ids: tuple[str, ...]) -> int:
    """Queues finished deliveries again (same webhook-id, fresh retries). Exit 1 when any
    could not be (still pending); 3 when one is unknown."""
    client = settings().client()
    resent: list[Any] = []
    refused: list[dict[str, str]] = []
    with progress(f"resending {len(delivery_ids)} deliveries", len(delivery_ids)) as advance:
        for delivery_id in delivery_ids:
            try:
                resent.append(client.webhooks.deliveries.resend(delivery_id))
            except Conflict as error:  # a conflict of one does not stop the others
                if len(delivery_ids) == 1:
                    raise
                refused.append({"id": delivery_id, "detail": error.detail})
            advance(1)
    if settings().json:
        emit_json({"resent": resent, "refused": refused})
    else:
        table(f"resent {len(resent)}", DELIVERY_COLUMNS, [_delivery_row(plain(d)) for d in resent])
        for r in refused:
            say(f"[red]not resent[/] {escape(r['id'])}: {escape(r['detail'])}")
    return CHECK_FAILED if refused else 0


@command(deliveries, "recover")
@click.option("--since", type=TIME, required=True, help="Failed deliveries created since then.")
@click.option("--until", type=TIME, help="... and before this time.")
@click.option(
    "--endpoint",
    "endpoint_ids",
    multiple=True,
    help="An endpoint (repeat for several; default: every endpoint of the tenant).",
)
def deliveries_recover(
    since: datetime, until: datetime | None, endpoint_ids: tuple[str, ...]
) -> None:
    """Queues again every failed delivery created in the window, endpoint by endpoint."""
    client = settings().client()
    targets = list(endpoint_ids) or [str(e.id) for e in client.webhooks.endpoints.list()]
    recovered: dict[str, int] = {}
    with progress(f"recovering {len(targets)} endpoints", len(targets)) as advance:
        for endpoint_id in targets:
            answer = client.webhooks.endpoints.recover(endpoint_id, since, until)
            recovered[endpoint_id] = answer.recovered
            advance(1)
    total = sum(recovered.values())
    if settings().json:
        return emit_json({"recovered": total, "endpoints": recovered})
    table(f"recovered {total} deliveries", ["endpoint", "recovered"], recovered.items())


# --- sales (a tenant's API key) ---------------------------------------------------------------


@cli.group(help="Sales (a tenant's API key).")
def sales() -> None:
    pass


@command(sales, "get")
@click.argument("sale_id")
def sales_get(sale_id: str) -> None:
    """One sale with its lines and history."""
    sale = settings().client().sales.get(sale_id)
    if settings().json:
        return emit_json(sale)
    shown = plain(sale)
    scalars = {k: v for k, v in shown.items() if not isinstance(v, list)}
    fields(f"sale {sale.sale_id}", scalars)
    lines = shown.get("lines") or []
    if lines:
        names = sorted({k for line in lines for k in line})
        table("lines", names, [[line.get(k) for k in names] for line in lines])
    history = shown.get("status_history") or []
    if history:
        names = sorted({k for entry in history for k in entry})
        table("status history", names, [[entry.get(k) for k in names] for entry in history])


CANCEL_REASONS = ["out_of_stock", "customer_request", "other"]


@command(sales, "cancel")
@click.argument("sale_id")
@click.option("--reason", type=click.Choice(CANCEL_REASONS), required=True)
@click.option(
    "--version",
    type=int,
    help="Cancel only at this version (default: the version read just before).",
)
def sales_cancel(sale_id: str, reason: str, version: int | None) -> None:
    """Cancels a sale and releases its reservation, with `If-Match`: exit 4 when the sale
    moved since it was read (or since --version)."""
    client = settings().client()
    if version is None:
        version = client.sales.get(sale_id).version  # type: ignore[attr-defined]
    canceled = client.sales.cancel(sale_id, reason, version=version)  # type: ignore[arg-type]
    if settings().json:
        return emit_json(canceled)
    say(f"canceled sale {escape(canceled.sale_id)} (was at version {version})")


# --- overview (admin token) -------------------------------------------------------------------


@command(cli, "overview")
def overview() -> int:
    """Every service at a glance: readiness, consumer lag, outbox backlog, dead letters.
    Exit 1 when any service is not ready or unreachable."""
    found = plain(settings().client().admin.overview())
    services = found["services"]
    if settings().json:
        emit_json(found)
    else:
        table(
            "services",
            ["service", "status", "consumer lag", "outbox backlog", "dead letters", "error"],
            [
                (
                    s["service"],
                    s["status"],
                    None
                    if s["consumer_lag"] is None
                    else sum(lag["lag"] for lag in s["consumer_lag"]),
                    s["outbox_backlog_rows"],
                    None if s["dead_letters"] is None else s["dead_letters"]["dead"],
                    s.get("error"),
                )
                for s in services
            ],
        )
    return 0 if all(s["status"] == "ready" for s in services) else CHECK_FAILED
