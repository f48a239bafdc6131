"""What the public API documents for every operation: the problem+json schema, the problem
answers any operation can give, and the exact formats of the headers the platform shares.

Applied once, to the gateway's merged document, rather than route by route: whether an
operation can answer 404, 409, 413, 429, 503 or 504 follows from its shape (path parameters,
a body, a write, forwarded through the gateway), so the rule lives in one place.
"""

from collections.abc import Iterable, Mapping
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is the platform's error code.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

# An entity's version is its ETag: `"7"` (weak `W/"7"` and a bare `7` are read the same),
# or `*` for any version.
VERSION = "[1-9][0-9]{0,8}"
IF_MATCH_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f'^(\\*|(W/)?"{VERSION}"|{VERSION})$',
    "examples": ['"3"', "*"],
}
API_VERSIONS = ("v1",)
API_VERSION_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(API_VERSIONS)}
ACCEPT_VERSION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": [v.removeprefix("v") for v in API_VERSIONS],
}
_SAME_VERSION = (
    f" Optional: without any version header the current version ({API_VERSIONS[-1]})"
    " answers. Each of `X-API-Version`, `Accept-Version` and `X-OAKRA-API-VERSION` takes `1`"
    " or `v1`; sent together they must agree. An unknown version is 400 `invalid_request`."
)
API_VERSION_PARAMETERS: tuple[dict[str, Any], ...] = (
    {
        "name": "X-API-Version",
        "in": "header",
        "required": False,
        "description": "Pins the API version; only `v1` exists." + _SAME_VERSION,
        "schema": API_VERSION_SCHEMA,
    },
    {
        "name": "Accept-Version",
        "in": "header",
        "required": False,
        "description": "The API version in the form warehouse integrations send: `1`."
        + _SAME_VERSION,
        "schema": ACCEPT_VERSION_SCHEMA,
    },
    {
        "name": "X-OAKRA-API-VERSION",
        "in": "header",
        "required": False,
        "description": "The API version in the form fulfilment integrations send: `v1`."
        + _SAME_VERSION,
        "schema": API_VERSION_SCHEMA,
    },
)
HEADER_SCHEMAS: Mapping[str, dict[str, Any]] = {
    "if-match": IF_MATCH_SCHEMA,
    "x-api-version": API_VERSION_SCHEMA,
    "accept-version": ACCEPT_VERSION_SCHEMA,
    "x-oakra-api-version": API_VERSION_SCHEMA,
}

