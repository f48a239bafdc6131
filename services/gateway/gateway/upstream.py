"""The HTTP client to the services: calls go over one pooled aiohttp session, as the gateway
vouching for the tenant, and come back with the headers the client may see."""

import logging
from collections.abc import Mapping

import aiohttp
from yarl import URL

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import Problem
from fulfilkit.logs import request_id_var
from fulfilkit.tracing import SpanKind, span, trace_headers
from gateway.domain import StoredResponse, UpstreamCall, with_public_origin
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

RESPONSE_HEADERS = frozenset(
    {
        b"content-type",
        b"link",
        b"total-count",
        b"total-elements",
        b"total-pages",
        b"page-number",
        b"page-size",
        b"location",
        b"retry-after",
        b"etag",
        b"preference-applied",
        b"allow",
        b"cache-control",
        b"idempotent-replayed",
        b"content-disposition",
    }
)
LINK_HEADERS = frozenset({b"link", b"location"})


def upstream_urls(settings: GatewaySettings) -> dict[str, str]:
    return {
        "orders": settings.orders_url,
        "stock": settings.stock_url,
        "fulfilment": settings.fulfilment_url,
        "webhooks": settings.webhooks_url,
    }


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

    async def forward(self, call: UpstreamCall) -> StoredResponse:
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

    async def _send(self, call: UpstreamCall) -> StoredResponse:
        # A client span (the service's server span is its child): `traceparent` names it.
        with span(
            f"{call.method} {call.service}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": call.method, "server.address": call.service},
        ) as client:
            async with self._session.request(
                call.method,
                self._url(call),
                data=call.body or None,
                headers=self._headers(call),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
            client.set_attribute("http.response.status_code", upstream.status)
        return StoredResponse(upstream.status, self._answer_headers(upstream), body)

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
        if call.tenant_id is not None:
            headers[TENANT_HEADER] = str(call.tenant_id)
        headers[ACTOR_HEADER] = call.actor
        headers.update(trace_headers())
        return headers
