"""The device path without a GPU: the engine, the live features, the evaluation, training, the CLI,
the benches and the GPU check all run on the strict device double (CuPy's refusals, NumPy's
numbers) and give NumPy's results to 1e-9; any host/device mix on these paths fails here.

No Django in this file (the GPU check and the engine must not need it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from qfh import rules
from qfh.engine import (
    analyze_sliding,
    analyze_trailing,
    analyze_windows,
    bits_from_closes,
    bits_from_prices_pip_threshold,
    bits_from_uint32,
    candle_volatility_pips,
    duplicate_for_package,
    forward_window_metrics,
    parse_bit_strings,
    qbsa_correction_ratio,
)
from qfh.engine.batch import sliding_block_windows
from qfh.evaluation.evaluate import evaluate_rule, rule_signals
from qfh.evaluation.features import FeatureRequest, features_batch, history_needed
from qfh.evaluation.outcomes import Costs
from qfh.evaluation.training import (
    SearchSpace,
    block_sets,
    evaluate_parameter_sets,
    rolling_folds,
    sample_parameter_sets,
    walk_forward,
)
from tests.qfh.conftest import GOLDEN_FILE, REPO, device_env
from tests.qfh.parity import golden_parity, max_difference
from tests.qfh.test_evaluation import real_candles, synthetic

TOLERANCE = 1e-9
CONFIRMED = {"confirm_threshold": 0.8, "high_confidence_only": False}
LOOSE_PATTERN = {
    "buy_min_coherence": 0.55,
    "buy_max_entropy": 0.45,
    "sell_max_stability": 0.9,
    "sell_min_entropy": 0.45,
}
RULES = [("testbed", {}), ("testbed", CONFIRMED), ("pattern_threshold", LOOSE_PATTERN)]


def test_the_golden_file_holds_on_the_device(
    strict_cupy: ModuleType, golden_rows: list[dict[str, str]]
) -> None:
    # Given the golden windows, moved to the device
    # When the device analyses them in the original precision
    parity = golden_parity(strict_cupy, golden_rows)

    # Then no value is more than 1e-5 off, and the spec precision equals NumPy's to 1e-9
    assert parity["mismatches"] == 0, parity
    matrix, lengths = parse_bit_strings([row["bits"] for row in golden_rows])
    on_device = analyze_windows(strict_cupy.asarray(matrix), strict_cupy.asarray(lengths))
    assert max_difference(on_device, analyze_windows(matrix, lengths)) <= TOLERANCE


@pytest.mark.parametrize("window", [11, 16, 17, 64, 100, 300])
def test_sliding_and_trailing_windows_on_the_device_equal_numpy(
    strict_cupy: ModuleType, window: int
) -> None:
    bits = np.random.default_rng(window).integers(0, 2, size=(7, 1200), dtype=np.uint8)
    on_device = strict_cupy.asarray(bits)

    assert max_difference(analyze_sliding(on_device, window), analyze_sliding(bits, window)) == 0
    device_trailing = analyze_trailing(on_device, window)
    assert max_difference(device_trailing, analyze_trailing(bits, window)) <= TOLERANCE
    single = analyze_sliding(on_device, window, dtype="float32")
    assert isinstance(single.coherence, strict_cupy.ndarray)


def test_bits_variants_and_qbsa_on_the_device_equal_numpy(strict_cupy: ModuleType) -> None:
    rng = np.random.default_rng(5)
    closes = 1.17 + np.cumsum(rng.normal(0, 1e-4, size=(3, 500)), axis=1)
    windows = rng.integers(0, 2, size=(200, 64), dtype=np.uint8)
    words = rng.integers(0, 2**32, size=20, dtype=np.uint64)
    cases: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (bits_from_closes, (closes,)),
        (bits_from_prices_pip_threshold, (closes,)),
        (bits_from_uint32, (words,)),
        (qbsa_correction_ratio, (windows,)),
        (duplicate_for_package, (windows,)),
        (forward_window_metrics, (windows,)),
        (candle_volatility_pips, (closes + 1e-4, closes)),
    ]
    for function, arguments in cases:
        on_device = function(*(strict_cupy.asarray(a) for a in arguments))
        assert max_difference(on_device, function(*arguments)) <= TOLERANCE, function.__name__


def test_the_live_features_of_28_pairs_on_the_device_equal_numpy(strict_cupy: ModuleType) -> None:
    # Given 28 pairs with the history the live analysis reads, each with M5/M15 confirmation
    need = history_needed(window=11, volatility_lookback=100, confirm=True)
    rng = np.random.default_rng(28)
    requests = [
        FeatureRequest(
            candles=synthetic(1.1 + np.cumsum(rng.normal(0, 2e-4, need))), window=11, confirm=True
        )
        for _ in range(28)
    ]

    # When one batch runs on each module, and the default rule scores it
    def analyse(xp: ModuleType) -> list[object]:
        rule = rules.validate_rule("testbed", CONFIRMED)
        return [
            (features, higher, rule_signals(rule.rule_type, rule.params, features, higher))
            for features, higher in features_batch(requests, xp=xp)
        ]

    analyse(strict_cupy)  # builds the engine's tables on the device once
    strict_cupy.reset_counts()
    on_device = analyse(strict_cupy)
    traffic = dict(strict_cupy.counts)

    # Then the device holds the results, equal to NumPy's; the 84 series went in as one copy per
    # candle field (6) plus the pattern table, and nothing came back to the host
    assert isinstance(on_device[0][0].coherence, strict_cupy.ndarray)  # type: ignore[index]
    assert traffic["to_device"] <= 7 and traffic["to_host"] == 0, traffic
    assert max_difference(on_device, analyse(np)) <= TOLERANCE


@pytest.mark.parametrize(("rule_type", "params"), RULES, ids=["testbed", "confirmed", "pattern"])
@pytest.mark.parametrize("alignment", ["causal", "leaky"])
def test_an_evaluation_on_the_device_equals_the_evaluation_on_numpy(
    strict_cupy: ModuleType, rule_type: str, params: dict[str, object], alignment: str
) -> None:
    candles = real_candles()
    rule = rules.validate_rule(rule_type, params)
    leaky = alignment == "leaky"

    on_device = evaluate_rule(
        candles, rule, alignment=alignment, allow_look_ahead=leaky, xp=strict_cupy
    )
    on_host = evaluate_rule(candles, rule, alignment=alignment, allow_look_ahead=leaky, xp=np)

    assert on_device.performance.trades > 0
    assert max_difference(on_device, on_host) <= TOLERANCE


def test_a_walk_forward_search_on_the_device_finds_the_numpy_model(
    strict_cupy: ModuleType,
) -> None:
    candles = real_candles()
    space = SearchSpace(sets=24, windows=(8, 11), horizons=(1, 5))

    on_device = walk_forward(candles, space=space, folds=3, seed=7, xp=strict_cupy)
    on_host = walk_forward(candles, space=space, folds=3, seed=7, xp=np)

    assert max_difference(on_device, on_host) <= TOLERANCE


def test_the_device_block_follows_free_memory_and_changes_no_number(
    strict_cupy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same search on a device with 1 GiB free and on one with 64 MiB free
    candles = real_candles()
    sets = sample_parameter_sets(SearchSpace(sets=40), 2)
    folds = rolling_folds(len(candles), 3)
    bits = np.random.default_rng(3).integers(0, 2, size=(7, 40_000), dtype=np.uint8)
    results = []
    blocks = []
    for free in (1 << 30, 1 << 26):
        monkeypatch.setenv("STRICT_DEVICE_FREE_BYTES", str(free))
        blocks.append((sliding_block_windows(strict_cupy, 64), block_sets(strict_cupy, 2880)))
        results.append(
            (
                analyze_sliding(strict_cupy.asarray(bits), 64),
                evaluate_parameter_sets(candles, sets, folds, costs=Costs(), xp=strict_cupy),
            )
        )

    # Then the blocks shrink 16-fold with the memory, the CPU keeps its cache-sized blocks, and
    # every number is the same
    assert blocks[0][0] // blocks[1][0] == 16 and blocks[0][1] > blocks[1][1]
    assert sliding_block_windows(np, 64) == 1 << 16
    assert max_difference(results[0], results[1]) == 0


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_cli_on_the_device_prints_what_it_prints_on_numpy(tmp_path: Path) -> None:
    # Given the golden windows in a file, and QFH_BACKEND=auto where cupy is the strict double
    bits = "".join(line.split(",")[0] + "\n" for line in GOLDEN_FILE.read_text().splitlines()[1:])
    path = tmp_path / "bits.txt"
    path.write_text(bits)

    # When the CLI analyses them on the device, and with --backend numpy
    analyze = ("-m", "qfh", "analyze", "--input", str(path), "--precision", "float64")
    on_device = run_python(*analyze, env=device_env())
    on_host = run_python(*analyze, "--backend", "numpy", env=device_env())
    bench = run_python(
        "-m", "qfh", "bench", "--window", "64", "--windows", "20000", env=device_env()
    )

    # Then both print the same CSV, and the bench names the device it ran on
    assert on_device.returncode == on_host.returncode == 0, on_device.stderr + on_host.stderr
    assert on_device.stdout == on_host.stdout
    assert "backend=tests.qfh.strict_device" in bench.stdout, bench.stderr


def test_the_cli_refuses_a_gpu_that_does_not_answer_naming_the_setting() -> None:
    completed = run_python(
        *("-m", "qfh", "bench", "--window", "11", "--windows", "1000"),
        env=device_env(QFH_BACKEND="cupy", STRICT_DEVICE_COUNT="0"),
    )

    assert completed.returncode == 2
    assert "QFH_BACKEND=cupy" in completed.stderr and "no CUDA device" in completed.stderr


def test_the_benches_run_on_the_device_and_print_the_blocks_they_chose() -> None:
    engine = run_python("bench/qfh.py", "--scale", "0.005", "--repeat", "1", env=device_env())
    training = run_python(
        *("bench/train.py", "--scale", "0.002", "--sets", "12", "--pairs", "2"), env=device_env()
    )

    assert engine.returncode == 0, engine.stderr
    assert "qfh_backend=tests.qfh.strict_device" in engine.stdout
    assert "qfh_block_windows_cpu_w64=65536" in engine.stdout
    assert "qfh_block_windows_device_w64=" in engine.stdout
    assert "_w64_float32_pairs7_windows_per_second=" in engine.stdout
    assert training.returncode == 0, training.stderr
    assert "train_backend=tests.qfh.strict_device" in training.stdout
    assert "train_cold_pair_seconds=" in training.stdout
    assert "train_block_sets_device=" in training.stdout


# Imports that Django must never be part of: the GPU PC's check runs where Django is missing.
NO_DJANGO = "import sys; sys.modules['django'] = None; "


def test_the_engine_the_evaluation_and_the_gpu_check_import_without_django() -> None:
    modules = (
        "qfh.engine, qfh.rules, qfh.cli, qfh.evaluation.candles, qfh.evaluation.features, "
        "qfh.evaluation.evaluate, qfh.evaluation.training, qfh.evaluation.outcomes, "
        "qfh.evaluation.metrics, tests.qfh.parity, tests.qfh.strict_device, bench.gpu_check"
    )
    completed = run_python("-c", NO_DJANGO + f"import {modules}; print('ok')", env=dict(os.environ))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_the_gpu_check_passes_on_the_strict_double_without_django() -> None:
    # Given a process where Django cannot be imported (as on a bare GPU machine)
    script = (
        NO_DJANGO + "import runpy; sys.argv = ['bench/gpu_check.py', '--small', "
        "'--strict-double']; runpy.run_path('bench/gpu_check.py', run_name='__main__')"
    )

    # When the GPU check runs small on the strict double
    completed = run_python("-c", script, env=dict(os.environ))

    # Then every check passes, each section printed its figures, and no speed goal was judged
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for line in (
        "check_golden=PASS (0 of 19290 values off by more than 1e-5)",
        "check_agreement=PASS",
        "live_pairs=28",
        "check_live=PASS",
        "check_evaluate=PASS",
        "check_training_parity=PASS",
        "train_cold_pair_seconds=",
        "engine_w64_float32_block_windows=",
        "block_windows_cpu_w64=65536",
        "speed_goals=not judged",
        "gpu_check=PASS",
    ):
        assert line in completed.stdout, line


def test_the_gpu_check_stops_when_no_cuda_device_answers() -> None:
    completed = run_python("bench/gpu_check.py", env=device_env(STRICT_DEVICE_COUNT="0"))

    assert completed.returncode == 2
    assert "no CUDA device answers" in completed.stderr and "cudaErrorNoDevice" in completed.stderr
