"""Writes the blocking half of the client from its asyncio half, so both have the same
methods, arguments and documentation:

    fulfil_client/_async_resources.py -> fulfil_client/_sync_resources.py
    fulfil_client/_async_client.py    -> fulfil_client/_sync_client.py

    python clients/python/tools/unasync.py           (write)
    python clients/python/tools/unasync.py --check   (exit 1 when a file is not current)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fulfil_client"
PAIRS = [("_async_resources.py", "_sync_resources.py"), ("_async_client.py", "_sync_client.py")]
RULES = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\b_async_(\w+)", r"_sync_\1"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"with asyncio", "blocking"),
]
GENERATED = '"""Generated from `{source}` by `clients/python/tools/unasync.py`: do not edit."""'


def convert(source_name: str, text: str) -> str:
    """The blocking version of `text`, formatted by ruff as the repository is."""
    end = text.index('"""', 3) + 3  # the module docstring
    body = text[end:]
    for pattern, replacement in RULES:
        body = re.sub(pattern, replacement, body)
    text = GENERATED.format(source=source_name) + body
    ruff = Path(sys.executable).with_name("ruff")
    for command in (["check", "--select", "I", "--fix", "-q"], ["format"]):
        text = subprocess.run(
            [str(ruff), *command, "--stdin-filename", str(PACKAGE / "generated.py"), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return text


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for source, target in PAIRS:
        wanted = convert(source, (PACKAGE / source).read_text())
        path = PACKAGE / target
        if path.exists() and path.read_text() == wanted:
            continue
        if check:
            stale.append(target)
        else:
            path.write_text(wanted)
            print(f"wrote {path}", file=sys.stderr)
    if stale:
        print(f"not current: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
