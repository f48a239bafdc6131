"""The generated halves of the client are current: `Client` is `AsyncClient` without
asyncio, method for method."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import fulfil_client as fc
from fulfil_client import _async_resources, _sync_resources

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def test_the_blocking_client_is_generated_from_the_async_one() -> None:
    check = subprocess.run(
        [sys.executable, str(TOOLS / "unasync.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_both_clients_have_the_same_methods_and_signatures() -> None:
    for name, async_cls in inspect.getmembers(_async_resources, inspect.isclass):
        if not name.startswith("Async") or async_cls.__module__ != _async_resources.__name__:
            continue
        sync_cls = getattr(_sync_resources, name.removeprefix("Async"))
        for method, function in inspect.getmembers(async_cls, inspect.isfunction):
            if method.startswith("_"):
                continue
            mirrored = getattr(sync_cls, method)
            assert (
                inspect.signature(function).parameters.keys()
                == inspect.signature(mirrored).parameters.keys()
            ), f"{name}.{method}"
    assert set(vars(fc.Client(base_url="http://x", api_key="k"))) == set(
        vars(fc.AsyncClient(base_url="http://x", api_key="k"))
    )
