"""Requests straight through an ASGI app, with no server and no socket."""

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp


async def asgi_get(
    app: ASGIApp, path: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, parsed JSON body) of one GET, as a server would make it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, orjson.loads(body)
