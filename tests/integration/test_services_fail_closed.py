"""Each service, started as deployed (uvicorn) without ENVIRONMENT=development, refuses to
start when a secret is missing or weak, and names what is wrong."""

import os
import subprocess

import pytest

from deploy.local.services import SERVICES, free_ports, python_executable, python_path

pytestmark = pytest.mark.integration

# What each refuses with nothing set; with the weak values below, the second message.
MISSING = {
    "gateway": "ADMIN_TOKEN is missing; INTERNAL_TOKEN is missing",
    "orders": "INTERNAL_CALLERS lacks the digests of ['fulfilment', 'gateway']",
    "stock": "INTERNAL_CALLERS lacks the digests of ['gateway']",
    "fulfilment": "INTERNAL_TOKEN is missing; INTERNAL_CALLERS lacks the digests of ['gateway']",
    "webhooks": "INTERNAL_CALLERS lacks the digests of ['gateway']",
}
WEAK = {"ADMIN_TOKEN": "dev-admin-token", "INTERNAL_TOKEN": "dev-internal-token"}


def start_all(extra: dict[str, str]) -> dict[str, subprocess.Popen[str]]:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ENVIRONMENT", "ADMIN_TOKEN", "INTERNAL_TOKEN", "INTERNAL_CALLERS")
    }
    ports = free_ports(len(SERVICES))
    return {
        spec.name: subprocess.Popen(
            [python_executable(), "-m", "uvicorn", spec.app, "--port", str(port)],
            env={**base, **extra, "PYTHONPATH": python_path(spec.name, None)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for spec, port in zip(SERVICES, ports, strict=True)
    }


def outcome(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the service started (or hung) instead of refusing") from None
    return process.returncode, output


def test_every_service_refuses_to_start_without_its_secrets_outside_development() -> None:
    for name, process in start_all({}).items():
        code, output = outcome(process)
        assert code != 0, output
        assert MISSING[name] in output, (name, output[-2000:])
        assert "only ENVIRONMENT=development allows this" in output


def test_well_known_secrets_are_refused_in_production() -> None:
    process = start_all({**WEAK, "ENVIRONMENT": "production"})
    for name, started in process.items():
        code, output = outcome(started)
        assert code != 0, output
        if name == "gateway":
            assert (
                "ADMIN_TOKEN is shorter than 32 characters; INTERNAL_TOKEN is shorter than"
                " 32 characters"
            ) in output, output[-2000:]
        elif name == "fulfilment":
            assert "INTERNAL_TOKEN is shorter than 32 characters" in output, output[-2000:]
        else:
            assert "INTERNAL_CALLERS lacks the digests" in output, output[-2000:]
