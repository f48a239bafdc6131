import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfilkit.http.problems import Problem, dependency_outage, problem_response
from fulfilkit.logs import request_id_var, tenant_var

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
# What a caller's id may be to be kept: visible ASCII, at most 128 characters.
_USABLE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")


def request_id_of(given: bytes | None) -> str:
    """The caller's X-Request-Id when it is usable, otherwise a fresh one."""
    if given is not None and _USABLE_REQUEST_ID.fullmatch(given):
        return given.decode("ascii")
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes X-Request-Id from the caller (or makes one), logs with it and echoes it back.
    The tenant, once a route knows it (`fulfilkit.logs.tenant_var`), lasts as long."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(dict(scope["headers"]).get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        tenant_token = tenant_var.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER
                ]
                message["headers"] = [*headers, (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            tenant_var.reset(tenant_token)
            request_id_var.reset(token)


class UnhandledErrorMiddleware:
    """Answers an unhandled error with a 500 problem and logs it, inside the request id; an
    error that says the database cannot be used right now is a 503 with `Retry-After`.

    Unlike Starlette's outermost error middleware it does not raise the error again after
    answering: uvicorn would then close the keep-alive connection, which the caller's pool
    may already be handing to someone else's request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            outage = dependency_outage(exc)
            if outage is None:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            else:
                log.warning("%s %s answered 503: %r", scope["method"], scope["path"], exc)
            if started:  # half an answer is out: only closing the connection can end it
                raise
            problem = outage or Problem("internal", "An unexpected error occurred.")
            await problem_response(problem)(scope, receive, send)


class HeadAsGetMiddleware:
    """HEAD works wherever GET does: the GET's status and headers, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, send_without_body)


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
