"""The production compose never runs the OANDA simulator, and nginx keeps /metrics and the
simulator's control paths away from public addresses.

tests/deploy/test_packaging.py already checks that only nginx publishes ports, that /metrics is
allowed from loopback and Tailscale only and that /__sim/ answers 404; these add what it does not.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from django.test import Client

from tests.conftest import REPO

DOCKER = REPO / "docker"
PRODUCTION_FILES = [DOCKER / "compose.droplet.yml", DOCKER / "compose.gpu.yml"]
NGINX = DOCKER / "nginx" / "septrader.conf"


def test_no_production_service_runs_the_simulator_or_points_the_broker_at_one() -> None:
    for path in PRODUCTION_FILES:
        services: dict[str, Any] = yaml.safe_load(path.read_text())["services"]
        for name, service in services.items():
            text = yaml.safe_dump(service)
            assert "oandasim" not in text, f"{path.name}/{name} runs the OANDA simulator"
            environment = service.get("environment") or {}
            assert "OANDA_API_URL" not in environment, f"{path.name}/{name} overrides the broker"
    for unit in (DOCKER / "systemd").glob("*.service"):
        assert "oandasim" not in unit.read_text(), f"{unit.name} runs the OANDA simulator"


def server_blocks(conf: str) -> list[str]:
    """The text of each top-level ``server { ... }`` block."""
    blocks, depth, start = [], 0, 0
    for match in re.finditer(r"server\s*\{|\{|\}", conf):
        token = match.group()
        if token.startswith("server") and depth == 0:
            start, depth = match.start(), 1
        elif token == "{":
            depth += depth > 0
        elif depth:
            depth -= 1
            if depth == 0:
                blocks.append(conf[start : match.end()])
    return blocks


def test_every_public_server_of_nginx_guards_metrics_and_the_simulator_paths() -> None:
    for block in server_blocks(NGINX.read_text()):
        if "proxy_pass" not in block:
            # Port 80 forwards nothing: it redirects to HTTPS.
            assert "return 301 https://" in block
            continue
        metrics = block[block.index("location /metrics") :].split("}", 1)[0]
        assert (
            "deny all;" in metrics and "allow 0.0.0.0" not in metrics and "allow all" not in metrics
        )
        assert re.search(r"location /__sim/? \{\s*return 404;", block)


def test_the_metrics_endpoint_refuses_anonymous_callers_and_the_simulator_paths_are_not_routed(
    db: Any, settings: Any
) -> None:
    # Django itself holds the line too, should nginx ever be bypassed.
    settings.METRICS_TOKEN = "prometheus-scrape-token"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    for path in ("/__sim/fault", "/__sim/clock", "/v3/accounts"):
        assert client.post(path).status_code == 404, path
