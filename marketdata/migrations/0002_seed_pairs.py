"""Seed the 28 pairs of the eight major currencies, disabled and untrained.

Ingestion refuses candles of unknown pairs, so the common pairs exist from the start. The margin
rate here is OANDA's common default for retail accounts (1:30); the real figures come from the
broker's AccountInstruments when the market-data client refreshes the pairs.
"""

from decimal import Decimal

from django.db import migrations

# In OANDA's order of precedence: the earlier currency of a pair is its base.
MAJORS = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")


def seed_pairs(apps, schema_editor):
    pair_model = apps.get_model("marketdata", "Pair")
    for first, base in enumerate(MAJORS):
        for quote in MAJORS[first + 1 :]:
            jpy = quote == "JPY"
            pair_model.objects.get_or_create(
                symbol=f"{base}_{quote}",
                defaults={
                    "pip_location": -2 if jpy else -4,
                    "display_precision": 3 if jpy else 5,
                    "margin_rate": Decimal("0.0333"),
                },
            )


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0001_initial")]

    operations = [migrations.RunPython(seed_pairs, migrations.RunPython.noop)]
