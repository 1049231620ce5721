"""The GPU check: whether the GPU half of the product works on this machine, in one command.

    python bench/gpu_check.py                          # the GPU PC: CuPy on device 0
    python bench/gpu_check.py --small --strict-double  # any CPU (make test runs this)

Needs a checkout of this repository, Python, NumPy and CuPy; no Django, no database, no servers.
It prints name=value lines and a verdict per check, and exits 1 if a check fails (2 if no CUDA
device answers):

1. ``device``: the GPU, its memory, the CuPy/CUDA versions, and the blocks the engine chooses on
   the CPU (cache-sized) and on the device (from its free memory);
2. ``golden``: the day-1 golden file (tests/qfh/data/qfh_reference_day1.csv, the original C++
   engine's output), and any other golden CSV in ../shared/golden/ next to the checkout, analysed
   on the device in the original precision: no value off by > 1e-5;
3. ``agreement``: ``analyze_sliding`` (windows 11, 17, 64, 100; 7 pairs) and ``analyze_trailing``
   on the device against NumPy, float64: within 1e-9;
4. ``live``: ``features_batch`` for 28 pairs with default settings (the candles the live analysis
   reads, M1 with M5/M15) and the default rule's signals, device against NumPy within 1e-9;
5. ``evaluate``: ``evaluate_rule`` with default settings on the bundled 48 h of EUR/USD minutes,
   device against NumPy within 1e-9;
6. ``training``: ``walk_forward`` device against NumPy within 1e-9, then bench/train.py's run:
   1,000 sets x 1 year of M1 x 7 pairs, the first (cold) pair printed apart; goal <= 10 s warm;
7. ``engine``: sliding windows per second, 7 pairs: 64 bits (20 M windows) and 11 bits (80 M), in
   float32 and float64; goals >= 500 M/s at 64 bits and >= 3 G/s at 11 bits, in float32.

The speed goals are judged on a real GPU only. ``--small`` shrinks every size so that the check
runs in seconds on a CPU; ``--strict-double`` runs it on the strict device double of the tests
(tests/qfh/strict_device.py: NumPy underneath, refusing every host/device mix as CuPy does).
``--scale`` shrinks the speed runs on a GPU with little memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

# Run as a script, this file's folder comes first on sys.path and bench/qfh.py would shadow the
# ``qfh`` package; the repository root must win.
REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import numpy as np  # noqa: E402

from bench import train as train_bench  # noqa: E402
from qfh import rules  # noqa: E402
from qfh.cli import measure_windows_per_second  # noqa: E402
from qfh.engine import analyze_sliding, analyze_trailing  # noqa: E402
from qfh.engine.backend import (  # noqa: E402
    device_module,
    free_device_bytes,
    module_name,
    synchronize,
)
from qfh.engine.batch import dense_block_rows, sliding_block_windows  # noqa: E402
from qfh.evaluation.candles import Candles  # noqa: E402
from qfh.evaluation.evaluate import evaluate_rule, rule_signals  # noqa: E402
from qfh.evaluation.features import FeatureRequest, features_batch, history_needed  # noqa: E402
from qfh.evaluation.training import SearchSpace, block_sets, walk_forward  # noqa: E402
from tests.qfh.parity import GOLDEN_FILE, golden_parity, golden_rows, max_difference  # noqa: E402

TOLERANCE = 1e-9
GOLDEN_MISMATCHES_ALLOWED = 0
GOAL_64_BIT_FLOAT32 = 500e6
GOAL_11_BIT_FLOAT32 = 3e9
GOAL_TRAINING_SECONDS = 10.0
LIVE_PAIRS = 28
CANDLES_FILE = REPO / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"
# The project's shared folder, next to the checkout where it exists, may hold more golden days.
SHARED_GOLDEN = REPO.parent / "shared" / "golden"


class Check:
    """Collects name=value lines and verdicts; a failed verdict fails the run."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def say(self, name: str, value: Any) -> None:
        print(f"{name}={value}", flush=True)

    def verdict(self, name: str, passed: bool, why: str) -> None:
        self.say(f"check_{name}", f"{'PASS' if passed else 'FAIL'} ({why})")
        if not passed:
            self.failed.append(name)


