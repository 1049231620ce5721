"""``python -m qfh``, run as a subprocess with the project's interpreter."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.qfh.conftest import GOLDEN_FILE, REPO

HEADER = (
    "bits,null_count,flip_count,rupture_count,entropy,coherence,rupture_ratio,flip_ratio,"
    "collapse,damped_value,trajectory_confidence"
)


def run_qfh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qfh", *args],
        cwd=REPO,
        env={**os.environ, "QFH_BACKEND": "numpy"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def golden_bits_file(tmp_path: Path, golden_rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "bits.txt"
    path.write_text("".join(golden["bits"] + "\n" for golden in golden_rows))
    return path


def test_analyze_reproduces_the_golden_file_byte_for_byte(golden_bits_file: Path) -> None:
    # Given the golden file's bits column, one window per line
    # When the CLI analyses it
    completed = run_qfh("analyze", "--input", str(golden_bits_file))

    # Then it exits 0 and prints exactly the golden file (header, columns, number format)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == GOLDEN_FILE.read_text()


def test_analyze_in_float64_reproduces_every_golden_column_within_1e_5(
    golden_bits_file: Path, golden_rows: list[dict[str, str]]
) -> None:
    # Given the golden windows
    # When the CLI analyses them with the spec's float64 arithmetic
    completed = run_qfh("analyze", "--input", str(golden_bits_file), "--precision", "float64")

    # Then every column of every row is within 1e-5 of the original
    assert completed.returncode == 0, completed.stderr
    rows = list(csv.DictReader(io.StringIO(completed.stdout)))
    assert len(rows) == len(golden_rows)
    for produced, golden in zip(rows, golden_rows, strict=True):
        assert produced["bits"] == golden["bits"]
        for column in HEADER.split(",")[1:]:
            assert abs(float(produced[column]) - float(golden[column])) <= 1e-5, column


def test_a_bad_line_is_reported_with_its_number_and_the_rest_is_still_analysed(
    tmp_path: Path,
) -> None:
    # Given a file with a good line, a line holding other characters, a blank line, a good line
    path = tmp_path / "windows.txt"
    path.write_text("00110111001\n01a1x\n\n10101\n")

    # When the CLI analyses it
    completed = run_qfh("analyze", "--input", str(path))

    # Then stderr names line 2 and its content, the good lines are in the CSV, and it exits 1
    assert completed.returncode == 1
    assert "line 2" in completed.stderr and "01a1x" in completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[0] for line in lines[1:]] == ["00110111001", "10101"]
    assert lines[2] == "10101,0,4,0,0.0500000007,0.890999973,0,1,0,0,0"


def test_the_collapse_threshold_option_is_applied(tmp_path: Path) -> None:
    # Given a window with a rupture ratio of 0.3
    path = tmp_path / "windows.txt"
    path.write_text("00110111001\n")

    # When it is analysed at the default 0.5 and at the testbed's 0.3
    default = run_qfh("analyze", "--input", str(path))
    testbed = run_qfh("analyze", "--input", str(path), "--collapse-threshold", "0.3")

    # Then only the lower threshold reports a collapse
    assert default.stdout.splitlines()[1].split(",")[8] == "0"
    assert testbed.stdout.splitlines()[1].split(",")[8] == "1"


def test_a_missing_input_file_is_an_error_naming_it(tmp_path: Path) -> None:
    # Given a path that does not exist
    missing = tmp_path / "nope.txt"

    # When the CLI is asked to analyse it
    completed = run_qfh("analyze", "--input", str(missing))

    # Then it fails with a message naming the file
    assert completed.returncode == 2
    assert "nope.txt" in completed.stderr


@pytest.mark.parametrize("window", ["11", "64"])
def test_bench_ends_with_a_windows_per_second_line(window: str) -> None:
    # Given a small benchmark run over two pairs
    # When it runs
    completed = run_qfh("bench", "--window", window, "--windows", "20000", "--pairs", "2")

    # Then its last line is windows_per_second=<positive number>
    assert completed.returncode == 0, completed.stderr
    name, value = completed.stdout.strip().splitlines()[-1].split("=")
    assert name == "windows_per_second" and float(value) > 0


def test_the_cli_and_the_engine_import_no_django() -> None:
    # Given a fresh interpreter
    # When it imports the CLI and the engine
    completed = subprocess.run(
        [sys.executable, "-c", "import sys, qfh.cli, qfh.engine; print('django' in sys.modules)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )

    # Then Django was never loaded
    assert completed.stdout.strip() == "False"
