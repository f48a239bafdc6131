"""What the gateway answers is traceable and honest, and a retry goes through whenever the
gateway cannot replay it: real PostgreSQL, a real uvicorn server, fake services over HTTP."""

import asyncio
import re
import time
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import web

from services.gateway.tests.harness import FakeService, RunningGateway, StartGateway, wait_until
from tests.support import ref

pytestmark = pytest.mark.integration
HEX_ID = re.compile(r"[0-9a-f]{32}")


async def raw_request(url: str, head: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Sends `head` (request line and headers, without the blank line) byte for byte."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    start, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = start.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def linking(fakes: dict[str, FakeService]) -> None:
    async def page(request: web.Request) -> web.Response:
        origin = request.url.origin()
        return web.json_response(
            {"data": []},
            headers={
                "Link": f'<{origin}/api/v1/sales?offset=100>; rel="next"',
                "Location": f"{origin}/api/v1/sales/S-1",
            },
        )

    fakes["orders"].respond = page


@pytest.mark.parametrize("host", ["evil.example", r"\g<0>", r"a\1"])
async def test_links_are_relative_whatever_host_the_client_sends(
    gateway: RunningGateway,
    fakes: dict[str, FakeService],
    host: str,
) -> None:
    linking(fakes)
    tenant = await gateway.new_tenant()
    status, _, headers = await gateway.call(
        "GET", "/api/v1/sales", key=tenant["api_key"], headers={"Host": host}
    )
    assert status == 200
    assert headers["Link"] == '</api/v1/sales?offset=100>; rel="next"'
    assert headers["Location"] == "/api/v1/sales/S-1"


async def test_links_point_at_the_configured_public_base_url(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    gateway = await start_gateway(public_base_url="https://api.example.com")
    linking(fakes)
    tenant = await gateway.new_tenant()
    _, _, headers = await gateway.call(
        "GET", "/api/v1/sales", key=tenant["api_key"], headers={"Host": r"\g<0>"}
    )
    assert headers["Link"] == '<https://api.example.com/api/v1/sales?offset=100>; rel="next"'
    assert headers["Location"] == "https://api.example.com/api/v1/sales/S-1"


async def test_header_bytes_pass_unchanged_both_ways_or_are_refused(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def echo_bytes(request: web.Request) -> web.Response:
        seen.append(list(request.raw_headers))
        return web.json_response({}, headers={"ETag": '"é-1"'})

    fakes["stock"].respond = echo_bytes
    tenant = await gateway.new_tenant()
    head = (
        b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + tenant["api_key"].encode()
    )

    status, headers, _ = await raw_request(gateway.url, head + '\r\nIf-Match: "é"'.encode())
    assert status == 200
    assert [v for n, v in seen[-1] if n.lower() == b"if-match"] == ['"é"'.encode()]
    assert headers[b"etag"] == '"é-1"'.encode()

    calls = len(seen)
    status, _, body = await raw_request(gateway.url, head + b'\r\nIf-Match: "\xe9"')
    assert status == 400 and b'"code":"invalid_request"' in body
    assert b"if-match" in body
    assert len(seen) == calls, "a header the gateway cannot pass on unchanged is refused"


@pytest.mark.parametrize("given", [b"\xff\xfe", b"r" * 129, b"two words"])
async def test_an_unusable_request_id_is_replaced_even_on_health_and_ready(
    gateway: RunningGateway, given: bytes
) -> None:
    for path in (b"/health", b"/ready"):
        status, headers, _ = await raw_request(
            gateway.url, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given
        )
        assert status == 200
        assert HEX_ID.fullmatch(headers[b"x-request-id"].decode()), headers


async def test_head_answers_as_get_without_the_body(
    gateway: RunningGateway, fakes: dict[str, FakeService]
) -> None:
    tenant = await gateway.new_tenant()
    got, _, get_headers = await gateway.call("GET", "/api/v1/sales", key=tenant["api_key"])
    status, body, headers = await gateway.call("HEAD", "/api/v1/sales", key=tenant["api_key"])
    assert got == status == 200 and body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] != "0"
    assert [r.method for r in fakes["orders"].received] == ["GET", "GET"]
    for path in ("/health", "/ready"):
        async with gateway.http.head(gateway.url + path) as response:
            assert response.status == 200, path
            assert await response.read() == b""


async def test_an_answer_marked_no_store_is_not_kept_and_the_retry_goes_through(
    gateway: RunningGateway,
    fakes: dict[str, FakeService],
    infrastructure,
) -> None:
    async def secret(request: web.Request) -> web.Response:
        return web.json_response(
            {"secret": "whsec_abc"}, status=201, headers={"Cache-Control": "no-store"}
        )

    fakes["webhooks"].respond = secret
    tenant = await gateway.new_tenant()
    key = ref("idem")
    post = {
        "key": tenant["api_key"],
        "json": {"url": "https://x.example"},
        "headers": {"Idempotency-Key": key},
    }

    for _ in range(2):
        status, body, headers = await gateway.call("POST", "/api/v1/webhooks/endpoints", **post)
        assert (status, body) == (201, {"secret": "whsec_abc"})
        assert headers["Cache-Control"] == "no-store"
    assert [r.headers["Idempotency-Key"] for r in fakes["webhooks"].received] == [key, key]
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        row = await db.fetchrow(
            "SELECT status_code, body, completed_at FROM gateway.idempotency_keys WHERE key = $1",
            key,
        )
    finally:
        await db.close()
    assert row["status_code"] is None and row["body"] is None and row["completed_at"]

    other = await gateway.call(
        "POST",
        "/api/v1/webhooks/endpoints",
        key=tenant["api_key"],
        json={"url": "https://y.example"},
        headers={"Idempotency-Key": key},
    )
    assert other[0] == 409 and "different request" in other[1]["detail"]
    assert len(fakes["webhooks"].received) == 2


async def test_a_retry_of_a_request_in_progress_for_seconds_is_forwarded_again(
    start_gateway: StartGateway, fakes: dict[str, FakeService]
) -> None:
    gateway = await start_gateway(idempotency_forward_again_seconds=0.5)
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"done": True}, status=201)

    fakes["stock"].respond = slow
    tenant = await gateway.new_tenant()
    post = {
        "key": tenant["api_key"],
        "json": {"quantity": 1},
        "headers": {"Idempotency-Key": ref("idem")},
    }
    first = asyncio.create_task(gateway.call("POST", "/api/v1/stock/transfers", **post))
    await wait_until(lambda: len(fakes["stock"].received) == 1, "first request upstream")
    status, body, _ = await gateway.call("POST", "/api/v1/stock/transfers", **post)
    assert status == 409 and "in progress" in body["detail"]

    # Retry as a client would until the record has been in progress long enough to be
    # forwarded again; until then each retry is answered 409 at once.
    deadline = time.monotonic() + 10
    while True:
        second = asyncio.create_task(gateway.call("POST", "/api/v1/stock/transfers", **post))
        await wait_until(
            lambda task=second: task.done() or len(fakes["stock"].received) == 2,
            "an answer, or the retry forwarded again",
        )
        if len(fakes["stock"].received) == 2:
            break
        assert second.result()[0] == 409, second.result()
        assert time.monotonic() < deadline, "the retry was never forwarded again"
        await asyncio.sleep(0.05)
    release.set()
    assert (await first)[:2] == (await second)[:2] == (201, {"done": True})


