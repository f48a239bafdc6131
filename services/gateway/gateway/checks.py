"""What every door of the gateway (admin routes, admin guard, forwarding) checks before
anything else, answered as HTTP problems: API version, admin token, body size."""

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Message, Receive

from fulfilkit.errors import DomainError
from fulfilkit.http.problems import Problem
from gateway.domain import SUPPORTED_VERSIONS, InProgress, UnsupportedVersion, requested_version


def check_api_version(sent: Iterable[tuple[str, str]]) -> str:
    """The version the request asks for (the current one when it names none), or a 400
    `invalid_request` naming the supported versions."""
    try:
        return requested_version(sent)
    except UnsupportedVersion as refused:
        raise Problem(
            "invalid_request", str(refused), supported_versions=list(SUPPORTED_VERSIONS)
        ) from None


def invalid_token(detail: str, *, missing: bool = False) -> Problem:
    challenge = 'Bearer realm="fulfil"'
    if not missing:
        challenge += ', error="invalid_token"'
    return Problem("invalid_token", detail, headers={"WWW-Authenticate": challenge})


def problem_of(error: DomainError) -> Problem:
    """The problem a use case's error answers, for the doors FastAPI's handlers do not see."""
    headers = (
        {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, InProgress) else None
    )
    return Problem(error.code, error.detail, errors=error.errors, headers=headers, **error.extra)


class ClientGone(Exception):
    """The client hung up before its request body arrived; nobody is left to answer."""


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large(limit: int) -> Problem:
    return Problem("too_large", f"The request body is larger than {limit} bytes.")
