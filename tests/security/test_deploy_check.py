"""Production settings pass Django's deployment checklist with no warning at all."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def production_environment(data_dir: Path) -> dict[str, str]:
    """Everything `SEPTRADER_ENV=production` makes mandatory, and nothing from this shell."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "SEPTRADER_ENV": "production",
        "SEPTRADER_ROLE": "droplet",
        "SEPTRADER_DATA_DIR": str(data_dir),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "trader.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://trader.example.com",
        "DATABASE_URL": "postgres://septrader:pw@127.0.0.1:5432/septrader",
        "CELERY_BROKER_URL": "redis://:pw@127.0.0.1:6379/1",
        "CELERY_RESULT_BACKEND": "redis://:pw@127.0.0.1:6379/2",
        "REDIS_URL": "redis://:pw@127.0.0.1:6379/3",
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_at_warning_level_with_production_settings(tmp_path: Path) -> None:
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_environment(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_turn_on_https_only_cookies_hsts_and_the_proxy_header(
    tmp_path: Path,
) -> None:
    # nginx terminates TLS and sends X-Forwarded-Proto (docker/nginx/septrader.conf).
    code = (
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_PROXY_SSL_HEADER, s.X_FRAME_OPTIONS)"
    )
    result = manage("shell", "--no-imports", "-c", code, env=production_environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "False",
        "True",
        "True",
        "True",
        "True",
        "True",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "DENY",
    ]
