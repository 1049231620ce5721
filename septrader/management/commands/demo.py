"""``manage.py demo``: the whole system on one machine, against the bundled OANDA simulator.

What it does, in order (README.md, "Run the demo"):

1. migrates the database (the embedded SQLite unless DATABASE_URL says otherwise);
2. starts the simulator replaying the bundled real EUR/USD minutes (other pairs synthetic) on a
   clock running ``--speed`` times faster than real time;
3. creates the pairs of every instrument the broker lists (``instruments sync``: metals and crypto
   CFDs beside the 28 currency pairs), gives BTC_USD its own spread limit and stops in its own
   pips (a dollar), backfills the demo pairs' recent history, enables them for trading (forced:
   the demo has no trained pair model, and the audit log says so), creates an admin login and
   prints it;
4. runs the streamer, a Celery worker for every queue, beat and the web server under one
   supervisor (``septrader.supervisor``) that starts again any of them that dies, as systemd's
   ``Restart=always`` does in production (docker/systemd/); Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from marketdata.models import Pair
from marketdata.oanda import OandaClient
from marketdata.services import candles_backfill, instruments_sync
from oandasim.client import SimulatorProcess
from septrader.supervisor import Program, Supervisor
from trading.services import pair_enable, pair_set_risk_overrides

DEMO_PAIRS = ("EUR_USD", "GBP_USD", "USD_JPY", "BTC_USD")
# The crypto pair's own limits, in its own pips (one dollar; the FX defaults would put a 15-dollar
# stop on a 60,000-dollar coin): 0.5% of the demo's 100,000 risked on a 1,000-dollar stop is
# half a coin, 15,000 of margin at the broker's 50%.
DEMO_OWN_LIMITS = {
    "BTC_USD": {"max_spread_pips": "100", "stop_loss_pips": "1000", "take_profit_pips": "2000"}
}
DEMO_TOKEN = "demo-token"
DEMO_ACCOUNT = "101-001-0000000-001"
SEED = Path(settings.BASE_DIR) / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"
# Thursday 24 July 2025 20:00 UTC (16:00 New York): a day of the bundled real minutes into them,
# the market open, and an hour before the trading day's 17:00 New York close, after which beat
# replays the day and its parity report appears in the console (six minutes at ten times speed).
DEMO_START = "2025-07-24T20:00:00Z"
# When the demo's trading day closes (17:00 New York).
DEMO_DAY_CLOSE = "2025-07-24T21:00:00Z"
# Seconds before a dead demo process is started again (systemd's RestartSec is 5 in production;
# the demo's clock runs 10x faster).
RESTART_DELAY = 1.0


class Command(BaseCommand):
    help = "Run the whole system against the OANDA simulator (the one-command demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port")
        parser.add_argument(
            "--speed", type=float, default=10.0, help="simulated seconds per real second"
        )
        parser.add_argument(
            "--history-hours", type=int, default=6, help="history backfilled before the start"
        )
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="start from an empty embedded database and broker (SQLite only)",
        )
        parser.add_argument(
            "--setup-only",
            action="store_true",
            help="prepare the database and the simulator data, print the login, run nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo refuses to run in production settings.")

        if options["fresh"]:
            self._wipe_embedded()
        call_command("migrate", verbosity=0)
        simulator = SimulatorProcess(
            token=DEMO_TOKEN,
            account=DEMO_ACCOUNT,
            extra_args=[
                *("--data", f"EUR_USD={SEED}", "--start", DEMO_START),
                *("--speed", str(options["speed"]), "--history-days", "1"),
            ],
        ).start()
        broker = {
            "OANDA_API_URL": simulator.base_url,
            "OANDA_STREAM_URL": simulator.base_url,
            "OANDA_TOKEN": DEMO_TOKEN,
            "OANDA_ACCOUNT_ID": DEMO_ACCOUNT,
        }
        os.environ.update(broker)
        for name, value in broker.items():
            setattr(settings, name, value)
        try:
            self._prepare(options["history_hours"])
            if options["setup_only"]:
                return
            status = self._supervise(options["port"])
        finally:
            simulator.stop()
        if status:
            raise CommandError("a demo process stopped unexpectedly; see its lines above")

    def _prepare(self, history_hours: int) -> None:

        start = parse_datetime(DEMO_START)
        assert start is not None
        client = OandaClient()
        synced = instruments_sync(client=client, actor="demo")
        self.stdout.write(f"demo: instruments sync created {', '.join(synced.created) or 'none'}")
        for pair, limits in DEMO_OWN_LIMITS.items():
            pair_set_risk_overrides(symbol=pair, overrides=limits, actor="demo")
        for pair in DEMO_PAIRS:
            result = candles_backfill(
                client=client,
                pair=pair,
                timeframe="M1",
                start=start - timedelta(hours=history_hours),
            )
            self.stdout.write(f"demo: {result.summary()}")
            if Pair.objects.get(symbol=pair).state != Pair.State.TRADING:
                pair_enable(symbol=pair, actor="demo", force=True)
        call_command("demo_admin", stdout=self.stdout)

    def _wipe_embedded(self) -> None:
        """The simulator starts a new account each run, so the demo's records start anew too."""
        import shutil

        from django.db import connection

        if connection.vendor != "sqlite":
            self.stdout.write("demo: --fresh only empties the embedded SQLite database; skipped")
            return
        connection.close()
        database = Path(str(settings.DATABASES["default"]["NAME"]))
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        broker_dir = getattr(settings, "CELERY_BROKER_DIR", None)
        if broker_dir is not None:
            shutil.rmtree(broker_dir, ignore_errors=True)
            for sub in ("queue", "processed"):
                (Path(broker_dir) / sub).mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"demo: started afresh in {database.parent}")

    def _supervise(self, port: int) -> int:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        celery = [python, "-m", "celery", "-A", "septrader"]
        programs = [
            Program("stream", [python, manage, "stream_prices", *_pairs_args()]),
            Program(
                "worker",
                [
                    *celery,
                    "worker",
                    "-Q",
                    "qfh,execution,stream,default",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "INFO",
                ],
            ),
            Program(
                "beat",
                [
                    *celery,
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(Path(settings.DATA_DIR) / "celerybeat-schedule"),
                ],
            ),
            Program("web", [python, manage, "runserver", f"127.0.0.1:{port}", "--noreload"]),
        ]
        # Control from a phone (README, "Telegram control") once the bot has a token.
        if settings.TELEGRAM_BOT_TOKEN:
            programs.append(Program("telegram", [python, manage, "telegram_bot"]))
        # A process that dies (a crash, the OOM killer, an operator's kill -9) is started again,
        # as in production; only Ctrl-C or SIGTERM stops the demo.
        for program in programs:
            program.restart = True
        self.stdout.write(
            f"demo: simulator at {settings.OANDA_API_URL}; admin console at "
            f"http://127.0.0.1:{port}/admin/ (Ctrl-C stops everything)"
        )
        self.stdout.write(
            f"demo: the replayed trading day closes at {DEMO_DAY_CLOSE} on the simulator's clock; "
            f"its parity report (live against the replay) then appears at "
            f"http://127.0.0.1:{port}/admin/parity/"
        )
        self.stdout.flush()
        return Supervisor(programs, cwd=str(settings.BASE_DIR), restart_delay=RESTART_DELAY).run()


def _pairs_args() -> list[str]:
    return [argument for pair in DEMO_PAIRS for argument in ("--pair", pair)]
