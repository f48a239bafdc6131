"""The console's routes: sign-in and out, then the tenant's pages (sales, stock, webhooks) and
the operator's (tenants, dead letters, lag and backlog, integrity). Each reads through
`gateway.console.calls` and renders a template; forms post back and redirect (303)."""

import asyncio
import hmac
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.console import store
from gateway.console.calls import Answer, TenantCalls
from gateway.console.pages import (
    PAGE_SIZE,
    STATIC,
    PageError,
    Redirect,
    admin_calls,
    check_poll,
    form_of,
    lifetime_of,
    new_sign_in_token,
    not_found,
    page,
    render,
    require,
    resources_of,
    session_of,
    tenant_calls,
)
from gateway.console.sessions import (
    COOKIE,
    PATH,
    SIGN_IN_COOKIE,
    admin_fingerprint,
    hash_id,
    local_path,
    new_session,
    same_token,
)
from gateway.domain import (
    ACCESS_TOKEN_PREFIX,
    API_KEY_PREFIX,
    MAX_API_KEY_LENGTH,
    client_address,
    hash_api_key,
)
from gateway.store import find_active_key

router = APIRouter(prefix=PATH, include_in_schema=False)

SALE_STATUSES = (
    "awaiting_stock",
    "backordered",
    "pending",
    "in_fulfillment",
    "shipped",
    "delivered",
    "canceled",
)
SETTLED_SALE = frozenset({"shipped", "delivered", "canceled"})  # live updates stop there
DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed")
DEAD_LETTER_SERVICES = ("orders", "stock", "fulfilment", "webhooks")
UPDATE_TYPES = ("audit", "restock", "loss")
CANCEL_REASONS = ("customer_request", "out_of_stock", "other")


# --- helpers -------------------------------------------------------------------------------


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() and len(raw) < 6 else 1


def _pages(answer: Answer, number: int) -> dict[str, Any]:
    total = (answer.body or {}).get("pagination", {}).get("total_count", 0)
    last = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return {"number": number, "last": last, "total": total}


def _day(value: str | None, end: bool = False) -> str | None:
    """A date input (YYYY-MM-DD) as the start (or end) of that day in UTC."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise PageError(400, "Bad date", f"{value!r} is not a date (YYYY-MM-DD).") from None
    return (day.replace(hour=23, minute=59, second=59) if end else day).isoformat()


def _moment(value: str | None) -> str | None:
    """A datetime-local input (YYYY-MM-DDTHH:MM), read as UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Bad time", f"{value!r} is not a time.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise not_found() from None


def _found(answer: Answer) -> Any:
    """The body of a read, or the page it calls for: 404 for what is missing or another
    tenant's (the services answer 404 for both), the service's problem otherwise."""
    if answer.ok:
        return answer.body
    if answer.status == 404:
        raise not_found()
    raise PageError(answer.status, "Refused", answer.detail)


def _back(fields: dict[str, str], default: str, done: str) -> Redirect:
    target = local_path(fields.get("next"), default)
    separator = "&" if "?" in target else "?"
    return Redirect(f"{target}{separator}done={done}")


# --- sign-in and out -----------------------------------------------------------------------


