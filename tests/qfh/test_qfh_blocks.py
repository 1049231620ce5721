"""Block sizes: cache-sized on the CPU, a share of the free memory on a device, through the bytes
that one item takes while its block is worked on. The constants are measured again here (peak
traced allocations on NumPy, which traces its arrays), so that an engine change that needs more
memory per item cannot leave device blocks too big for the memory they were sized for."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from qfh.engine import DEFAULT_PARAMS, analyze_sliding
from qfh.engine.backend import DEVICE_MEMORY_SHARE, block_items
from qfh.engine.batch import (
    DENSE_BYTES_PER_CELL,
    SLIDING_BLOCK_WINDOWS,
    _dense_block,
    dense_block_rows,
    sliding_block_windows,
    sliding_bytes_per_window,
)
from qfh.evaluation import training
from qfh.evaluation.outcomes import Costs
from tests.qfh.test_evaluation import random_walk, synthetic


def peak_bytes(work: Callable[[], Any]) -> int:
    """Peak traced bytes allocated by ``work`` beyond what was allocated before it."""
    work()  # tables and caches are built once, outside the measurement
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("window", [11, 24, 64, 128])
def test_a_sliding_window_takes_no_more_bytes_than_its_block_is_sized_for(window: int) -> None:
    block = 1 << 15
    bits = np.random.default_rng(window).integers(0, 2, size=(7, 3 * block // 7), dtype=np.uint8)
    out = analyze_sliding(bits, window, block_windows=block)

    used = peak_bytes(lambda: analyze_sliding(bits, window, block_windows=block, out=out))

    per_window = used / (block // 7 * 7)
    assert per_window <= sliding_bytes_per_window(window) <= 1.25 * per_window + 32


@pytest.mark.parametrize("width", [12, 64, 256])
def test_a_dense_cell_takes_no_more_bytes_than_its_block_is_sized_for(width: int) -> None:
    rows = (1 << 17) // width
    bits = np.random.default_rng(width).integers(0, 2, size=(rows, width), dtype=np.uint8)
    lengths = np.full(rows, width)

    used = peak_bytes(lambda: _dense_block(bits, lengths, DEFAULT_PARAMS, np, np.float64, False))

    assert used / (rows * width) <= DENSE_BYTES_PER_CELL


@pytest.mark.parametrize("confirm", [None, 0.8], ids=["plain", "confirming"])
def test_a_training_cell_takes_no_more_bytes_than_its_block_is_sized_for(
    confirm: float | None,
) -> None:
    candles = synthetic(random_walk(20_000, seed=5))
    space = training.SearchSpace(
        sets=60, windows=(11,), horizons=(1, 5), confirm_thresholds=(confirm,)
    )
    sets = training.sample_parameter_sets(space, 1)
    inputs = training._search_inputs(candles, sets, Costs(), np)
    features, higher = inputs.features[11]
    index = np.asarray([inputs.horizons[s["horizon"]] for s in sets])
    frames = higher if confirm else []
    windows = [(0, 10_000), (10_000, 20_000)]

    def block() -> None:
        _, net, trade = training._block_pnl(sets, features, frames, inputs.outcomes, index, np)
        training._fold_sums(net, trade, windows, np)

    assert peak_bytes(block) / (len(sets) * len(candles)) <= training.BYTES_PER_CELL


def test_the_cpu_keeps_cache_sized_blocks_and_a_device_sizes_them_by_free_memory(
    strict_cupy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a device reporting 8 GiB free
    monkeypatch.setenv("STRICT_DEVICE_FREE_BYTES", str(8 << 30))

    # Then its blocks take a quarter of it, the CPU's stay as measured for its caches
    budget = (8 << 30) * DEVICE_MEMORY_SHARE
    assert sliding_block_windows(strict_cupy, 64) == int(budget // sliding_bytes_per_window(64))
    assert sliding_block_windows(np, 64) == sliding_block_windows(np, 11) == SLIDING_BLOCK_WINDOWS
    assert dense_block_rows(np, 64) == (1 << 22) // 64
    assert dense_block_rows(strict_cupy, 64) == int(budget // DENSE_BYTES_PER_CELL) // 64
    assert training.block_sets(np, 374_400) == (1 << 23) // 374_400
    assert training.block_sets(strict_cupy, 374_400) == int(budget // 64) // 374_400
    # And a nearly full device still gets blocks big enough to be worth a kernel launch
    monkeypatch.setenv("STRICT_DEVICE_FREE_BYTES", "1000")
    assert block_items(strict_cupy, host_items=1 << 16, bytes_per_item=900) == 1 << 12
