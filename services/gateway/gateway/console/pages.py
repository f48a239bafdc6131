"""What every console page shares: the signed-in session, rendering, forms with their CSRF
check, static files, and the security headers of every answer under `/console`."""

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.http.problems import Problem, dependency_outage
from gateway.console import store
from gateway.console.calls import AdminCalls, TenantCalls, Unavailable
from gateway.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    PATH,
    Lifetime,
    Session,
    admin_fingerprint,
    hash_id,
    same_origin,
    same_token,
)
from gateway.ratelimit import RateLimiter
from gateway.resources import GatewayResources

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16_384
PAGE_SIZE = 25

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make form posts send `Origin: null`
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.ChainableUndefined,  # optional fields of answers read as empty
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC = {
    "console.css": ("text/css; charset=utf-8", (HERE / "static" / "console.css").read_bytes()),
    "console.js": ("text/javascript; charset=utf-8", (HERE / "static" / "console.js").read_bytes()),
}
STATIC_VERSION = hashlib.sha256(b"".join(body for _, body in STATIC.values())).hexdigest()[:12]
templates.globals["static_version"] = STATIC_VERSION


class ConsoleHeadersMiddleware:
    """Every answer under /console: a strict CSP, no framing, nothing cached (static files
    excepted: they hold no data), no referrer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PATH or path.startswith(PATH + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(PATH + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["cache-control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- errors a page answers with ----------------------------------------------------------


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class PageError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        self.status = status
        self.title = title
        self.detail = detail


def not_found(detail: str = "There is nothing here, or it is not yours to see.") -> PageError:
    return PageError(404, "Not found", detail)


# --- the request's context ---------------------------------------------------------------


def resources_of(request: Request) -> GatewayResources:
    return request.app.state.runtime.resources


def lifetime_of(resources: GatewayResources) -> Lifetime:
    settings = resources.settings
    return Lifetime(
        idle=timedelta(minutes=settings.console_idle_minutes),
        absolute=timedelta(hours=settings.console_session_hours),
    )


async def session_of(request: Request) -> Session | None:
    """The live session of the cookie (its idle clock restarted), or None. A tenant session
    whose key was revoked, or an operator session opened with another admin token, is over."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 100:
        return None
    resources = resources_of(request)
    pool = request.app.state.runtime.pool
    session = await store.touch_session(pool, hash_id(session_id), lifetime_of(resources).idle)
    if session is None:
        return None
    if session.is_admin:
        token = resources.settings.admin_token
        current = admin_fingerprint(token) if token else None
        if current is None or not hmac.compare_digest(current, session.admin_fingerprint or b""):
            await store.delete_session(pool, session.id_hash)
            return None
    return session


def deadline_of(request: Request) -> float:
    return resources_of(request).settings.console_call_timeout_seconds


def tenant_calls(request: Request, session: Session) -> TenantCalls:
    return TenantCalls(resources_of(request), session, deadline_of(request))


def admin_calls(request: Request) -> AdminCalls:
    return AdminCalls(request.app, resources_of(request).settings.admin_token, deadline_of(request))


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PATH}/sign-in?next={quote(target, safe='')}"


async def require(request: Request, kind: str) -> Session:
    session = await session_of(request)
    if session is None:
        raise Redirect(sign_in_url(request))
    if session.kind != kind:
        which = "the admin token" if kind == "admin" else "a tenant's API key"
        raise PageError(
            403, "Not for this session", f"This page needs a session signed in with {which}."
        )
    return session


async def form_of(request: Request, session: Session | None) -> dict[str, str]:
    """The urlencoded body of a state-changing request, once its origin and (for a session)
    its CSRF token are checked: 403 otherwise."""
    if not same_origin(request.headers, request.headers.get("host")):
        raise PageError(403, "Refused", "This request did not come from the console's own pages.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "Too large", "The form is too large.")
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise PageError(400, "Bad form", "The form must be UTF-8.") from None
    if session is not None:
        sent = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not same_token(sent, session.csrf_token):
            raise PageError(403, "Refused", "The form's CSRF token is missing or wrong.")
    return fields


# --- rendering ---------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    flash = FLASHES.get(request.query_params.get("done", ""))
    html = templates.get_template(template).render(
        session=session,
        csrf_token=session.csrf_token if session else "",
        path=request.url.path,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        flash=flash,
        **context,
    )
    return HTMLResponse(html, status_code=status)


# Messages after a form, named by a fixed code in the URL (nothing a person typed goes there).
FLASHES = {
    "canceled": "The sale is canceled.",
    "resent": "The delivery is queued again.",
    "recovered": "Failed deliveries are queued again.",
    "updated": "The stock level is updated.",
    "replayed": "The dead letter is replayed.",
    "signed-out": "You are signed out.",
}


Handler = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Handler:
    """A console route: its redirects and errors become pages; an unavailable service a 503
    page saying which, within the console's deadline."""

    @functools.wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Redirect as redirect:
            return RedirectResponse(redirect.url, status_code=303)
        except PageError as error:
            return await _error_page(request, error.status, error.title, error.detail)
        except Unavailable as outage:
            return await _error_page(request, 503, "Unavailable", outage.detail)
        except Problem as problem:
            return await _error_page(request, problem.status, problem.title, problem.detail)
        except Exception as exc:
            if (outage := dependency_outage(exc)) is not None:  # the database, say
                log.warning("console %s answered 503: %r", request.url.path, exc)
                return await _error_page(request, 503, "Unavailable", outage.detail)
            log.exception("console error on %s %s", request.method, request.url.path)
            return await _error_page(request, 500, "Error", "An unexpected error occurred.")

    return answer


async def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    if request.url.path.endswith(".json"):
        return JSONResponse({"title": title, "detail": detail}, status_code=status)
    try:
        session = await session_of(request)
    except Exception:  # the database is down: the error page still renders, signed out
        session = None
    return render(request, "error.html", session, status, title=title, detail=detail)


# --- live updates ------------------------------------------------------------------------

_polls: dict[int, RateLimiter] = {}


def check_poll(request: Request, session: Session) -> None:
    """Live updates are bounded per session: past the rate, 429 and the page backs off."""
    settings = resources_of(request).settings
    limiter = _polls.setdefault(
        id(request.app),
        RateLimiter(settings.console_polls_per_second, settings.console_polls_burst),
    )
    if limiter.wait_seconds(session.id_hash) > 0:
        raise PageError(429, "Too many updates", "Live updates paused; reload the page later.")


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)
