"""The import-linter contracts in pyproject.toml catch a regression: each case plants one
forbidden import in a copy of libs/ and services/ and the contract it breaks must say so,
naming the planted import. The unplanted copy keeps every contract (as `make lint` checks).
"""

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SERVICES = ("orders", "stock", "fulfilment", "webhooks")

NO_IO = "Domain modules do no I/O, not even through what they import"
INDEPENDENT = "Services never import each other"
LIBRARY = "Shared libraries never import a service"


def layers(service: str) -> str:
    return f"{service}: routes and handlers -> use cases -> events, store -> domain"


@dataclass(frozen=True)
class Plant:
    """`line` appended to `module` breaks `contract`, whose report must show each of `shows`.
    Each (module, source) in `missing` is written first when the copy has no such module."""

    module: str
    line: str
    contract: str
    shows: tuple[str, ...]
    missing: tuple[tuple[str, str], ...] = ()


PLANTED = "fulfilkit.planted_helper"

CASES = {
    "domain imports its store": Plant(
        "orders.domain", "from orders import store", NO_IO, ("orders.domain -> orders.store",)
    ),
    "domain imports the service runtime": Plant(
        "stock.domain", "import fulfilkit.service", NO_IO, ("stock.domain -> fulfilkit.service",)
    ),
    "domain opens a socket": Plant(
        "webhooks.domain", "import socket", NO_IO, ("webhooks.domain -> socket",)
    ),
    "domain imports the database driver": Plant(
        "fulfilment.domain", "import asyncpg", NO_IO, ("fulfilment.domain -> asyncpg",)
    ),
    "domain reaches HTTP through the library": Plant(
        "orders.domain",
        f"import {PLANTED}",
        NO_IO,
        (
            "orders.domain is not allowed to import fulfilkit.http:",
            f"orders.domain -> {PLANTED}",
            f"{PLANTED} -> fulfilkit.http.problems",
        ),
        missing=((PLANTED, "import fulfilkit.http.problems\n"),),
    ),
    "a service imports another": Plant(
        "orders.store", "import stock.domain", INDEPENDENT, ("orders.store -> stock.domain",)
    ),
    "the library imports a service": Plant(
        PLANTED,
        "import webhooks.domain",
        LIBRARY,
        (f"{PLANTED} -> webhooks.domain",),
        missing=((PLANTED, ""),),
    ),
    "domain imports the use cases": Plant(
        "orders.domain",
        "import orders.usecases",
        layers("orders"),
        ("orders.domain -> orders.usecases",),
        missing=(("orders.usecases", ""),),
    ),
    **{
        f"{service} store imports its routes": Plant(
            f"{service}.store",
            f"import {service}.api",
            layers(service),
            (f"{service}.store -> {service}.api",),
        )
        for service in SERVICES
    },
}


def module_file(copy: Path, module: str) -> Path:
    """The file of `module` in the copy: `x/y.py` or the package's `x/y/__init__.py`."""
    top, *rest = module.split(".")
    base = copy / "libs" if top == "fulfilkit" else copy / "services" / top
    path = base.joinpath(top, *rest)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def copy_tree(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    shutil.copytree(ROOT / "libs", target / "libs", ignore=ignore)
    shutil.copytree(ROOT / "services", target / "services", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def lint_imports(copy: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the copy alone: its libs/ and services/* come first on the path, as
    deploy/install_paths.py puts the real ones."""
    services = sorted(p for p in (copy / "services").iterdir() if p.is_dir())
    path = ":".join(str(p) for p in [copy, copy / "libs", *services])
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(copy / "pyproject.toml")],
        cwd=copy,
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def statuses(output: str) -> dict[str, str]:
    """Each contract's name -> KEPT or BROKEN, from the summary."""
    return dict(re.findall(r"^(.+) (KEPT|BROKEN)(?: \[.*\])?$", output, re.MULTILINE))


def report_of(output: str, contract: str) -> str:
    """The section under `contract`'s heading in the report of broken contracts."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines[:-1]) if re.fullmatch(r"-{3,}", lines[i + 1])]
    for n, start in enumerate(starts):
        if lines[start] == contract:
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            return "\n".join(lines[start + 2 : end])
    raise AssertionError(f"no report for {contract!r} in:\n{output}")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("pristine"))


def test_the_unplanted_copy_keeps_every_contract(pristine: Path) -> None:
    run = lint_imports(pristine)

    found = statuses(run.stdout)
    assert found, run.stdout + run.stderr
    assert {name: status for name, status in found.items() if status != "KEPT"} == {}
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("case", CASES)
def test_a_planted_import_breaks_its_contract(case: str, pristine: Path, tmp_path: Path) -> None:
    plant = CASES[case]
    copy = tmp_path / "copy"
    shutil.copytree(pristine, copy)
    for module, source in plant.missing:
        if not (path := module_file(copy, module)).exists():
            path.write_text(source)
    with module_file(copy, plant.module).open("a") as f:
        f.write(f"\n{plant.line}  # planted\n")

    run = lint_imports(copy)

    assert run.returncode != 0, run.stdout + run.stderr
    assert statuses(run.stdout).get(plant.contract) == "BROKEN", run.stdout + run.stderr
    report = report_of(run.stdout, plant.contract)
    assert [s for s in plant.shows if s not in report] == [], run.stdout
