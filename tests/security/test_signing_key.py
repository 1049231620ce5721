"""Outside production the key that signs sessions and API tokens is made at random once per
install and kept in the data directory; a key written in the code signs nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import REPO

# The key every install outside production used until each got its own.
OLD_CONSTANT_KEY = "insecure-development-key-do-not-use-in-production"

# Prints a digest of the key, never the key itself, and whether the API signs with it.
PROBE = (
    "import hashlib; from septrader import settings; "
    "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest(), "
    "settings.SIMPLE_JWT['SIGNING_KEY'] == settings.SECRET_KEY)"
)


def start(data_dir: Path) -> subprocess.Popen[str]:
    """Start a process reading the settings, as every role does, with a bare environment."""
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "SEPTRADER_DATA_DIR": str(data_dir),
    }
    return subprocess.Popen(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signing_key_digest(data_dir: Path) -> str:
    return finished(start(data_dir))


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    digest, signs_tokens = out.split()
    assert signs_tokens == "True"
    return digest


def test_each_install_makes_its_own_key_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    # Given two installs, each with its own data directory
    first, second = tmp_path / "first", tmp_path / "second"
    # When each starts, and the first starts again
    first_key = signing_key_digest(first)
    second_key = signing_key_digest(second)
    first_key_again = signing_key_digest(first)
    # Then the two installs sign with different keys, and a restart keeps the install's key
    assert first_key != second_key
    assert first_key_again == first_key
    # And the key file is readable by its owner only
    key_file = first / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 50


def test_processes_starting_together_on_a_new_install_agree_on_one_key(tmp_path: Path) -> None:
    # The demo starts the web server, the workers and beat at once on a fresh data directory.
    processes = [start(tmp_path) for _ in range(4)]
    digests = {finished(process) for process in processes}
    assert len(digests) == 1
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".secret")] == []


@pytest.mark.django_db
def test_a_token_signed_with_the_old_constant_key_is_refused(users: dict[str, Any]) -> None:
    # Given an admin's claims signed with the key that used to be written in settings.py
    claims = dict(AccessToken.for_user(users["admin"]).payload)
    forged = jwt.encode(claims, OLD_CONSTANT_KEY, algorithm="HS256")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    # Then the API does not let it in
    response = client.get("/api/audit")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
