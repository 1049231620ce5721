"""The request limits fuzzed: the depth of any JSON text is measured exactly (brackets inside
strings, escaped quotes and unterminated strings included), and bodies nested or sized around
the limits get a 400 or a 413 exactly when they pass them, never a server error. About 10 s."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from septrader.api.parsers import json_depth
from tests.api.conftest import client_for

FUZZ = fuzz_settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text rich in what a bracket counter gets wrong: brackets, quotes and backslashes inside strings.
TRICKY_TEXT = st.text(alphabet='[]{}"\\\\ :,a\u00e9\u0661\n', max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=20,
)


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(item) for item in value.values()), default=0)
    return 0


@FUZZ
@given(value=JSON_VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_the_depth_of_any_json_text_is_the_depth_of_what_it_parses_to(
    value: Any, ensure_ascii: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    assert json_depth(text) == true_depth(value)


@FUZZ
@given(text=st.text(alphabet='[]{}"\\\\ :,1a', max_size=40))
def test_any_text_gets_a_depth_and_valid_json_among_it_its_true_depth(text: str) -> None:
    depth = json_depth(text)
    try:
        value = json.loads(text)
    except ValueError:
        return
    assert depth == true_depth(value)


def test_a_megabyte_of_brackets_is_measured_without_recursion() -> None:
    assert json_depth("[" * 1_000_000) == 1_000_000
    assert json_depth('"' + "[" * 1_000_000) == 0  # an unterminated string runs to the end
    assert json_depth('"\\"' * 300_000) == 0  # quotes escaped all the way: read once, not per quote


ENDPOINTS = [
    ("post", "/api/token/", None),
    ("post", "/api/token/verify/", None),
    ("patch", "/api/config", "admin"),
    ("post", "/api/trading/start", "operator"),
    ("post", "/api/pairs/EUR_USD/disable", "operator"),
    ("patch", "/api/trades/1", "operator"),
]
DEPTH_LIMIT = 8
BYTE_LIMIT = 2048


@st.composite
def nested_body(draw: st.DrawFn) -> tuple[str, int]:
    """A JSON text nested around the depth limit, arrays and objects mixed, with its depth."""
    depth = draw(st.integers(1, DEPTH_LIMIT + 3))
    kinds = draw(st.lists(st.sampled_from("[{"), min_size=depth, max_size=depth))
    text = "1"
    for kind in reversed(kinds):
        text = f"[{text}]" if kind == "[" else f'{{"k": {text}}}'
    return text, depth


@pytest.mark.django_db
@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    nested=nested_body(),
    padding=st.integers(BYTE_LIMIT - 300, BYTE_LIMIT + 50),
)
def test_bodies_around_the_limits_are_refused_exactly_when_they_pass_them(
    users: dict[str, Any],
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    endpoint: tuple[str, str, str | None],
    nested: tuple[str, int],
    padding: int,
) -> None:
    # Given small limits, and a body nested around one of them, padded to around the other
    settings.API_MAX_JSON_DEPTH = DEPTH_LIMIT
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = BYTE_LIMIT
    method, path, role = endpoint
    text, depth = nested
    body = f'{{"pad": "{"x" * max(0, padding - len(text) - 20)}", "v": {text}}}'
    size = len(body.encode())

    # When it is sent (the throttles forgotten: the token endpoints allow 10 a minute)
    cache.clear()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        response = getattr(client_for(users[role] if role else None), method)(
            path, body, content_type="application/json"
        )

    # Then too large is a 413, too deep a 400, and anything else is the endpoint's own answer;
    # never a server error, and every error in the one shape
    if size > BYTE_LIMIT:
        assert response.status_code == 413, (size, response.content[:200])
    elif depth + 1 > DEPTH_LIMIT:
        assert response.status_code == 400
        assert "API_MAX_JSON_DEPTH" in response.json()["error"]["message"]
    else:
        assert response.status_code < 500
        assert "API_MAX_JSON_DEPTH" not in response.content.decode()
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "field"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
