"""Sending a `Call`: the retry loop, once blocking and once with asyncio, around `Core`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from fulfil_client._core import Call, Core
from fulfil_client.errors import ProblemError


class Transport:
    def __init__(self, core: Core, http: httpx.Client) -> None:
        self.core = core
        self.http = http
        self.sleep = time.sleep
        self.clock = time.monotonic

    def _bearer(self, call: Call) -> str | None:
        bearer = self.core.static_bearer(call.auth)
        if bearer is None and self.core.needs_token(call.auth):
            credentials = self.core.credentials
            assert credentials is not None
            with credentials.lock:
                bearer = credentials.current()
                if bearer is None:
                    response = self.http.send(
                        credentials.token_request(self.core.base_url, self.core.timeouts())
                    )
                    bearer = credentials.accept(response)
        return bearer

    def send(self, call: Call) -> httpx.Response:
        core = self.core
        started = self.clock()
        key = core.idempotency_key(call)
        retry = 0
        renewed = False
        while True:
            bearer = self._bearer(call)
            remaining = core.retry.max_total_seconds - (self.clock() - started)
            request = core.build(call, bearer, key, remaining)
            response: httpx.Response | None = None
            failure: Exception | None = None
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                failure = exc
            if response is not None:
                if (
                    core.needs_token(call.auth)
                    and core.stale_token(response, bearer)
                    and not renewed
                ):
                    assert core.credentials is not None and bearer is not None
                    core.credentials.forget(bearer)
                    renewed = True
                    continue
                wait = core.retry_wait(response, retry + 1)
                if wait is None:
                    return core.check(response)
            else:
                wait = core.retry_wait(None, retry + 1)
                assert wait is not None
            retry += 1
            if not core.retry.should_retry(retry, self.clock() - started, wait):
                if response is not None:
                    return core.check(response)
                assert failure is not None
                raise core.connection_failed(request, failure) from failure
            self.sleep(wait)


class AsyncTransport:
    def __init__(self, core: Core, http: httpx.AsyncClient) -> None:
        self.core = core
        self.http = http
        self.sleep = asyncio.sleep
        self.clock = time.monotonic
        self._token_lock = asyncio.Lock()

    async def _bearer(self, call: Call) -> str | None:
        bearer = self.core.static_bearer(call.auth)
        if bearer is None and self.core.needs_token(call.auth):
            credentials = self.core.credentials
            assert credentials is not None
            async with self._token_lock:
                bearer = credentials.current()
                if bearer is None:
                    request = credentials.token_request(self.core.base_url, self.core.timeouts())
                    bearer = credentials.accept(await self.http.send(request))
        return bearer

    async def send(self, call: Call) -> httpx.Response:
        core = self.core
        started = self.clock()
        key = core.idempotency_key(call)
        retry = 0
        renewed = False
        while True:
            bearer = await self._bearer(call)
            remaining = core.retry.max_total_seconds - (self.clock() - started)
            request = core.build(call, bearer, key, remaining)
            response: httpx.Response | None = None
            failure: Exception | None = None
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                failure = exc
            if response is not None:
                if (
                    core.needs_token(call.auth)
                    and core.stale_token(response, bearer)
                    and not renewed
                ):
                    assert core.credentials is not None and bearer is not None
                    core.credentials.forget(bearer)
                    renewed = True
                    continue
                wait = core.retry_wait(response, retry + 1)
                if wait is None:
                    return core.check(response)
            else:
                wait = core.retry_wait(None, retry + 1)
                assert wait is not None
            retry += 1
            if not core.retry.should_retry(retry, self.clock() - started, wait):
                if response is not None:
                    return core.check(response)
                assert failure is not None
                raise core.connection_failed(request, failure) from failure
            await self.sleep(wait)


def json_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ProblemError(
            response.status_code,
            "invalid_response",
            "Not JSON",
            f"The answer to {response.request.method} {response.request.url} is not JSON.",
        ) from exc
