"""When and where each setting was last changed (sync merges settings by time of change), and the
settings an operator's import could not change (septrader/sync.py)."""

from typing import Any

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def backfill_changed_at(apps: Any, schema_editor: Any) -> None:
    # updated_at is the only time a stored setting kept of its changes (before this migration it
    # held the first write), so it is the best estimate of when the value was set. The origin
    # stays empty, which means this node.
    apps.get_model("septrader", "SystemConfig").objects.update(changed_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("septrader", "0005_api_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncimport",
            name="config_refused",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Settings the importer's role could not change; an admin's import "
                "applies them.",
            ),
        ),
        migrations.AddField(
            model_name="systemconfig",
            name="changed_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When (UTC) the value was last changed, on whichever node changed it.",
            ),
        ),
        migrations.AddField(
            model_name="systemconfig",
            name="origin_node",
            field=models.CharField(
                blank=True,
                help_text="The node (SYNC_NODE_NAME) that made the last change; empty: this node.",
                max_length=255,
            ),
        ),
        migrations.RunPython(backfill_changed_at, migrations.RunPython.noop),
    ]
