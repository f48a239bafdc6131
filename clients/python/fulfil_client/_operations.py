"""Which API operation each client method calls, so a test can compare them with the served
OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

OPERATIONS: dict[tuple[str, str], str] = {}


def operation(method: str, path: str) -> Callable[[F], F]:
    """Marks a resource method as the client's call of `method path`."""

    def mark(function: F) -> F:
        OPERATIONS.setdefault((method.upper(), path), function.__qualname__)
        function.__fulfil_operation__ = (method.upper(), path)  # type: ignore[attr-defined]
        return function

    return mark
