"""Optimistic concurrency over HTTP: an entity's `version` is its ETag, and `If-Match` asks
that a change apply only to that version."""

import re
from typing import Annotated

from fastapi import Header

from fulfilkit.http.problems import Problem

MAX_VERSION = 2**31 - 1  # versions are PostgreSQL integers
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,10}"?)\s*$'
_IF_MATCH = re.compile(r'\s*(?:W/)?("?)([0-9]{1,10})\1\s*', re.ASCII)

IfMatch = Annotated[
    str | None,
    Header(
        description="Apply the change only if the entity is still at this version: its ETag"
        f' (`"3"`), or `*` for any version. Versions run from 1 to {MAX_VERSION}.',
        json_schema_extra={"pattern": IF_MATCH_PATTERN, "maxLength": 64},
    ),
]


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header asks for: None without one, or for `*` (any)."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(if_match)
    version = int(match.group(2)) if match else 0
    if not 1 <= version <= MAX_VERSION:
        raise Problem(
            "invalid_request",
            f"If-Match must carry one version number from 1 to {MAX_VERSION}, as"
            ' the ETag shows it (`"3"`), or `*`.',
        )
    return version


def etag(version: int) -> str:
    return f'"{version}"'
