"""Benchmark of training: candles x parameter sets evaluated per second in a walk-forward search.

    .venv/bin/python bench/train.py [--scale 1.0] [--sets 1000] [--pairs 7] [--backend numpy|cupy]

The full case (scale 1) is a search of 1,000 parameter sets over one year of M1 candles (52
trading weeks, 374,400 minutes) for 7 pairs, 4 rolling folds, on synthetic random-walk candles
(the throughput does not depend on the prices). ``--scale`` shrinks the year; the projection to
the full case assumes time linear in candles, which holds because every step is linear in them.
Prints name=value lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow packages;
# the repository root must win.
REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import numpy as np  # noqa: E402

from qfh.engine import get_array_module  # noqa: E402
from qfh.evaluation.candles import Candles  # noqa: E402
from qfh.evaluation.outcomes import Costs  # noqa: E402
from qfh.evaluation.training import SearchSpace, walk_forward  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of a year of M1")
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--backend", choices=("auto", "numpy", "cupy"), default=None)
    args = parser.parse_args()

    xp = get_array_module(args.backend)
    minutes = max(5000, int(MINUTES_PER_YEAR * args.scale))
    space = SearchSpace(sets=args.sets)
    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}")
    print(f"train_backend={xp.__name__}")
    print(f"train_pairs={args.pairs}")
    print(f"train_candles_per_pair={minutes}")
    print(f"train_sets={args.sets}")
    print(f"train_folds={args.folds}")
    total = 0.0
    cells = 0
    for pair in range(args.pairs):
        candles = synthetic_year(minutes, seed=pair)
        started = time.perf_counter()
        result = walk_forward(
            candles, space=space, folds=args.folds, seed=pair, costs=Costs(), backend=xp
        )
        elapsed = time.perf_counter() - started
        total += elapsed
        cells += result.evaluated_cells
        print(f"train_pair{pair}_seconds={elapsed:.2f}", flush=True)
    rate = cells / total
    full_cells = 7 * MINUTES_PER_YEAR * 1000
    print(f"train_seconds={total:.2f}")
    print(f"train_candle_sets_per_second={rate:.0f}")
    print(f"train_full_case_projected_seconds={full_cells / rate:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