def device_section(check: Check, xp: ModuleType) -> None:
    props = xp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    free = free_device_bytes(xp)
    _, total = xp.cuda.Device().mem_info
    check.say("device_name", name.decode() if isinstance(name, bytes) else name)
    check.say("device_memory_free_gib", f"{free / 2**30:.1f}")
    check.say("device_memory_total_gib", f"{total / 2**30:.1f}")
    check.say("device_module", module_name(xp))
    check.say("device_module_version", getattr(xp, "__version__", "?"))
    check.say("cuda_runtime_version", xp.cuda.runtime.runtimeGetVersion())
    check.say("cuda_driver_version", xp.cuda.runtime.driverGetVersion())
    check.say("numpy_version", np.__version__)
    check.say("python", platform.python_version())
    for window in (11, 64):
        check.say(f"block_windows_cpu_w{window}", sliding_block_windows(np, window))
        check.say(f"block_windows_device_w{window}", sliding_block_windows(xp, window))
    check.say("block_dense_rows_cpu_w64", dense_block_rows(np, 64))
    check.say("block_dense_rows_device_w64", dense_block_rows(xp, 64))
    year = train_bench.MINUTES_PER_YEAR
    check.say("block_training_sets_cpu_year", block_sets(np, year))
    check.say("block_training_sets_device_year", block_sets(xp, year))


def golden_files() -> list[Path]:
    """The repository's day-1 file, and the shared golden files that differ from it."""
    files = [GOLDEN_FILE]
    if SHARED_GOLDEN.is_dir():
        day1 = GOLDEN_FILE.read_bytes()
        files += [p for p in sorted(SHARED_GOLDEN.glob("*.csv")) if p.read_bytes() != day1]
    return files


def golden_section(check: Check, xp: ModuleType) -> None:
    mismatches = values = 0
    for path in golden_files():
        parity = golden_parity(xp, golden_rows(path))
        check.say("golden_file", path.name)
        for name, value in parity.items():
            check.say(f"golden_{name}", value)
        mismatches += int(parity["mismatches"])
        values += int(parity["values"])
    check.verdict(
        "golden",
        mismatches <= GOLDEN_MISMATCHES_ALLOWED,
        f"{mismatches} of {values} values off by more than 1e-5",
    )


def agreement_section(check: Check, xp: ModuleType, small: bool) -> None:
    rng = np.random.default_rng(20250723)
    bits = rng.integers(0, 2, size=(7, 2000 if small else 20000), dtype=np.uint8)
    on_device = xp.asarray(bits)
    worst = 0.0
    for window in (11, 17, 64, 100):
        difference = max_difference(
            analyze_sliding(on_device, window), analyze_sliding(bits, window)
        )
        check.say(f"agreement_sliding_w{window}_max", f"{difference:.3g}")
        worst = max(worst, difference)
    device_trailing, _ = analyze_trailing(on_device, 11)
    host_trailing, _ = analyze_trailing(bits, 11)
    difference = max_difference(device_trailing, host_trailing)
    check.say("agreement_trailing_w11_max", f"{difference:.3g}")
    worst = max(worst, difference)
    check.verdict("agreement", worst <= TOLERANCE, f"max difference {worst:.3g}")


