import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.logs import request_id_var

REQUEST_ID_HEADER = b"x-request-id"


class RequestIdMiddleware:
    """Takes X-Request-Id from the caller (or makes one), logs with it and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER)
        request_id = given.decode()[:128] if given else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"], (REQUEST_ID_HEADER, request_id.encode())
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class StripTrailingSlashMiddleware:
    """`/sales/` and `/sales` are the same resource, answered without a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            raw: bytes = scope.get("raw_path") or path.encode()
            scope = dict(scope, path=path.rstrip("/") or "/", raw_path=raw.rstrip(b"/") or b"/")
        await self.app(scope, receive, send)
