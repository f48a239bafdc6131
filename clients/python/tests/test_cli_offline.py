"""`fulfil` without a platform: the exit code of each kind of error, configuration refused
before any call, and the help that documents both."""

import httpx
import pytest
from click.testing import CliRunner

from fulfil_client.cli import cli
from fulfil_client.cli._app import exit_code
from fulfil_client.errors import problem_from_response


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_request", 2),
        (401, "invalid_token", 5),
        (403, "no_permission", 5),
        (404, "no_content", 3),
        (409, "conflict", 4),
        (409, "duplicated", 4),
        (412, "precondition_failed", 4),
        (422, "validation", 2),
        (428, "precondition_required", 4),
        (429, "rate_limit", 6),
        (500, "internal", 7),
        (502, "bad_gateway", 6),
        (503, "unavailable", 6),
        (504, "timeout", 6),
    ],
)
def test_each_problem_has_its_exit_code(status: int, code: str, expected: int) -> None:
    response = httpx.Response(
        status,
        json={"status": status, "code": code, "title": "t", "detail": "d"},
        headers={"content-type": "application/problem+json"},
        request=httpx.Request("GET", "http://platform/api/v1/x"),
    )
    assert exit_code(problem_from_response(response)) == expected


def test_help_documents_configuration_secrets_and_exit_codes() -> None:
    shown = CliRunner().invoke(cli, ["--help"])
    assert shown.exit_code == 0
    for text in ("FULFIL_URL", "FULFIL_API_KEY", "FULFIL_ADMIN_TOKEN", "never taken as arguments"):
        assert text in shown.output
    for line in ("0  done", "3  not found", "4  conflict", "5  authentication", "6  unavailable"):
        assert line in shown.output


def test_missing_configuration_is_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FULFIL_URL", "FULFIL_API_KEY", "FULFIL_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    no_url = CliRunner().invoke(cli, ["--json", "sales", "get", "SO-1"])
    assert no_url.exit_code == 2 and "FULFIL_URL" in no_url.output
    bad_option = CliRunner().invoke(cli, ["dead-letters", "list", "--service", "billing"])
    assert bad_option.exit_code == 2
    secret_in_argv = CliRunner().invoke(cli, ["--api-key", "fk_x", "sales", "get", "SO-1"])
    assert secret_in_argv.exit_code == 2  # there is no such option: env or a file


def test_a_time_without_an_offset_is_refused() -> None:
    shown = CliRunner().invoke(
        cli,
        [
            "--url",
            "http://127.0.0.1:9",
            "webhooks",
            "deliveries",
            "recover",
            "--since",
            "2026-01-01T00:00:00",
        ],
    )
    assert shown.exit_code == 2 and "offset" in shown.output
