"""The platform the fuzzer attacks: its own Kafka topics' consumers and services on the session's
infrastructure, apart from the end-to-end suite's, so that the junk it writes stays its own.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.openapi import from_dict

from deploy.local.services import SERVICES, Platform, free_ports
from tests.e2e.conftest import TEST_SETTINGS
from tests.fuzz.settings import FuzzSettings
from tests.support import ref

ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' default
LOG_DIR = Path(__file__).resolve().parents[2] / ".local" / "fuzz-logs"


@pytest.fixture(scope="session")
def fuzz_settings() -> FuzzSettings:
    return FuzzSettings()


@pytest.fixture(scope="session")
def fuzzed_platform(infrastructure: Any) -> Iterator[Platform]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    with Platform(
        database_url=infrastructure.database_url,
        bootstrap_servers=infrastructure.bootstrap_servers,
        log_dir=LOG_DIR,
        ports=ports,
        extra_env=TEST_SETTINGS,
    ) as running:
        yield running


def new_api_key(platform: Platform) -> str:
    answer = requests.post(
        f"{platform.gateway_url}/api/v1/admin/tenants", json={"name": ref("fuzz")},
        headers={"Authorization": f"Bearer {platform.admin_token}"}, timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["api_key"]


def shadowed_paths(document: dict[str, Any]) -> list[str]:
    """Literal paths a templated path of the document matches too: `/sales/batch` is also
    `/sales/{sale_id}` for the sale named `batch`.

    Such a path rightly answers the template's methods (GET /sales/batch reads that sale,
    GET /stock/stock-records/change is 422: not a record id) and its 405 allows them;
    schemathesis' method checks compare with the literal path's methods alone.
    """
    paths = [path.split("/") for path in document["paths"]]

    def covers(template: list[str], literal: list[str]) -> bool:
        return template != literal and len(template) == len(literal) and all(
            t == part or t.startswith("{") for t, part in zip(template, literal, strict=True))

    return sorted("/".join(literal) for literal in paths
                  if any(covers(template, literal) for template in paths))


def fuzz_config(
    settings: FuzzSettings, base_url: str, api_key: str, admin_token: str,
    document: dict[str, Any],
) -> schemathesis.Config:
    """Every check, every phase, valid and invalid data; a tenant's key for the API and the
    admin token where the document asks for it (the admin operations)."""
    return schemathesis.Config.from_dict({
        "seed": settings.seed,
        "base-url": base_url,
        "request-timeout": settings.request_timeout_seconds,
        "auth": {"openapi": {"apiKey": {"bearer": api_key},
                             "adminToken": {"bearer": admin_token}}},
        "checks": {
            "enabled": True,
            # A schema-valid request can still name a product, location, record or sale the
            # tenant does not have: the services answer 422 pointing at that field.
            "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]},
            **{name: {"enabled": False} for name in settings.exclude_checks},
        },
        "generation": {
            "mode": "all",
            "max-examples": settings.max_examples,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": settings.coverage},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": settings.stateful_steps},
        },
        "operations": [
            {"include-path": path, "checks": {"allow_header_conformance": {"enabled": False},
                                              "unsupported_method": {"enabled": False}}}
            for path in shadowed_paths(document)
        ],
    })


@pytest.fixture(scope="session")
def api_schema(fuzzed_platform: Platform, fuzz_settings: FuzzSettings) -> schemathesis.BaseSchema:
    base_url = fuzzed_platform.gateway_url
    answer = requests.get(f"{base_url}/openapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    config = fuzz_config(fuzz_settings, base_url, new_api_key(fuzzed_platform),
                         fuzzed_platform.admin_token, document)
    return from_dict(document, config=config)


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy loader reads `node._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
