"""Benchmark of training: candles x parameter sets evaluated per second in a walk-forward search.

    .venv/bin/python bench/train.py [--scale 1.0] [--sets 1000] [--pairs 7] [--backend numpy]

The full case (scale 1) is a search of 1,000 parameter sets over one year of M1 candles (52
trading weeks, 374,400 minutes) for 7 pairs, 4 rolling folds, on synthetic random-walk candles
(the throughput does not depend on the prices). ``--scale`` shrinks the year; the projection to
the full case assumes time linear in candles, which holds because every step is linear in them.

The first pair runs once cold before the timing (it pays for CuPy's kernel compilation and the
engine's tables) and is printed apart (``train_cold_pair_seconds``); then every pair is timed
warm. The array module is ``--backend``, else ``QFH_BACKEND``, else auto; the block of parameter
sets chosen on the CPU (cache-sized) and on the device (from its free memory) is printed.
Prints name=value lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would shadow packages;
# the repository root must win.
REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import numpy as np  # noqa: E402

from qfh.cli import array_module_from  # noqa: E402
from qfh.engine.backend import BackendError, module_name, synchronize  # noqa: E402
from qfh.evaluation.candles import Candles  # noqa: E402
from qfh.evaluation.outcomes import Costs  # noqa: E402
from qfh.evaluation.training import SearchSpace, block_sets, walk_forward  # noqa: E402

MINUTES_PER_YEAR = 52 * 5 * 1440
# Monday 2025-01-06 00:00 UTC.
FIRST_MONDAY = 1_736_121_600


def synthetic_year(minutes: int, seed: int) -> Candles:
    """Weekday minutes (Monday to Friday UTC) of a random walk with about 0.6 pip per minute."""
    rng = np.random.default_rng(seed)
    index = np.arange(minutes, dtype=np.int64)
    week, minute = np.divmod(index, 5 * 1440)
    times = FIRST_MONDAY + week * 7 * 86_400 + minute * 60
    steps = rng.normal(0.0, 0.6e-4, minutes)
    close = 1.1 + np.cumsum(steps)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.4e-4, (2, minutes)))
    return Candles(
        times=times,
        open=open_,
        high=np.maximum(open_, close) + wick[0],
        low=np.minimum(open_, close) - wick[1],
        close=close,
        volume=rng.integers(20, 300, minutes).astype(np.float64),
    )


def run(
    *, scale: float, sets: int, pairs: int, folds: int, xp: Any, say: Any = print
) -> dict[str, float]:
    """The benchmark on ``xp``; ``say`` prints each name=value line. Returns the figures."""
    minutes = max(5000, int(MINUTES_PER_YEAR * scale))
    space = SearchSpace(sets=sets)
    say(f"train_backend={module_name(xp)}")
    say(f"train_pairs={pairs}")
    say(f"train_candles_per_pair={minutes}")
    say(f"train_sets={sets}")
    say(f"train_folds={folds}")
    say(f"train_block_sets_cpu={block_sets(np, minutes)}")
    say(f"train_block_sets_device={block_sets(xp, minutes) if xp is not np else 'none'}")

    def one(pair: int) -> tuple[float, int]:
        candles = synthetic_year(minutes, seed=pair)
        started = time.perf_counter()
        result = walk_forward(candles, space=space, folds=folds, seed=pair, costs=Costs(), xp=xp)
        synchronize(xp)
        return time.perf_counter() - started, result.evaluated_cells

    cold, _ = one(0)
    say(f"train_cold_pair_seconds={cold:.2f}")
    total = 0.0
    cells = 0
    for pair in range(pairs):
        elapsed, evaluated = one(pair)
        total += elapsed
        cells += evaluated
        say(f"train_pair{pair}_seconds={elapsed:.2f}")
    rate = cells / total
    full_cells = 7 * MINUTES_PER_YEAR * 1000
    say(f"train_seconds={total:.2f}")
    say(f"train_candle_sets_per_second={rate:.0f}")
    say(f"train_full_case_projected_seconds={full_cells / rate:.0f}")
    return {"cold_seconds": cold, "seconds": total, "rate": rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of a year of M1")
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--backend", choices=("auto", "numpy", "cupy"), default=None)
    args = parser.parse_args()
    try:
        xp = array_module_from(args.backend)
    except BackendError as error:
        parser.exit(2, f"bench/train.py: {error}\n")

    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}")
    run(scale=args.scale, sets=args.sets, pairs=args.pairs, folds=args.folds, xp=xp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
