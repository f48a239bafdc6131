"""A route that raises a `fulfilkit.errors` class answers problem+json with that code's status,
the detail, `errors` when given and every extra field: the body a `Problem` gives."""

import pytest
from fastapi import FastAPI

from fulfilkit.errors import Conflict, DomainError, Duplicated, Invalid, NotFound
from fulfilkit.http.problems import PROBLEM_JSON, Problem, install_problem_handlers
from tests.asgi import asgi_get

FIELDS = [{"field": "/lines/0/quantity", "message": "must be positive", "in": "body"}]


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/refused")
    async def refused() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error_class", "status", "code", "title"),
    [
        (Invalid, 422, "validation", "Validation failed"),
        (NotFound, 404, "no_content", "Not found"),
        (Duplicated, 409, "duplicated", "Duplicated"),
        (Conflict, 409, "conflict", "Conflict"),
        (DomainError, 422, "validation", "Validation failed"),
    ],
)
async def test_each_domain_error_answers_problem_json_with_its_code_and_status(
    error_class: type[DomainError], status: int, code: str, title: str
) -> None:
    error = error_class("The sale cannot change now.", errors=FIELDS, sale_id="S-1", version=3)

    answered, headers, body = await asgi_get(app_raising(error), "/refused")

    assert (answered, headers["content-type"]) == (status, PROBLEM_JSON)
    assert body == {
        "type": f"urn:fulfil:problem:{code}",
        "title": title,
        "status": status,
        "detail": "The sale cannot change now.",
        "code": code,
        "errors": FIELDS,
        "sale_id": "S-1",
        "version": 3,
    }


@pytest.mark.parametrize("error_class", [Invalid, NotFound, Duplicated, Conflict])
async def test_a_domain_error_answers_the_body_a_problem_gives(
    error_class: type[DomainError],
) -> None:
    refused = error_class("No such sale.", reason="gone")
    problem = Problem(error_class.code, "No such sale.", reason="gone")

    from_error = await asgi_get(app_raising(refused), "/refused")
    from_problem = await asgi_get(app_raising(problem), "/refused")

    assert from_error == from_problem
    assert "errors" not in from_error[2]  # only when given
