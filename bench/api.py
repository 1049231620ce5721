"""API latency under gunicorn at a fixed request rate, beside a bare view (prints figures).

    eval "$(scripts/services.sh env)"; .venv/bin/python bench/api.py [--rate 200] [--seconds 20]

1. Prepares ``<DATABASE_URL's name>_bench`` (migrated; ``--users`` viewers; a signal per pair and a
   cached price per pair, so ``/api/pairs/status`` has something to join).
2. In this process, through Django's test client: what one request costs (ms of this process,
   SQL statements sent to PostgreSQL, Redis commands), per endpoint; ``--profile`` also prints
   cProfile's top functions for ``/api/pairs/status`` (on stderr).
3. Starts gunicorn on a free port (``--workers`` sync workers, 2 by default: one per core) with
   bench/api_settings.py, the project's settings plus ``/bench/pairs/status-bare``: the same
   bytes as ``/api/pairs/status`` after the same JWT authentication, in a plain Django view.
4. For each endpoint, an open-loop load generator sends requests at a fixed rate on keep-alive
   connections from a pool of threads, the viewers' tokens in turn (each a dashboard). Latency
   is measured from the moment each request was *due*, so a server that falls behind is charged
   for the queue it causes (no coordinated omission).

Prints ``name=value`` lines per endpoint: achieved requests/s, p50, p99, max, and the answers
that were not 200 in three counts: ``unavailable`` (503: ``/api/health`` says "down" while
nothing but the web server runs, which is its job), ``throttled`` (429) and ``errors`` (anything
else, and no answer). Then the ratio of ``pairs_status`` to ``pairs_status_bare``, which the
machine's speed mostly cancels out of, and the load average before and after, since other work
on the machine shows in every figure. The goal (issue #8, #24): p99 under 50 ms at 200
requests/s on the 2-core machine. The throttle stays as configured (3000/min a user): keep
``--rate`` under 50 times ``--users``. ``make test`` runs it with ``--seconds 1 --rate 50``
(tests/bench/test_benches_run.py).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import logging
import os
import platform
import pstats
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.ingest import bench_database_url, ensure_database  # noqa: E402

SETTINGS = "bench.api_settings"
ENDPOINTS = {
    "pairs_status": "/api/pairs/status",
    "pairs_status_bare": "/bench/pairs/status-bare",
    "health": "/api/health",
}
AUTHENTICATED = {"pairs_status", "pairs_status_bare"}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15-minute load averages."""
    return ",".join(f"{value:.2f}" for value in os.getloadavg())


def prepare(url: str, users: int) -> list[str]:
    """Migrate the bench database, seed it, and return an access token per viewer."""
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["DJANGO_DEBUG"] = "false"
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth.models import Group, User
    from django.core.cache import cache
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import RefreshToken

    from marketdata.cache_keys import latest_price_key
    from marketdata.models import Pair
    from trading.models import TradingSignal

    call_command("migrate", verbosity=0)
    viewer = Group.objects.get(name="viewer")
    tokens = []
    for number in range(users):
        user, _ = User.objects.get_or_create(username=f"bench-viewer-{number}")
        user.groups.add(viewer)
        tokens.append(str(RefreshToken.for_user(user).access_token))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for pair in Pair.objects.all():
        TradingSignal.objects.update_or_create(
            pair=pair,
            timeframe="M1",
            time=now - timedelta(minutes=1),
            defaults={"direction": "BUY", "confidence": 0.6},
        )
        cache.set(
            latest_price_key(pair.symbol),
            {"bid": "1.1", "ask": "1.1002", "time": now.isoformat(), "tradeable": True},
            timeout=3600,
        )
    print(f"machine={platform.node()} cpus={os.cpu_count()} python={platform.python_version()}")
    print(f"cpu_model={cpu_model()!r}")
    print(f"pairs={Pair.objects.count()} users={users}")
    return tokens


