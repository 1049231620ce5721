"""Compression, retention and the M5/M15/H1 candles built from M1, on every database.

On TimescaleDB with its community (TSL) features, as in the timescale/timescaledb images that
docker/ uses: compression and retention policies on the ``market_candles`` hypertable, and one
continuous aggregate per higher timeframe with real-time aggregation, so a query sees the newest M1
candles before the next refresh. Debian's own TimescaleDB build is Apache-only (the ``+dfsg``
package has no compression, continuous aggregates or policies): there, and on plain PostgreSQL and
the embedded SQLite, the same names are plain SQL views with the same columns and rows, so the
selectors return the same candles everywhere. All of it is kept out of Django's model state (the
view models are unmanaged), which keeps ``makemigrations --check`` clean on every backend.
"""

from django.db import migrations

AGGREGATES = {"m5": "5 minutes", "m15": "15 minutes", "h1": "1 hour"}
SECONDS = {"m5": 300, "m15": 900, "h1": 3600}

# Chunks older than this are compressed: later than any backfill correction we expect.
COMPRESS_AFTER = "30 days"
# Candles are dropped after this long: keep it longer than the longest training window.
RETAIN_FOR = "1825 days"


def _flavour(schema_editor) -> str:
    """'tsl' (full TimescaleDB), 'apache' (hypertables only), 'postgresql' or 'sqlite'."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return "sqlite"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cursor.fetchone() is None:
            return "postgresql"
        cursor.execute("SELECT current_setting('timescaledb.license', true)")
        row = cursor.fetchone()
    return "tsl" if row and row[0] == "timescale" else "apache"


def _bucket_select(name: str, width: str) -> str:
    bucket = f"time_bucket(INTERVAL '{width}', time)"
    return (
        f"SELECT pair, {bucket} AS time, first(open, time) AS open, max(high) AS high, "
        "min(low) AS low, last(close, time) AS close, sum(volume)::bigint AS volume, "
        "count(*)::integer AS minutes, bool_and(complete) AS complete "
        f"FROM market_candles WHERE timeframe = 'M1' GROUP BY pair, {bucket}"
    )


def _timescale_sql() -> list[str]:
    statements = [
        "ALTER TABLE market_candles SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'pair, timeframe', "
        "timescaledb.compress_orderby = 'time DESC')",
        f"SELECT add_compression_policy('market_candles', INTERVAL '{COMPRESS_AFTER}', "
        "if_not_exists => true)",
        f"SELECT add_retention_policy('market_candles', INTERVAL '{RETAIN_FOR}', "
        "if_not_exists => true)",
    ]
    for name, width in AGGREGATES.items():
        statements += [
            f"CREATE MATERIALIZED VIEW market_candles_{name} "
            "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
            f"{_bucket_select(name, width)} WITH NO DATA",
            # The policy leaves the still-forming bucket to real-time aggregation; a NULL start
            # lets it rematerialise old buckets that a late backfill changed.
            f"SELECT add_continuous_aggregate_policy('market_candles_{name}', "
            f"start_offset => NULL, end_offset => INTERVAL '{width}', "
            "schedule_interval => INTERVAL '1 minute', if_not_exists => true)",
        ]
    return statements


def _apache_sql() -> list[str]:
    # time_bucket, first and last are in the Apache part of TimescaleDB; retention without the
    # policy job is drop_chunks, which the scheduled maintenance task calls.
    return [
        f"CREATE VIEW market_candles_{name} AS {_bucket_select(name, width)}"
        for name, width in AGGREGATES.items()
    ]


def _postgres_sql() -> list[str]:
    return [
        f"CREATE VIEW market_candles_{name} AS SELECT pair, "
        f"date_bin(INTERVAL '{width}', time, TIMESTAMPTZ '2000-01-03') AS time, "
        "(array_agg(open ORDER BY time))[1] AS open, max(high) AS high, min(low) AS low, "
        "(array_agg(close ORDER BY time DESC))[1] AS close, sum(volume)::bigint AS volume, "
        "count(*)::integer AS minutes, bool_and(complete) AS complete "
        "FROM market_candles WHERE timeframe = 'M1' GROUP BY 1, 2"
        for name, width in AGGREGATES.items()
    ]


def _sqlite_sql() -> list[str]:
    # Django stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS' text in UTC; the bucket is written
    # back in the same form so the view's times compare and parse like the table's.
    statements = []
    for name, seconds in SECONDS.items():
        # Epoch seconds from julianday(), because Django's SQLite cursor would turn the '%s' of
        # strftime into a parameter marker.
        epoch = "CAST(ROUND((julianday(time) - 2440587.5) * 86400) AS INTEGER)"
        bucket = f"strftime('%Y-%m-%d %H:%M:%S', ({epoch} / {seconds}) * {seconds}, 'unixepoch')"
        statements.append(
            f"CREATE VIEW market_candles_{name} AS "
            "SELECT pair, time, open, high, low, close, volume, minutes, complete FROM ("
            "SELECT pair, bucket AS time, first_value(open) OVER w AS open, "
            "max(high) OVER w AS high, min(low) OVER w AS low, last_value(close) OVER w AS close, "
            "sum(volume) OVER w AS volume, count(*) OVER w AS minutes, "
            "min(complete) OVER w AS complete, row_number() OVER w AS position "
            f"FROM (SELECT *, {bucket} AS bucket FROM market_candles WHERE timeframe = 'M1') "
            "WINDOW w AS (PARTITION BY pair, bucket ORDER BY time "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
            ") WHERE position = 1"
        )
    return statements


def create(apps, schema_editor):
    flavour = _flavour(schema_editor)
    if flavour in {"tsl", "apache"}:
        # create_hypertable's default index on time alone serves no query of ours (they all name
        # the pair, and the unique index leads with it) and costs a tenth of every insert.
        schema_editor.execute("DROP INDEX IF EXISTS market_candles_time_idx")
    statements = {
        "tsl": _timescale_sql,
        "apache": _apache_sql,
        "postgresql": _postgres_sql,
        "sqlite": _sqlite_sql,
    }[flavour]()
    for statement in statements:
        schema_editor.execute(statement)


def drop(apps, schema_editor):
    tsl = _flavour(schema_editor) == "tsl"
    for name in AGGREGATES:
        kind = "MATERIALIZED VIEW" if tsl else "VIEW"
        schema_editor.execute(f"DROP {kind} IF EXISTS market_candles_{name}")
    if tsl:
        schema_editor.execute("SELECT remove_retention_policy('market_candles', if_exists => true)")
        schema_editor.execute(
            "SELECT remove_compression_policy('market_candles', if_exists => true)"
        )
        schema_editor.execute("ALTER TABLE market_candles SET (timescaledb.compress = false)")


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0002_seed_pairs")]

    operations = [migrations.RunPython(create, drop)]
