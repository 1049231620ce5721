"""Command line: `python -m oandasim --port 8081 --token TOKEN --account 101-001-0000000-001`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path

from oandasim.broker import Broker
from oandasim.clock import SimClock
from oandasim.instruments import INSTRUMENTS, FinancingRates
from oandasim.market import BUNDLED_DATA, SYNTHETIC_HISTORY_DAYS, Market, Series, load_candle_file
from oandasim.server import Settings, SimServer
from oandasim.timeutil import format_time, parse_time


def _pairs(values: list[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        name, separator, setting = value.partition("=")
        if not separator or name not in INSTRUMENTS:
            raise SystemExit(f"{option} expects PAIR=VALUE with a known pair, got {value!r}")
        result[name] = setting
    return result


def financing_rates(values: list[str]) -> dict[str, FinancingRates]:
    """`--financing PAIR=LONG:SHORT` annual rates, signed as OANDA publishes them."""
    rates: dict[str, FinancingRates] = {}
    for name, setting in _pairs(values, "--financing").items():
        long_rate, separator, short_rate = setting.partition(":")
        try:
            if not separator:
                raise ValueError(setting)
            rates[name] = FinancingRates(Decimal(long_rate), Decimal(short_rate))
        except (ArithmeticError, ValueError):
            raise SystemExit(
                f"--financing expects PAIR=LONG:SHORT annual rates such as "
                f"EUR_USD=-0.0300:0.0100, got {name}={setting!r}"
            ) from None
        if not (rates[name].long_rate.is_finite() and rates[name].short_rate.is_finite()):
            raise SystemExit(f"--financing rates must be finite numbers, got {name}={setting!r}")
    return rates


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m oandasim", description="An offline OANDA v20 REST and streaming simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", required=True, help="the Bearer token clients must send")
    parser.add_argument("--account", required=True, help="the one account id, e.g. 101-001-1-001")
    parser.add_argument("--currency", default="USD", help="account (home) currency")
    parser.add_argument("--balance", default="100000", help="opening deposit")
    parser.add_argument("--margin-rate", default="0.02", help="0.02 is OANDA US's 50:1")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PAIR=FILE",
        help="M1 candles to replay (seed list or OANDA candles JSON); others are synthetic",
    )
    parser.add_argument("--start", help="simulated start time, ISO 8601 (UTC unless an offset)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--paused", action="store_true", help="start with the clock paused")
    parser.add_argument(
        "--spread-pips",
        action="append",
        default=[],
        metavar="PAIR=N",
        help="full bid/ask spread in pips (x4 around the 17:00 New York roll)",
    )
    parser.add_argument(
        "--financing",
        action="append",
        default=[],
        metavar="PAIR=LONG:SHORT",
        help="annual financing rates charged at the 17:00 New York rollover, signed as OANDA "
        "publishes them (negative: the holder pays), e.g. EUR_USD=-0.0300:0.0100; default 0",
    )
    parser.add_argument("--heartbeat", type=float, default=5.0, help="stream heartbeat seconds")
    parser.add_argument(
        "--stream-interval",
        type=float,
        default=0.25,
        help="seconds between price batches on the pricing stream (OANDA: 0.25)",
    )
    parser.add_argument(
        "--stream-unchanged",
        action="store_true",
        help="send every tradeable price in every batch, changed or not (load tests: with "
        "--stream-interval 0.25 that is 4 prices/s per instrument)",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=120, help="REST requests per second, 0 for none"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the synthetic walks")
    parser.add_argument(
        "--history-days",
        type=float,
        default=SYNTHETIC_HISTORY_DAYS,
        help="how far back synthetic candles reach before --start",
    )
    parser.add_argument("--state", type=Path, help="JSON file the account is kept in")
    return parser


def build_market(args: argparse.Namespace) -> tuple[Market, float]:
    """Load data files and make synthetic series; return the market and the clock's start."""
    spreads = {
        name: Decimal(value) for name, value in _pairs(args.spread_pips, "--spread-pips").items()
    }
    files = {name: Path(value) for name, value in _pairs(args.data, "--data").items()}
    loaded = {name: load_candle_file(path, INSTRUMENTS[name]) for name, path in files.items()}
    if not files:
        bundled = load_candle_file(BUNDLED_DATA, INSTRUMENTS["EUR_USD"])
        first, last = min(bundled) * 60.0, max(bundled) * 60.0 + 60.0
        # The bundled minutes are used when the clock starts inside them; otherwise EUR_USD
        # becomes a synthetic walk like the other pairs, so it is never closed for lack of data.
        if args.start is None or first <= parse_time(args.start) < last:
            loaded["EUR_USD"] = bundled
    if args.start is not None:
        start = parse_time(args.start)
    elif loaded:
        # Twelve hours into the data leaves history to look back on and the rest to replay.
        starts = [
            min(c) * 60.0 + min(12 * 3600.0, (max(c) - min(c)) * 30.0) for c in loaded.values()
        ]
        start = max(starts)
    else:
        raise SystemExit("--start is required when no data is replayed")
    history_floor = start - args.history_days * 86400.0
    series = {
        name: Series(
            instrument,
            spreads.get(name, instrument.default_spread_pips),
            loaded.get(name),
            seed=args.seed,
            history_floor=history_floor,
        )
        for name, instrument in INSTRUMENTS.items()
    }
    return Market(series), start


async def serve(args: argparse.Namespace) -> None:
    market, start = build_market(args)
    saved = None
    if args.state is not None and args.state.exists():
        saved = json.loads(args.state.read_text())
        if saved["account_id"] != args.account:
            raise SystemExit(
                f"{args.state} holds account {saved['account_id']}, not {args.account}"
            )
        # The clock resumes where the saved account left it, never before its last transaction.
        start = max(start, saved["clock"]) if args.start else saved["clock"]
    clock = SimClock(start, args.speed, paused=args.paused)
    broker = Broker(
        market=market,
        clock=clock,
        account_id=args.account,
        currency=args.currency,
        balance=Decimal(args.balance),
        margin_rate=Decimal(args.margin_rate),
        financing=financing_rates(args.financing),
    )
    if saved is not None:
        broker.load_state(saved)
    settings = Settings(
        token=args.token,
        heartbeat=args.heartbeat,
        stream_interval=args.stream_interval,
        stream_unchanged=args.stream_unchanged,
        rate_limit=args.rate_limit,
        state_file=args.state,
    )
    server = SimServer(broker, settings)
    await server.start(args.host, args.port)
    server.save_state()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"oandasim ready on http://{args.host}:{server.port} account={args.account} "
        f"start={format_time(start)} speed={args.speed:g}",
        flush=True,
    )
    await stop.wait()
    await server.stop()
    with contextlib.suppress(BrokenPipeError):
        print("oandasim stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
