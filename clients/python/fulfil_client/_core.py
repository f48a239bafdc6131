"""What `Client` and `AsyncClient` share: configuration, the retry policy, credentials,
building requests and reading answers. Only sending (and sleeping) differs between them."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from fulfil_client._version import __version__
from fulfil_client.errors import (
    ConfigurationError,
    ConnectionFailed,
    parse_retry_after,
    problem_from_response,
)

API_PREFIX = "/api/v1"
TOKEN_PATH = API_PREFIX + "/oauth/token"
RETRY_STATUSES = frozenset({429, 502, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
Auth = Literal["tenant", "admin", "none"]
QueryValue = str | int | float | bool | None | list[str] | list[int]


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried: on 429 (after `Retry-After` when sent), 502, 503 and
    connection errors, at most `max_attempts` times in all and never past `max_total_seconds`
    from the first attempt. Waits grow as `base_delay * 2**n` up to `max_delay`, with full
    jitter (a random wait between half and all of it), unless the server's `Retry-After`
    asks for longer."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_total_seconds: float = 30.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1 for the first retry), without a server
        hint."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        return ceiling * (0.5 + 0.5 * self.random())

    def delay(self, retry: int, retry_after: float | None) -> float:
        wait = self.backoff(retry)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def should_retry(self, retry: int, elapsed: float, wait: float) -> bool:
        """Whether retry number `retry` may go, `elapsed` seconds after the first attempt
        and after waiting `wait` more."""
        return retry < self.max_attempts and elapsed + wait <= self.max_total_seconds


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass
class CachedToken:
    access_token: str
    expires_at: float  # time.monotonic()


class ClientCredentials:
    """OAuth2 client credentials against the gateway's token endpoint: the token is reused
    until `refresh_margin` seconds before it expires (or a 401 says it no longer works)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str | list[str] | None = None,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.scope = " ".join(scope) if isinstance(scope, list) else scope
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._token: CachedToken | None = None
        self.lock = threading.Lock()  # sync clients; async clients hold their own lock

    def __repr__(self) -> str:  # never the secret
        return f"ClientCredentials(client_id={self.client_id!r}, scope={self.scope!r})"

    def current(self) -> str | None:
        token = self._token
        if token is not None and self._clock() < token.expires_at - self.refresh_margin:
            return token.access_token
        return None

    def forget(self, access_token: str) -> None:
        if self._token is not None and self._token.access_token == access_token:
            self._token = None

    def token_request(
        self, base_url: httpx.URL, timeouts: dict[str, float | None] | None = None
    ) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        basic = httpx.BasicAuth(self.client_id, self._secret)
        request = httpx.Request(
            "POST",
            base_url.join(TOKEN_PATH),
            data=form,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            extensions={"timeout": timeouts} if timeouts else {},
        )
        return next(basic.auth_flow(request))

    def accept(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise problem_from_response(response)
        body = response.json()
        token = str(body["access_token"])
        self._token = CachedToken(token, self._clock() + float(body["expires_in"]))
        return token


USER_AGENT = f"fulfil-client-python/{__version__}"


@dataclass
class Call:
    """One API call as the resources describe it."""

    method: str
    path: str
    params: Mapping[str, QueryValue] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    auth: Auth = "tenant"
    idempotency_key: str | None = None


def clean_params(params: Mapping[str, QueryValue] | None) -> list[tuple[str, str]]:
    """Query parameters without the unset ones; lists repeat the name; booleans as
    `true`/`false`."""
    out: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                out.append((name, "true" if item else "false"))
            elif hasattr(item, "isoformat"):
                out.append((name, item.isoformat()))
            else:
                out.append((name, str(item)))
    return out


def if_match(version: int | str | None) -> dict[str, str]:
    """The `If-Match` header for a version (`3` -> `"3"`); nothing for None."""
    if version is None:
        return {}
    text = str(version)
    return {"If-Match": text if text.startswith(('"', "W/")) or text == "*" else f'"{text}"'}


class Core:
    """Configuration and the steps of a call that do no I/O."""

    def __init__(
        self,
        base_url: str | None,
        *,
        api_key: str | None,
        admin_token: str | None,
        credentials: ClientCredentials | None,
        retry: RetryPolicy | None,
        timeout: float | httpx.Timeout,
        headers: Mapping[str, str] | None,
        api_version: str | None,
    ) -> None:
        base_url = base_url or os.environ.get("FULFIL_URL")
        if not base_url:
            raise ConfigurationError("No base URL: pass base_url= or set FULFIL_URL.")
        if api_key is not None and credentials is not None:
            raise ConfigurationError("Pass an API key or client credentials, not both.")
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.api_key = api_key
        self.admin_token = admin_token
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        if api_version:
            self.headers["X-API-Version"] = api_version

    def url(self, path: str) -> httpx.URL:
        return self.base_url.join(path.lstrip("/"))

    def static_bearer(self, auth: Auth) -> str | None:
        """The bearer for `auth` when it needs no token request; raises when missing."""
        if auth == "none":
            return None
        if auth == "admin":
            if not self.admin_token:
                raise ConfigurationError(
                    "This call needs the admin token: pass admin_token= or set FULFIL_ADMIN_TOKEN."
                )
            return self.admin_token
        if self.api_key:
            return self.api_key
        if self.credentials is None:
            raise ConfigurationError(
                "This call needs an API key or client credentials: pass api_key= or set"
                " FULFIL_API_KEY, or pass client_id= and client_secret=."
            )
        return self.credentials.current()

    def needs_token(self, auth: Auth) -> bool:
        return auth == "tenant" and not self.api_key and self.credentials is not None

    def idempotency_key(self, call: Call) -> str | None:
        """POSTs get a key, made once per call and sent on each of its attempts."""
        if call.idempotency_key is not None:
            return call.idempotency_key
        return str(uuid.uuid4()) if call.method.upper() == "POST" else None

    def timeouts(self, remaining: float | None = None) -> dict[str, float | None]:
        """httpx's per-request timeouts: the client's, none longer than `remaining` (what
        is left of the call's time budget), so a call ends within its bound even when the
        server stops answering mid-request."""
        limits = self.timeout.as_dict()
        if remaining is None:
            return limits
        cap = max(0.001, remaining)
        return {k: cap if v is None else min(v, cap) for k, v in limits.items()}

    def build(
        self,
        call: Call,
        bearer: str | None,
        idempotency_key: str | None,
        remaining: float | None = None,
    ) -> httpx.Request:
        headers = dict(self.headers)
        if call.json is not None:
            headers["Content-Type"] = "application/json"
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(call.headers or {})
        return httpx.Request(
            call.method.upper(),
            self.url(call.path),
            params=clean_params(call.params),
            json=call.json,
            headers=headers,
            extensions={"timeout": self.timeouts(remaining)},
        )

    def check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        raise problem_from_response(response)

    def connection_failed(self, request: httpx.Request, exc: Exception) -> ConnectionFailed:
        return ConnectionFailed(
            0,
            "connection_failed",
            "No answer",
            f"{request.method} {request.url}: {type(exc).__name__}: {exc}",
        )

    def retry_wait(self, response: httpx.Response | None, retry: int) -> float | None:
        """The wait before retrying, or None when this answer is final."""
        if response is not None and response.status_code not in self.retry.retry_statuses:
            return None
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        return self.retry.delay(retry, retry_after)

    @staticmethod
    def stale_token(response: httpx.Response, bearer: str | None) -> bool:
        return response.status_code == 401 and bearer is not None


def env_default(value: str | None, name: str) -> str | None:
    return value if value is not None else (os.environ.get(name) or None)
