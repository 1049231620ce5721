"""The compose files, image and systemd units name only things that exist in the project.

No Docker engine runs on the build machines, so these read the files: every command a service or
unit starts must be a real manage.py command, the project's Celery app or an installed program;
every variable they set must be one the settings read; only nginx may publish ports publicly; every
service has a healthcheck, a restart policy and rotated logs; no secret is baked into the image.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from tests.conftest import REPO

DOCKER = REPO / "docker"
COMPOSE_FILES = {
    "droplet": DOCKER / "compose.droplet.yml",
    "gpu": DOCKER / "compose.gpu.yml",
}
UNITS = sorted((DOCKER / "systemd").glob("*.service"))
# Images we do not build: their own variables and commands are theirs.
THIRD_PARTY = {"db", "redis", "nginx"}
PUBLIC_PORTS = {"80", "443", "8080"}
CELERY_QUEUES = {"qfh", "execution", "stream", "default"}
PROJECT_SOURCES = [
    path
    for package in (
        "septrader",
        "marketdata",
        "qfh",
        "trading",
        "monitoring",
        "nodes",
        "sync",
        "backups",
        "telegrambot",
        "console",
        "oandasim",
    )
    for path in (REPO / package).rglob("*.py")
    if "migrations" not in path.parts
]


def load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.safe_load(handle)


def services(name: str) -> dict[str, dict[str, Any]]:
    return load(COMPOSE_FILES[name])["services"]


def our_services() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (file, name, service)
        for file in COMPOSE_FILES
        for name, service in services(file).items()
        if name not in THIRD_PARTY
    ]


def command_words(command: list[str] | str) -> list[list[str]]:
    """The commands a service runs: a `sh -c "a && b && exec c"` line is three commands."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if words[:2] == ["sh", "-c"]:
        return [
            [word for word in shlex.split(part) if word != "exec"] for part in words[2].split("&&")
        ]
    if words and words[0] in {"CMD", "CMD-SHELL"}:
        if words[0] == "CMD-SHELL":
            return [shlex.split(part) for part in re.split(r"\|\s*grep[^|]*$", words[1])[:1]]
        return [words[1:]]
    return [words]


def assert_runs_something_real(words: list[str], where: str) -> None:
    """A command must start a project entry point that exists."""
    program = Path(words[0]).name
    if program in {"python", "python3"} and words[1] == "manage.py":
        if words[2] == "health" and "health" not in get_commands():
            return  # issue #9's command; test_the_health_command_of_the_healthchecks_exists
        assert words[2] in get_commands(), f"{where}: no manage.py command {words[2]!r}"
    elif program in {"python", "python3"} and words[1] == "-c":
        compile(words[2], where, "exec")
    elif program == "celery":
        assert words[1:3] == ["-A", "septrader"], f"{where}: not the project's Celery app"
        assert words[3] in {"worker", "beat", "inspect"}, f"{where}: celery {words[3]}?"
        if "-Q" in words:
            queues = set(words[words.index("-Q") + 1].split(","))
            assert queues <= CELERY_QUEUES, f"{where}: unknown queues {queues - CELERY_QUEUES}"
    elif program == "gunicorn":
        module, _, attribute = words[1].partition(":")
        assert module == "septrader.wsgi" and attribute in {"", "application"}, where
    else:
        pytest.fail(f"{where}: runs {words[0]!r}, which is no project entry point")
    assert shutil.which(program, path=str(REPO / ".venv" / "bin")) or program in {
        "python",
        "python3",
    }, f"{where}: {program} is not installed by the project's requirements"


def read_by_the_project(variable: str) -> bool:
    """Whether the settings (or a module) read ``variable`` or, for ``NAME_FILE``, ``NAME``."""
    names = {variable, variable.removesuffix("_FILE")}
    return any(f'"{name}"' in path.read_text() for path in PROJECT_SOURCES for name in names)


def test_every_service_we_build_runs_a_real_command() -> None:
    for file, name, service in our_services():
        for words in command_words(service["command"]):
            assert_runs_something_real(words, f"{file}/{name}")


