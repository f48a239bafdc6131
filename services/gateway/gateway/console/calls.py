"""How the console reads and acts: a tenant's session through the services exactly as the
forwarding sends a request (the session's tenant and key as actor, its scopes checked), the
operator's through the gateway's own admin API, in process. Every call has a deadline: a slow
or dead service costs the page an "unavailable" answer, never a hang."""

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from fastapi import FastAPI

from fulfilkit.http.problems import Problem
from gateway.console.sessions import Session
from gateway.domain import ADMIN_PREFIX, API_PREFIX, UpstreamCall, required_scope, route_for
from gateway.resources import GatewayResources


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.status)
        return f"HTTP {self.status}"

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Unavailable(Exception):
    """A service did not answer within the console's deadline, or could not be reached."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def query_of(params: dict[str, Any]) -> str:
    """A query string without empty values; lists repeat their name."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(name, str(v)) for v in values if v is not None and v != ""]
    return urlencode(pairs)


def _parsed(body: bytes) -> Any:
    if not body or body[:1] not in (b"{", b"["):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class TenantCalls:
    """The public API as the session's tenant, through `Forwarder.forward`: the same upstream
    call the forwarding makes for the key the session signed in with."""

    def __init__(self, resources: GatewayResources, session: Session, deadline: float) -> None:
        assert session.tenant_id is not None
        self._resources = resources
        self._session = session
        self._deadline = deadline

    def may(self, method: str, path: str) -> bool:
        route = route_for(API_PREFIX + path)
        if route is None:
            return False
        return required_scope(route.area, method, API_PREFIX + path) in self._session.scopes

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, query=query_of(params))

    async def post(self, path: str, body: Any = None, *, if_match: str | None = None) -> Answer:
        return await self.call("POST", path, body=body, if_match=if_match)

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: Any = None,
        if_match: str | None = None,
    ) -> Answer:
        full = API_PREFIX + path
        route = route_for(full)
        if route is None:
            raise Problem("no_content", "No such resource.")
        needed = required_scope(route.area, method, full)
        if needed not in self._session.scopes:
            return Answer(403, {}, {"detail": f"This key lacks the {needed!r} scope."})
        headers = {"accept": "application/json"}
        raw = b""
        if body is not None:
            raw = orjson.dumps(body)
            headers["content-type"] = "application/json"
        if method == "POST":  # the services key their writes by it: a retry changes nothing
            headers["idempotency-key"] = "console-" + secrets.token_urlsafe(16)
        if if_match is not None:
            headers["if-match"] = if_match
        call = UpstreamCall(
            service=route.service,
            method=method,
            path=full,
            query=query,
            headers=headers,
            body=raw,
            tenant_id=self._session.tenant_id,
            actor=self._session.actor,
        )
        try:
            async with asyncio.timeout(self._deadline):
                answer = await self._resources.forwarder.forward(call)
        except TimeoutError:
            raise Unavailable(f"The {route.service} service did not answer in time.") from None
        except Problem as problem:
            if problem.status in (503, 504):
                raise Unavailable(problem.detail) from None
            raise
        return Answer(answer.status_code, dict(answer.headers), _parsed(answer.body), answer.body)


class AdminCalls:
    """The admin API (`/api/v1/admin/...`) in process, with the gateway's admin token: the
    operator's pages see exactly what the admin API answers, through its own checks."""

    def __init__(self, app: FastAPI, admin_token: str, deadline: float) -> None:
        self._app = app
        self._token = admin_token
        self._deadline = deadline

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, query=query_of(params))

    async def post(self, path: str, body: Any = None, **params: Any) -> Answer:
        return await self.call("POST", path, query=query_of(params), body=body)

    async def call(self, method: str, path: str, *, query: str = "", body: Any = None) -> Answer:
        url = ADMIN_PREFIX + path + (f"?{query}" if query else "")
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["content-type"] = "application/json"
        transport = httpx.ASGITransport(app=self._app)
        try:
            async with (
                asyncio.timeout(self._deadline),
                httpx.AsyncClient(transport=transport, base_url="http://console") as client,
            ):
                response = await client.request(method, url, headers=headers, content=content)
        except TimeoutError:
            raise Unavailable("The admin API did not answer in time.") from None
        answer = Answer(response.status_code, dict(response.headers), _parsed(response.content))
        if answer.status in (502, 503, 504):
            raise Unavailable(answer.detail)
        return answer
