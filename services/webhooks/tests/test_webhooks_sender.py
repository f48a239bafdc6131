"""The sender against a local HTTP server: signed POSTs, no redirects, bounded waits."""

import asyncio
import functools
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from webhooks import sender as sending
from webhooks.domain import decide
from webhooks.resolving import BoundedResolver
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.signing import new_secret

BODY = b'{"type":"stock.low","timestamp":"2025-01-02T03:04:05Z","data":{"sku":"a"}}'


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.reply = b"ok"
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status == 302:
            raise web.HTTPFound("/elsewhere")
        return web.Response(status=self.status, body=self.reply, headers={"Retry-After": "7"})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app_receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", app_receiver.handle)
    app.router.add_post("/elsewhere", app_receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield app_receiver, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


def settings(**overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {"webhook_allowed_hosts": "127.0.0.1,localhost,::1", **overrides}
    return WebhookSettings(**values)


async def test_posts_a_verifiable_signed_body(receiver: tuple[Receiver, str]) -> None:
    server, url = receiver
    sender = Sender(settings())
    secret = new_secret()
    attempt = await sender.post(url, {"X-Shop": "42"}, [secret], "msg_a", BODY)
    await sender.close()
    assert attempt.status_code == 200 and attempt.succeeded and attempt.error is None
    headers, body = server.requests[0]
    assert body == BODY
    assert headers["X-Shop"] == "42"
    assert headers["User-Agent"] == "Fulfil-Webhooks/1"
    assert Webhook(secret).verify(body, headers)["type"] == "stock.low"


async def test_every_attempt_sends_a_child_of_the_events_traceparent(
    receiver: tuple[Receiver, str],
) -> None:
    server, url = receiver
    sender = Sender(settings())
    event = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    custom = {"Traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}
    for _ in range(2):
        await sender.post(url, custom, [new_secret()], "msg_t", BODY, traceparent=event)
    await sender.post(url, {}, [new_secret()], "msg_u", BODY)  # a delivery kept none
    await sender.close()
    sent = [headers["traceparent"] for headers, _ in server.requests]
    assert [len([k for k in h if k.lower() == "traceparent"]) for h, _ in server.requests] == [
        1,
        1,
        1,
    ], "the platform's header only, never an older endpoint's custom one"
    first, second, fresh = (t.split("-") for t in sent)
    assert first[1] == second[1] == "0af7651916cd43dd8448eb211c80319c"
    assert first[2] != second[2] != "b7ad6b7169203331", "each attempt a span of its own"
    assert fresh[1] != first[1] and len(fresh[1]) == 32, "no traceparent kept: a new trace"


async def test_keeps_one_kilobyte_of_the_answer(receiver: tuple[Receiver, str]) -> None:
    server, url = receiver
    server.status, server.reply = 503, b"x" * 10_000
    sender = Sender(settings())
    attempt = await sender.post(url, {}, [new_secret()], "msg_b", BODY)
    await sender.close()
    assert attempt.status_code == 503 and not attempt.succeeded
    assert attempt.response_body == "x" * 1024
    assert attempt.retry_after == "7"


async def test_does_not_follow_redirects(receiver: tuple[Receiver, str]) -> None:
    server, url = receiver
    server.status = 302
    sender = Sender(settings())
    attempt = await sender.post(url, {}, [new_secret()], "msg_c", BODY)
    await sender.close()
    assert attempt.status_code == 302
    assert len(server.requests) == 1


async def test_a_slow_endpoint_times_out(receiver: tuple[Receiver, str]) -> None:
    server, url = receiver
    server.delay = 0.3
    sender = Sender(settings(webhook_timeout_seconds=0.05))
    attempt = await sender.post(url, {}, [new_secret()], "msg_d", BODY)
    await sender.close()
    assert attempt.status_code is None and "no answer" in (attempt.error or "")


async def test_internal_addresses_are_refused_without_a_request(
    receiver: tuple[Receiver, str],
) -> None:
    server, url = receiver
    sender = Sender(settings(webhook_allowed_hosts=""))
    by_address = await sender.post(url, {}, [new_secret()], "msg_e", BODY)
    by_name = await sender.post(
        url.replace("127.0.0.1", "localhost"), {}, [new_secret()], "msg_f", BODY
    )
    await sender.close()
    assert "not a public address" in (by_address.error or "")
    assert "not public" in (by_name.error or "")
    assert server.requests == []


async def test_a_name_that_resolves_too_slowly_fails_the_attempt_with_the_reason(
    receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, url = receiver
    released = threading.Event()

    def slow_dns(host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        released.wait(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(
        sending, "BoundedResolver", functools.partial(BoundedResolver, lookup=slow_dns)
    )
    sender = Sender(settings(webhook_dns_timeout_seconds=0.2, webhook_timeout_seconds=3))
    started = time.monotonic()
    attempt = await sender.post(
        url.replace("127.0.0.1", "localhost"), {}, [new_secret()], "msg_g", BODY
    )
    released.set()
    await sender.close()
    assert time.monotonic() - started < 2, "the DNS deadline, not the request timeout"
    assert attempt.status_code is None
    assert "resolving localhost took longer than 0.2 s" in (attempt.error or "")
    assert server.requests == []
    verdict = decide(attempt.status_code, 1, (5.0,), now=datetime.now(UTC))
    assert verdict.status == "pending" and verdict.retry_in is not None, "retried"


def test_a_child_traceparent_keeps_the_trace_and_its_sampled_flag_with_a_new_span() -> None:
    from webhooks.sender import child_traceparent

    trace, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    for flags, kept in (("01", "01"), ("00", "00"), ("03", "01")):
        child = child_traceparent(f"00-{trace}-{parent_span}-{flags}")
        version, trace_id, span_id, child_flags = child.split("-")
        assert (version, trace_id, child_flags) == ("00", trace, kept)
        assert len(span_id) == 16 and span_id != parent_span and int(span_id, 16)
    # a later version is read by its first four fields, as the specification asks
    assert child_traceparent(f"01-{trace}-{parent_span}-01-extra").split("-")[1] == trace
    for missing in (None, "", "garbage", f"00-{'0' * 32}-{parent_span}-01"):
        version, trace_id, span_id, child_flags = child_traceparent(missing).split("-")
        assert version == "00" and child_flags == "01" and len(trace_id) == 32
        assert int(trace_id, 16) and int(span_id, 16) and trace_id != trace
