"""Requests straight through an ASGI app, with no server and no socket."""

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    raise_after_answer: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one request, as a server would make it.
    `raise_after_answer=False` keeps the answer of an app that raises once it has answered
    (Starlette's outermost error middleware does, after a 500)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    try:
        await app(scope, receive, send)
    except RuntimeError:
        if raise_after_answer or not any(m["type"] == "http.response.start" for m in sent):
            raise
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


async def asgi_get(
    app: ASGIApp, path: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, parsed JSON body) of one GET."""
    status, answer_headers, body = await asgi_request(app, "GET", path, headers)
    return status, answer_headers, orjson.loads(body)