@router.get("")
@page
async def home(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        raise Redirect(f"{PATH}/sign-in")
    raise Redirect(f"{PATH}/operator" if session.is_admin else f"{PATH}/sales")


@router.get("/sign-in")
@page
async def sign_in_form(request: Request) -> Response:
    token = new_sign_in_token()
    target = local_path(request.query_params.get("next"), "")
    response = render(request, "sign_in.html", None, sign_in_token=token, next=target, error=None)
    _set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-in")
@page
async def sign_in(request: Request) -> Response:
    fields = await form_of(request, None)
    if not same_token(fields.get("sign_in_token"), request.cookies.get(SIGN_IN_COOKIE, "")):
        raise PageError(403, "Refused", "The sign-in form expired; load it again.")
    secret = fields.get("secret", "").strip()
    resources = resources_of(request)
    pool = request.app.state.runtime.pool
    lifetime = lifetime_of(resources)
    address = client_address(request.scope)
    opened = new_session()
    target = local_path(fields.get("next"), "")
    if secret.startswith(API_KEY_PREFIX) and not secret.startswith(ACCESS_TOKEN_PREFIX):
        if resources.unauthenticated.blocked_seconds(address) > 0:
            raise PageError(429, "Too many attempts", "Too many failed sign-ins; wait a minute.")
        key = None
        if len(secret) <= MAX_API_KEY_LENGTH:
            key = await find_active_key(pool, hash_api_key(secret))
        if key is None:
            resources.unauthenticated.wait_seconds(address)
            return _refused(request, fields)
        await store.insert_tenant_session(
            pool,
            opened.id_hash,
            opened.csrf_token,
            key.id,
            key.tenant_id,
            key.scopes,
            lifetime.absolute,
        )
        target = target or f"{PATH}/sales"
    else:
        token = resources.settings.admin_token
        if resources.admin_failures.blocked_seconds(address) > 0:
            raise PageError(429, "Too many attempts", "Too many failed sign-ins; wait a minute.")
        if not token or not hmac.compare_digest(secret.encode(), token.encode()):
            resources.admin_failures.wait_seconds(address)
            return _refused(request, fields)
        await store.insert_admin_session(
            pool, opened.id_hash, opened.csrf_token, admin_fingerprint(token), lifetime.absolute
        )
        target = target or f"{PATH}/operator"
    if previous := request.cookies.get(COOKIE):  # signing in again ends the session before
        await store.delete_session(pool, hash_id(previous))
    response = RedirectResponse(target, status_code=303)
    _set_cookie(
        request, response, COOKIE, opened.id, max_age=int(lifetime.absolute.total_seconds())
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
    return response


def _refused(request: Request, fields: dict[str, str]) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        "sign_in.html",
        None,
        401,
        sign_in_token=token,
        next=local_path(fields.get("next"), ""),
        error="That key or token is unknown, revoked or wrong.",
    )
    _set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    secure = request.url.scheme == "https" or resources_of(
        request
    ).settings.public_base_url.startswith("https://")
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, secure=secure, httponly=True, samesite="strict"
    )


