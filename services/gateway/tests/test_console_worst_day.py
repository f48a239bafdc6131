"""The console on the worst day: a slow or dead service costs the page a 503 naming it
within `CONSOLE_CALL_TIMEOUT_SECONDS`, never a hang."""

import asyncio
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from services.gateway.tests.harness import (
    FakeService,
    RunningGateway,
    StartGateway,
    closed_port_url,
)

pytestmark = pytest.mark.integration

DEADLINE = 0.5


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keeps cookies of an IP address host (127.0.0.1), as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def signed_in(gateway: RunningGateway, browser: aiohttp.ClientSession) -> None:
    tenant = await gateway.new_tenant()
    async with browser.get(gateway.url + "/console/sign-in") as form:
        html = await form.text()
    token = re.search(r'name="sign_in_token" value="([^"]+)"', html)
    assert token is not None
    async with browser.post(
        gateway.url + "/console/sign-in",
        data={"sign_in_token": token.group(1), "secret": tenant["api_key"], "next": ""},
        headers={"Origin": gateway.url, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303, await answer.text()
        assert answer.headers["Location"] == "/console/sales"


async def test_a_slow_service_costs_the_page_a_503_within_the_deadline(
    start_gateway: StartGateway,
    fakes: dict[str, FakeService],
    browser: aiohttp.ClientSession,
):
    released = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await released.wait()  # answers only once the test is over
        return web.json_response({})

    fakes["orders"].respond = slow
    gateway = await start_gateway(console_call_timeout_seconds=DEADLINE)
    await signed_in(gateway, browser)
    started = time.monotonic()
    try:
        async with browser.get(gateway.url + "/console/sales") as page:
            assert page.status == 503
            assert "orders" in await page.text()
            assert page.headers["Cache-Control"] == "no-store"
        assert time.monotonic() - started < DEADLINE + 2
    finally:
        released.set()


async def test_a_dead_service_costs_the_page_a_503_at_once(
    start_gateway: StartGateway, browser: aiohttp.ClientSession
):
    gateway = await start_gateway(stock_url=closed_port_url(), console_call_timeout_seconds=5)
    await signed_in(gateway, browser)
    started = time.monotonic()
    async with browser.get(gateway.url + "/console/stock") as page:
        assert page.status == 503
        assert "stock" in await page.text()
    assert time.monotonic() - started < 2
