"""What every door of the gateway (admin routes, admin guard, self-service guard,
forwarding) checks before anything else, answered as HTTP problems: API version, API key or
admin token, body size."""

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope

from fulfilkit.errors import DomainError
from fulfilkit.http.problems import Problem
from gateway.domain import (
    SUPPORTED_VERSIONS,
    Caller,
    InProgress,
    UnsupportedVersion,
    bearer_token,
    client_address,
    requested_version,
    retry_after,
)
from gateway.resources import GatewayResources


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


UNKNOWN_KEY = "The API key or access token is unknown, expired or revoked."


async def caller_of(resources: GatewayResources, scope: Scope, authorization: str | None) -> Caller:
    """The key's caller. Requests without a valid key are limited per client address before
    any database work; a key found in the cache costs nothing more."""
    token = bearer_token(authorization)
    known, caller = resources.keys.cached(token) if token is not None else (True, None)
    if caller is not None:
        return caller
    address = client_address(scope)
    if token is not None and not known and resources.keys.looking_up(token):
        # the same key is being looked up for another request: waiting costs the database
        # nothing, so it takes nothing from the address (a client opening many connections
        # at once with a valid key is not refused as if its key were wrong)
        caller = await resources.keys.caller(token)
        if caller is None:
            raise invalid_token(UNKNOWN_KEY)
        return caller
    wait = resources.unauthenticated.wait_seconds(address)
    if wait > 0:
        raise Problem(
            "rate_limit",
            "Too many requests without a valid API key from this address.",
            headers={"Retry-After": retry_after(wait)},
        )
    if token is None:
        raise invalid_token("Send an API key as `Authorization: Bearer <key>`.", missing=True)
    if not known:
        caller = await resources.keys.caller(token)
    if caller is None:
        raise invalid_token(UNKNOWN_KEY)
    resources.unauthenticated.give_back(address)  # a valid key not cached yet
    return caller


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits as the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