def test_every_healthcheck_runs_a_real_command(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["localhost"]
    for file, name, service in our_services():
        test = service["healthcheck"]["test"]
        for words in command_words(test):
            assert_runs_something_real(words, f"{file}/{name} healthcheck")
        urls = re.findall(r"http://127\.0\.0\.1:8000(/[^'\"]*)", " ".join(test))
        for url in urls:
            try:
                resolve(url)
            except Resolver404:
                pytest.fail(f"{file}/{name} healthcheck asks for {url}, which is no URL")


def test_the_health_command_of_the_healthchecks_exists() -> None:
    if "monitoring" not in [path.name for path in REPO.iterdir()]:
        pytest.skip("`manage.py health` comes with issue #9 (the monitoring app)")
    assert "health" in get_commands()


def test_every_service_has_a_healthcheck_a_restart_policy_and_rotated_logs() -> None:
    for file in COMPOSE_FILES:
        for name, service in services(file).items():
            assert service.get("healthcheck", {}).get("test"), f"{file}/{name}: no healthcheck"
            assert service.get("restart") in {"unless-stopped", "always"}, f"{file}/{name}"
            logging = service.get("logging", {})
            assert logging.get("driver") == "json-file", f"{file}/{name}: logs not rotated"
            assert logging["options"]["max-size"] and logging["options"]["max-file"]


def test_every_variable_given_to_our_processes_is_read_by_the_settings() -> None:
    given: dict[str, str] = {}
    for file, name, service in our_services():
        for variable in service.get("environment", {}):
            given[variable] = f"{file}/{name}"
    for line in (DOCKER / "septrader.env.example").read_text().splitlines():
        variable = line.split("=", 1)[0].lstrip("# ").strip()
        if "=" in line and re.fullmatch(r"[A-Z][A-Z0-9_]+", variable):
            given[variable] = "septrader.env.example"
    # Read by Django itself rather than by our settings module.
    given.pop("DJANGO_SETTINGS_MODULE", None)
    unread = {
        variable: where for variable, where in given.items() if not read_by_the_project(variable)
    }
    assert not unread, f"variables nothing reads: {unread}"
    assert "DATABASE_URL_FILE" in given and "OANDA_LIVE_CONFIRM" in given


def test_secrets_come_from_files_never_from_the_compose_files_or_the_image() -> None:
    secret_words = ("SECRET_KEY", "PASSWORD", "TOKEN", "DATABASE_URL", "BROKER_URL", "REDIS_URL")
    for file, name, service in our_services():
        for variable, value in service.get("environment", {}).items():
            if any(word in variable for word in secret_words):
                assert variable.endswith("_FILE"), f"{file}/{name}: {variable} given inline"
                assert str(value).startswith("/run/secrets/"), f"{file}/{name}: {variable}"
    for file in COMPOSE_FILES:
        for name, secret in load(COMPOSE_FILES[file]).get("secrets", {}).items():
            assert set(secret) == {"file"}, f"{file}: secret {name} is not a file"
            assert "/opt/sep-trader/config/secrets" in secret["file"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith(("ENV", "ARG")) or line.startswith(" "):
            assert not any(word in line for word in secret_words), line
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "*.env", "**/secrets"} <= set(ignored)


def test_the_image_runs_as_the_septrader_user_and_is_built_in_stages() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE)
    assert stages == ["build", "runtime", "runtime-gpu"]
    for stage in dockerfile.split("\nFROM ")[2:]:
        assert "useradd --system --uid 10001" in stage
        assert re.search(r"^USER septrader$", stage, re.MULTILINE)
    targets = {service["build"]["target"] for _, _, service in our_services()}
    assert targets == {"runtime", "runtime-gpu"}


def test_only_nginx_listens_publicly_and_the_database_and_broker_only_on_tailscale() -> None:
    for file in COMPOSE_FILES:
        for name, service in services(file).items():
            for port in service.get("ports", []):
                parts = str(port).split(":")
                if len(parts) == 2:
                    assert name == "nginx", f"{file}/{name} publishes {port} on every interface"
                    assert parts[0] in PUBLIC_PORTS
                else:
                    assert parts[0].startswith("${TAILSCALE_IP"), f"{file}/{name}: {port}"
    assert {str(p) for p in services("droplet")["nginx"]["ports"]} == {
        "80:80",
        "443:443",
        "8080:8080",
    }
    assert not any(service.get("ports") for service in services("gpu").values())