class RoundTrips:
    """Counts what this process sends to PostgreSQL (every statement, Django's cursors or a
    plain psycopg one) and to Redis (every command or pipeline)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._undo: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> RoundTrips:
        import psycopg
        import redis

        for owner, name, kind in (
            (psycopg.Cursor, "execute", "sql"),
            (redis.Redis, "execute_command", "redis"),
            (redis.client.Pipeline, "execute", "redis"),
        ):
            original = getattr(owner, name)
            setattr(owner, name, self._counting(original, kind))
            self._undo.append((owner, name, original))
        return self

    def _counting(self, original: Any, kind: str) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[kind] += 1
            return original(*args, **kwargs)

        return counted

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def measure_in_process(tokens: list[str], requests: int, profile: bool) -> None:
    """What one request of each endpoint costs this process, through Django's test client."""
    from django.test import Client

    # /api/health logs every 503 at ERROR; the statuses line counts them.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)

    for name, path in ENDPOINTS.items():
        client = Client(HTTP_HOST="localhost")
        headers = {"Authorization": f"Bearer {tokens[0]}"} if name in AUTHENTICATED else {}
        for _ in range(20):  # connections, prepared statements and the answer's first copy
            client.get(path, headers=headers)
        statuses: Counter[int] = Counter()
        with RoundTrips() as trips:
            began = time.perf_counter()
            for _ in range(requests):
                statuses[client.get(path, headers=headers).status_code] += 1
            elapsed = time.perf_counter() - began
        print(f"inprocess_{name}_ms={1000 * elapsed / requests:.2f}")
        print(f"inprocess_{name}_sql_per_request={trips.counts['sql'] / requests:.2f}")
        print(f"inprocess_{name}_redis_per_request={trips.counts['redis'] / requests:.2f}")
        print(f"inprocess_{name}_statuses={','.join(f'{s}:{n}' for s, n in statuses.items())}")
        if profile and name == "pairs_status":
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(requests):
                client.get(path, headers=headers)
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(40)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(port: int, workers: int, url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DJANGO_DEBUG": "false",
        "SEPTRADER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "septrader.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        # /api/health logs every 503 at ERROR; the count below says how many there were.
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit("gunicorn did not start within 30 s")


def run_load(
    port: int,
    path: str,
    tokens: list[str],
    rate: float,
    seconds: float,
    threads: int,
) -> dict[str, float]:
    """Open loop: request i is due at start + i / rate; a free thread takes the next one."""
    total = int(rate * seconds)
    due: queue.Queue[tuple[int, float] | None] = queue.Queue()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            item = due.get()
            if item is None:
                return
            index, moment = item
            wait = moment - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"} if tokens else {}
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status = 0
            elapsed = time.perf_counter() - moment
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    start = time.perf_counter() + 0.2
    for index in range(total):
        due.put((index, start + index / rate))
    for _ in pool:
        due.put(None)
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "achieved_rps": len(ordered) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "unavailable": statuses[503],
        "throttled": statuses[429],
        "errors": sum(count for status, count in statuses.items() if status not in (200, 429, 503)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=16, help="load-generator threads")
    parser.add_argument("--users", type=int, default=20, help="viewers whose tokens take turns")
    parser.add_argument(
        "--inprocess-requests", type=int, default=300, help="per endpoint, in this process"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile of /api/pairs/status on stderr"
    )
    args = parser.parse_args()
    url = bench_database_url()
    tokens = prepare(url, args.users)
    print(f"loadavg_before={load_average()}")
    measure_in_process(tokens, args.inprocess_requests, args.profile)
    port = free_port()
    server = start_gunicorn(port, args.workers, url)
    figures: dict[str, dict[str, float]] = {}
    try:
        print(f"gunicorn_workers={args.workers} rate={args.rate:g} seconds={args.seconds:g}")
        for name, path in ENDPOINTS.items():
            endpoint_tokens = tokens if name in AUTHENTICATED else []
            # A short warm-up so each worker has its database connection and imports.
            run_load(port, path, endpoint_tokens, rate=50, seconds=1, threads=4)
            figures[name] = run_load(
                port, path, endpoint_tokens, args.rate, args.seconds, args.threads
            )
            for key, value in figures[name].items():
                shown = f"{value:.1f}" if isinstance(value, float) else str(value)
                print(f"{name}_{key}={shown}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    api, bare = figures["pairs_status"], figures["pairs_status_bare"]
    print(f"pairs_status_vs_bare_p50_ratio={api['p50_ms'] / bare['p50_ms']:.2f}")
    print(f"pairs_status_vs_bare_p99_ratio={api['p99_ms'] / bare['p99_ms']:.2f}")
    print(f"loadavg_after={load_average()}")


if __name__ == "__main__":
    main()
