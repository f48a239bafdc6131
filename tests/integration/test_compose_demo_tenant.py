"""The compose file's `demo-tenant` step, run as compose runs it (`sh -c`) against the real
PostgreSQL: the first run prints the new tenant's API key, a second run (every later
`docker compose up`) succeeds without making another tenant, and a real failure fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ref

pytestmark = pytest.mark.integration

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def step(name: str) -> str:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["demo-tenant"]
    assert service["entrypoint"] == ["sh", "-c"]
    [script] = service["command"]
    assert "create-tenant demo " in script
    # compose turns `$$` into `$`; another name keeps the test's tenant apart from others
    return script.replace("$$", "$").replace("create-tenant demo ", f"create-tenant {name} ")


def run(script: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_demo_tenant_is_made_once_and_its_key_printed(infrastructure):
    script = step(ref("demo"))
    first = run(script, infrastructure.database_url)
    assert first.returncode == 0, first.stderr
    assert "its API key (shown once): " in first.stdout
    key = first.stdout.rsplit(": ", 1)[1].strip()
    assert len(key) >= 32 and " " not in key

    again = run(script, infrastructure.database_url)
    assert again.returncode == 0, again.stderr
    assert "exists already" in again.stdout
    assert key not in again.stdout


def test_a_database_it_cannot_reach_fails_the_step(infrastructure):
    failed = run(step(ref("demo")), "postgresql://nobody@127.0.0.1:1/nothing")
    assert failed.returncode != 0
    assert failed.stderr.strip()
