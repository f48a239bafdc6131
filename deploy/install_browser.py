"""Makes sure Debian's Chromium is installed for the console's browser tests
(`tests/e2e/test_console.py`, driven by Playwright with `executable_path`): nothing to do when
`/usr/bin/chromium` is there, else `apt-get install -y chromium` (as root, or through sudo
without a password), its output in `.local/test-logs/install-browser.log`. No browser is ever
downloaded by Playwright.

    python deploy/install_browser.py     (a prerequisite of `make test` and `make e2e`)

Exit 0 when Chromium is there (or was installed), 1 with the reason when it cannot be.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
LOG = Path(__file__).resolve().parent.parent / ".local" / "test-logs" / "install-browser.log"


def main() -> int:
    if CHROMIUM.exists():
        return 0
    if shutil.which("apt-get") is None:
        print(
            f"{CHROMIUM} is missing and there is no apt-get here: install Chromium by hand"
            " (Debian/Ubuntu: `apt-get install chromium`) or set CONSOLE_CHROMIUM to its path.",
            file=sys.stderr,
        )
        return 1
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            print(
                f"{CHROMIUM} is missing; run `apt-get install -y chromium` as root.",
                file=sys.stderr,
            )
            return 1
        prefix = ["sudo", "-n"]
    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing Chromium with apt-get (log: {LOG})", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with LOG.open("a") as log:
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(
                [*prefix, *command], stdout=log, stderr=subprocess.STDOUT, env=env, check=False
            )
            if done.returncode != 0:
                print(
                    f"`{' '.join(command)}` failed (exit {done.returncode}); see {LOG}.",
                    file=sys.stderr,
                )
                return 1
    if not CHROMIUM.exists():
        print(
            f"apt-get installed chromium, but {CHROMIUM} is still missing; see {LOG}.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
