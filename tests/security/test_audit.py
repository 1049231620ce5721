"""`make audit` reads pip-audit's report: a vulnerability fails, an unreachable database is said
plainly and passes, a partial audit fails (scripts/audit.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

from tests.conftest import REPO


def audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scripts_audit", REPO / "scripts" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up while the class is made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_the_audit_and_names_the_fix() -> None:
    verdict = audit_module().judge(
        {
            "dependencies": [
                {
                    "name": "django",
                    "version": "5.2.0",
                    "vulns": [{"id": "PYSEC-2025-1", "fix_versions": ["5.2.1"]}],
                },
                {"name": "celery", "version": "5.5.0", "vulns": []},
            ]
        }
    )
    assert (verdict.status, verdict.exit_code) == ("vulnerable", 1)
    assert verdict.lines == ["django 5.2.0: PYSEC-2025-1 (fixed in 5.2.1)"]


def test_no_reachable_database_skips_the_audit_and_says_so() -> None:
    skipped = {"name": "django", "version": "5.2.0", "skip_reason": "Dependency not found on PyPI"}
    verdict = audit_module().judge({"dependencies": [skipped, {**skipped, "name": "celery"}]})
    assert (verdict.status, verdict.exit_code) == ("unreachable", 0)


def test_a_partial_audit_fails_and_a_clean_one_passes() -> None:
    audit = audit_module()
    partial = audit.judge(
        {
            "dependencies": [
                {"name": "django", "version": "5.2.0", "vulns": []},
                {"name": "private", "version": "1.0", "skip_reason": "not found"},
            ]
        }
    )
    assert (partial.status, partial.exit_code) == ("partial", 1)
    clean = audit.judge({"dependencies": [{"name": "django", "version": "5.2.0", "vulns": []}]})
    assert (clean.status, clean.exit_code) == ("clean", 0)


def test_the_installed_packages_agree_with_each_other() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
