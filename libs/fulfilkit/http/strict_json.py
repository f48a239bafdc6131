"""Every route's request, vetted before FastAPI validates it against the route's models.

FastAPI decodes bodies with `json.loads`, which takes `NaN` and `Infinity`, integers of any
size and text PostgreSQL cannot store (NUL, lone surrogates), and fails on deep nesting with
a RecursionError. Here the body is decoded once, strictly, and checked against
`fulfilkit.bounds.BODY`; path and query parameters are checked for unstorable text. What
fails is answered as problem+json pointing at the field, before any handler runs.
"""

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from fulfilkit.bounds import BODY, pointer, text_error, violations
from fulfilkit.http.problems import Problem


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(body: bytes) -> Any:
    """The body as JSON; Problem `invalid_request` if it is not strict JSON."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise Problem("invalid_request", "The request body is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN and Infinity
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise Problem("invalid_request", f"The request body is not valid JSON: {reason}.") from None


# json refuses raw control characters, so text can hold NUL or a lone surrogate only through
# an escape (`\u0000`), a surrogate encoded in UTF-8 (decoded with `surrogatepass`: 0xED
# leads it) or a body in UTF-16 or UTF-32 (which has zero bytes).
_TEXT_MARKERS = (b"\\u", b"\xed", b"\x00")


def may_hold_unstorable_text(raw: bytes) -> bool:
    """False when the JSON text `raw` cannot decode to NUL or a lone surrogate: then the
    text of a body (which `BODY` does not bound in length) needs no look."""
    return any(marker in raw for marker in _TEXT_MARKERS)


def _is_json(request: Request) -> bool:
    """Whether FastAPI would decode this request's body as JSON."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _validation(errors: list[dict[str, str]]) -> Problem:
    return Problem("validation", "The request has invalid fields.", errors=errors)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = decode_json(await self.body())
        return self._strict_json

    async def vet(self) -> None:
        """Raise Problem for unstorable parameters or a body that breaks the bounds."""
        errors = [
            {"field": f"/{name}", "message": error, "in": where}
            for where, params in (
                ("path", self.path_params.items()),
                ("query", self.query_params.multi_items()),
            )
            for name, value in params
            if isinstance(value, str) and (error := text_error(value)) is not None
        ]
        if errors:
            raise _validation(errors)
        if self.method in ("GET", "HEAD", "DELETE") or not _is_json(self):
            return
        raw = await self.body()
        if not raw:
            return
        body = await self.json()
        if found := violations(body, BODY, text=may_hold_unstorable_text(raw)):
            raise _validation(
                [{"field": pointer(path), "message": error, "in": "body"} for path, error in found]
            )


class StrictJsonRoute(APIRoute):
    """Pass as `APIRouter(route_class=StrictJsonRoute)` in every service."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def vetted(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            await strict.vet()
            return await handle(strict)

        return vetted
