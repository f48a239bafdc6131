"""Optimistic concurrency over HTTP: an entity's `version` is its ETag, and `If-Match` asks
that a change apply only to that version."""

from typing import Annotated

from fastapi import Header

from fulfilkit.http.problems import Problem

IfMatch = Annotated[str | None, Header(
    description="Apply the change only if the entity is still at this version (its ETag).")]


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header asks for: None without one, or for `*` (any)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise Problem("invalid_request",
                      "If-Match must carry a version number, as the ETag shows it.")
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'
