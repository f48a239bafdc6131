"""Settings built in these tests are development settings unless a test says otherwise."""

import pytest


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
