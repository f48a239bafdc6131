"""Checks README.md, CONTRIBUTING.md, docs/*.md and deploy/**/README.md: every link and
every repository path they name exists.

    python deploy/check_docs.py   (part of `make lint`)

- Markdown links `[text](target)`: the target file exists (relative to the page), and a
  `#fragment` names a heading of the target page (GitHub's slugs).
- Paths in backticks that look like repository paths (`services/...`, `bench/x.py`, ...):
  they exist from the repository root or from the page's folder. Templates (`<name>`,
  `*`, `{id}`, `NNN`) are skipped.
- `make X` mentions name a target of the Makefile.
- Nothing cites a file outside the repository (`../shared`, `DESIGN.md`, paths above root),
  and no retired setting (`FAULT_INJECTION`) is named.
Exit 1 when anything fails.
"""

import argparse
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("services/", "libs/", "tests/", "bench/", "deploy/", "docs/", ".ci/")
SUFFIXES = (".py", ".md", ".yml", ".yaml", ".sql", ".txt", ".in", ".toml", ".xml")
FORBIDDEN = ("DESIGN.md", "../shared", "FAULT_INJECTION", "crash_after_")


def slug(heading: str) -> str:
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def headings(page: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            found.add(slug(m.group(1)))
    return found


def prose(text: str) -> str:
    """The page without fenced code blocks (commands in them are examples, not citations)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--pending", action="append", default=[], help="a path not there yet")
    pending = set(args.parse_args().pending)
    pages = [
        *(ROOT / name for name in ("README.md", "CONTRIBUTING.md") if (ROOT / name).exists()),
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "deploy").rglob("README.md")),
    ]
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    failures: list[str] = []
    counts = {"links": 0, "anchors": 0, "paths": 0, "make": 0}

    def fail(page: Path, what: str) -> None:
        failures.append(f"{page.relative_to(ROOT)}: {what}")

    for page in pages:
        text = page.read_text()
        body = prose(text)
        for bad in FORBIDDEN:
            if bad in text:
                fail(page, f"names {bad!r}")
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if re.match(r"[a-z]+:", target):
                continue  # an external URL
            counts["links"] += 1
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.is_relative_to(ROOT):
                fail(page, f"link {target} leaves the repository")
            elif not resolved.exists():
                if path not in pending:
                    fail(page, f"link {target}: no such file")
            elif fragment:
                counts["anchors"] += 1
                if resolved.suffix == ".md" and fragment not in headings(resolved):
                    fail(page, f"link {target}: no heading #{fragment}")
        for code in re.findall(r"`([^`\n]+)`", body):
            for token in code.split():
                token = token.strip("(),;:'\"")
                if not (token.startswith(TOP) or token.endswith(SUFFIXES)) or "/" not in token:
                    continue
                if re.search(r"[<>*{}$]|NNN|\.\.\.", token) or token.startswith("http"):
                    continue
                counts["paths"] += 1
                if not ((ROOT / token).exists() or (page.parent / token).exists()):
                    if token not in pending:
                        fail(page, f"path `{token}`: no such file or folder")
        for target in re.findall(r"`make ([a-z][\w-]*)", text):
            counts["make"] += 1
            if target not in targets and target not in pending:
                fail(page, f"`make {target}`: no such Makefile target")
    print(
        f"{len(pages)} pages: {counts['links']} links ({counts['anchors']} with anchors),"
        f" {counts['paths']} repository paths, {counts['make']} make targets checked"
    )
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
