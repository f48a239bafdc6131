"""Forwarding a public request to the service that owns it, and replaying idempotent POSTs."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

import aiohttp
import asyncpg
from yarl import URL

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import Problem
from fulfilkit.idempotency import check_key
from fulfilkit.logs import request_id_var
from gateway import store
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
REQUEST_HEADERS = ("content-type", "accept", "if-match", "prefer", "idempotency-key")
RESPONSE_HEADERS = frozenset(
    {
        b"content-type",
        b"link",
        b"total-count",
        b"location",
        b"retry-after",
        b"etag",
        b"preference-applied",
        b"allow",
        b"cache-control",
        b"idempotent-replayed",
    }
)
LINK_HEADERS = frozenset({b"link", b"location"})
REPLAYED_HEADER = "idempotent-replayed"


@dataclass(frozen=True)
class Route:
    area: str  # the scope family: `sales` needs sales:read / sales:write
    service: str  # the upstream that serves it


ROUTES: dict[str, Route] = {
    "sales": Route("sales", "orders"),
    "products": Route("stock", "stock"),
    "locations": Route("stock", "stock"),
    "stock": Route("stock", "stock"),
    "fulfillment": Route("fulfillment", "fulfilment"),
    "webhooks": Route("webhooks", "webhooks"),
}


def route_for(path: str) -> Route | None:
    """The route of `/api/v1/<segment>/...` by its first segment; None when nobody serves it."""
    if not path.startswith(API_PREFIX + "/"):
        return None
    segment = path[len(API_PREFIX) + 1 :].split("/", 1)[0]
    return ROUTES.get(segment)


def upstream_path(raw_path: bytes | None, path: str) -> str:
    """The path to forward, percent-encoded as the client sent it, without a trailing slash.

    `raw_path` keeps escapes such as `%2F` inside a SKU that the decoded `path` has lost.
    """
    target = raw_path.decode("utf-8", "replace") if raw_path else path
    return quote(target, safe="/:@!$&'()*+,;=-._~%").rstrip("/") or "/"


_ORIGIN_OF_API_URL = re.compile(r"https?://[^/\s<>\"]+(?=/api/v1(?:[/?#>;\s\"]|$))")


def with_public_origin(value: str, public_base_url: str) -> str:
    """Points absolute API URLs in a `Link` or `Location` value at the gateway: services build
    them from their own address, which is neither public nor reachable from outside.

    The origin is the configured public base URL, or none (a relative link): never the
    client's `Host`, which anyone can set. A function as replacement, so that nothing in it
    is read as a template.
    """
    origin = public_base_url.rstrip("/")
    return _ORIGIN_OF_API_URL.sub(lambda _: origin, value)


def upstream_urls(settings: GatewaySettings) -> dict[str, str]:
    return {
        "orders": settings.orders_url,
        "stock": settings.stock_url,
        "fulfilment": settings.fulfilment_url,
        "webhooks": settings.webhooks_url,
    }


@dataclass(frozen=True)
class UpstreamCall:
    service: str
    method: str
    path: str  # percent-encoded
    query: str
    headers: Mapping[str, str]  # those of REQUEST_HEADERS the client sent
    body: bytes
    tenant_id: UUID
    actor: str


class Forwarder:
    """Sends calls to the services over one pooled aiohttp session, as the gateway vouching
    for the tenant; turns connection failures into 503 and timeouts into 504 problems."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_urls: Mapping[str, str],
        internal_token: str,
        public_base_url: str = "",
    ) -> None:
        self._session = session
        self._base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self._internal_token = internal_token
        self._public_base_url = public_base_url

    async def forward(self, call: UpstreamCall) -> store.StoredResponse:
        try:
            try:
                return await self._send(call)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled connection the service had closed. aiohttp sends idempotent methods
                # again by itself; a keyed POST is safe to send again too (the service replays).
                if (
                    isinstance(exc, aiohttp.ClientConnectorError)
                    or call.method != "POST"
                    or "idempotency-key" not in call.headers
                ):
                    raise
                log.info(
                    "%s closed the connection (%s); sending %s %s again",
                    call.service,
                    exc,
                    call.method,
                    call.path,
                )
                return await self._send(call)
        except TimeoutError:
            log.warning("%s timed out on %s %s", call.service, call.method, call.path)
            detail = f"The {call.service} service did not answer in time."
            raise Problem("timeout", detail) from None
        except aiohttp.ClientError as exc:
            log.warning("%s unreachable on %s %s: %s", call.service, call.method, call.path, exc)
            raise Problem(
                "unavailable",
                f"The {call.service} service is unavailable; try again later.",
                headers={"Retry-After": "1"},
            ) from None

    async def _send(self, call: UpstreamCall) -> store.StoredResponse:
        async with self._session.request(
            call.method,
            self._url(call),
            data=call.body or None,
            headers=self._headers(call),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
        return store.StoredResponse(upstream.status, self._answer_headers(upstream), body)

    def _answer_headers(self, upstream: aiohttp.ClientResponse) -> dict[str, str]:
        """The headers passed on, byte for byte (latin-1 maps each byte to one character)."""
        headers = {}
        for raw_name, raw_value in upstream.raw_headers:
            name = raw_name.lower()
            if name not in RESPONSE_HEADERS:
                continue
            value = raw_value.decode("latin-1")
            if name in LINK_HEADERS:
                value = with_public_origin(value, self._public_base_url)
            headers[name.decode("latin-1")] = value
        return headers

    def _url(self, call: UpstreamCall) -> URL:
        query = f"?{call.query}" if call.query else ""
        return URL(f"{self._base_urls[call.service]}{call.path}{query}", encoded=True)

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        headers = dict(call.headers)
        headers["X-Request-Id"] = request_id_var.get()
        headers[INTERNAL_TOKEN_HEADER] = self._internal_token
        headers[TENANT_HEADER] = str(call.tenant_id)
        headers[ACTOR_HEADER] = call.actor
        return headers


def forwarded_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The client's headers that the service needs, byte for byte, or a 400.

    aiohttp writes header values as UTF-8, so a value passes unchanged when its bytes are
    UTF-8; any other bytes are refused rather than re-encoded.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name not in REQUEST_HEADERS:
            continue
        try:
            headers[name] = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise Problem("invalid_request", f"The {name} header must be UTF-8 text.") from None
    return headers


def replay(
    record: store.IdempotencyRecord, fingerprint: store.RequestFingerprint
) -> store.StoredResponse:
    """The stored answer to a retried request, or 409 when the retry is not the same request."""
    if record.fingerprint != fingerprint:
        raise Problem(
            "conflict",
            "This Idempotency-Key was already used with a different request"
            " (method, path or body); use a new key for a new request.",
        )
    if record.response is None:
        raise Problem(
            "conflict",
            "A request with this Idempotency-Key is still in progress; retry after it completes.",
            headers={"Retry-After": "1"},
        )
    first = record.response
    return store.StoredResponse(
        first.status_code, {**first.headers, REPLAYED_HEADER: "true"}, first.body
    )


@dataclass(frozen=True)
class IdempotencyPolicy:
    ttl: timedelta
    forward_again_after: timedelta  # a retry of a request in progress this long goes through


async def forward_once(
    pool: asyncpg.Pool,
    policy: IdempotencyPolicy,
    tenant_id: UUID,
    idempotency_key: str,
    fingerprint: store.RequestFingerprint,
    forward: Callable[[], Awaitable[store.StoredResponse]],
) -> store.StoredResponse:
    """Forwards once per (tenant, Idempotency-Key) as far as the gateway knows; a retry gets
    the first answer. The key travels with the request and the service keys its effect with
    it, so whenever the gateway cannot tell (its record lost the answer, the service died,
    this gateway died) the retry is forwarded again and the service replays.

    Answers of 500 and above, and failures to reach the upstream, are not kept; answers the
    service marks `Cache-Control: no-store` (they hold a secret) are not stored here.
    """
    check_key(idempotency_key)
    record = await store.claim_idempotency_key(
        pool, tenant_id, idempotency_key, fingerprint, policy.ttl, policy.forward_again_after
    )
    if record is not None:
        return replay(record, fingerprint)
    try:
        response = await forward()
    except BaseException:
        # shield: a cancelled request (client gone) must still free the key for its retry
        await asyncio.shield(store.release_idempotency_key(pool, tenant_id, idempotency_key))
        raise
    if response.status_code >= 500:
        await store.release_idempotency_key(pool, tenant_id, idempotency_key)
    elif "no-store" in response.headers.get("cache-control", "").lower():
        await store.save_idempotent_response(pool, tenant_id, idempotency_key, None)
    else:
        await store.save_idempotent_response(pool, tenant_id, idempotency_key, response)
    return response
