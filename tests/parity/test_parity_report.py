"""The daily parity report on a live stretch run in-process: live equal to its replay reports no
mismatch; a live rule parameter changed behind the model's back is reported unexplained and
alerts (issue #20, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from monitoring.models import Alert
from parity.models import ParityReport
from parity.services import parity_run
from qfh import rules, services
from qfh.models import LiveAnalysis
from tests.parity.conftest import DAY
from trading.models import TradingSignal

pytestmark = pytest.mark.django_db


def test_a_live_stretch_equal_to_its_replay_has_no_mismatch_and_its_parts_add_up(
    live_stretch: Callable[[], Any],
) -> None:
    # Given eight hours of real EUR/USD minutes, a promoted model, and the live analysis of the
    # last 110 minutes (its signals never reached an executor)
    times, model = live_stretch()
    signals = TradingSignal.objects.filter(pair_id="EUR_USD").count()
    assert signals >= 2

    # When the day is replayed
    (report,) = parity_run(day=DAY)

    # Then the replay signals exactly where live did, and the compared span is the live one
    assert report.pair_model == model
    assert report.live_from == times[0] and report.live_to == times[-1]
    assert report.replay_signals == report.live_signals == report.matched_signals == signals
    assert report.mismatches == report.unexplained == 0
    # And each unexecuted signal's replayed trade is attributed to "not filled", the parts adding
    # up to the difference
    parts = {name: Decimal(value) for name, value in report.attribution.items()}
    assert sum(parts.values()) == report.pl_difference == report.live_pl - report.replay_pl
    assert report.live_pl == 0
    assert parts["not_filled"] == -report.replay_pl
    assert report.execution_rows.count() == signals
    assert set(report.execution_rows.values_list("outcome", flat=True)) == {"not_filled"}
    assert not Alert.objects.filter(condition__startswith="parity.").exists()


def test_a_live_parameter_changed_behind_the_models_back_is_unexplained_and_alerts(
    live_stretch: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a promoted model, and a live analysis whose rule has a looser confidence gate than
    # the model holds (changed in the live path only: the model's row is untouched)
    honest = services.live_rule_for

    def planted(pair: Any) -> Any:
        chosen = honest(pair)
        assert chosen is not None
        rule, found = chosen
        return rules.validate_rule(rule.rule_type, {**rule.params, "min_confidence": 0.55}), found

    monkeypatch.setattr(services, "live_rule_for", planted)
    _, model = live_stretch()

    # When the day is replayed with the model's rule
    (report,) = parity_run(day=DAY)

    # Then the extra live signals are unexplained, each saying how the live rule differed
    assert report.live_signals > report.replay_signals
    assert report.unexplained == report.mismatches > 0
    kinds = set(report.mismatch_rows.values_list("kind", flat=True))
    assert kinds == {"live_only"}
    first = report.mismatch_rows.first()
    assert first is not None
    detail = first.detail
    assert "min_confidence=0.55" in detail and f"model #{model.pk}: 0.65" in detail
    assert "min_confidence=0.55" in report.rule_note
    # And the pair's parity alert is raised with the first of them
    alert = Alert.objects.get(condition="parity.unexplained:EUR_USD", resolved_at__isnull=True)
    assert alert.severity == "critical" and "unexplained" in alert.message
    # And every analysed minute was logged with a rule version that is not the model's
    versions = set(LiveAnalysis.objects.values_list("rule_version", flat=True))
    assert len(versions) == 1 and versions != {rules.validate_rule("testbed").version()}
    assert ParityReport.objects.count() == 1
