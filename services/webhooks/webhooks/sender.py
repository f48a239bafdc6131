"""One signed POST to an endpoint: keep-alive, no redirects, no cookies, guarded DNS, bounded
time and a bounded read of the answer."""

import random
import time
from datetime import UTC, datetime
from uuid import UUID

import aiohttp
from yarl import URL

from fulfilkit.tracing import (
    TRACEPARENT,
    TRACESTATE,
    SpanKind,
    exporting,
    parse_traceparent,
    span,
    trace_headers,
    usable_traceparent,
)
from webhooks.domain import Attempt, excerpt, recorded_headers
from webhooks.resolving import BoundedResolver, on_behalf_of
from webhooks.settings import WebhookSettings
from webhooks.signing import request_headers
from webhooks.urls import AllowList, GuardedResolver, literal_refusal

DRAIN_LIMIT_BYTES = 64 * 1024
PARSED_URLS_KEPT = 4096
TRACE_HEADERS = frozenset({TRACEPARENT, TRACESTATE})


class Sender:
    """One shared HTTP session: keep-alive, no redirects, no cookies, guarded DNS."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.allow = AllowList.parse(settings.allowed_hosts)
        self.timeout = settings.webhook_timeout_seconds
        self.resolver = BoundedResolver(
            settings.webhook_dns_max_concurrent,
            settings.webhook_dns_max_concurrent_per_tenant,
            settings.webhook_dns_timeout_seconds,
        )
        connector = aiohttp.TCPConnector(
            limit=settings.webhook_max_in_flight + 16,
            ttl_dns_cache=30,
            resolver=GuardedResolver(self.allow, self.resolver),
        )
        # Per URL, parsed once: its refusal (it depends on the URL and the allow list alone;
        # names are checked by the resolver on every connection) and its parsed form.
        self._parsed: dict[str, tuple[str | None, URL]] = {}
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )

    async def post(
        self,
        url: str,
        custom: dict[str, str],
        secrets: list[str],
        msg_id: str,
        body: bytes,
        tenant: UUID | None = None,
        traceparent: str | None = None,
    ) -> Attempt:
        """`tenant`: whose share of name resolution a lookup for this request takes.
        `traceparent`: the event's; the request's `traceparent` header names a child span of
        it (a new trace when there is none), with or without an exporter. Without one, the
        child's `traceparent` is written straight away (`child_traceparent`): the span would
        record nothing, and making it current costs more than the header."""
        if not exporting():
            with on_behalf_of(tenant):
                trace = {TRACEPARENT: child_traceparent(traceparent)}
                return await self._post(url, custom, secrets, msg_id, body, trace)
        with (
            on_behalf_of(tenant),
            span(
                "POST webhook",
                parent=parse_traceparent(traceparent),
                kind=SpanKind.CLIENT,
                attributes={"http.request.method": "POST"},
            ) as attempt_span,
        ):
            attempt = await self._post(url, custom, secrets, msg_id, body, trace_headers())
            if attempt.status_code:
                attempt_span.set_attribute("http.response.status_code", attempt.status_code)
            return attempt

    async def _post(
        self,
        url: str,
        custom: dict[str, str],
        secrets: list[str],
        msg_id: str,
        body: bytes,
        trace: dict[str, str],
    ) -> Attempt:
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        refusal, parsed = self._parse(url)
        if refusal:
            return Attempt(attempted_at, 0, error=refusal)
        headers = request_headers(secrets, msg_id, int(time.time()), body, _untraced(custom))
        headers.update(trace)
        kept = recorded_headers(headers, custom)
        try:
            async with self._session.post(
                parsed, data=body, headers=headers, allow_redirects=False
            ) as response:
                raw = await _read_excerpt(response)
                return Attempt(
                    attempted_at,
                    _elapsed_ms(started),
                    status_code=response.status,
                    response_body=excerpt(raw),
                    retry_after=response.headers.get("Retry-After"),
                    request_headers=kept,
                )
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except Exception as exc:  # any failure of one request is that attempt's error
            error = excerpt(f"{type(exc).__name__}: {exc}".encode())
        return Attempt(attempted_at, _elapsed_ms(started), error=error, request_headers=kept)

    def _parse(self, url: str) -> tuple[str | None, URL]:
        parsed = self._parsed.get(url)
        if parsed is None:
            if len(self._parsed) >= PARSED_URLS_KEPT:
                self._parsed.clear()
            parsed = self._parsed[url] = (literal_refusal(url, self.allow), URL(url))
        return parsed

    async def close(self) -> None:
        await self._session.close()
        await self.resolver.close()


async def _read_excerpt(response: aiohttp.ClientResponse) -> bytes:
    """The first KB; the rest is drained (to keep the connection) up to a bound."""
    kept = bytearray()
    seen = 0
    async for chunk in response.content.iter_any():
        if len(kept) < 1024:
            kept += chunk[: 1024 - len(kept)]
        seen += len(chunk)
        if seen > DRAIN_LIMIT_BYTES:
            break
    return bytes(kept)


def child_traceparent(parent: str | None) -> str:
    """The `traceparent` of a new child span of `parent` (its trace id and sampled flag, a
    random span id), or of a new sampled trace when `parent` is missing or malformed: what
    `fulfilkit.tracing.span` makes current without an exporter, as `trace_headers` writes it."""
    text = usable_traceparent(parent)
    span_id = 0
    while not span_id:
        span_id = random.getrandbits(64)
    if text is None:
        trace_id = 0
        while not trace_id:
            trace_id = random.getrandbits(128)
        return f"00-{trace_id:032x}-{span_id:016x}-01"
    return f"00-{text[3:35]}-{span_id:016x}-{int(text[53:55], 16) & 1:02x}"


def _untraced(custom: dict[str, str]) -> dict[str, str]:
    """Custom headers without trace context (refused since, but older endpoints may have it):
    the platform sets it."""
    if not any(name.lower() in TRACE_HEADERS for name in custom):
        return custom
    return {name: value for name, value in custom.items() if name.lower() not in TRACE_HEADERS}


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
