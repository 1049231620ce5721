"""Dependency audit for `make audit`: known vulnerabilities in the locked requirements.

Runs pip-audit over requirements/dev.txt (every package the project installs, pinned) against
its default vulnerability service, the package index's JSON API. Exit status:

* 0: every package was audited and none has a known vulnerability; or no vulnerability database
  could be reached at all, which it says plainly ("skipped: no vulnerability database reachable")
  so an offline machine can still run `make check`;
* 1: a package has a known vulnerability (each is listed with the versions that fix it), or only
  some packages could be audited, or pip-audit itself is missing or failed.

``pip check`` (the installed packages agree with each other's requirements) runs beside it in the
Makefile and needs no network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements" / "dev.txt"
TIMEOUT_SECONDS = 300
# What pip-audit says about a package it could not look up; when it says it of every package, or
# cannot connect at all, the vulnerability database is out of reach.
UNREACHABLE_MARKERS = (
    "not found on PyPI",
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "ConnectTimeout",
)


@dataclass
class Verdict:
    status: str  # "clean", "vulnerable", "partial" or "unreachable"
    lines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.status in {"clean", "unreachable"} else 1


def judge(report: dict[str, Any]) -> Verdict:
    """Read pip-audit's JSON report (``--format json``)."""
    dependencies: list[dict[str, Any]] = report.get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    if vulnerable:
        lines = [
            f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in "
            f"{', '.join(vuln.get('fix_versions') or []) or 'no release yet'})"
            for dep in vulnerable
            for vuln in dep["vulns"]
        ]
        return Verdict("vulnerable", lines)
    if dependencies and len(skipped) == len(dependencies):
        return Verdict("unreachable", [f"{len(skipped)} packages could not be looked up"])
    if skipped:
        lines = [
            f"{dep['name']} {dep.get('version', '?')}: {dep['skip_reason']}" for dep in skipped
        ]
        return Verdict("partial", lines)
    return Verdict("clean", [f"{len(dependencies)} packages audited"])


def main() -> int:
    pip_audit = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    if pip_audit is None:
        print("audit: pip-audit is not installed; run `make install` (requirements/dev.txt).")
        return 1
    command = [
        pip_audit,
        *("--requirement", str(REQUIREMENTS)),
        # The file is pinned by uv: audit exactly those versions, without resolving again.
        *("--no-deps", "--disable-pip"),
        *("--format", "json", "--progress-spinner", "off"),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        print(
            "audit: skipped: no vulnerability database reachable "
            f"(no answer in {TIMEOUT_SECONDS} s)"
        )
        return 0
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        if any(marker in result.stderr for marker in UNREACHABLE_MARKERS):
            print("audit: skipped: no vulnerability database reachable")
            return 0
        print(f"audit: pip-audit failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return 1
    verdict = judge(report)
    messages = {
        "clean": "audit: no known vulnerabilities",
        "vulnerable": "audit: known vulnerabilities in the locked requirements:",
        "partial": "audit: some packages could not be audited:",
        "unreachable": "audit: skipped: no vulnerability database reachable",
    }
    print(messages[verdict.status])
    for line in verdict.lines:
        print(f"  {line}")
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
