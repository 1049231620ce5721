"""Config validation fed any key and any JSON-like value: each is either stored as a valid value
of the key's kind within its bounds, or refused with ``ConfigValueError`` naming the key, and a
refusal leaves every stored value and version as it was. About 5 s."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from septrader.config import (
    CONFIG_KEYS,
    SHOWN_VALUE_CHARACTERS,
    ConfigValueError,
    validate_config_value,
)
from septrader.models import SystemConfig
from septrader.services import config_set, config_update

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Short texts rich in what a JSON column or a mail header chokes on (NUL, controls, separators).
AWKWARD_TEXT = st.text(alphabet="\x00\x1f\x7f\n a@Z9-é\u2028\ufeff", max_size=6)
JSON_SCALARS = st.one_of(
    AWKWARD_TEXT,
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**30), 10**30),
    st.floats(),  # NaN and the infinities included
    st.text(max_size=12),  # NUL and other control characters included
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def near_bounds(key: str) -> st.SearchStrategy[Any]:
    """Values a user might plausibly type for this key: the fuzzer then tries the edges."""
    spec = CONFIG_KEYS[key]
    edges = [value for value in (spec.minimum, spec.maximum) if value is not None]
    if spec.kind == "int":
        return st.sampled_from(edges or [0]).flatmap(
            lambda edge: st.integers(int(edge) - 2, int(edge) + 2)
        )
    if spec.kind == "decimal":
        texts = st.sampled_from(
            [str(edge) for edge in edges]
            + ["1", "-0", "1e3", " 2 ", "1_0", "0x1", "1e999999", "NaN", "sNaN", "-Infinity"]
        )
        return st.one_of(texts, st.decimals(), st.integers(-(10**12), 10**12))
    if spec.kind == "list":
        items = st.sampled_from(["12-25", "01-01", "2026-02-29", "2024-02-29", "13-01", " 07-04 "])
        return st.lists(items | AWKWARD_TEXT | st.text(max_size=6), max_size=5)
    if spec.kind == "str":
        words = st.sampled_from(["critical", "warning", "info", "nyse", "", "x" * 5000])
        return words | AWKWARD_TEXT | st.text(max_size=6)
    return st.booleans()


TEXT_KEYS = sorted(key for key, spec in CONFIG_KEYS.items() if spec.kind in ("str", "list"))
KEYS = st.one_of(
    st.sampled_from(sorted(CONFIG_KEYS)), st.sampled_from(TEXT_KEYS), st.text(max_size=20)
)


@st.composite
def key_and_value(draw: st.DrawFn) -> tuple[str, Any]:
    mode = draw(st.sampled_from(["any", "plausible", "awkward-text"]))
    if mode == "awkward-text":
        key = draw(st.sampled_from(TEXT_KEYS))
        if CONFIG_KEYS[key].kind == "list":
            return key, draw(st.lists(AWKWARD_TEXT, min_size=1, max_size=3))
        return key, draw(AWKWARD_TEXT)
    key = draw(KEYS)
    if key in CONFIG_KEYS and mode == "plausible":
        return key, draw(near_bounds(key))
    return key, draw(JSON)


def assert_valid_stored(key: str, stored: Any) -> None:
    spec = CONFIG_KEYS[key]
    low, high = spec.minimum, spec.maximum
    if spec.kind == "bool":
        assert type(stored) is bool
    elif spec.kind == "int":
        assert type(stored) is int
        assert (low is None or stored >= low) and (high is None or stored <= high)
    elif spec.kind == "decimal":
        assert type(stored) is str
        number = Decimal(stored)
        assert number.is_finite()
        assert (low is None or number >= low) and (high is None or number <= high)
    elif spec.kind == "str":
        assert type(stored) is str and (spec.accepts is None or spec.accepts(stored))
    else:
        assert type(stored) is list and all(type(item) is str for item in stored)
        assert high is None or len(stored) <= high


def snapshot() -> dict[str, tuple[Any, int]]:
    return {
        key: (value, version)
        for key, value, version in SystemConfig.objects.values_list("key", "value", "version")
    }


@pytest.mark.django_db
@FUZZ
@given(case=key_and_value())
def test_any_value_for_any_key_is_stored_valid_or_refused_by_key(
    timescaledb: None, case: tuple[str, Any]
) -> None:
    key, value = case
    before = snapshot()
    try:
        setting = config_set(key=key, value=value, updated_by="fuzz")
    except ConfigValueError as error:
        # Refused, naming the key (an unknown key is named as the value of "key")
        assert error.key == (key if key in CONFIG_KEYS else "key")
        # (a long value is shown cut to its first SHOWN_VALUE_CHARACTERS characters)
        assert str(error).startswith(
            f"{key}=" if key in CONFIG_KEYS else f"key={key!r}"[: 4 + SHOWN_VALUE_CHARACTERS]
        )
        assert snapshot() == before
        return
    setting.refresh_from_db()
    assert_valid_stored(key, setting.value)
    assert setting.value == validate_config_value(key, value)
    previous = before.get(key)
    if previous is not None:
        expected_version = previous[1] + (previous[0] != setting.value)
        assert setting.version == expected_version


@pytest.mark.django_db
@FUZZ
@given(
    values=st.one_of(
        st.dictionaries(KEYS, JSON, max_size=3),
        st.lists(key_and_value(), max_size=3).map(dict),
        JSON,
    )
)
def test_a_config_update_stores_all_values_or_none(timescaledb: None, values: Any) -> None:
    before = snapshot()
    try:
        config_update(values=values, actor="fuzz")
    except ConfigValueError as error:
        assert (
            error.key in (*values, "key", "body")
            if isinstance(values, dict)
            else error.key == "body"
        )
        assert snapshot() == before
        return
    after = snapshot()
    for key in values:
        assert_valid_stored(key, after[key][0])
    assert all(after[key] == before[key] for key in before if key not in values)


def test_a_float_is_never_accepted_as_a_decimal_setting_even_when_finite() -> None:
    # Decimal settings are written as strings so no float rounding creeps in.
    key = next(key for key, spec in CONFIG_KEYS.items() if spec.kind == "decimal")
    for value in (0.1, math.inf):
        with pytest.raises(ConfigValueError):
            validate_config_value(key, value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "value"),
    [("alerts.email_to", "ops\x00@example.com"), ("alerts.telegram_chat_id", "\x00")],
)
def test_a_text_setting_with_a_nul_character_is_refused_not_a_database_error(
    timescaledb: None, key: str, value: str
) -> None:
    # Found by the fuzzer: PostgreSQL's jsonb cannot hold NUL, so this was a DataError (a 500).
    with pytest.raises(ConfigValueError, match=f"^{key}=.*without NUL characters"):
        config_update(values={key: value}, actor="fuzz")
    assert not SystemConfig.objects.filter(key=key).exists()
