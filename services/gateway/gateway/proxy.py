"""Forwarding a public request to the service that owns it, and replaying idempotent POSTs."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

import aiohttp
import asyncpg
from yarl import URL

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import Problem
from fulfilkit.logs import request_id_var
from gateway import store
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
REQUEST_HEADERS = ("Content-Type", "Accept", "If-Match", "Prefer")
RESPONSE_HEADERS = (
    "Content-Type", "Link", "Total-Count", "Location", "Retry-After", "ETag", "Preference-Applied",
)
LINK_HEADERS = ("Link", "Location")
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


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
    segment = path[len(API_PREFIX) + 1:].split("/", 1)[0]
    return ROUTES.get(segment)


def upstream_path(raw_path: bytes | None, path: str) -> str:
    """The path to forward, percent-encoded as the client sent it, without a trailing slash.

    `raw_path` keeps escapes such as `%2F` inside a SKU that the decoded `path` has lost.
    """
    target = raw_path.decode("utf-8", "replace") if raw_path else path
    return quote(target, safe="/:@!$&'()*+,;=-._~%").rstrip("/") or "/"


_ORIGIN_OF_API_URL = re.compile(r"https?://[^/\s<>\"]+(?=/api/v1(?:[/?#>;\s\"]|$))")


def with_public_origin(value: str, public_origin: str) -> str:
    """Points absolute API URLs in a `Link` or `Location` value at the gateway: services build
    them from their own address, which is neither public nor reachable from outside."""
    return _ORIGIN_OF_API_URL.sub(public_origin, value)


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
    headers: Mapping[str, str]
    body: bytes
    tenant_id: UUID
    actor: str
    public_origin: str  # scheme://host[:port] the client called, for links in the answer


class Forwarder:
    """Sends calls to the services over one pooled aiohttp session, as the gateway vouching
    for the tenant; turns connection failures into 503 and timeouts into 504 problems."""

    def __init__(
        self, session: aiohttp.ClientSession, base_urls: Mapping[str, str], internal_token: str
    ) -> None:
        self._session = session
        self._base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self._internal_token = internal_token

    async def forward(self, call: UpstreamCall) -> store.StoredResponse:
        url = self._url(call)
        try:
            async with self._session.request(
                call.method, url, data=call.body or None, headers=self._headers(call),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
        except TimeoutError:
            log.warning("%s timed out on %s %s", call.service, call.method, call.path)
            detail = f"The {call.service} service did not answer in time."
            raise Problem("timeout", detail) from None
        except aiohttp.ClientError as exc:
            log.warning("%s unreachable on %s %s: %s", call.service, call.method, call.path, exc)
            raise Problem(
                "unavailable", f"The {call.service} service is unavailable; try again later.",
                headers={"Retry-After": "1"},
            ) from None
        headers = {name: upstream.headers[name] for name in RESPONSE_HEADERS
                   if name in upstream.headers}
        for name in LINK_HEADERS:
            if name in headers:
                headers[name] = with_public_origin(headers[name], call.public_origin)
        return store.StoredResponse(upstream.status, headers, body)

    def _url(self, call: UpstreamCall) -> URL:
        query = f"?{call.query}" if call.query else ""
        return URL(f"{self._base_urls[call.service]}{call.path}{query}", encoded=True)

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        headers = {name: call.headers[name] for name in REQUEST_HEADERS if name in call.headers}
        headers["X-Request-Id"] = request_id_var.get()
        headers[INTERNAL_TOKEN_HEADER] = self._internal_token
        headers[TENANT_HEADER] = str(call.tenant_id)
        headers[ACTOR_HEADER] = call.actor
        return headers


def check_idempotency_key(key: str) -> None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise Problem(
            "invalid_request",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters long.",
        )


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
    abandoned_after: timedelta


async def forward_once(
    pool: asyncpg.Pool,
    policy: IdempotencyPolicy,
    tenant_id: UUID,
    idempotency_key: str,
    fingerprint: store.RequestFingerprint,
    forward: Callable[[], Awaitable[store.StoredResponse]],
) -> store.StoredResponse:
    """Forwards at most once per (tenant, Idempotency-Key); a retry gets the first answer.

    Answers of 500 and above, and failures to reach the upstream, are not kept, so the
    client's retry goes through again.
    """
    check_idempotency_key(idempotency_key)
    record = await store.claim_idempotency_key(
        pool, tenant_id, idempotency_key, fingerprint, policy.ttl, policy.abandoned_after
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
    else:
        await store.save_idempotent_response(pool, tenant_id, idempotency_key, response)
    return response
