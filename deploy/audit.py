"""Audit the locked dependencies for known vulnerabilities with pip-audit.

Fails on any known vulnerability. Where the advisory service cannot be reached (an offline
mirror of PyPI answers only package downloads), pip-audit skips every package: that is said
plainly and fails only with AUDIT_STRICT=1, so an offline CI run is not mistaken for a clean one.
"""

import json
import os
import subprocess
import sys
from pathlib import Path


def main(lock_file: str) -> int:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    run = subprocess.run(
        [
            str(pip_audit),
            "-r",
            lock_file,
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print(run.stdout, run.stderr, sep="\n")
        print("audit: pip-audit gave no report")
        return 1
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    audited = len(deps) - len(skipped)
    print(
        f"audit: {len(deps)} locked packages, {audited} audited, {len(skipped)} skipped,"
        f" {len(vulnerable)} with known vulnerabilities"
    )
    if vulnerable:
        return 1
    if skipped:
        print(
            "audit: the advisory service could not be asked about the skipped packages"
            f" (first: {skipped[0]['skip_reason']})"
        )
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements-dev.txt"))
