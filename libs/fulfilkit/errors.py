"""Errors a use case raises when a rule of the domain refuses what was asked.

They carry no HTTP: each names the platform's stable error code, and the HTTP layer
(`fulfilkit.http.problems`) answers it as problem+json with that code's status.
"""

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "validation"

    def __init__(
        self, detail: str, *, errors: list[dict[str, str]] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class Invalid(DomainError):
    """The request is well-formed but breaks a rule (422 `validation`)."""

    code = "validation"


class NotFound(DomainError):
    """What the request names does not exist for this tenant (404 `no_content`)."""

    code = "no_content"


class Duplicated(DomainError):
    """Something with this identity exists already (409 `duplicated`)."""

    code = "duplicated"


class Conflict(DomainError):
    """The entity's state or version forbids the change (409 `conflict`)."""

    code = "conflict"
