"""The platform the fuzzer attacks: service processes of its own, with their logs in
.local/fuzz-logs, on the session's Kafka and PostgreSQL (beside the end-to-end suite's they
are a second replica of every service), and a tenant of its own."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.openapi import from_dict

from deploy.local.services import Platform
from tests.e2e.conftest import running_platform
from tests.fuzz.config import fuzz_config
from tests.fuzz.settings import FuzzSettings
from tests.support import ref

LOG_DIR = Path(__file__).resolve().parents[2] / ".local" / "fuzz-logs"


@pytest.fixture(scope="session")
def fuzz_settings() -> FuzzSettings:
    return FuzzSettings()


@pytest.fixture(scope="session")
def fuzzed_platform(infrastructure: Any) -> Iterator[Platform]:
    with running_platform(infrastructure, LOG_DIR) as running:
        yield running


def new_api_key(platform: Platform) -> str:
    answer = requests.post(
        f"{platform.gateway_url}/api/v1/admin/tenants",
        json={"name": ref("fuzz")},
        headers={"Authorization": f"Bearer {platform.admin_token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["api_key"]


def load_schema(platform: Platform, settings: FuzzSettings, *, stateful: bool) -> Any:
    """The merged document as the gateway serves it, with a new tenant's key."""
    base_url = platform.gateway_url
    answer = requests.get(f"{base_url}/openapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    config = fuzz_config(
        settings, base_url, new_api_key(platform), platform.admin_token, document, stateful=stateful
    )
    return from_dict(document, config=config)


@pytest.fixture(scope="session")
def api_schema(fuzzed_platform: Platform, fuzz_settings: FuzzSettings) -> schemathesis.BaseSchema:
    return load_schema(fuzzed_platform, fuzz_settings, stateful=False)


@pytest.fixture(scope="session")
def stateful_schemas(
    fuzzed_platform: Platform, fuzz_settings: FuzzSettings
) -> Callable[[int], schemathesis.BaseSchema]:
    """The document for the sequences' round `n`: each round its own seed (from the
    configured one) and tenant."""

    def for_round(n: int) -> schemathesis.BaseSchema:
        seed = None if fuzz_settings.seed is None else fuzz_settings.seed + n
        settings = fuzz_settings.model_copy(update={"seed": seed})
        return load_schema(fuzzed_platform, settings, stateful=True)

    return for_round


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy loader reads `node._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
