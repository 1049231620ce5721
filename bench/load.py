"""The whole system under load: 28 pairs streaming, a signal on every candle, a simulated day fast.

    make bench-load
    # or: eval "$(scripts/services.sh env)"; .venv/bin/python bench/load.py [--speed 20 --hours 24]

Real processes against TimescaleDB and Redis, as the droplet runs them (docker/compose.droplet.yml)
plus the GPU node's analysis worker on the same CPU:

* the OANDA simulator (``python -m oandasim``): 28 synthetic pairs, its clock ``--speed`` times
  real time, every tradeable price sent in every batch of the pricing stream, one batch every
  ``--stream-interval`` seconds *of wall time* (0.25: 4 prices a second per pair, 112 a second in
  all, whatever the speed: OANDA's stream is conflated in real time, so a faster clock makes more
  candles and signals per wall second, not more prices);
* ``manage.py stream_prices`` (prices to Redis, broker candles each minute, analysis enqueued);
* ``celery worker -Q qfh`` (the analysis, NumPy), ``celery worker -Q execution,stream,default
  --concurrency 2``, ``celery beat``, ``manage.py monitor`` and gunicorn (idle; ``--no-web``).

Every pair trades on a bench-only promoted model: the published testbed rule with both thresholds
at 0 and no high-confidence gate, which signals on (almost) every closed candle. Most signals are
refused by "one position per pair"; the stops are tight (``--stop-pips``) so trades close and new
ones open all day. The risk limits that a day of deliberate losses would trip (daily loss,
drawdown, loss streak, orders per minute) are opened wide; the rest stay as configured.

The run: history backfilled and every process started with the simulated clock paused; the clock
runs for ``--hours`` simulated hours; then it pauses, the pipeline drains and the figures print:
prices sent/received, candles stored against the broker's, analysis lag (candle close to signal
stored, wall ms), signals per candle, order latency (signal stored to fill recorded), executed
and refused signals, orders and trades against the broker's, CPU and memory per process from
/proc. It uses the database ``<DATABASE_URL's name>_bench`` (bench/ingest.py), and purges the
Celery queues of the configured broker.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.ingest import setup_bench_database  # noqa: E402
from oandasim.client import SimulatorProcess  # noqa: E402

TOKEN = "load-bench-token"
ACCOUNT = "101-001-0000000-028"
# A Tuesday: a whole simulated day without a weekend (the 16:58-17:03 New York break is in it).
DEFAULT_START = "2025-12-09T00:00:00Z"
HISTORY = timedelta(hours=6)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
QUEUES = ("qfh", "execution", "stream", "default")
# The testbed rule at zero thresholds without the high-confidence gate: BUY or SELL on every
# candle whose score is not exactly zero. For this bench only; it is not a trading rule.
ALWAYS_SIGNAL = {"buy_threshold": 0.0, "sell_threshold": 0.0, "high_confidence_only": False}


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def spread(name: str, values: list[float]) -> str:
    """``name_p50=... name_p99=... name_max=...`` (each name once, for bench/run.py's table)."""
    if not values:
        return f"{name}=none"
    return (
        f"{name}_p50={percentile(values, 0.5):.0f} {name}_p99={percentile(values, 0.99):.0f} "
        f"{name}_max={max(values):.0f}"
    )


# ----- /proc ---------------------------------------------------------------------------------


@dataclass
class ProcessSample:
    comm: str
    ppid: int
    # utime + stime of the process itself: a child's time is sampled as its own process (its
    # parent's cutime would count it again once reaped, as prefork children are every 500 tasks).
    cpu_ticks: int
    rss_bytes: int


def read_process(pid: int) -> ProcessSample | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ProcessSample(comm, int(fields[1]), ticks, rss_pages * PAGE_SIZE)


def all_processes() -> dict[int, ProcessSample]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            sample = read_process(int(entry.name))
            if sample is not None:
                found[int(entry.name)] = sample
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Group:
    """The CPU and memory of one component: a process tree, or a set of pids."""

    name: str
    cpu_seconds: float = 0.0
    rss_samples: list[int] = field(default_factory=list)


class Sampler(threading.Thread):
    """Every ``interval`` seconds: every process's CPU ticks and RSS, to sum per component.

    CPU per pid is counted from the first sample (or from zero for a pid born after it) to the
    last one seen, so processes that come and go (prefork children, database backends) count too.
    """

    def __init__(self, roots: dict[str, int], extra: dict[str, set[int]], interval: float = 2.0):
        super().__init__(daemon=True)
        self.roots = roots
        self.extra = extra  # component -> pids found by other means (redis, postgres backends)
        self.interval = interval
        self.stop = threading.Event()
        self.first: dict[int, int] = {}
        self.last: dict[int, ProcessSample] = {}
        self.owner: dict[int, str] = {}
        self.rss: dict[str, list[int]] = defaultdict(list)
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.machine_start = (0, 0)
        self.machine_end = (0, 0)
        self.backend_pids: set[int] = set()
        self.backend_lookup: Any = None

    def sample(self, *, initial: bool = False) -> None:
        processes = all_processes()
        owners: dict[int, str] = {}
        for name, root in self.roots.items():
            for pid in descendants(root, processes):
                owners[pid] = name
        if self.backend_lookup is not None:
            self.backend_pids |= self.backend_lookup()
        for name, pids in self.extra.items():
            for pid in pids:
                owners[pid] = name
        for pid in self.backend_pids:
            owners[pid] = "postgres backends (bench db)"
        for pid, sample in processes.items():
            if sample.comm == "postgres" and pid not in owners:
                owners[pid] = "postgres other (shared server)"
        totals: dict[str, int] = defaultdict(int)
        for pid, name in owners.items():
            found = processes.get(pid)
            if found is None:
                continue
            sample = found
            if initial:
                self.first[pid] = sample.cpu_ticks
            else:
                self.first.setdefault(pid, 0)
            self.last[pid] = sample
            self.owner[pid] = name
            totals[name] += sample.rss_bytes
        for name, total in totals.items():
            self.rss[name].append(total)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def begin(self) -> None:
        self.sample(initial=True)
        self.started_at = time.monotonic()
        self.machine_start = machine_ticks()
        self.start()

    def end(self) -> None:
        self.stop.set()
        self.join()
        self.sample()
        self.stopped_at = time.monotonic()
        self.machine_end = machine_ticks()

    def groups(self) -> list[Group]:
        result: dict[str, Group] = {}
        for pid, sample in self.last.items():
            name = self.owner[pid]
            group = result.setdefault(name, Group(name))
            group.cpu_seconds += (sample.cpu_ticks - self.first.get(pid, 0)) / CLOCK_TICKS
        for name, samples in self.rss.items():
            result.setdefault(name, Group(name)).rss_samples = samples
        return sorted(result.values(), key=lambda group: group.name)


def descendants(root: int, processes: dict[int, ProcessSample]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, sample in processes.items():
        children[sample.ppid].append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in processes and pid not in found:
            found.add(pid)
            todo.extend(children[pid])
    return found


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# ----- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--speed", type=float, default=20.0, help="simulated seconds per wall second"
    )
    # Five simulated hours at 20x take 15 minutes; --hours 24 is the whole day (72 minutes).
    parser.add_argument("--hours", type=float, default=5.0, help="simulated hours to run")
    parser.add_argument("--pairs", type=int, default=28)
    parser.add_argument(
        "--stream-interval",
        type=float,
        default=0.25,
        help="wall seconds between price batches (0.25: 4 prices/s per pair)",
    )
    parser.add_argument("--start", default=DEFAULT_START, help="simulated start, UTC")
    # The synthetic walks move about half a pip a minute, so 5-pip stops close a trade within an
    # hour or two; each trade gives up about its spread, some 0.005% of NAV at the smallest risk
    # per trade (0.01%): a few percent a day. 3-pip stops made ten times as many trades and lost
    # the 50% daily limit by the afternoon.
    parser.add_argument("--stop-pips", default="5", help="stop-loss and take-profit distance")
    parser.add_argument("--no-web", action="store_true", help="leave the idle web server out")
    parser.add_argument("--logs", type=Path, default=REPO / "var" / "load", help="process logs")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the processes started below are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    wall_seconds = args.hours * 3600 / args.speed
    print(
        f"speed={args.speed:g} simulated_hours={args.hours:g} wall_seconds={wall_seconds:.0f} "
        f"pairs={args.pairs} stream_interval_s={args.stream_interval:g}"
    )

    simulator = SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--start", args.start, "--speed", str(args.speed), "--paused"),
            *("--stream-interval", str(args.stream_interval), "--stream-unchanged"),
            *("--rate-limit", "0", "--history-days", "1", "--heartbeat", "1"),
        ],
        ready_timeout=120,
    ).start()
    os.environ.update(
        OANDA_API_URL=simulator.base_url,
        OANDA_STREAM_URL=simulator.base_url,
        OANDA_TOKEN=TOKEN,
        OANDA_ACCOUNT_ID=ACCOUNT,
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        setup_bench_database()
        # The processes log at the configured level to their files; this one prints figures only.
        logging.getLogger().setLevel(logging.WARNING)
        print(f"cpu_model={cpu_model()} cores={os.cpu_count()}")
        pairs = prepare(args)
        processes = start_processes(args, pairs)
        run(args, simulator, processes, pairs)
    finally:
        stop_processes(processes)
        simulator.stop()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def prepare(args: argparse.Namespace) -> list[str]:
    """An empty trading history, 28 pairs on the bench rule, six hours of candles, open limits."""
    from celery import current_app
    from django.core.cache import cache
    from django.db import connection

    from marketdata.models import Pair
    from marketdata.oanda import OandaClient
    from marketdata.services import candles_backfill
    from oandasim.instruments import FX_INSTRUMENTS
    from septrader.beat import LOCK_KEY
    from septrader.models import SystemConfig
    from septrader.services import config_set
    from tests.qfh.test_live_signals import make_pair_model
    from trading.models import TradingState

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE trading_orders, trading_trades, trading_signals, trading_account_snapshots,"
            " trading_broker_transactions, qfh_candle_metrics, qfh_pair_models CASCADE"
        )
    SystemConfig.objects.all().delete()
    TradingState.objects.update_or_create(pk=1, defaults={"mode": "trading", "reason": ""})
    for key, value in (
        ("risk.per_trade_percent", "0.01"),
        ("risk.max_open_trades", 200),
        ("risk.max_spread_pips", "10"),
        ("risk.max_orders_per_minute", 1000),
        ("risk.loss_streak_length", 0),
        ("risk.daily_loss_limit_percent", "50"),
        ("risk.max_drawdown_percent", "90"),
        ("execution.stop_loss_pips", args.stop_pips),
        ("execution.take_profit_pips", args.stop_pips),
    ):
        config_set(key=key, value=value)
    pairs = sorted(FX_INSTRUMENTS)[: args.pairs]
    Pair.objects.update(enabled=False)
    Pair.objects.filter(symbol__in=pairs).update(
        enabled=True, state=Pair.State.TRADING, forced_without_model=False, node=None
    )
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    for pair in pairs:
        # The suite's promoted model with a given rule (its training figures do not matter).
        make_pair_model(pair, "testbed", ALWAYS_SIGNAL)
    client = OandaClient()
    began = time.perf_counter()
    stored = 0
    for pair in pairs:
        result = candles_backfill(
            client=client, pair=pair, timeframe="M1", start=start - HISTORY, end=start
        )
        stored += result.ingest.stored
    print(f"history_candles={stored} history_seconds={time.perf_counter() - began:.1f}")
    cache.delete_many(["stream:state", *(f"price:{pair}" for pair in pairs)])
    current_app.control.purge()
    redis_client().delete(LOCK_KEY)
    return pairs


