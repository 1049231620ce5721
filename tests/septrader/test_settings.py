from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROBE = (
    "import django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(db['ENGINE'], db.get('OPTIONS', {}).get('init_command', ''), settings.CELERY_BROKER_URL)"
)


def start(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Start Django the way every process does, with only the given environment."""
    clean = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "SEPTRADER_DATA_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=clean, capture_output=True, text=True
    )


def test_with_no_environment_it_runs_embedded_on_sqlite_wal_and_the_filesystem_broker(
    tmp_path: Path,
) -> None:
    result = start({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "django.db.backends.sqlite3 PRAGMA journal_mode=WAL" in result.stdout
    assert result.stdout.strip().endswith("filesystem://")


def test_a_postgres_database_url_selects_the_timescaledb_backend(tmp_path: Path) -> None:
    result = start(
        {"DATABASE_URL": "postgres://u@127.0.0.1:5/x", "CELERY_BROKER_URL": "redis://h:6379/0"},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "septrader.db.timescale"
    assert result.stdout.strip().endswith("redis://h:6379/0")


def test_production_without_its_settings_fails_at_start_up_naming_the_variable(
    tmp_path: Path,
) -> None:
    result = start({"SEPTRADER_ENV": "production"}, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_names_each_missing_server_setting(tmp_path: Path) -> None:
    base = {
        "SEPTRADER_ENV": "production",
        "DJANGO_SECRET_KEY": "k" * 60,
        "DJANGO_ALLOWED_HOSTS": "trader.example.org",
    }
    missing_database = start(base, tmp_path)
    assert "DATABASE_URL must point at PostgreSQL" in missing_database.stderr

    missing_broker = start({**base, "DATABASE_URL": "postgres://u@h/db"}, tmp_path)
    assert "CELERY_BROKER_URL must be set" in missing_broker.stderr


def test_bad_values_are_refused_with_the_variable_value_and_expectation(tmp_path: Path) -> None:
    cases = {
        "DATABASE_URL": ("mysql://u@h/db", "DATABASE_URL has the scheme 'mysql'"),
        "CELERY_BROKER_URL": ("amqp://h", "CELERY_BROKER_URL has the scheme 'amqp'"),
        "SEPTRADER_ROLE": ("gpu", "SEPTRADER_ROLE='gpu' is not valid"),
        "DJANGO_DEBUG": ("maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
    }
    for variable, (value, message) in cases.items():
        result = start({variable: value}, tmp_path)
        assert result.returncode != 0, variable
        assert message in result.stderr, (variable, result.stderr[-500:])


def test_a_secret_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s" * 64 + "\n")
    probe = (
        "import django; from django.conf import settings; django.setup(); "
        "print(len(settings.SECRET_KEY))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "SEPTRADER_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY_FILE": str(secret),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip() == "64", result.stderr


def test_a_visibility_timeout_shorter_than_the_longest_task_is_refused(tmp_path: Path) -> None:
    broker = {"CELERY_BROKER_URL": "redis://h:6379/0"}
    too_short = start({**broker, "CELERY_VISIBILITY_TIMEOUT": "3600"}, tmp_path)
    assert too_short.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT=3600 must be longer than the longest task" in (
        too_short.stderr
    )

    fitting = start(
        {**broker, "CELERY_VISIBILITY_TIMEOUT": "3600", "CELERY_LONG_TASK_TIME_LIMIT": "1800"},
        tmp_path,
    )
    assert fitting.returncode == 0, fitting.stderr


def test_the_live_oanda_environment_needs_an_explicit_confirmation(tmp_path: Path) -> None:
    unconfirmed = start({"OANDA_ENVIRONMENT": "live"}, tmp_path)
    assert unconfirmed.returncode != 0
    assert "OANDA_ENVIRONMENT=live trades real money" in unconfirmed.stderr

    wrong_words = start({"OANDA_ENVIRONMENT": "live", "OANDA_LIVE_CONFIRM": "yes"}, tmp_path)
    assert wrong_words.returncode != 0

    confirmed = start(
        {"OANDA_ENVIRONMENT": "live", "OANDA_LIVE_CONFIRM": "yes-trade-real-money"}, tmp_path
    )
    assert confirmed.returncode == 0, confirmed.stderr
