"""The schedule editor in the console: sessions and breaks per instrument class, validated."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from septrader.models import AuditLog
from trading.models import MarketSchedule

pytestmark = pytest.mark.django_db


def schedule_form(schedule: MarketSchedule, **session: str) -> dict[str, Any]:
    """The change form of ``schedule`` as the admin posts it, its sessions and breaks unchanged
    except the first session's fields given in ``session``."""
    form: dict[str, Any] = {
        "name": schedule.name,
        "instrument_type": schedule.instrument_type or "",
        "time_zone": schedule.time_zone,
        "holidays": "on" if schedule.holidays else "",
    }
    inlines: list[tuple[str, list[Any], tuple[str, ...]]] = [
        (
            "sessions",
            list(schedule.sessions.all()),
            ("opens_day", "opens_at", "closes_day", "closes_at"),
        ),
        ("breaks", list(schedule.breaks.all()), ("starts_at", "ends_at")),
    ]
    for prefix, rows, fields in inlines:
        form |= {
            f"{prefix}-TOTAL_FORMS": str(len(rows)),
            f"{prefix}-INITIAL_FORMS": str(len(rows)),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
        for index, row in enumerate(rows):
            form[f"{prefix}-{index}-id"] = str(row.pk)
            form[f"{prefix}-{index}-schedule"] = str(schedule.pk)
            for name in fields:
                value = getattr(row, name)
                form[f"{prefix}-{index}-{name}"] = (
                    value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)
                )
    for name, value in session.items():
        form[f"sessions-0-{name}"] = value
    return form


def test_the_schedule_editor_refuses_a_session_ending_before_it_starts_naming_the_field(
    operator_client: Client,
) -> None:
    # Given the FX schedule (Sunday 17:00 to Friday 17:00 New York).
    fx = MarketSchedule.objects.get(name="FX")
    url = f"/admin/trading/marketschedule/{fx.pk}/change/"
    # When an operator makes its session open on Friday and close on Sunday.
    response = operator_client.post(url, schedule_form(fx, opens_day="4", closes_day="6"))
    # Then the editor refuses it, naming the field and its value, and nothing changes.
    assert response.status_code == 200
    assert (
        "closes_at=Sunday 17:00 is not valid; expected a close after the open (Friday 17:00) "
        "within one week running from Sunday to Saturday."
    ) in response.content.decode()
    assert str(fx.sessions.get()) == "Sunday 17:00 to Friday 17:00"
    assert not AuditLog.objects.filter(action="schedule.change").exists()


def test_a_valid_edit_is_saved_and_audited(operator_client: Client) -> None:
    metals = MarketSchedule.objects.get(name="Metals")
    url = f"/admin/trading/marketschedule/{metals.pk}/change/"
    response = operator_client.post(url, schedule_form(metals, closes_at="16:00"))
    assert response.status_code == 302
    assert str(metals.sessions.get()) == "Sunday 17:00 to Friday 16:00"
    entry = AuditLog.objects.get(action="schedule.change")
    assert (entry.actor, entry.target) == ("ops", "Metals")
    assert entry.details["sessions"] == ["Sunday 17:00 to Friday 16:00"]
    assert entry.details["breaks"] == ["17:00-18:00"]


def test_the_schedule_pages_render(operator_client: Client) -> None:
    assert operator_client.get("/admin/trading/marketschedule/").status_code == 200
    assert operator_client.get("/admin/trading/pairschedule/add/").status_code == 200
