"""Puts the repo's shared libraries and service packages on the virtual environment's path,
and the `fulfil` command line in its `bin/`."""

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
    script = write_fulfil_script(Path(sys.executable).parent, Path(sys.executable))
    print(f"wrote {script}", file=sys.stderr)


# The same script as the Dockerfile writes: `fulfil_client` is on the path (the .pth above,
# PYTHONPATH in the image), so the entry point needs no package installed.
FULFIL_SCRIPT = "#!{python}\nimport sys\nfrom fulfil_client.cli import main\nsys.exit(main())\n"


def write_fulfil_script(bin_dir: Path, python: Path) -> Path:
    """`bin_dir/fulfil`, run by `python`."""
    script = bin_dir / "fulfil"
    script.write_text(FULFIL_SCRIPT.format(python=python))
    script.chmod(0o755)
    return script


if __name__ == "__main__":
    main()
