"""Typed readers for environment variables that fail loudly.

Every setting the project reads from the environment goes through these helpers so that a bad or
missing value stops the process at start-up with a message naming the variable, instead of failing
later somewhere far from the cause. Secrets may also come from a file named by ``<NAME>_FILE``
(Docker and systemd credentials), which keeps them out of the process environment and the image.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if value is not None and file_name:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if file_name:
        path = Path(file_name)
        try:
            return path.read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_name!r} cannot be read ({error.strerror}); "
                "expected a readable file holding the value."
            ) from error
    return value


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str:
    """Return the variable's value, or ``default``; ``required`` makes a missing value an error."""
    value = _raw(name)
    if value is None or value == "":
        if required or default is None:
            raise ImproperlyConfigured(f"{name} must be set (or {name}_FILE).")
        return default
    return value


def env_optional(name: str) -> str | None:
    value = _raw(name)
    return value if value else None


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; expected one of true/false/1/0."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small; expected at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not valid; expected one of {choices}.")
    return value


def install_secret(path: Path) -> str:
    """A random secret made on the first call and kept in ``path`` (mode 0600); later calls, in
    any process, read the same one back.

    The new secret is written to a private temporary file that is then linked to ``path``: the
    link fails when another process starting at the same moment got there first, and its secret
    is read instead, so the processes of one install never end up with different secrets, and
    none reads a half-written file.
    """
    existing = _installed_secret(path)
    if existing is not None:
        return existing
    secret = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file readable and writable by its owner only, whatever the umask.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secret + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                return install_secret(path)
        finally:
            os.unlink(temporary)
    except OSError as error:
        raise ImproperlyConfigured(
            f"The secret key file {str(path)!r} cannot be written ({error.strerror}); expected a "
            "writable SEPTRADER_DATA_DIR, or set DJANGO_SECRET_KEY."
        ) from error
    return secret


def _installed_secret(path: Path) -> str | None:
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ImproperlyConfigured(
            f"The secret key file {str(path)!r} cannot be read ({error.strerror}); expected a "
            "file readable by this user, or set DJANGO_SECRET_KEY."
        ) from error
    if not secret:
        raise ImproperlyConfigured(
            f"The secret key file {str(path)!r} is empty; expected a random key: delete the file "
            "to have a new one made (sessions and tokens signed with the old one stop working)."
        )
    return secret
