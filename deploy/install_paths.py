"""Puts the repo's shared libraries and service packages on the virtual environment's path."""

import site
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    paths = [
        ROOT,
        ROOT / "libs",
        ROOT / "clients/python",
        *sorted(p for p in (ROOT / "services").iterdir() if p.is_dir()),
    ]
    target = Path(site.getsitepackages()[0]) / "fulfil-platform.pth"
    target.write_text("".join(f"{p}\n" for p in paths))
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
