"""``python -m qfh``: analyse bit windows from a file, or benchmark the engine.

    python -m qfh analyze --input windows.txt [--collapse-threshold 0.5] [--backend numpy]
    python -m qfh bench --window 64 --windows 1000000 [--pairs 7] [--dtype float32]

``analyze`` reads one window per line (a string of 0 and 1) and writes the golden file's CSV to
stdout. Lines holding anything else are reported on stderr with their line number; the other
lines are still analysed and the exit status is 1. Blank lines are skipped.

``--backend auto|numpy|cupy`` picks the array module of the run; without it the ``QFH_BACKEND``
environment variable does (read here, where the work enters), else ``auto``. A GPU asked for
where no CUDA device answers is an error (exit status 2) naming the flag or the variable.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from types import ModuleType
from typing import TextIO

import numpy as np

from qfh.engine import (
    DEFAULT_PARAMS,
    GOLDEN_COLUMNS,
    QFHBatchResult,
    analyze_sliding,
    analyze_windows,
    choose_array_module,
    parse_bit_strings,
    to_numpy,
)
from qfh.engine.backend import SETTING, BackendError, module_name, synchronize
from qfh.engine.batch import sliding_block_windows

HEADER = ("bits", *GOLDEN_COLUMNS)
INTEGER_COLUMNS = {"null_count", "flip_count", "rupture_count", "collapse"}


def format_number(value: float) -> str:
    """Nine significant digits, as the original's ``std::setprecision(9)`` output."""
    return f"{value:.9g}"


def _read_windows(stream: TextIO) -> tuple[list[str], list[tuple[int, str]]]:
    windows: list[str] = []
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        if set(line) <= {"0", "1"}:
            windows.append(line)
        else:
            errors.append((number, line))
    return windows, errors


def array_module_from(backend: str | None) -> ModuleType:
    """The run's array module: ``--backend``, else ``QFH_BACKEND``, else auto (entry points only:
    the engine itself never reads the environment)."""
    if backend:
        return choose_array_module(backend, setting="--backend")
    return choose_array_module(os.environ.get(SETTING) or "auto", setting=SETTING)


def run_analyze(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    params = replace(DEFAULT_PARAMS, collapse_threshold=args.collapse_threshold)
    try:
        if args.input == "-":
            windows, errors = _read_windows(sys.stdin)
        else:
            with open(args.input, encoding="utf-8", errors="replace") as stream:
                windows, errors = _read_windows(stream)
        xp = array_module_from(args.backend)
    except (OSError, BackendError) as error:
        print(f"qfh analyze: {error}", file=stderr)
        return 2
    for number, line in errors:
        shown = line if len(line) <= 80 else line[:77] + "..."
        print(f"qfh analyze: line {number}: expected only 0 and 1, got {shown!r}", file=stderr)
    matrix, lengths = parse_bit_strings(windows)
    result = analyze_windows(
        xp.asarray(matrix),
        xp.asarray(lengths),
        params,
        original_precision=args.precision == "original",
    )
    columns = {name: to_numpy(value) for name, value in result.columns().items()}
    stdout.write(",".join(HEADER) + "\n")
    for row, bits in enumerate(windows):
        cells = [bits]
        for name in GOLDEN_COLUMNS:
            value = columns[name][row]
            cells.append(str(int(value)) if name in INTEGER_COLUMNS else format_number(value))
        stdout.write(",".join(cells) + "\n")
    return 1 if errors else 0


def measure_windows_per_second(
    *,
    window: int,
    windows: int,
    pairs: int = 1,
    xp: ModuleType,
    dtype: str = "float64",
    repeat: int = 3,
    seed: int = 20250723,
) -> dict[str, float | str]:
    """Time ``analyze_sliding`` (every metric) on random bits; best rates over ``repeat`` runs.

    ``windows`` counts windows over all pairs. A warm-up run on a small slice first builds the
    look-up tables and, on CuPy, compiles the kernels. Two figures come back: with a fresh
    output each run ("fresh_output": allocation and first touch of about 80 bytes per window
    included) and writing into a reused output (``out=``, the steady state of a caller that
    analyses series after series). ``block_windows`` is the block the engine chose on ``xp``.
    """
    per_pair = -(-windows // pairs)
    rng = np.random.default_rng(seed)
    host_bits = rng.integers(0, 2, size=(pairs, per_pair + window - 1), dtype=np.uint8)
    bits = xp.asarray(host_bits)

    def once(series: object, out: QFHBatchResult | None = None) -> float:
        started = time.perf_counter()
        analyze_sliding(series, window, dtype=dtype, out=out)
        synchronize(xp)
        return time.perf_counter() - started

    once(bits[:, : min(per_pair, 4096) + window - 1])
    fresh = [once(bits) for _ in range(repeat)]
    reused_output = analyze_sliding(bits, window, dtype=dtype)
    reused = [once(bits, reused_output) for _ in range(repeat)]
    total = per_pair * pairs
    return {
        "backend": module_name(xp),
        "block_windows": sliding_block_windows(xp, window),
        "windows": total,
        "seconds_fresh_output": min(fresh),
        "seconds": min(reused),
        "windows_per_second_fresh_output": total / min(fresh),
        "windows_per_second": total / min(reused),
    }


def run_bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.windows < 1 or args.pairs < 1 or args.window < 1 or args.repeat < 1:
        print("qfh bench: --window, --windows, --pairs and --repeat must be positive", file=stderr)
        return 2
    try:
        figures = measure_windows_per_second(
            window=args.window,
            windows=args.windows,
            pairs=args.pairs,
            xp=array_module_from(args.backend),
            dtype=args.dtype,
            repeat=args.repeat,
            seed=args.seed,
        )
    except BackendError as error:
        print(f"qfh bench: {error}", file=stderr)
        return 2
    print(
        f"backend={figures['backend']} dtype={args.dtype} window={args.window} "
        f"pairs={args.pairs} windows={figures['windows']} runs={args.repeat} "
        f"block_windows={figures['block_windows']}",
        file=stdout,
    )
    print(f"seconds_fresh_output={figures['seconds_fresh_output']:.4f}", file=stdout)
    print(f"seconds={figures['seconds']:.4f}", file=stdout)
    print(
        f"windows_per_second_fresh_output={figures['windows_per_second_fresh_output']:.0f}",
        file=stdout,
    )
    print(f"windows_per_second={figures['windows_per_second']:.0f}", file=stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qfh", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    analyze = commands.add_parser("analyze", help="QFH of one bit window per input line, as CSV")
    analyze.add_argument("--input", required=True, help="file with one window per line, or -")
    analyze.add_argument("--collapse-threshold", type=float, default=0.5)
    analyze.add_argument("--backend", choices=("auto", "numpy", "cupy"), default=None)
    analyze.add_argument(
        "--precision",
        choices=("original", "float64"),
        default="original",
        help="original: round where the C++ engine used float (default); float64: the spec",
    )
    analyze.set_defaults(handler=run_analyze)

    bench = commands.add_parser("bench", help="time the engine on random sliding windows")
    bench.add_argument("--window", type=int, required=True)
    bench.add_argument("--windows", type=int, required=True, help="total windows (all pairs)")
    bench.add_argument("--pairs", type=int, default=1)
    bench.add_argument("--backend", choices=("auto", "numpy", "cupy"), default=None)
    bench.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    bench.add_argument("--repeat", type=int, default=3)
    bench.add_argument("--seed", type=int, default=20250723)
    bench.set_defaults(handler=run_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    return int(handler(args, sys.stdout, sys.stderr))