def test_nginx_serves_tls_redirects_http_and_keeps_metrics_and_the_simulator_private() -> None:
    conf = (DOCKER / "nginx" / "septrader.conf").read_text()
    assert "listen 443 ssl" in conf and "listen 8080 ssl" in conf
    assert "return 301 https://$host$request_uri;" in conf
    assert "error_page 497 =301 https://" in conf
    metrics = conf[conf.index("location /metrics") :].split("}", 1)[0]
    assert "deny all;" in metrics and "allow 100.64.0.0/10;" in metrics
    assert "location /__sim/ {\n        return 404;" in conf


def test_the_droplet_runs_each_process_of_its_role_once_and_the_gpu_node_the_qfh_worker() -> None:
    droplet = services("droplet")
    assert set(droplet) == {
        *("db", "redis", "web", "worker-execution", "beat", "stream", "monitor", "nginx"),
        "telegram",
    }
    # The Telegram bot needs a token, so it starts only with its profile.
    assert droplet["telegram"]["profiles"] == ["telegram"]
    assert [name for name, service in droplet.items() if "profiles" in service] == ["telegram"]
    assert droplet["db"]["image"].startswith("timescale/timescaledb:") and droplet["db"][
        "image"
    ].endswith("-pg17")
    assert "${SEPTRADER_VOLUME" in droplet["db"]["volumes"][0]
    assert "--appendonly" in droplet["redis"]["command"]
    gpu = services("gpu")
    assert set(gpu) == {"worker-qfh"}
    devices = gpu["worker-qfh"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def unit_settings(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_systemd_units_run_the_same_real_commands_as_the_septrader_user() -> None:
    assert {path.stem for path in UNITS} == {
        "septrader-web",
        "septrader-worker-execution",
        "septrader-beat",
        "septrader-stream",
        "septrader-monitor",
        "septrader-telegram",
        "septrader-worker-qfh",
    }
    for path in UNITS:
        unit = unit_settings(path)
        assert unit["User"] == ["septrader"], path.name
        assert unit["EnvironmentFile"] == ["/opt/sep-trader/config/septrader.env"]
        assert unit["WorkingDirectory"] == ["/opt/sep-trader/app"]
        assert unit["Restart"] == ["always"]
        for command in unit["ExecStart"] + unit.get("ExecStartPre", []):
            words = shlex.split(command.replace("%H", "host"))
            assert words[0].startswith("/opt/sep-trader/venv/bin/"), path.name
            assert_runs_something_real(words, path.name)
        for line in unit.get("Environment", []):
            for pair in line.split():
                assert read_by_the_project(pair.split("=")[0]) or pair.startswith(
                    ("DJANGO_SETTINGS_MODULE=", "PYTHONUNBUFFERED=", "CUPY_CACHE_DIR=")
                ), f"{path.name}: {pair}"


def test_systemd_accepts_the_units() -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, UNITS)],
        capture_output=True,
        text=True,
        cwd=DOCKER / "systemd",
    )
    # The programs live under /opt/sep-trader/venv only once installed.
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]
    assert not complaints, complaints


def test_the_install_script_is_valid_shell_and_installs_every_unit() -> None:
    script = DOCKER / "install.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    for path in UNITS:
        assert path.stem in text, f"install.sh never installs {path.name}"
    assert "docker/septrader.env.example" in text


def test_the_gpu_node_installs_the_cupy_wheel_pinned_per_cuda_major_and_falls_back_to_numpy() -> (
    None
):
    # The gpu extras pin one CuPy wheel per CUDA major, with its CUDA libraries ([ctk]).
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["gpu"] == extras["gpu-cuda12"] == ["cupy-cuda12x[ctk]==14.2.0"]
    assert extras["gpu-cuda13"] == ["cupy-cuda13x[ctk]==14.2.0"]
    default = extras["gpu"][0]
    # The image, the compose file and the install script install that pin by default.
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert f'ARG CUPY_PACKAGE="{default}"' in dockerfile
    worker = services("gpu")["worker-qfh"]
    assert worker["build"]["args"]["CUPY_PACKAGE"] == "${SEPTRADER_CUPY:-" + default + "}"
    assert f'CUPY_PACKAGE="${{SEPTRADER_CUPY:-{default}}}"' in (DOCKER / "install.sh").read_text()
    # And the worker runs on CuPy when a device answers, on NumPy (logged) when none does.
    assert worker["environment"]["QFH_BACKEND"] == "${QFH_BACKEND:-auto}"
    assert "QFH_BACKEND=auto" in dockerfile.split("AS runtime-gpu", 1)[1]