class ClosingService:
    """Answers the first request of each connection and closes the connection when a second
    one arrives, as a server does that had already decided to close it."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if answered:
                    return
                self.requests.append(head.split(b"\r\n")[0])
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 11\r\n\r\n{"ok":true}'
                )
                await writer.drain()
                answered = True
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def test_a_keyed_post_on_a_connection_the_service_closed_is_sent_again(
    start_gateway: StartGateway,
) -> None:
    closing = ClosingService()
    await closing.start()
    try:
        gateway = await start_gateway(stock_url=closing.url, upstream_max_connections=1)
        tenant = await gateway.new_tenant()
        path = "/api/v1/stock/transfers"
        first = await gateway.call(
            "POST", path, key=tenant["api_key"], json={}, headers={"Idempotency-Key": ref("idem")}
        )
        keyed = await gateway.call(
            "POST", path, key=tenant["api_key"], json={}, headers={"Idempotency-Key": ref("idem")}
        )
        assert first[:2] == keyed[:2] == (200, {"ok": True})
        assert len(closing.requests) == 2, "the keyed POST was answered on a new connection"

        unkeyed = await gateway.call("POST", path, key=tenant["api_key"], json={})
        assert unkeyed[0] == 503 and unkeyed[1]["code"] == "unavailable"
        assert len(closing.requests) == 2, "a POST without a key is never sent twice"
    finally:
        await closing.stop()
