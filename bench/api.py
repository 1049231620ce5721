"""API latency under gunicorn at a fixed request rate (prints figures, asserts nothing).

    eval "$(scripts/services.sh env)"; .venv/bin/python bench/api.py [--rate 200] [--seconds 20]

1. Prepares ``<DATABASE_URL's name>_bench`` (migrated; a viewer user; a signal per pair and a
   cached price per pair, so ``/api/pairs/status`` has something to join).
2. Starts gunicorn on a free port (``--workers`` sync workers, 2 by default: one per core).
3. For each endpoint, an open-loop load generator sends requests at a fixed rate on keep-alive
   connections from a pool of threads. Latency is measured from the moment each request was
   *due*, so a server that falls behind is charged for the queue it causes (no coordinated
   omission).

Prints ``name=value`` lines per endpoint: achieved requests/s, p50, p99, max, errors.
The goal (issue #8): p99 under 50 ms at 200 requests/s on the 2-core machine. The user
throttle is raised for the run, so the figures measure the API rather than its rate limit.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import bench_database_url, ensure_database

REPO = Path(__file__).resolve().parent.parent


def prepare(url: str) -> str:
    """Migrate the bench database, seed it, and return a viewer's access token."""
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "septrader.settings")
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth.models import Group, User
    from django.core.cache import cache
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import RefreshToken

    from marketdata.models import Pair
    from marketdata.streaming import latest_price_key
    from trading.models import TradingSignal

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
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
    print(f"pairs={Pair.objects.count()}")
    return str(RefreshToken.for_user(user).access_token)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(port: int, workers: int, url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "DJANGO_DEBUG": "false",
        "API_THROTTLE_USER": "1000000/min",
        "API_THROTTLE_ANON": "1000000/min",
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
    port: int, path: str, headers: dict[str, str], rate: float, seconds: float, threads: int
) -> dict[str, float]:
    """Open loop: request i is due at start + i / rate; a free thread takes the next one."""
    total = int(rate * seconds)
    due: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            moment = due.get()
            if moment is None:
                return
            wait = moment - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                ok = False
            elapsed = time.perf_counter() - moment
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors[0] += 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    start = time.perf_counter() + 0.2
    for index in range(total):
        due.put(start + index / rate)
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
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=16, help="load-generator threads")
    args = parser.parse_args()
    url = bench_database_url()
    token = prepare(url)
    port = free_port()
    server = start_gunicorn(port, args.workers, url)
    endpoints = [("pairs_status", "/api/pairs/status", {"Authorization": f"Bearer {token}"})]
    # /api/health belongs to the monitoring app; it is measured wherever it is installed.
    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        probe.request("GET", "/api/health")
        if probe.getresponse().status != 404:
            endpoints.append(("health", "/api/health", {}))
        else:
            print("health=absent (the monitoring app is not installed in this checkout)")
        probe.close()
        print(f"gunicorn_workers={args.workers} rate={args.rate:g} seconds={args.seconds:g}")
        for name, path, headers in endpoints:
            # A short warm-up so each worker has its database connection and imports.
            run_load(port, path, headers, rate=50, seconds=1, threads=4)
            figures = run_load(port, path, headers, args.rate, args.seconds, args.threads)
            for key, value in figures.items():
                shown = f"{value:.1f}" if isinstance(value, float) else str(value)
                print(f"{name}_{key}={shown}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
