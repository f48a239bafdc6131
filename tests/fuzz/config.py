"""The schemathesis configuration of the fuzz run: every check and phase, with the few
exceptions the platform's API calls for (docs/fuzzing.md)."""

import secrets
from typing import Any

import schemathesis

from tests.fuzz.settings import FuzzSettings

ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' default


def shadowed_paths(document: dict[str, Any]) -> list[str]:
    """Literal paths a templated path of the document matches too: `/sales/batch` is also
    `/sales/{sale_id}` for the sale named `batch`.

    Such a path rightly answers the template's methods (GET /sales/batch reads that sale,
    GET /stock/stock-records/change is 422: not a record id) and its 405 allows them;
    schemathesis' method checks compare with the literal path's methods alone.
    """
    paths = [path.split("/") for path in document["paths"]]

    def covers(template: list[str], literal: list[str]) -> bool:
        return (
            template != literal
            and len(template) == len(literal)
            and all(
                t == part or t.startswith("{") for t, part in zip(template, literal, strict=True)
            )
        )

    return sorted(
        "/".join(literal)
        for literal in paths
        if any(covers(template, literal) for template in paths)
    )


def paged_lists(document: dict[str, Any]) -> list[str]:
    """The paths whose GET is a list: it takes `pageNumber` beside `limit`/`offset`.

    Each paging style alone is schema-valid, and so is the request with both, which the
    services refuse with 400 (`fulfilkit.http.pagination`): OpenAPI cannot say that two
    optional parameters exclude each other.
    """
    return sorted(
        path
        for path, item in document["paths"].items()
        if any(
            p.get("in") == "query" and p.get("name") == "pageNumber"
            for p in item.get("get", {}).get("parameters", [])
        )
    )


def fuzz_config(
    settings: FuzzSettings,
    base_url: str,
    api_key: str,
    admin_token: str,
    document: dict[str, Any],
    *,
    stateful: bool = False,
) -> schemathesis.Config:
    """Every check, valid and invalid data; a tenant's key for the API and the admin token
    where the document asks for it (the admin operations). The operation phases (examples,
    coverage, fuzzing), or with `stateful` the sequences of linked operations alone."""
    seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
    print(f"fuzzing with FUZZ_SEED={seed}")  # shown with a failure, to replay it
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            "base-url": base_url,
            "request-timeout": settings.request_timeout_seconds,
            "auth": {
                "openapi": {"apiKey": {"bearer": api_key}, "adminToken": {"bearer": admin_token}}
            },
            "checks": {
                "enabled": True,
                # A schema-valid request can still name a product, location, record or sale the
                # tenant does not have: the services answer 422 pointing at that field.
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]},
                # A change that needs If-Match answers its absence with 428
                # `precondition_required` (PATCH /sales/{sale_id}), as RFC 6585 has it.
                "missing_required_header": {
                    "expected-statuses": ["400", "401", "403", "406", "415", "422", "428"]
                },
                **{name: {"enabled": False} for name in settings.exclude_checks},
            },
            "generation": {
                "mode": "all",
                "max-examples": settings.stateful_examples if stateful else settings.max_examples,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": not stateful},
                "coverage": {"enabled": settings.coverage and not stateful},
                "fuzzing": {"enabled": not stateful},
                "stateful": {"enabled": stateful, "max-steps": settings.stateful_steps},
            },
            "continue-on-failure": True,
            "operations": [
                {
                    "include-path": path,
                    "checks": {
                        "allow_header_conformance": {"enabled": False},
                        "unsupported_method": {"enabled": False},
                    },
                }
                for path in shadowed_paths(document)
            ]
            + [
                {
                    "include-path": path,
                    "include-method": "GET",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422", "400"]}
                    },
                }
                for path in paged_lists(document)
            ],
        }
    )