@router.post("/sign-out")
@page
async def sign_out(request: Request) -> Response:
    session = await session_of(request)
    if session is not None:
        await form_of(request, session)
        await store.delete_session(request.app.state.runtime.pool, session.id_hash)
    response = RedirectResponse(f"{PATH}/sign-in?done=signed-out", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    media_type, body = STATIC[name]
    return Response(body, media_type=media_type)


# --- sales ---------------------------------------------------------------------------------


@router.get("/sales")
@page
async def sales(request: Request) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    q = request.query_params
    filters = {
        "sale_id": q.get("sale_id", "").strip(),
        "status": q.get("status", ""),
        "channel": q.get("channel", "").strip(),
        "created_from": q.get("created_from", ""),
        "created_to": q.get("created_to", ""),
    }
    if filters["status"] and filters["status"] not in SALE_STATUSES:
        filters["status"] = ""
    number = _page_number(request)
    answer = await calls.get(
        "/sales",
        sale_id=filters["sale_id"],
        status=filters["status"],
        channel=filters["channel"],
        created_from=_day(filters["created_from"]),
        created_to=_day(filters["created_to"], end=True),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    body = _found(answer)
    return render(
        request,
        "sales.html",
        session,
        sales=body["data"],
        filters=filters,
        statuses=SALE_STATUSES,
        pages=_pages(answer, number),
    )


def _line_figures(sale: dict[str, Any]) -> list[dict[str, Any]]:
    """Per line: ordered, reserved (where it is held and not yet shipped), backordered and
    shipped units."""
    shipped_at = {p["location_id"] for p in sale.get("shipped_parts", [])}
    everything_shipped = sale["status"] in ("shipped", "delivered")
    reserved: dict[str, int] = defaultdict(int)
    shipped: dict[str, int] = defaultdict(int)
    for allocation in sale.get("allocations", []):
        gone = everything_shipped or allocation["location_id"] in shipped_at
        for line in allocation["lines"]:
            (shipped if gone else reserved)[line["sku"]] += line["quantity"]
    if sale["status"] in ("canceled",):
        reserved.clear()
    short = {i["sku"]: i for i in sale.get("issues", [])}
    rows = []
    for line in sale["lines"]:
        sku = line["sku"]
        backordered = line["quantity"] if sale["status"] == "backordered" else 0
        rows.append(
            {
                "sku": sku,
                "quantity": line["quantity"],
                "reserved": reserved.get(sku, 0),
                "backordered": backordered,
                "shipped": shipped.get(sku, 0),
                "issue": short.get(sku),
            }
        )
    return rows


async def _deliveries_of_sale(calls: TenantCalls, sale: dict[str, Any]) -> list[dict[str, Any]]:
    """Every webhook delivery the sale caused, across endpoints: its events' and its
    reservation's subject is `sale/<id>`, each fulfillment's `fulfillment/<id>`."""
    if not calls.may("GET", "/webhooks/deliveries"):
        return []
    subjects = [f"sale/{sale['id']}"]
    subjects += [f"fulfillment/{f['id']}" for f in sale.get("fulfillments", []) if f.get("id")]
    answers = await asyncio.gather(
        *(calls.get("/webhooks/deliveries", subject=s, limit=100) for s in subjects)
    )
    found = [d for a in answers if a.ok for d in a.body["data"]]
    return sorted(found, key=lambda d: d["created_at"])


@router.get("/sales/{sale_id:path}/live.json")
@page
async def sale_live(request: Request) -> Response:
    session = await require(request, "tenant")
    check_poll(request, session)
    sale_id = request.path_params["sale_id"]
    sale = _found(await tenant_calls(request, session).get(f"/sales/{quote(sale_id, safe='')}"))
    return JSONResponse(
        {
            "status": sale["status"],
            "version": sale["version"],
            "settled": sale["status"] in SETTLED_SALE,
            "lines": [
                {k: line[k] for k in ("reserved", "backordered", "shipped")}
                for line in _line_figures(sale)
            ],
            "history": [
                {k: str(h[k] or "") for k in ("from_status", "to_status", "actor", "reason", "at")}
                for h in sale["status_history"]
            ],
        }
    )


@router.get("/sales/{sale_id:path}")
@page
async def sale_page(request: Request) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    sale_id = request.path_params["sale_id"]
    answer = await calls.get(f"/sales/{quote(sale_id, safe='')}")
    sale = _found(answer)
    deliveries = await _deliveries_of_sale(calls, sale)
    return render(
        request,
        "sale.html",
        session,
        sale=sale,
        lines=_line_figures(sale),
        deliveries=deliveries,
        conflict=None,
        settled=sale["status"] in SETTLED_SALE,
        cancel_reasons=CANCEL_REASONS,
    )


@router.post("/sales/{sale_id:path}/cancel")
@page
async def cancel(request: Request) -> Response:
    session = await require(request, "tenant")
    fields = await form_of(request, session)
    calls = tenant_calls(request, session)
    sale_id = request.path_params["sale_id"]
    version = fields.get("version", "")
    if not version.isdigit():
        raise PageError(400, "Bad form", "The form lost the sale's version; reload the page.")
    reason = fields.get("reason", "")
    if reason not in CANCEL_REASONS:
        raise PageError(422, "Not canceled", f"Choose a reason: {', '.join(CANCEL_REASONS)}.")
    body = {"sale_id": sale_id, "cancel_reason": reason}
    answer = await calls.post("/sales/cancel", body, if_match=f'"{version}"')
    if answer.ok:
        raise Redirect(f"{PATH}/sales/{quote(sale_id, safe='')}?done=canceled")
    if answer.status == 404:
        raise not_found()
    sale = _found(await calls.get(f"/sales/{quote(sale_id, safe='')}"))
    conflict = {
        "status": answer.status,
        "detail": answer.detail,
        "moved": answer.status == 409 and sale["version"] != int(version),
        "seen_version": int(version),
    }
    return render(
        request,
        "sale.html",
        session,
        409 if answer.status == 409 else 422,
        sale=sale,
        lines=_line_figures(sale),
        deliveries=await _deliveries_of_sale(calls, sale),
        conflict=conflict,
        settled=sale["status"] in SETTLED_SALE,
        cancel_reasons=CANCEL_REASONS,
    )


@router.get("/fulfillments/{fulfillment_id}/label")
@page
async def label(request: Request) -> Response:
    session = await require(request, "tenant")
    fulfillment_id = _uuid(request.path_params["fulfillment_id"])
    answer = await tenant_calls(request, session).get(
        f"/fulfillment/fulfillments/{fulfillment_id}/label"
    )
    if answer.status != 200:
        _found(answer)
    return Response(
        answer.raw,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="label-{fulfillment_id}.pdf"'},
    )


# --- stock ---------------------------------------------------------------------------------


@router.get("/stock")
@page
async def stock(request: Request) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    q = request.query_params
    filters = {"sku": q.get("sku", "").strip(), "location_id": q.get("location_id", "").strip()}
    number = _page_number(request)
    answer = await calls.get(
        "/stock/stock-records",
        sku=filters["sku"],
        location_id=filters["location_id"],
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    records = _found(answer)["data"]
    skus = sorted({r["sku"] for r in records})
    products = await asyncio.gather(*(calls.get(f"/products/{quote(s, safe='')}") for s in skus))
    min_levels = {
        s: (p.body or {}).get("min_level", 0) for s, p in zip(skus, products, strict=True) if p.ok
    }
    # low as stock's own alert says it: available at or below the product's min_level
    rows = []
    for r in records:
        min_level = min_levels.get(r["sku"], 0)
        rows.append({**r, "min_level": min_level, "low": r["available"] <= min_level})
    return render(
        request,
        "stock.html",
        session,
        records=rows,
        filters=filters,
        pages=_pages(answer, number),
        update_types=UPDATE_TYPES,
    )


@router.get("/stock/records/{record_id}")
@page
async def stock_record(request: Request) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    record_id = _uuid(request.path_params["record_id"])
    record = _found(await calls.get(f"/stock/stock-records/{record_id}"))
    number = _page_number(request)
    ledger = await calls.get(
        "/stock/movements",
        sku=record["sku"],
        location_id=record["location_id"],
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "record.html",
        session,
        record=record,
        movements=_found(ledger)["data"],
        pages=_pages(ledger, number),
        update_types=UPDATE_TYPES,
    )


@router.post("/stock/update")
@page
async def stock_update(request: Request) -> Response:
    session = await require(request, "tenant")
    fields = await form_of(request, session)
    calls = tenant_calls(request, session)
    quantity = fields.get("quantity", "")
    if fields.get("update_type") not in UPDATE_TYPES or not quantity.isdigit():
        raise PageError(422, "Not updated", "Choose audit, restock or loss and a whole number.")
    body: dict[str, Any] = {
        "sku": fields.get("sku", ""),
        "location_id": fields.get("location_id", ""),
        "quantity": int(quantity),
        "update_type": fields["update_type"],
    }
    if notes := fields.get("notes", "").strip():
        body["notes"] = notes
    answer = await calls.post("/stock/stock-level-updates", body)
    if not answer.ok:
        errors = (answer.body or {}).get("errors") or []
        detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
        raise PageError(answer.status, "Not updated", detail or answer.detail)
    raise _back(fields, f"{PATH}/stock/records/{answer.body['id']}", "updated")


# --- webhooks ------------------------------------------------------------------------------


@router.get("/webhooks")
@page
async def webhooks(request: Request) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    number = _page_number(request)
    answer = await calls.get(
        "/webhooks/endpoints", limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    return render(
        request,
        "webhooks.html",
        session,
        endpoints=_found(answer)["data"],
        pages=_pages(answer, number),
    )


def _delivery_filters(request: Request, across: bool = False) -> dict[str, str]:
    q = request.query_params
    filters = {
        name: q.get(name, "").strip()
        for name in ("status", "event_type", "subject", "event_id", "since", "until")
    }
    if across:  # the log of every endpoint narrows to one by its id
        filters["endpoint_id"] = q.get("endpoint_id", "").strip()
    if filters["status"] and filters["status"] not in DELIVERY_STATUSES:
        filters["status"] = ""
    for name in ("event_id", "endpoint_id"):
        if filters.get(name):
            try:
                UUID(filters[name])
            except ValueError:
                filters[name] = ""
    return filters


@router.get("/webhooks/deliveries")
@page
async def all_deliveries(request: Request) -> Response:
    """The delivery log across every endpoint: one endpoint's filters, and `endpoint_id`."""
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    filters = _delivery_filters(request, across=True)
    number = _page_number(request)
    answer = await calls.get(
        "/webhooks/deliveries",
        **{k: v for k, v in filters.items() if k not in ("since", "until")},
        since=_moment(filters["since"]),
        until=_moment(filters["until"]),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "deliveries.html",
        session,
        endpoint=None,
        deliveries=_found(answer)["data"],
        filters=filters,
        statuses=DELIVERY_STATUSES,
        pages=_pages(answer, number),
        secret=None,
        ping=None,
    )


async def _endpoint_page(
    request: Request, secret: dict[str, Any] | None = None, ping: dict[str, Any] | None = None
) -> Response:
    session = await require(request, "tenant")
    calls = tenant_calls(request, session)
    endpoint_id = _uuid(request.path_params["endpoint_id"])
    endpoint = _found(await calls.get(f"/webhooks/endpoints/{endpoint_id}"))
    filters = _delivery_filters(request)
    number = _page_number(request)
    answer = await calls.get(
        f"/webhooks/endpoints/{endpoint_id}/deliveries",
        **{k: v for k, v in filters.items() if k not in ("since", "until")},
        since=_moment(filters["since"]),
        until=_moment(filters["until"]),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "deliveries.html",
        session,
        endpoint=endpoint,
        deliveries=_found(answer)["data"],
        filters=filters,
        statuses=DELIVERY_STATUSES,
        pages=_pages(answer, number),
        secret=secret,
        ping=ping,
    )


@router.get("/webhooks/{endpoint_id}")
@page
async def endpoint_page(request: Request) -> Response:
    return await _endpoint_page(request)


@router.post("/webhooks/{endpoint_id}/recover")
@page
async def recover(request: Request) -> Response:
    session = await require(request, "tenant")
    fields = await form_of(request, session)
    endpoint_id = _uuid(request.path_params["endpoint_id"])
    since = _moment(fields.get("since"))
    if since is None:
        raise PageError(422, "Not recovered", "Say since when.")
    answer = await tenant_calls(request, session).post(
        f"/webhooks/endpoints/{endpoint_id}/recover", {"since": since}
    )
    _found(answer)
    raise Redirect(f"{PATH}/webhooks/{endpoint_id}?done=recovered")


@router.post("/webhooks/{endpoint_id}/rotate-secret")
@page
async def rotate_secret(request: Request) -> Response:
    """The new signing secret is shown in this answer only (never in a URL, never stored by
    the console): the person needs it to verify signatures."""
    session = await require(request, "tenant")
    await form_of(request, session)
    endpoint_id = _uuid(request.path_params["endpoint_id"])
    answer = await tenant_calls(request, session).post(
        f"/webhooks/endpoints/{endpoint_id}/rotate-secret"
    )
    return await _endpoint_page(request, secret=_found(answer))


@router.post("/webhooks/{endpoint_id}/test")
@page
async def send_test(request: Request) -> Response:
    session = await require(request, "tenant")
    await form_of(request, session)
    endpoint_id = _uuid(request.path_params["endpoint_id"])
    answer = await tenant_calls(request, session).post(f"/webhooks/endpoints/{endpoint_id}/test")
    return await _endpoint_page(request, ping=_found(answer))


@router.get("/deliveries/{delivery_id}/live.json")
@page
async def delivery_live(request: Request) -> Response:
    session = await require(request, "tenant")
    check_poll(request, session)
    delivery_id = _uuid(request.path_params["delivery_id"])
    delivery = _found(
        await tenant_calls(request, session).get(f"/webhooks/deliveries/{delivery_id}")
    )
    return JSONResponse(
        {
            "status": delivery["status"],
            "attempt_count": delivery["attempt_count"],
            "last_status_code": delivery["last_status_code"],
            "settled": delivery["status"] in ("succeeded", "failed"),
        }
    )


@router.get("/deliveries/{delivery_id}")
@page
async def delivery_page(request: Request) -> Response:
    session = await require(request, "tenant")
    delivery_id = _uuid(request.path_params["delivery_id"])
    delivery = _found(
        await tenant_calls(request, session).get(f"/webhooks/deliveries/{delivery_id}")
    )
    return render(request, "delivery.html", session, delivery=delivery)


@router.post("/deliveries/{delivery_id}/resend")
@page
async def resend(request: Request) -> Response:
    session = await require(request, "tenant")
    fields = await form_of(request, session)
    delivery_id = _uuid(request.path_params["delivery_id"])
    answer = await tenant_calls(request, session).post(f"/webhooks/deliveries/{delivery_id}/resend")
    if answer.status == 409:
        raise PageError(409, "Not resent", answer.detail)
    _found(answer)
    raise _back(fields, f"{PATH}/deliveries/{delivery_id}", "resent")


# --- operator ------------------------------------------------------------------------------


@router.get("/operator")
@page
async def operator(request: Request) -> Response:
    session = await require(request, "admin")
    admin = admin_calls(request)
    number = _page_number(request)
    overview, tenants = await asyncio.gather(
        admin.get("/overview"),
        admin.get("/tenants", limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE),
    )
    return render(
        request,
        "operator.html",
        session,
        overview=overview.body if overview.ok else None,
        overview_error=None if overview.ok else overview.detail,
        tenants=tenants.body["data"] if tenants.ok else None,
        tenants_error=None if tenants.ok else tenants.detail,
        pages=_pages(tenants, number) if tenants.ok else None,
    )


@router.get("/operator/tenants/{tenant_id}")
@page
async def tenant_page(request: Request) -> Response:
    session = await require(request, "admin")
    tenant_id = _uuid(request.path_params["tenant_id"])
    admin = admin_calls(request)
    tenant, keys = await asyncio.gather(
        admin.get(f"/tenants/{tenant_id}"), admin.get(f"/tenants/{tenant_id}/keys")
    )
    return render(
        request,
        "tenant.html",
        session,
        tenant=tenant.body if tenant.ok else {"id": tenant_id},
        keys=_found(keys)["data"],
    )


@router.get("/operator/dead-letters")
@page
async def dead_letters(request: Request) -> Response:
    session = await require(request, "admin")
    q = request.query_params
    service = q.get("service", "orders")
    if service not in DEAD_LETTER_SERVICES:
        service = "orders"
    state = q.get("state", "dead") if q.get("state") in ("dead", "replayed", "") else "dead"
    cursor = q.get("cursor", "")
    answer = await admin_calls(request).get(
        "/dead-letters", service=service, state=state, cursor=cursor, limit=PAGE_SIZE
    )
    body = _found(answer)
    return render(
        request,
        "dead_letters.html",
        session,
        service=service,
        services=DEAD_LETTER_SERVICES,
        state=state,
        letters=body["data"],
        next_cursor=body["pagination"]["next_cursor"],
    )


@router.get("/operator/dead-letters/{dead_letter_id}")
@page
async def dead_letter(request: Request) -> Response:
    session = await require(request, "admin")
    service = request.query_params.get("service", "")
    if service not in DEAD_LETTER_SERVICES:
        raise not_found()
    dead_letter_id = request.path_params["dead_letter_id"]
    if not dead_letter_id.isdigit():
        raise not_found()
    letter = _found(
        await admin_calls(request).get(f"/dead-letters/{dead_letter_id}", service=service)
    )
    return render(request, "dead_letter.html", session, service=service, letter=letter)


@router.post("/operator/dead-letters/{dead_letter_id}/replay")
@page
async def replay(request: Request) -> Response:
    session = await require(request, "admin")
    fields = await form_of(request, session)
    service = fields.get("service", "")
    dead_letter_id = request.path_params["dead_letter_id"]
    if service not in DEAD_LETTER_SERVICES or not dead_letter_id.isdigit():
        raise not_found()
    answer = await admin_calls(request).post(
        f"/dead-letters/{dead_letter_id}/replay", service=service
    )
    if answer.status == 409:
        raise PageError(409, "Not replayed", answer.detail)
    _found(answer)
    raise Redirect(f"{PATH}/operator/dead-letters?service={service}&done=replayed")


@router.get("/operator/integrity")
@page
async def integrity(request: Request) -> Response:
    session = await require(request, "admin")
    return render(request, "integrity.html", session, report=None, rebuilt=False, error=None)


@router.post("/operator/integrity")
@page
async def run_integrity(request: Request) -> Response:
    session = await require(request, "admin")
    fields = await form_of(request, session)
    rebuild = fields.get("action") == "rebuild"
    tenant_id = fields.get("tenant_id", "").strip()
    params = {"tenant_id": _uuid(tenant_id)} if tenant_id else {}
    admin = admin_calls(request)
    if rebuild:
        answer = await admin.post("/stock/integrity/rebuild", **params)
    else:
        answer = await admin.get("/stock/integrity", **params)
    return render(
        request,
        "integrity.html",
        session,
        report=answer.body if answer.ok else None,
        rebuilt=rebuild and answer.ok,
        error=None if answer.ok else answer.detail,
    )