def timed(xp: ModuleType, function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    synchronize(xp)
    return result, time.perf_counter() - started


def live_section(check: Check, xp: ModuleType) -> None:
    rule = rules.validate_rule("testbed")
    need = history_needed(
        window=rule.params["window"],
        volatility_lookback=rule.params["volatility_lookback"],
        confirm=True,
    )
    # 28 pairs with the history the live analysis reads, ending on the same minute.
    requests = [
        FeatureRequest(
            candles=train_bench.synthetic_year(need, seed=pair),
            window=rule.params["window"],
            volatility_lookback=rule.params["volatility_lookback"],
            confirm=True,
        )
        for pair in range(LIVE_PAIRS)
    ]

    def analyse(module: ModuleType) -> list[Any]:
        batch = features_batch(requests, xp=module)
        return [
            (features, higher, rule_signals(rule.rule_type, rule.params, features, higher))
            for features, higher in batch
        ]

    analyse(xp)
    on_device, seconds = timed(xp, lambda: analyse(xp))
    difference = max_difference(on_device, analyse(np))
    check.say("live_pairs", LIVE_PAIRS)
    check.say("live_candles_per_pair", need)
    check.say("live_seconds", f"{seconds:.4f}")
    check.say("live_max_difference", f"{difference:.3g}")
    check.verdict("live", difference <= TOLERANCE, f"max difference {difference:.3g}")


def evaluate_section(check: Check, xp: ModuleType) -> None:
    with CANDLES_FILE.open() as handle:
        candles = Candles.from_records(json.load(handle))
    rule = rules.validate_rule("testbed")
    evaluate_rule(candles, rule, pair="EUR_USD", xp=xp)
    on_device, seconds = timed(xp, lambda: evaluate_rule(candles, rule, pair="EUR_USD", xp=xp))
    difference = max_difference(on_device, evaluate_rule(candles, rule, pair="EUR_USD", xp=np))
    check.say("evaluate_candles", len(candles))
    check.say("evaluate_seconds", f"{seconds:.4f}")
    check.say("evaluate_trades", on_device.performance.trades)
    check.say("evaluate_max_difference", f"{difference:.3g}")
    check.verdict("evaluate", difference <= TOLERANCE, f"max difference {difference:.3g}")


def training_section(check: Check, xp: ModuleType, small: bool, gpu: bool, scale: float) -> None:
    candles = train_bench.synthetic_year(5000 if small else 50_000, seed=11)
    space = SearchSpace(sets=24 if small else 200)
    on_device = walk_forward(candles, space=space, folds=3, seed=3, xp=xp)
    difference = max_difference(
        on_device, walk_forward(candles, space=space, folds=3, seed=3, xp=np)
    )
    check.say("training_parity_max_difference", f"{difference:.3g}")
    check.verdict("training_parity", difference <= TOLERANCE, f"max difference {difference:.3g}")
    figures = train_bench.run(
        scale=0.002 if small else scale,
        sets=20 if small else 1000,
        pairs=2 if small else 7,
        folds=4,
        xp=xp,
        say=print,
    )
    if gpu:
        goal = GOAL_TRAINING_SECONDS * scale
        check.verdict(
            "training_speed",
            figures["seconds"] <= goal,
            f"{figures['seconds']:.2f} s warm for 7 pairs; goal {goal:g} s",
        )


def engine_section(check: Check, xp: ModuleType, small: bool, gpu: bool, scale: float) -> None:
    sizes = {64: 20_000_000, 11: 80_000_000}
    goals = {64: GOAL_64_BIT_FLOAT32, 11: GOAL_11_BIT_FLOAT32}
    for window in (64, 11):
        for dtype in ("float32", "float64"):
            windows = 70_000 if small else int(sizes[window] * scale)
            figures = measure_windows_per_second(
                window=window,
                windows=windows,
                pairs=7,
                xp=xp,
                dtype=dtype,
                repeat=1 if small else 3,
            )
            rate = float(figures["windows_per_second"])
            name = f"engine_w{window}_{dtype}"
            check.say(f"{name}_windows", figures["windows"])
            check.say(f"{name}_block_windows", figures["block_windows"])
            check.say(f"{name}_windows_per_second", f"{rate:.0f}")
            check.say(
                f"{name}_windows_per_second_fresh_output",
                f"{float(figures['windows_per_second_fresh_output']):.0f}",
            )
            if gpu and dtype == "float32":
                check.verdict(
                    f"engine_w{window}",
                    rate >= goals[window],
                    f"{rate / 1e6:.0f} M windows/s; goal {goals[window] / 1e6:.0f} M",
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CPU-sized runs (seconds)")
    parser.add_argument(
        "--strict-double",
        action="store_true",
        help="run on the tests' strict device double instead of CuPy (no GPU needed)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink the speed runs (GPU with little memory)"
    )
    args = parser.parse_args(argv)
    if args.strict_double:
        from tests.qfh import strict_device

        xp: ModuleType = strict_device
    else:
        device, reason = device_module()
        if device is None:
            print(f"bench/gpu_check.py: {reason}; nothing to check", file=sys.stderr)
            return 2
        xp = device
    gpu = not args.strict_double and not args.small
    check = Check()
    check.say("gpu_check_mode", "small" if args.small else "full")
    sections: list[tuple[str, Callable[[], None]]] = [
        ("device", lambda: device_section(check, xp)),
        ("golden", lambda: golden_section(check, xp)),
        ("agreement", lambda: agreement_section(check, xp, args.small)),
        ("live", lambda: live_section(check, xp)),
        ("evaluate", lambda: evaluate_section(check, xp)),
        ("training", lambda: training_section(check, xp, args.small, gpu, args.scale)),
        ("engine", lambda: engine_section(check, xp, args.small, gpu, args.scale)),
    ]
    for name, section in sections:
        print(f"# {name}", flush=True)
        try:
            section()
        except Exception as error:  # One broken section must not hide the others' figures.
            check.verdict(name, False, f"{type(error).__name__}: {error}")
    if not gpu:
        check.say("speed_goals", "not judged (only on a real GPU at full size)")
    check.say("gpu_check", "FAIL " + ",".join(check.failed) if check.failed else "PASS")
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
