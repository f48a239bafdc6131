"""`fulfil_client` stands alone: it imports nothing of the platform, and only httpx, pydantic
and standardwebhooks beyond the standard library, as its `pyproject.toml` declares."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fulfil_client"
ALLOWED = {"fulfil_client", "httpx", "pydantic", "standardwebhooks"}
# `fulfil_client.cli` (the `fulfil` command line) may also use what its `cli` extra declares.
CLI = PACKAGE / "cli"
CLI_ALLOWED = ALLOWED | {"click", "rich"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_client_imports_only_its_declared_dependencies() -> None:
    strays = {
        f"{path.name}: {name}"
        for path in PACKAGE.rglob("*.py")
        for name in imported(path)
        if name not in (CLI_ALLOWED if CLI in path.parents else ALLOWED)
        and name not in sys.stdlib_module_names
    }
    assert not strays


def test_the_command_line_extra_declares_click_and_rich() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["cli"]
    assert {d.split(">")[0].split("<")[0].split("=")[0].strip() for d in extra} == {
        "click",
        "rich",
    }
    assert project["scripts"]["fulfil"] == "fulfil_client.cli:main"


def test_the_declared_dependencies_are_httpx_pydantic_and_standardwebhooks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("<")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert project["name"] == "fulfil-client"
    assert names == {"httpx", "pydantic", "standardwebhooks"}
    assert (PACKAGE / "py.typed").exists()