# Sent with every answer, errors included.
API_VERSION_HEADER: dict[str, Any] = {
    "description": "The API version this answer speaks: the one asked for, or the current one.",
    "required": True,
    "schema": API_VERSION_SCHEMA,
}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
# Sent with every page of a list (`fulfilkit.http.pagination`).
PAGINATION_HEADERS: Mapping[str, dict[str, Any]] = {
    "Total-Count": {
        "description": "How many items the list holds, over all pages.",
        "required": True,
        "schema": _COUNT,
    },
    "Total-Elements": {
        "description": "The same as `Total-Count`, under the name warehouse integrations read.",
        "required": True,
        "schema": _COUNT,
    },
    "Total-Pages": {
        "description": "How many pages of `Page-Size` items the list holds (0 when empty).",
        "required": True,
        "schema": _COUNT,
    },
    "Page-Number": {
        "description": "The page answered, from 1: the one whose items start at `offset`.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Page-Size": {
        "description": "Items per page: `pageSize`, or `limit`.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Link": {
        "description": 'The `rel="next"` and `rel="prev"` pages, when there are, in the'
        " paging style of the request (`limit`/`offset` or `pageNumber`/`pageSize`).",
        "required": False,
        "schema": {"type": "string"},
    },
}
PAGE_PARAMETER = "pagenumber"  # a list operation is one that takes `pageNumber`

# status -> (name under components/responses, description)
PROBLEMS: Mapping[str, tuple[str, str]] = {
    "400": (
        "InvalidRequest",
        "Invalid request: malformed JSON, an unknown API version, a bad header, both paging"
        " styles at once.",
    ),
    "401": ("InvalidToken", "Missing, unknown or revoked credentials (`invalid_token`)."),
    "403": ("NoPermission", "The API key lacks the scope this operation needs."),
    "404": ("NotFound", "No such resource, or it belongs to another tenant."),
    "409": (
        "Conflict",
        "The entity is not at the `If-Match` version, already exists, or the"
        " `Idempotency-Key` was used for another request or is in progress.",
    ),
    "413": ("TooLarge", "The request body is larger than the gateway accepts."),
    "422": ("ValidationFailed", "Invalid fields, each listed in `errors` with a JSON pointer."),
    "428": (
        "PreconditionRequired",
        "The change needs `If-Match` with the version read (`precondition_required`).",
    ),
    "429": ("RateLimited", "Too many requests; see `Retry-After`."),
    "503": ("Unavailable", "A service or the database is unavailable; see `Retry-After`."),
    "504": ("Timeout", "A service did not answer in time."),
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"API-Version": dict(API_VERSION_HEADER)},
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def problems(*statuses: int) -> dict[int | str, Any]:
    """For a route decorator's `responses=`: problem statuses its shape does not imply,
    such as 409 for a name that must be unique."""
    return {str(status): problem_response(PROBLEMS[str(status)][1]) for status in statuses}


def problem_components() -> dict[str, dict[str, Any]]:
    """The `Problem` schema and one named response per problem status."""
    return {
        "schemas": {"Problem": PROBLEM_SCHEMA},
        "responses": {name: problem_response(text) for name, text in PROBLEMS.values()},
    }


def _parameters(operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if isinstance(p, dict)]


def problem_statuses(
    method: str,
    operation: Mapping[str, Any],
    path_parameters: Iterable[str] = (),
    *,
    forwarded: bool,
) -> list[str]:
    """The problem statuses an operation can answer, from its shape.

    Every operation: 400, 401, 429, 503. Forwarded to a service: 403 (scopes) and 504.
    Path parameters: 404. A body: 413 and 422. Other parameters: 422. A write with
    `If-Match`, or a forwarded POST (whose `Idempotency-Key` can collide): 409.
    """
    parameters = _parameters(operation)
    names = {str(p.get("name", "")).lower() for p in parameters}
    statuses = {"400", "401", "429", "503"}
    if forwarded:
        statuses |= {"403", "504"}
    if any(True for _ in path_parameters) or any(p.get("in") == "path" for p in parameters):
        statuses.add("404")
    if "requestBody" in operation:
        statuses |= {"413", "422"}
    if parameters:
        statuses.add("422")
    if method in WRITE_METHODS and ("if-match" in names or (forwarded and method == "post")):
        statuses.add("409")
    return sorted(statuses)


def document_problems(
    method: str,
    operation: dict[str, Any],
    path_parameters: Iterable[str] = (),
    *,
    forwarded: bool,
) -> dict[str, Any]:
    """Adds each problem status the operation can answer, as a reference to the shared
    response; those a route declared itself, and FastAPI's default 422 (with its own
    validation schema), become that reference too."""
    responses = operation.setdefault("responses", {})
    implied = problem_statuses(method, operation, path_parameters, forwarded=forwarded)
    for status in sorted({*implied, *(str(s) for s in responses if str(s) in PROBLEMS)}):
        responses[status] = {"$ref": f"#/components/responses/{PROBLEMS[status][0]}"}
    return operation


def document_headers(operation: dict[str, Any]) -> dict[str, Any]:
    """Gives the shared headers their real formats and declares the version headers; every
    answer sends `API-Version`, and a list's (an operation taking `pageNumber`) answers send
    the pagination headers."""
    parameters = operation.setdefault("parameters", [])
    declared = set()
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        name = str(parameter.get("name", "")).lower()
        if parameter.get("in") != "header":
            declared.add(f"{parameter.get('in')}:{name}")
            continue
        declared.add(name)
        if name in HEADER_SCHEMAS:
            parameter["schema"] = dict(HEADER_SCHEMAS[name])
    for version_parameter in API_VERSION_PARAMETERS:
        if version_parameter["name"].lower() not in declared:
            parameters.append(dict(version_parameter))
    is_list = f"query:{PAGE_PARAMETER}" in declared
    for status, response in operation.get("responses", {}).items():
        if not isinstance(response, dict) or "$ref" in response:
            continue  # a shared response: its component declares the headers
        headers = response.setdefault("headers", {})
        headers.setdefault("API-Version", dict(API_VERSION_HEADER))
        if is_list and str(status) == "200":
            for name, header in PAGINATION_HEADERS.items():
                headers.setdefault(name, dict(header))
    return operation
