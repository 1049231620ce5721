"""The evaluation report in the console: equity curve, hit rate by confidence, baselines."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client

from marketdata.services import candles_ingest
from qfh.evaluation.evaluate import confidence_buckets
from qfh.evaluation.services import rule_evaluation_run


def test_confidence_buckets_split_the_trades_into_quintiles_with_their_hit_rates() -> None:
    # Given 100 trades whose confidence predicts the outcome perfectly above 0.5
    confidence = np.linspace(0.0, 1.0, 100)
    net = np.where(confidence > 0.5, 1.0, -1.0)

    rows = confidence_buckets(confidence, net)

    assert [row["trades"] for row in rows] == [20, 20, 20, 20, 20]
    assert [row["hit_rate"] for row in rows] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert rows[0]["hit_low"] == 0.0 and 0.0 < rows[0]["hit_high"] < 0.2
    assert sum(row["pnl_pips"] for row in rows) == pytest.approx(0.0)


@pytest.mark.django_db
def test_the_console_shows_an_evaluations_equity_curve_buckets_and_baselines(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    # Given an evaluation of the original rule on the real EUR/USD minutes
    candles_ingest(candles=seed_candles, pair="EUR_USD", timeframe="M1")
    evaluation = rule_evaluation_run(pair="EUR_USD", horizon=1, xp=np)
    client = Client()
    client.force_login(User.objects.create_superuser("ops", password="pw-for-test"))

    # When an operator opens it in the admin
    page = client.get(f"/admin/qfh/ruleevaluation/{evaluation.pk}/change/")

    # Then the equity curve is drawn from the stored points, each confidence bucket has a row,
    # and the rule sits next to its three baselines
    html = page.content.decode()
    assert page.status_code == 200
    polyline = re.search(r'<polyline[^>]*points="([^"]+)"', html)
    assert polyline is not None
    assert len(polyline.group(1).split()) == len(evaluation.equity) > 10
    buckets = re.search(r'<table class="confidence-buckets">(.*?)</table>', html, re.S)
    assert buckets is not None
    assert buckets.group(1).count("<tr>") == len(evaluation.by_confidence) + 1
    baselines = re.search(r'<table class="baselines">(.*?)</table>', html, re.S)
    assert baselines is not None
    for name in ("this rule", "random", "momentum", "always_long"):
        assert name in baselines.group(1)
    assert "cdn" not in html.lower()
