"""Generated from `_async_client.py` by `clients/python/tools/unasync.py`: do not edit."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from fulfil_client._core import Call, ClientCredentials, Core, RetryPolicy, env_default
from fulfil_client._sync_resources import (
    Admin,
    ApiKeys,
    Fulfillment,
    InboundOrders,
    Locations,
    OAuthClients,
    Products,
    Returns,
    Sales,
    Stock,
    Webhooks,
)
from fulfil_client._transport import Transport, json_body

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class Client:
    """The platform's REST API, blocking.

    Authentication: `api_key` (or `FULFIL_API_KEY`), or OAuth2 client credentials
    (`client_id` and `client_secret`, or `credentials=ClientCredentials(...)`), whose token
    is fetched from the gateway and reused until it expires. `admin_token` (or
    `FULFIL_ADMIN_TOKEN`) is for `client.admin`. `base_url` defaults to `FULFIL_URL`.

    Every call is retried on 429 (honouring `Retry-After`), 502, 503 and connection errors
    as `retry` says; each POST carries an `Idempotency-Key`, the same on every attempt.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | list[str] | None = None,
        credentials: ClientCredentials | None = None,
        admin_token: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        api_version: str | None = "v1",
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if credentials is None and client_id is not None and client_secret is not None:
            credentials = ClientCredentials(client_id, client_secret, scope=scope)
        if credentials is None:
            api_key = env_default(api_key, "FULFIL_API_KEY")
        self._core = Core(
            base_url,
            api_key=api_key,
            admin_token=env_default(admin_token, "FULFIL_ADMIN_TOKEN"),
            credentials=credentials,
            retry=retry,
            timeout=timeout,
            headers=headers,
            api_version=api_version,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._transport = Transport(self._core, self._http)
        self.sales = Sales(self)
        self.returns = Returns(self)
        self.products = Products(self)
        self.locations = Locations(self)
        self.stock = Stock(self)
        self.inbound_orders = InboundOrders(self)
        self.fulfillment = Fulfillment(self)
        self.webhooks = Webhooks(self)
        self.api_keys = ApiKeys(self)
        self.oauth_clients = OAuthClients(self)
        self.admin = Admin(self)

    @property
    def base_url(self) -> str:
        return str(self._core.base_url)

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

    def send(self, call: Call) -> httpx.Response:
        """Sends one call (with retries); raises a `ProblemError` for an error answer."""
        return self._transport.send(call)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        admin: bool = False,
        idempotency_key: str | None = None,
    ) -> Any:
        """Any call by path (`/api/v1/...`), with the client's auth, retries and errors; the
        answer's JSON (None for 204)."""
        auth = "admin" if admin else "tenant"
        call = Call(method, path, params, json, headers, auth, idempotency_key)
        return json_body(self.send(call))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
