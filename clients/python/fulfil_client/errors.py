"""Typed errors: every error answer of the platform is an RFC 9457 problem with a `code`.

`ProblemError` carries the problem's fields; its subclasses name the outcome so callers can
`except NotFound:` instead of comparing numbers. `problem_from_response` picks the class by
status and `code`.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"


class FulfilError(Exception):
    """Anything this client raises on purpose."""


class ConfigurationError(FulfilError):
    """The client was not given what a call needs (a base URL, an API key, the admin
    token)."""


class ProblemError(FulfilError):
    """The platform answered with an error (or could not be reached: `status` 0).

    `errors` holds the per-field details of a 422 (`{"field": <JSON pointer>, "message"}`)
    or a 409 on a list write; `problem` is the whole document as sent, with any extra
    members (`remaining`, `supported_versions`, ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        type: str | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.type = type or f"urn:fulfil:problem:{code}"
        self.problem: dict[str, Any] = dict(problem or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        head = f"{self.status} {self.code}: {self.detail or self.title}{where}"
        if not self.errors:
            return head
        fields = "; ".join(f"{e.get('field', '?')}: {e.get('message', '')}" for e in self.errors)
        return f"{head} [{fields}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"


class BadRequest(ProblemError):
    """400 `invalid_request`: not strict JSON, a malformed header, an unknown version."""


class AuthFailed(ProblemError):
    """401 `invalid_token` (or an OAuth2 token endpoint refusal such as `invalid_client`)."""


class PermissionDenied(AuthFailed):
    """403 `no_permission`: the key lacks the scope the request needs."""


class NotFound(ProblemError):
    """404 `no_content`."""


class MethodNotAllowed(ProblemError):
    """405 `method_not_allowed`."""


class Conflict(ProblemError):
    """409 `conflict`: a stale `If-Match`, a state that does not allow the change, an
    `Idempotency-Key` reused with another request."""


class Duplicated(Conflict):
    """409 `duplicated`: the thing exists already (a `sale_id`, a tenant name)."""


class TooLarge(ProblemError):
    """413 `too_large`."""


class ValidationFailed(ProblemError):
    """422 `validation`: `errors` names each field by JSON pointer."""


class PreconditionRequired(ProblemError):
    """428 `precondition_required`: the change needs `If-Match`."""


class RateLimited(ProblemError):
    """429 `rate_limit`: raised once the retries are spent; `retry_after` in seconds."""


class ServerError(ProblemError):
    """500 `internal` and other 5xx answers that are not about availability."""


class Unavailable(ProblemError):
    """502, 503 `unavailable`, 504 `timeout`: raised once the retries are spent."""


class ConnectionFailed(Unavailable):
    """No answer at all (refused, reset, timed out): `status` is 0."""


BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: AuthFailed,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: TooLarge,
    422: ValidationFailed,
    428: PreconditionRequired,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}
BY_CODE: dict[str, type[ProblemError]] = {"duplicated": Duplicated}
DEFAULT_CODES = {
    400: "invalid_request",
    401: "invalid_token",
    403: "no_permission",
    404: "no_content",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation",
    428: "precondition_required",
    429: "rate_limit",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


def error_class(status: int, code: str) -> type[ProblemError]:
    if code in BY_CODE:
        return BY_CODE[code]
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else ProblemError


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def problem_from_response(response: httpx.Response) -> ProblemError:
    """The typed error for an error answer, problem+json or not (a proxy's HTML page)."""
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    headers = dict(response.headers)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    request_id = response.headers.get("x-request-id")
    if isinstance(body, dict) and "error" in body and "code" not in body:
        # RFC 6749 answers of the token endpoint: {"error", "error_description"}
        code = str(body["error"])
        cls: type[ProblemError] = RateLimited if status == 429 else error_class(status, code)
        if status in (400, 401):
            cls = AuthFailed
        return cls(
            status,
            code,
            code.replace("_", " ").capitalize(),
            str(body.get("error_description") or ""),
            problem=body,
            headers=headers,
            request_id=request_id,
            retry_after=retry_after,
        )
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or DEFAULT_CODES.get(status, f"http_{status}"))
    title = str(body.get("title") or response.reason_phrase or "Error")
    detail = str(body.get("detail") or (response.text[:200] if not body else ""))
    errors = body.get("errors")
    return error_class(status, code)(
        status,
        code,
        title,
        detail,
        errors=errors if isinstance(errors, list) else None,
        type=body.get("type") if isinstance(body.get("type"), str) else None,
        problem=body,
        headers=headers,
        request_id=request_id,
        retry_after=retry_after,
    )