def redis_client() -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL or settings.CELERY_BROKER_URL)


def broker_redis() -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def start_processes(
    args: argparse.Namespace, pairs: list[str]
) -> dict[str, subprocess.Popen[bytes]]:
    python = sys.executable
    manage = str(REPO / "manage.py")
    celery = [python, "-m", "celery", "-A", "septrader"]
    logs: Path = args.logs
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "celerybeat-schedule").unlink(missing_ok=True)
    commands: dict[str, list[str]] = {
        "streamer": [python, manage, "stream_prices"],
        "worker qfh": [
            *celery,
            *("worker", "-Q", "qfh", "--hostname", "qfh@%h", "--concurrency", "1"),
            *("--loglevel", "INFO"),
        ],
        "worker execution": [
            *celery,
            *("worker", "-Q", "execution,stream,default", "--hostname", "execution@%h"),
            *("--concurrency", "2", "--max-tasks-per-child", "500", "--loglevel", "INFO"),
        ],
        "beat": [
            *celery,
            *("beat", "--schedule", str(logs / "celerybeat-schedule"), "--loglevel", "INFO"),
        ],
        "monitor": [python, manage, "monitor"],
    }
    if not args.no_web:
        commands["web"] = [
            *(python, "-m", "gunicorn", "septrader.wsgi:application", "--bind", "127.0.0.1:0"),
            *("--workers", "3", "--timeout", "30"),
        ]
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "septrader.settings"}
    environment.setdefault("QFH_BACKEND", "numpy")
    started = {}
    for name, command in commands.items():
        log = (logs / f"{name.replace(' ', '-')}.log").open("wb")
        started[name] = subprocess.Popen(
            command,
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
    print(f"logs={logs}")
    return started


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in 30 s: killed", file=sys.stderr)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def simulator_call(simulator: SimulatorProcess, path: str, payload: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{simulator.base_url}/__sim/{path}"
    if payload is None:
        response = requests.get(url, headers=headers, timeout=30)
    else:
        response = requests.post(url, json=payload, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def wait_until_ready(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Both workers answer a ping, and the streamer has published prices."""
    from celery import current_app
    from django.core.cache import cache

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with status {process.returncode} while starting")
        replies = current_app.control.ping(timeout=1.0) or []
        state = cache.get("stream:state") or {}
        priced = sum(1 for pair in (state.get("pairs") or {}).values() if pair["last_price_time"])
        if len(replies) >= 2 and priced >= 1:
            return
        time.sleep(1)
    raise SystemExit("the workers or the streamer were not ready within 180 s")


def run(
    args: argparse.Namespace,
    simulator: SimulatorProcess,
    processes: dict[str, subprocess.Popen[bytes]],
    pairs: list[str],
) -> None:
    from django.core.cache import cache
    from django.db import connection

    from trading.models import Order, TradingSignal

    wait_until_ready(processes)
    redis_info = redis_client().info("server")
    roots = {name: process.pid for name, process in processes.items()}
    roots["simulator"] = simulator.process.pid if simulator.process else 0
    # Every process above is a child of this one: the bench itself counts alone.
    sampler = Sampler(
        roots, {"redis": {int(redis_info["process_id"])}, "bench (this process)": {os.getpid()}}
    )
    database = connection.settings_dict["NAME"]
    # The sampler's thread asks for the bench database's backends on a connection of its own.
    sampler.backend_lookup = backends_in_thread(database)

    before = simulator_call(simulator, "stats")
    state_before = cache.get("stream:state") or {}
    sampler.begin()
    clock = simulator_call(simulator, "clock", {"pause": False})
    wall_start = time.time()
    sim_start = parse_time(clock["time"])
    wall_seconds = args.hours * 3600 / args.speed
    print(f"running: simulated {clock['time']} + {args.hours:g} h")
    next_report = time.monotonic() + 60
    deadline = time.monotonic() + wall_seconds
    queue_peaks: Counter[str] = Counter()
    broker = broker_redis()
    while time.monotonic() < deadline:
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        for queue in QUEUES:
            queue_peaks[queue] = max(queue_peaks[queue], broker.llen(queue))
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with status {process.returncode}", file=sys.stderr)
        if time.monotonic() >= next_report:
            next_report += 60
            state = cache.get("stream:state") or {}
            elapsed = time.time() - wall_start
            moment = sim_start + timedelta(seconds=elapsed * args.speed)
            prices = state.get("prices_received", 0) - state_before.get("prices_received", 0)
            print(
                f"  t={elapsed:.0f}s sim={moment:%H:%M} prices={prices}"
                f" signals={TradingSignal.objects.count()}"
                f" orders={Order.objects.count()}"
                f" queues={','.join(f'{q}:{broker.llen(q)}' for q in QUEUES)}",
                flush=True,
            )
    clock = simulator_call(simulator, "clock", {"pause": True})
    wall_end = time.time()
    sim_end = parse_time(clock["time"])
    after = simulator_call(simulator, "stats")
    waiting = {queue: broker.llen(queue) for queue in QUEUES}
    state_after = cache.get("stream:state") or {}
    drain_started = time.monotonic()
    drained = drain(broker)
    drain_seconds = time.monotonic() - drain_started
    sampler.end()

    measured = wall_end - wall_start
    print(
        f"machine_cores={os.cpu_count()} cpu_model={cpu_model()!r} "
        f"note=shared machine: other jobs ran alongside"
    )
    print(
        f"wall_seconds={measured:.1f} simulated={sim_start:%Y-%m-%d %H:%M}..{sim_end:%H:%M} "
        f"({(sim_end - sim_start).total_seconds() / 3600:.2f} h) "
        f"achieved_speed={(sim_end - sim_start).total_seconds() / measured:.1f}"
    )
    print(
        f"drain_seconds={drain_seconds:.1f} drained={drained} queued_at_end="
        + ",".join(f"{queue}:{count}" for queue, count in waiting.items())
    )

    # Prices: the simulator's count against the streamer's, per wall second.
    simulated_seconds = (sim_end - sim_start).total_seconds()
    sent = after["prices_sent"] - before["prices_sent"]
    received = state_after.get("prices_received", 0) - state_before.get("prices_received", 0)
    print(
        f"prices_sent={sent} prices_received={received} (streamer, to Redis) "
        f"sent_per_wall_s={sent / measured:.1f} received_per_wall_s={received / measured:.1f} "
        f"per_pair_per_wall_s={received / measured / len(pairs):.2f} "
        f"per_pair_per_simulated_s={received / simulated_seconds / len(pairs):.3f} "
        f"late_batches={after['late_batches'] - before['late_batches']} "
        f"reconnects={state_after.get('price_reconnects', 0)}"
    )
    report_candles(simulator, pairs, sim_start, sim_end)
    report_signals(args, pairs, sim_start, sim_end, wall_start, streamer_stored_times(args.logs))
    report_orders(simulator)
    runtimes = task_runtimes(args.logs)
    for task in ("qfh.analyze_closed_candles_task", "trading.execute_signal_task"):
        values = runtimes.get(task, [])
        short = task.rsplit(".", 1)[-1]
        print(f"{short}_runs={len(values)} {spread(f'{short}_ms', values)}")
    print("queue_peaks=" + ",".join(f"{queue}:{queue_peaks[queue]}" for queue in QUEUES))
    report_resources(sampler, measured + drain_seconds)


def backends_in_thread(database: str) -> Any:
    """A function for the sampler's thread: pids of the backends connected to ``database``."""
    import psycopg
    from django.conf import settings

    settings_dict = settings.DATABASES["default"]
    holder: dict[str, Any] = {}

    def lookup() -> set[int]:
        connection = holder.get("connection")
        if connection is None:
            connection = holder["connection"] = psycopg.connect(
                host=str(settings_dict["HOST"]),
                port=str(settings_dict["PORT"]),
                user=str(settings_dict["USER"]),
                password=str(settings_dict["PASSWORD"] or "") or None,
                dbname=database,
                autocommit=True,
            )
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchall()
        return {row[0] for row in rows}

    return lookup


def parse_time(text: str) -> datetime:
    from marketdata.broker_time import parse_broker_time

    return parse_broker_time(text)


def drain(broker: Any, timeout: float = 120.0) -> bool:
    """Wait until the queues are empty and no signal is waiting for its executor."""
    from trading.models import TradingSignal

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = sum(broker.llen(queue) for queue in QUEUES)
        open_signals = TradingSignal.objects.filter(status__in=["new", "claimed"]).count()
        if waiting == 0 and open_signals == 0:
            time.sleep(2)  # the last analysis may still be sending its signals
            if TradingSignal.objects.filter(status__in=["new", "claimed"]).count() == 0:
                return True
        time.sleep(1)
    return False


def report_candles(
    simulator: SimulatorProcess, pairs: list[str], sim_start: datetime, sim_end: datetime
) -> None:
    """Every complete M1 candle the broker has in the run is stored, with the broker's prices."""
    from decimal import Decimal

    from marketdata.models import Candle

    first = sim_start.replace(second=0, microsecond=0)
    broker_total = stored_total = missing = differing = 0
    for pair in pairs:
        response = requests.get(
            f"{simulator.base_url}/v3/instruments/{pair}/candles",
            params={
                "granularity": "M1",
                "price": "M",
                "from": first.isoformat().replace("+00:00", "Z"),
                "to": sim_end.isoformat().replace("+00:00", "Z"),
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        broker = {
            parse_time(c["time"]): c["mid"]["c"] for c in body.get("candles", []) if c["complete"]
        }
        stored = dict(
            Candle.objects.filter(
                pair_id=pair, timeframe="M1", complete=True, time__gte=first, time__lt=sim_end
            ).values_list("time", "close")
        )
        broker_total += len(broker)
        stored_total += len(set(stored) & set(broker))
        missing += len(set(broker) - set(stored))
        differing += sum(
            1
            for moment, close in broker.items()
            if moment in stored and stored[moment] != Decimal(close)
        )
    print(
        f"candles_broker={broker_total} candles_stored={stored_total} candles_missing={missing} "
        f"candles_differing={differing}"
    )


BACKFILL_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*event=backfill_done (\w+) M1 from \S+ "
    r"to (\S+): \d+ requests, stored (\d+)"
)


TASK_LINE = re.compile(r"Task ([\w.]+)\[[0-9a-f-]+\] succeeded in ([0-9.]+)s")


def task_runtimes(logs: Path) -> dict[str, list[float]]:
    """How long each task ran in its worker (ms), from the workers' "succeeded in" lines."""
    runtimes: dict[str, list[float]] = defaultdict(list)
    for path in logs.glob("worker-*.log"):
        with path.open(errors="replace") as lines:
            for line in lines:
                match = TASK_LINE.search(line)
                if match is not None:
                    runtimes[match[1]].append(float(match[2]) * 1000)
    return runtimes


def streamer_stored_times(logs: Path) -> dict[tuple[str, datetime], float]:
    """When the streamer stored each closed candle (wall epoch seconds), from its log lines."""
    stored: dict[tuple[str, datetime], float] = {}
    with (logs / "streamer.log").open(errors="replace") as lines:
        for line in lines:
            match = BACKFILL_LINE.match(line)
            if match is None or match[5] == "0":
                continue
            moment = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S"))
            close = datetime.strptime(match[4], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
            stored.setdefault(
                (match[3], close - timedelta(minutes=1)), moment + int(match[2]) / 1000
            )
    return stored


def report_signals(
    args: argparse.Namespace,
    pairs: list[str],
    sim_start: datetime,
    sim_end: datetime,
    wall_start: float,
    candle_stored: dict[tuple[str, datetime], float],
) -> None:
    from marketdata.models import Candle
    from trading.models import TradingSignal

    first = sim_start.replace(second=0, microsecond=0)
    signals = list(
        TradingSignal.objects.filter(time__gte=first - timedelta(minutes=1)).values(
            "pair_id", "time", "created_at", "updated_at", "status", "status_reason"
        )
    )
    candles = set(
        Candle.objects.filter(
            pair_id__in=pairs,
            timeframe="M1",
            complete=True,
            time__gte=first,
            time__lt=sim_end - timedelta(minutes=1),
        ).values_list("pair_id", "time")
    )
    signalled = {(row["pair_id"], row["time"]) for row in signals}
    per_minute = Counter(row["time"] for row in signals if (row["pair_id"], row["time"]) in candles)
    minutes = {moment for _, moment in candles}
    full = sum(1 for minute in minutes if per_minute[minute] == len(pairs))

    def wall_of(moment: datetime) -> float:
        return wall_start + (moment - sim_start).total_seconds() / args.speed

    lags, order_latencies, to_stored, to_signal = [], [], [], []
    # Per quarter of the run: a lag that keeps growing is a backlog the system does not clear.
    quarters: dict[int, list[float]] = defaultdict(list)
    order_quarters: dict[int, list[float]] = defaultdict(list)
    span = (sim_end - first).total_seconds()
    for row in signals:
        close = row["time"] + timedelta(minutes=1)
        if close <= sim_start:
            continue
        lag = (row["created_at"].timestamp() - wall_of(close)) * 1000
        lags.append(lag)
        stored_at = candle_stored.get((str(row["pair_id"]), row["time"]))
        if stored_at is not None:
            to_stored.append((stored_at - wall_of(close)) * 1000)
            to_signal.append((row["created_at"].timestamp() - stored_at) * 1000)
        quarter = min(3, int(4 * (row["time"] - first).total_seconds() / span))
        quarters[quarter].append(lag)
        if row["status"] == "executed":
            latency = (row["updated_at"] - row["created_at"]).total_seconds() * 1000
            order_latencies.append(latency)
            order_quarters[quarter].append(latency)
    statuses = Counter(row["status"] for row in signals)
    reasons = Counter(
        row["status_reason"].split(":")[0][:60] for row in signals if row["status"] == "rejected"
    )
    print(
        f"candles_closed={len(candles)} candles_with_signal={len(candles & signalled)} "
        f"candles_without_signal={len(candles - signalled)} "
        f"minutes={len(minutes)} minutes_with_all_{len(pairs)}_signals={full} "
        f"signals_per_minute_mean={len(signals) / max(1, len(minutes)):.1f}"
    )
    print(f"candle close -> signal stored, wall: {spread('analysis_lag_ms', lags)}")
    print(
        "  of which close -> candle stored by the streamer: "
        + spread("close_to_stored_ms", to_stored)
    )
    print(
        "  of which candle stored -> signal stored (queue + analysis): "
        + spread("stored_to_signal_ms", to_signal)
    )
    print(
        "analysis_lag_p50_by_quarter_ms="
        + ",".join(f"{percentile(quarters[q], 0.5):.0f}" for q in range(4))
    )
    print(f"signal stored -> fill recorded: {spread('order_latency_ms', order_latencies)}")
    print(
        "order_latency_p50_by_quarter_ms="
        + ",".join(f"{percentile(order_quarters[q], 0.5):.0f}" for q in range(4))
    )
    print("signals=" + ",".join(f"{status}:{count}" for status, count in sorted(statuses.items())))
    print(
        "refused_reasons="
        + "; ".join(f"{reason}: {count}" for reason, count in reasons.most_common(6))
    )


def report_orders(simulator: SimulatorProcess) -> None:
    """Our orders and trades against the broker's transactions: nothing lost or doubled."""
    from marketdata.oanda import OandaClient, TransactionsSinceID
    from trading.models import Order, Trade

    client = OandaClient()
    transactions = client.request(TransactionsSinceID(client.account_id, params={"id": 0}))[
        "transactions"
    ]
    market_orders = Counter(
        t.get("clientExtensions", {}).get("id", "")
        for t in transactions
        if t["type"] == "MARKET_ORDER"
    )
    fills = [t for t in transactions if t["type"] == "ORDER_FILL"]
    opened = {t["tradeOpened"]["tradeID"] for t in fills if t.get("tradeOpened")}
    closed = {c["tradeID"] for t in fills for c in t.get("tradesClosed", [])}
    ours = dict(Order.objects.filter(kind=Order.Kind.ENTRY).values_list("client_id", "status"))
    filled = {client_id for client_id, status in ours.items() if status == "filled"}
    trades = dict(Trade.objects.values_list("broker_trade_id", "state"))
    ours_closed = {trade for trade, state in trades.items() if state == Trade.State.CLOSED}
    print(
        f"orders_ours={len(ours)} orders_filled={len(filled)} "
        f"orders_pending={sum(1 for s in ours.values() if s == 'pending')} "
        f"orders_at_broker={len(market_orders)} "
        f"duplicated_at_broker={sum(1 for n in market_orders.values() if n > 1)} "
        f"lost(ours_not_at_broker)={len(set(ours) - set(market_orders))} "
        f"unknown(broker_not_ours)={len(set(market_orders) - set(ours))}"
    )
    print(
        f"trades_broker_opened={len(opened)} trades_broker_closed={len(closed)} "
        f"trades_ours={len(trades)} trades_ours_closed={len(ours_closed)} "
        f"trades_missing={len(opened - set(trades))} "
        f"trades_closed_mismatch={len(closed ^ ours_closed)}"
    )


def report_resources(sampler: Sampler, seconds: float) -> None:
    busy0, total0 = sampler.machine_start
    busy1, total1 = sampler.machine_end
    cores = os.cpu_count() or 1
    machine = 100.0 * (busy1 - busy0) / max(1, total1 - total0) * cores
    elapsed = sampler.stopped_at - sampler.started_at
    ours = 0.0
    ours_rss = 0.0
    print(f"cpu (% of one core over {elapsed:.0f} s; {cores} cores = {100 * cores}%) and RSS:")
    for group in sampler.groups():
        share = 100.0 * group.cpu_seconds / elapsed
        if not group.name.startswith("postgres other"):
            ours += share
        rss = group.rss_samples or [0]
        if not group.name.startswith("postgres"):
            ours_rss += statistics.mean(rss)
        print(
            f"  {group.name:<32} cpu={share:6.1f}% "
            f"rss_mean={statistics.mean(rss) / 2**20:7.1f} MiB rss_peak={max(rss) / 2**20:7.1f} MiB"
        )
    print(
        f"  {'machine (all processes)':<32} cpu={machine:6.1f}%  ours={ours:.1f}% "
        f"(postgres other is the shared server: other jobs' databases and its own writers) "
        f"rss_ours_without_postgres={ours_rss / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
