"""Benchmark of the QFH engine: sliding windows per second, printed as name=value lines.

    .venv/bin/python bench/qfh.py [--backend auto|numpy|cupy] [--scale 1.0]

It times the full metric set (``analyze_sliding``) on random bits for windows of 11 and 64 bits,
float64 and float32, one pair and 7 pairs batched, and compares with the original C++ engine
(single-threaded: about 256,000 windows/s at 64 bits and 875,000 at 11 bits, per the issue).
The array module is ``--backend``, else ``QFH_BACKEND``, else auto. It prints the block the engine
chose per window length on the CPU (cache-sized) and on the device (from its free memory).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# ``qfh`` package; the repository root must win.
REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from qfh.cli import array_module_from, measure_windows_per_second  # noqa: E402
from qfh.engine.backend import BackendError, module_name  # noqa: E402
from qfh.engine.batch import sliding_block_windows  # noqa: E402

ORIGINAL_WINDOWS_PER_SECOND = {11: 875_000, 64: 256_000}
# Windows per case: enough for a steady rate, small enough to finish in about a minute on 2 cores.
WINDOWS = {11: 4_000_000, 64: 1_000_000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("auto", "numpy", "cupy"), default=None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the window counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        xp = array_module_from(args.backend)
    except BackendError as error:
        parser.exit(2, f"bench/qfh.py: {error}\n")

    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}")
    print(f"qfh_backend={module_name(xp)}")
    for window in (11, 64):
        device = sliding_block_windows(xp, window) if xp is not np else "none"
        print(f"qfh_block_windows_cpu_w{window}={sliding_block_windows(np, window)}")
        print(f"qfh_block_windows_device_w{window}={device}")
    for window in (11, 64):
        for dtype in ("float64", "float32"):
            for pairs in (1, 7):
                figures = measure_windows_per_second(
                    window=window,
                    windows=max(pairs, int(WINDOWS[window] * args.scale)),
                    pairs=pairs,
                    xp=xp,
                    dtype=dtype,
                    repeat=args.repeat,
                )
                name = f"qfh_{figures['backend']}_w{window}_{dtype}_pairs{pairs}"
                for figure in ("windows_per_second", "windows_per_second_fresh_output"):
                    rate = float(figures[figure])
                    print(f"{name}_{figure}={rate:.0f}")
                rate = float(figures["windows_per_second"])
                print(f"{name}_vs_original_cpp={rate / ORIGINAL_WINDOWS_PER_SECOND[window]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
