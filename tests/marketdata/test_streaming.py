"""The streamer against the simulator at high speed: real oandapyV20 client, TimescaleDB, Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import oandapyV20.endpoints.orders as orders
import pytest
import requests
from django.core.cache import cache

from marketdata.models import Candle, Pair
from marketdata.oanda import OandaClient, OandaConfig
from marketdata.selectors import latest_price, stream_state
from marketdata.streaming import Streamer
from oandasim.client import SimulatorProcess, sim_api
from tests.conftest import SEED_CANDLES
from trading.models import BrokerTransaction

TOKEN = "stream-test-token"
ACCOUNT = "101-001-0000000-003"
THURSDAY = "2025-07-24T09:00:00Z"
SPEED = 30.0


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", THURSDAY, "--speed", str(SPEED)),
            *("--heartbeat", "0.5", "--stream-interval", "0.1", "--rate-limit", "0"),
        ],
    ) as process:
        yield process


def control(simulator: SimulatorProcess, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{simulator.base_url}/__sim/{path}",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class Running:
    """A streamer in a background thread, stopped (and waited for) at the end of the test."""

    def __init__(self, simulator: SimulatorProcess, **options: Any) -> None:
        self.closed: list[tuple[str, datetime, datetime]] = []
        self.minutes: list[tuple[list[str], datetime]] = []
        config = OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)
        self.streamer = Streamer(
            client_factory=lambda: OandaClient(config),
            bootstrap=timedelta(minutes=30),
            price_silence=2.0,
            transaction_silence=3.0,
            on_candles_closed=lambda pair, start, end: self.closed.append((pair, start, end)),
            on_minute_closed=lambda pairs, time: self.minutes.append((pairs, time)),
            **options,
        )
        self.thread = threading.Thread(target=self.streamer.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.streamer.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the streamer did not stop"


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def complete_minutes(pair: str) -> list[tuple[Any, ...]]:
    return list(
        Candle.objects.filter(pair_id=pair, timeframe="M1", complete=True)
        .order_by("time")
        .values_list("time", "open", "high", "low", "close", "volume")
    )


def bootstrap_start(stored: list[tuple[Any, ...]]) -> datetime:
    """Where the streamer's 30-minute bootstrap began: 30 minutes before the broker's newest
    complete minute when it connected, so 08:29 when it connects within the simulator's first
    simulated minute after 09:00 (a quick start), 08:30 when it connects later, and a minute or
    two later still on a busy machine, where the fast simulated clock runs on while the streamer
    starts (a full `make test` run once saw 08:31 at 300x)."""
    first: datetime = stored[0][0]
    assert (
        datetime(2025, 7, 24, 8, 29, tzinfo=UTC)
        <= first
        <= datetime(2025, 7, 24, 8, 35, tzinfo=UTC)
    ), first
    return first


def broker_minutes(
    simulator: SimulatorProcess, pair: str, start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    from decimal import Decimal

    response = requests.get(
        f"{simulator.base_url}/v3/instruments/{pair}/candles",
        params={
            "granularity": "M1",
            "from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return [
        (
            datetime.strptime(c["time"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC),
            *(Decimal(c["mid"][k]) for k in "ohlc"),
            c["volume"],
        )
        for c in response.json()["candles"]
        if c["complete"]
    ]


def newest_time(pair: str) -> datetime | None:
    rows = complete_minutes(pair)
    return rows[-1][0] if rows else None


stream_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@stream_db
def test_the_streamer_stores_exactly_the_brokers_candles_and_publishes_prices(
    timescaledb: None, simulator: SimulatorProcess
) -> None:
    cache.clear()
    start = datetime(2025, 7, 24, 8, 30, tzinfo=UTC)
    # When the streamer runs for a few simulated minutes
    with Running(simulator, pairs=["EUR_USD"], stream_transactions=False) as running:
        wait_until(
            lambda: (newest_time("EUR_USD") or start) >= datetime(2025, 7, 24, 9, 3, tzinfo=UTC),
            30,
            "three simulated minutes to close",
        )
        price = latest_price("EUR_USD")
        state = stream_state()

    # Then the complete candles equal the broker's own, minute for minute, with no gap, from the
    # start of the 30-minute bootstrap
    stored = complete_minutes("EUR_USD")
    start = bootstrap_start(stored)
    assert stored == broker_minutes(
        simulator, "EUR_USD", start, stored[-1][0] + timedelta(minutes=1)
    )
    # And each close enqueued the analysis of exactly the new candles
    assert running.closed[0] == ("EUR_USD", start, stored[0][0] + timedelta(minutes=30))
    covered = [minute for _, first, end in running.closed for minute in _minutes(first, end)]
    assert covered == [row[0] for row in stored]
    # And the live analysis was asked for the newest closed candle of each round, once
    assert running.minutes[-1] == (["EUR_USD"], stored[-1][0])
    assert len({time for _, time in running.minutes}) == len(running.minutes)
    # And the latest price and the stream state are published for the other processes
    assert price is not None and price["tradeable"] is True
    assert datetime.fromisoformat(price["time"]) >= datetime(2025, 7, 24, 9, 2, tzinfo=UTC)
    assert state is not None and state["pairs"]["EUR_USD"]["last_price_time"] is not None


def _minutes(first: datetime, end: datetime) -> list[datetime]:
    out = []
    while first < end:
        out.append(first)
        first += timedelta(minutes=1)
    return out


@stream_db
def test_a_dropped_or_silent_stream_is_reconnected_and_leaves_no_gap(
    timescaledb: None, simulator: SimulatorProcess
) -> None:
    cache.clear()
    with Running(simulator, pairs=["EUR_USD"], stream_transactions=False) as running:
        wait_until(lambda: newest_time("EUR_USD") is not None, 20, "the first candles")
        # An abrupt close, then a stream that goes silent (no heartbeats) for longer than the
        # watchdog allows
        control(simulator, "fault", {"stream": "pricing", "action": "drop"})
        wait_until(lambda: running.streamer.state.price_reconnects >= 1, 10, "a reconnect")
        control(simulator, "fault", {"stream": "pricing", "action": "silence", "seconds": 4})
        wait_until(lambda: running.streamer.state.price_reconnects >= 2, 15, "the watchdog")
        control(simulator, "fault", {"clear": True})
        reached = newest_time("EUR_USD")
        assert reached is not None
        wait_until(
            lambda: (newest_time("EUR_USD") or reached) >= reached + timedelta(minutes=2),
            30,
            "two more minutes after the faults",
        )

    stored = complete_minutes("EUR_USD")
    start = bootstrap_start(stored)
    assert stored == broker_minutes(
        simulator, "EUR_USD", start, stored[-1][0] + timedelta(minutes=1)
    )


@stream_db
def test_a_pair_enabled_while_running_starts_streaming(
    timescaledb: None, simulator: SimulatorProcess
) -> None:
    cache.clear()
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True)
    with Running(simulator, pair_refresh_seconds=0.5, stream_transactions=False):
        wait_until(lambda: latest_price("EUR_USD") is not None, 20, "EUR_USD prices")
        assert latest_price("GBP_USD") is None

        Pair.objects.filter(symbol="GBP_USD").update(enabled=True)

        wait_until(lambda: latest_price("GBP_USD") is not None, 20, "GBP_USD prices")
        wait_until(lambda: newest_time("GBP_USD") is not None, 20, "GBP_USD candles")


@stream_db
def test_account_transactions_are_stored_once_including_those_missed_while_disconnected(
    timescaledb: None, simulator: SimulatorProcess
) -> None:
    cache.clear()
    api = sim_api(simulator.base_url, TOKEN)
    market = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1000"}}
    with Running(simulator, pairs=["EUR_USD"]) as running:
        # Given a streamer that has taken the account's starting point, and an order it sees live
        wait_until(lambda: running.streamer.state.last_transaction_id is not None, 10, "start")
        baseline = int(running.streamer.state.last_transaction_id or 0)
        api.request(orders.OrderCreate(ACCOUNT, data=market))
        wait_until(
            lambda: BrokerTransaction.objects.filter(type="ORDER_FILL").count() == 1, 15, "the fill"
        )
        # When the transaction stream drops and an order is filled meanwhile
        control(simulator, "fault", {"stream": "transactions", "action": "silence", "seconds": 5})
        api.request(orders.OrderCreate(ACCOUNT, data=market))
        wait_until(lambda: running.streamer.state.transaction_reconnects >= 1, 15, "a reconnect")
        control(simulator, "fault", {"clear": True})
        wait_until(
            lambda: BrokerTransaction.objects.filter(type="ORDER_FILL").count() == 2,
            15,
            "the catch-up",
        )

    # Then every broker transaction since the streamer's start is stored exactly once (the
    # account's earlier history is reconciliation's business, not the stream's)
    broker = requests.get(
        f"{simulator.base_url}/v3/accounts/{ACCOUNT}/transactions/sinceid",
        params={"id": baseline},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()["transactions"]
    assert len(broker) >= 4
    assert sorted(BrokerTransaction.objects.values_list("id", flat=True)) == sorted(
        int(t["id"]) for t in broker
    )


@stream_db
def test_a_simulated_hour_with_429_and_503_bursts_ends_with_the_brokers_candles(
    timescaledb: None,
) -> None:
    # Given a broker clock running 300 times faster than real time (an hour in 12 seconds)
    start = datetime(2025, 7, 24, 8, 30, tzinfo=UTC)
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", THURSDAY, "--speed", "300"),
            *("--heartbeat", "0.5", "--stream-interval", "0.1", "--rate-limit", "0"),
        ],
    ) as simulator:
        with Running(simulator, pairs=["EUR_USD"], stream_transactions=False) as running:
            wait_until(lambda: newest_time("EUR_USD") is not None, 20, "the first candles")
            # When the broker answers bursts of 429 and 503 along the way
            control(simulator, "fault", {"status": 429, "count": 3})
            time.sleep(1.5)
            control(simulator, "fault", {"status": 503, "count": 2})
            wait_until(
                lambda: (
                    (newest_time("EUR_USD") or start) >= datetime(2025, 7, 24, 10, 0, tzinfo=UTC)
                ),
                60,
                "a simulated hour",
            )
            faults_left = control(simulator, "fault", {})["remaining"]
        stored = complete_minutes("EUR_USD")
        expected = broker_minutes(
            simulator, "EUR_USD", bootstrap_start(stored), stored[-1][0] + timedelta(minutes=1)
        )

    # Then every fault was answered (and survived) and the table holds exactly the broker's hour
    assert faults_left == 0
    assert stored == expected
    assert stored[-1][0] >= datetime(2025, 7, 24, 10, 0, tzinfo=UTC)
    assert running.streamer.state.price_reconnects <= 10


@stream_db
def test_the_stream_prices_command_stops_cleanly_on_sigterm(
    timescaledb: None, simulator: SimulatorProcess
) -> None:
    import os
    import signal
    import subprocess
    import sys
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    from tests.conftest import REPO

    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "DATABASE_URL": urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
        "OANDA_API_URL": simulator.base_url,
        "OANDA_TOKEN": TOKEN,
        "OANDA_ACCOUNT_ID": ACCOUNT,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "stream_prices", "--pair", "EUR_USD"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: newest_time("EUR_USD") is not None, 30, "the streamer's first candles")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "stream_prices: stopped" in out
    assert time.monotonic() - started < 15
    assert TOKEN not in out + err


@stream_db
def test_bad_data_from_the_broker_is_logged_whole_and_skipped_without_dropping_the_stream(
    timescaledb: None, simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    cache.clear()
    broken_json = '{"type":"PRICE","instrument":"EUR_USD","bids":[{"price":"1.1'
    bad_price = (
        '{"type":"PRICE","instrument":"EUR_USD","time":"2025-07-24T09:00:10.000000000Z",'
        '"bids":[{"price":"abc"}],"asks":[{"price":"1.17600"}],"tradeable":true}'
    )
    with Running(simulator, pairs=["EUR_USD"], stream_transactions=False) as running:
        wait_until(lambda: newest_time("EUR_USD") is not None, 20, "the first candles")
        reached = newest_time("EUR_USD")
        assert reached is not None
        # When the broker sends a line that is not JSON, a price of "abc" and a candle with
        # high < low
        control(
            simulator,
            "fault",
            {"stream": "pricing", "action": "inject", "lines": [broken_json, bad_price]},
        )
        control(simulator, "fault", {"corrupt_candles": 1})
        wait_until(
            lambda: (newest_time("EUR_USD") or reached) >= reached + timedelta(minutes=3),
            30,
            "three more minutes",
        )
        reconnects = running.streamer.state.price_reconnects
        stored = complete_minutes("EUR_USD")
        expected = broker_minutes(
            simulator, "EUR_USD", bootstrap_start(stored), stored[-1][0] + timedelta(minutes=1)
        )

    # Then each is logged with its raw content, the stream was never dropped for it, and the
    # rejected candle was fetched again whole at the next minute
    assert broken_json in caplog.text
    assert "'abc'" in caplog.text or '"abc"' in caplog.text
    assert "is below low" in caplog.text
    assert reconnects == 0
    assert stored == expected


@pytest.mark.slow
@stream_db
def test_a_simulated_week_with_faults_leaves_exactly_the_brokers_candles(timescaledb: None) -> None:
    # Given a synthetic GBP/USD week (Sunday's open to Friday's close) replayed 6000 times faster
    # than real time, about 100 seconds in all
    sunday = "2025-12-07T21:30:00Z"
    # New York is on EST in December: the week closes at 22:00 UTC.
    friday_close = datetime(2025, 12, 12, 22, 0, tzinfo=UTC)
    start = datetime(2025, 12, 7, 21, 0, tzinfo=UTC)
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--start", sunday, "--speed", "6000", "--history-days", "2"),
            *("--heartbeat", "0.5", "--stream-interval", "0.1", "--rate-limit", "0"),
        ],
    ) as simulator:
        with Running(simulator, pairs=["GBP_USD"], stream_transactions=False) as running:
            # When the broker misbehaves along the way: 429 and 503 bursts, a dropped price
            # stream, a silent one, and slow answers
            faults: list[dict[str, Any]] = [
                {"status": 429, "count": 4},
                {"stream": "pricing", "action": "drop"},
                {"status": 503, "count": 3},
                {"stream": "pricing", "action": "silence", "seconds": 3},
                {"latency": 0.05},
                {"stream": "pricing", "action": "end"},
            ]
            for fault in faults:
                time.sleep(8)
                control(simulator, "fault", fault)
            control(simulator, "fault", {"clear": True})
            wait_until(
                lambda: (newest_time("GBP_USD") or start) >= friday_close - timedelta(minutes=5),
                120,
                "Friday's close",
            )
            time.sleep(2)
        stored = complete_minutes("GBP_USD")
        expected = broker_minutes_paged(
            simulator, "GBP_USD", start - timedelta(hours=1), friday_close
        )

    # Then the table holds exactly the broker's candles for the whole week, gaps and all
    assert running.streamer.state.price_reconnects >= 3
    assert len(stored) > 5 * 1380
    assert stored == expected


def broker_minutes_paged(
    simulator: SimulatorProcess, pair: str, start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    cursor = start
    while cursor < end:
        step = min(end, cursor + timedelta(days=3))
        rows += broker_minutes(simulator, pair, cursor, step)
        cursor = step
    return rows


@stream_db
def test_the_stream_prices_command_rides_out_a_database_and_a_redis_restart(
    timescaledb: None, simulator: SimulatorProcess, tmp_path: Any
) -> None:
    """A restart of PostgreSQL or Redis does not stop the streamer (it used to exit, or to lose
    its price thread and stay up without prices), and leaves no gap in the candles."""
    import os
    import subprocess
    import sys
    from urllib.parse import urlsplit, urlunsplit

    from tests.chaos.system import RedisServer
    from tests.chaos.tcp_proxy import TcpProxy
    from tests.conftest import REPO, worker_database_url

    # Given the streamer reaching PostgreSQL through a proxy that can reset it, and its own Redis
    parts = urlsplit(worker_database_url())
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    redis_server = RedisServer(tmp_path / "redis").start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "DATABASE_URL": urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{proxy.port}")),
        "CELERY_BROKER_URL": f"{redis_server.url}/1",
        "CELERY_RESULT_BACKEND": f"{redis_server.url}/2",
        "REDIS_URL": f"{redis_server.url}/3",
        "OANDA_API_URL": simulator.base_url,
        "OANDA_TOKEN": TOKEN,
        "OANDA_ACCOUNT_ID": ACCOUNT,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "stream_prices", "--pair", "EUR_USD"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: newest_time("EUR_USD") is not None, 30, "the streamer's first candles")
        # When the database goes away for three seconds, then Redis for two
        proxy.outage(3.0)
        time.sleep(4.0)
        redis_server.restart(2.0)
        reached = newest_time("EUR_USD")
        assert reached is not None
        # Then the same streamer process goes on storing the broker's candles
        wait_until(
            lambda: (newest_time("EUR_USD") or reached) >= reached + timedelta(minutes=3),
            40,
            "three more minutes after the restarts",
        )
        assert process.poll() is None, "the streamer exited"
    finally:
        process.terminate()
        out = process.communicate(timeout=30)[0]
        redis_server.stop()
        proxy.stop()
    assert "streamer_store_unavailable" in out
    assert "stream_thread_crashed" not in out
    stored = complete_minutes("EUR_USD")
    assert stored == broker_minutes(
        simulator, "EUR_USD", stored[0][0], stored[-1][0] + timedelta(minutes=1)
    )
