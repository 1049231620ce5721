"""Throughput of the OANDA simulator: REST pricing, order round trips and stream prices.

    .venv/bin/python bench/oandasim.py [--seconds 5]

The simulator runs in a subprocess pinned to CPU 0 (so "on one core") and this process, the load
generator, is pinned to CPU 1 where there is one. The raw figures use a lean keep-alive
`http.client` connection so the client is not what is measured; the `oandapyV20_*` figures show
what the real client (requests underneath) reaches against the same server. Prints name=value.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.trades as trades

from oandasim.client import SimulatorProcess

TOKEN = "bench-token"
ACCOUNT = "101-001-0000000-001"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def _start(extra: list[str]) -> SimulatorProcess:
    process = SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=["--rate-limit", "0", "--start", "2025-07-24T09:00:00Z", *extra],
    )
    process.start()
    assert process.process is not None
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(process.process.pid, {0})
    return process


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux only; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on a socket, cheap enough not to be the bottleneck."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.socket.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.socket.recv(65536)
        header, _, rest = self.buffer.partition(b"\r\n\r\n")
        start = header.index(b"Content-Length:") + 15
        length = int(header[start : header.index(b"\r\n", start)])
        while len(rest) < length:
            rest += self.socket.recv(65536)
        self.buffer = rest[length:]
        return int(header[9:12]), rest[:length]

    def close(self) -> None:
        self.socket.close()


def _drive(port: int, seconds: float, connections: int, work) -> tuple[int, float]:
    """Run `work(connection)` in a loop on several keep-alive connections; return count, time."""
    counts = [0] * connections
    stop_at = time.perf_counter() + seconds

    def run(index: int) -> None:
        connection = RawConnection(port)
        while time.perf_counter() < stop_at:
            work(connection)
            counts[index] += 1
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - began


def bench_rest(sim: SimulatorProcess, seconds: float, connections: int) -> dict[str, float]:
    assert sim.process is not None
    pid = sim.process.pid
    base = f"/v3/accounts/{ACCOUNT}"
    results: dict[str, float] = {}

    pricing_path = f"{base}/pricing?instruments=EUR_USD"

    def price(connection: RawConnection) -> None:
        status, _ = connection.request("GET", pricing_path)
        assert status == 200

    order = json.dumps({"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1000"}})
    marker = b'"tradeOpened":{"tradeID":"'

    def round_trip(connection: RawConnection) -> None:
        status, created = connection.request("POST", f"{base}/orders", order.encode())
        assert status == 201, created
        start = created.index(marker) + len(marker)
        trade_id = created[start : created.index(b'"', start)].decode()
        status, _ = connection.request("PUT", f"{base}/trades/{trade_id}/close")
        assert status == 200

    for name, work in (("pricing_requests", price), ("order_round_trips", round_trip)):
        cpu_before = _cpu_seconds(pid)
        count, elapsed = _drive(sim.port, seconds, connections, work)
        cpu = _cpu_seconds(pid) - cpu_before
        results[f"{name}_per_s"] = count / elapsed
        if cpu > 0:
            results[f"{name}_server_cpu_ms_each"] = 1000 * cpu / count
            results[f"{name}_per_server_cpu_s"] = count / cpu
    # One connection, one request at a time: the latency a single bot sees.
    count, elapsed = _drive(sim.port, seconds, 1, round_trip)
    results["order_round_trip_latency_ms_one_connection"] = 1000 * elapsed / count
    return results


def bench_oandapyv20(sim: SimulatorProcess, seconds: float) -> dict[str, float]:
    api = sim.api()
    results: dict[str, float] = {}
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        api.request(pricing.PricingInfo(ACCOUNT, params={"instruments": "EUR_USD"}))
        count += 1
    results["oandapyV20_pricing_requests_per_s"] = count / (time.perf_counter() - began)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        created = api.request(
            orders.OrderCreate(
                ACCOUNT, data={"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1"}}
            )
        )
        api.request(
            trades.TradeClose(ACCOUNT, created["orderFillTransaction"]["tradeOpened"]["tradeID"])
        )
        count += 1
    results["oandapyV20_order_round_trips_per_s"] = count / (time.perf_counter() - began)
    return results


def bench_stream(sim: SimulatorProcess, seconds: float) -> dict[str, float]:
    names = "EUR_USD,GBP_USD,USD_JPY,EUR_GBP,AUD_USD,USD_CHF,USD_CAD,EUR_JPY"
    connection = http.client.HTTPConnection("127.0.0.1", sim.port)
    connection.request(
        "GET", f"/v3/accounts/{ACCOUNT}/pricing/stream?instruments={names}", headers=HEADERS
    )
    response = connection.getresponse()
    prices, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        line = response.readline()
        if b'"PRICE"' in line:
            prices += 1
    elapsed = time.perf_counter() - began
    connection.close()
    return {"stream_prices_per_s": prices / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    _pin(1)
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]}")
    sim = _start(["--paused"])
    try:
        figures = bench_rest(sim, args.seconds, args.connections)
        figures.update(bench_oandapyv20(sim, args.seconds))
    finally:
        sim.stop()
    # The stream bench removes OANDA's 250 ms batching and runs the clock fast, so every loop
    # of the stream writer has new prices: this is the ceiling, not OANDA's 4 prices/s/pair.
    sim = _start(["--speed", "100000", "--stream-interval", "0"])
    try:
        figures.update(bench_stream(sim, args.seconds))
    finally:
        sim.stop()
    for name, value in figures.items():
        print(
            f"{name}={value:.3f}"
            if name.endswith("_ms_each") or "_ms_" in name
            else f"{name}={value:.0f}"
        )


if __name__ == "__main__":
    main()
