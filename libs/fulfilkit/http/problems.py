"""RFC 9457 problem details with the platform's stable error codes (`TITLES`)."""

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fulfilkit.db import CONNECTION_ERRORS
from fulfilkit.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

TITLES = {
    "invalid_request": (400, "Invalid request"),
    "invalid_token": (401, "Invalid token"),
    "no_permission": (403, "No permission"),
    "no_content": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "duplicated": (409, "Duplicated"),
    "conflict": (409, "Conflict"),
    "too_large": (413, "Request too large"),
    "validation": (422, "Validation failed"),
    "precondition_required": (428, "Precondition required"),
    "rate_limit": (429, "Rate limit exceeded"),
    "internal": (500, "Internal error"),
    "unavailable": (503, "Service unavailable"),
    "timeout": (504, "Timeout"),
}
CODE_OF_STATUS = {status: code for code, (status, _) in TITLES.items()}
# What a client is told to wait before it tries again when a dependency is down.
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status, self.title = TITLES[code]
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:fulfil:problem:{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        **problem.extra,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def json_pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc[1:]] if loc else []
    return "/" + "/".join(parts) if parts else ""


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return Problem("invalid_request", "The request body is not valid JSON.")
    fields = [
        {
            "field": json_pointer(tuple(e.get("loc", ()))),
            "message": e.get("msg", "invalid"),
            "in": str(e.get("loc", ("body",))[0]),
        }
        for e in errors
    ]
    return Problem("validation", "The request has invalid fields.", errors=fields)


def unavailable(
    detail: str = "A service this request needs is unavailable; try again later.",
) -> Problem:
    return Problem("unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def dependency_outage(exc: BaseException) -> Problem | None:
    """The 503 for an error that says PostgreSQL cannot be reached or used right now (down,
    restarting, in crash recovery, out of connections, or no connection free in time)."""
    # DataError is an InterfaceError too, but says a value did not fit a query: not an outage
    if not isinstance(exc, CONNECTION_ERRORS) or isinstance(exc, asyncpg.DataError):
        return None
    if isinstance(exc, OSError | TimeoutError):  # no connection, or none free in time
        return unavailable()
    return unavailable("The database is unavailable; try again later.")


ROUTED_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route answers on this path (a 405's `Allow`), HEAD wherever GET.

    Each method is tried on a fresh scope: the request's own carries the router's state.
    """
    scope = request.scope
    methods = {
        method
        for method in ROUTED_METHODS
        if any(
            route.matches(
                {
                    "type": "http",
                    "path": scope["path"],
                    "root_path": scope.get("root_path", ""),
                    "method": method,
                    "headers": [],
                }
            )[0]
            is Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(DomainError)
    async def _refused(_: Request, exc: DomainError) -> Response:
        return problem_response(Problem(exc.code, exc.detail, errors=exc.errors, **exc.extra))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return problem_response(_validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = CODE_OF_STATUS.get(exc.status_code, "invalid_request")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES[code][1]
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(Problem(code, detail, headers=headers))

    async def _unavailable(request: Request, exc: Exception) -> Response:
        if (problem := dependency_outage(exc)) is None:
            raise exc  # not an outage after all: the unhandled-error middleware answers it
        log.warning("%s %s answered 503: %r", request.method, request.url.path, exc)
        return problem_response(problem)

    for error in CONNECTION_ERRORS:
        app.add_exception_handler(error, _unavailable)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        # Reached only without `UnhandledErrorMiddleware` (which answers inside the request
        # id and keeps the connection open)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem("internal", "An unexpected error occurred."))
