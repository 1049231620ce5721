"""The Content-Security-Policy (django-csp): the console's pages, the API docs and the API answer
with a policy that lets a page run scripts and styles from this server only, and the pages hold
nothing inline that it would block. The browser test (tests/console/test_browser.py) shows
Chromium drawing the same pages under it with no violation in its log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from marketdata.models import Pair

SELF, NONE = "'self'", "'none'"
# An element's inline script or style, or an event-handler attribute, anywhere in a page.
INLINE = re.compile(
    r"<script(?![^>]*\ssrc=)[^>]*>|<style[\s>]|<[^>]*\sstyle=|<[^>]*\son[a-z]+\s*=", re.IGNORECASE
)


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


@pytest.fixture
def staff(db: Any) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", email="ops@example.com"))
    return client


def console_pages() -> list[str]:
    pair = Pair.objects.get(symbol="EUR_USD")
    return [
        "/admin/",
        "/admin/marketdata/pair/",
        f"/admin/marketdata/pair/{pair.pk}/change/",
        f"/admin/marketdata/pair/{pair.pk}/chart/",
        "/admin/performance/daily/",
        "/admin/parity/",
        "/admin/septrader/systemconfig/add/",
        "/admin/trading/trade/",
        "/admin/trading/tradingsignal/",
        "/admin/trading/order/",
        "/admin/live/dashboard/",
        "/api/docs/",
    ]


def test_every_console_page_allows_only_this_servers_scripts_and_styles_and_holds_none_inline(
    staff: Client,
) -> None:
    for path in ["/admin/login/", *console_pages()]:
        # When a console page is read
        response = (Client() if path == "/admin/login/" else staff).get(path)
        assert response.status_code == 200, path

        # Then its policy loads everything from this server only, runs no inline script or
        # style and no eval, embeds no plugin and cannot be framed
        policy = directives(response["Content-Security-Policy"])
        assert policy["default-src"] == [SELF], path
        assert policy["script-src"] == [SELF], path
        assert policy["style-src"] == [SELF], path
        assert policy["object-src"] == [NONE] and policy["frame-ancestors"] == [NONE], path
        assert policy["form-action"] == [SELF] and policy["base-uri"] == [SELF], path
        for sources in policy.values():
            assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "https:"} & set(sources), path
        # And nothing in the page is inline, so the policy costs it nothing
        inline = INLINE.findall(response.content.decode())
        assert not inline, f"{path}: {inline[:3]}"


def test_the_api_docs_start_up_script_is_served_by_the_app(staff: Client) -> None:
    page = staff.get("/api/docs/").content.decode()
    script = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', page)
    assert script, "the docs page does not load its start-up script from a URL"

    response = staff.get(script.group(1).replace("&amp;", "&"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()


@pytest.mark.django_db
def test_api_answers_carry_the_policy_too() -> None:
    response = Client().get("/api/health")

    assert directives(response["Content-Security-Policy"])["default-src"] == [SELF]
