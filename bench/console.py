"""Console page times with a year of M1 candles stored (prints figures, asserts nothing).

    eval "$(scripts/services.sh env)"; .venv/bin/python bench/console.py

Fills ``market_candles`` of the bench database (``<DATABASE_URL's name>_bench``, shared with
bench/ingest.py, which empties the candles first) with ``--days`` (a year) of M1 candles for
EUR_USD and three more pairs (about 2.1 million rows, generated in SQL), then times the console's
pages through Django's test client with a logged-in operator: the dashboard, a pair's chart at M1
and H1, and the candle list. Prints the median and the slowest of ``--requests`` loads of each.
``make test`` runs it with ``--days 2 --requests 2`` (tests/bench/test_benches_run.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import setup_bench_database

PAIRS = ("EUR_USD", "GBP_USD", "USD_JPY", "AUD_USD")


def fill(start: datetime, days: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        for symbol in PAIRS:
            cursor.execute(
                "INSERT INTO market_candles "
                "(pair, timeframe, time, open, high, low, close, volume, complete) "
                "SELECT %s, 'M1', %s::timestamptz + i * INTERVAL '1 minute', "
                "1.1 + (i %% 97) * 0.00001, 1.1 + (i %% 97) * 0.00001 + 0.0002, "
                "1.1 + (i %% 89) * 0.00001 - 0.0002, 1.1 + (i %% 89) * 0.00001, 10, true "
                "FROM generate_series(0, %s - 1) AS i",
                [symbol, start, days * 24 * 60],
            )
        cursor.execute("ANALYZE market_candles")
        cursor.execute("SELECT count(*) FROM market_candles")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--days", type=int, default=365, help="M1 candles stored per pair")
    args = parser.parse_args()

    setup_bench_database()
    from django.contrib.auth.models import User
    from django.test import Client

    from marketdata.models import Pair

    began = time.perf_counter()
    rows = fill(datetime(2024, 6, 1, tzinfo=UTC), args.days)
    print(f"table_rows={rows:,} fill_seconds={time.perf_counter() - began:.1f}")

    user, _ = User.objects.get_or_create(username="bench-operator")
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pair = Pair.objects.get(symbol="EUR_USD")
    Pair.objects.filter(symbol__in=PAIRS).update(enabled=True, state=Pair.State.TRADING)
    pages = {
        "dashboard": ("/admin/", {}),
        "chart_m1_6h": (f"/admin/marketdata/pair/{pair.pk}/chart/", {}),
        "chart_m1_33h": (f"/admin/marketdata/pair/{pair.pk}/chart/", {"hours": "33"}),
        "chart_h1_14d": (f"/admin/marketdata/pair/{pair.pk}/chart/", {"timeframe": "H1"}),
        "candle_list": ("/admin/marketdata/candle/", {}),
        "candle_list_eur_usd": ("/admin/marketdata/candle/", {"pair__symbol__exact": "EUR_USD"}),
    }
    for name, (url, query) in pages.items():
        timings = []
        for _ in range(args.requests):
            began = time.perf_counter()
            response = client.get(url, query)
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        print(f"{name}_p50_ms={statistics.median(timings):.1f} {name}_max_ms={max(timings):.1f}")


if __name__ == "__main__":
    main()
