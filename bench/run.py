"""Run every benchmark in bench/ and write their figures in one table (``make bench``).

    eval "$(scripts/services.sh env)"; .venv/bin/python bench/run.py [--only latency,api]
    .venv/bin/python bench/run.py --small    # the small-scale runs of `make test`, by hand

Each benchmark runs as its own process, its output shown as it comes; every ``name=value`` it
prints becomes a row of the table, with the command that printed it, when it finished, the
machine (CPU model and cores) and the load average around it, since other work on the machine
shows in every figure. The table goes to ``var/bench/latest.md`` (``--output``) and is printed.
A benchmark that fails is recorded as failed, the others still run, and the exit status is 1.

``--small`` runs each with the small arguments of ``SMALL`` below, as tests/bench/
test_benches_run.py does in every ``make test``: a bench that no longer runs fails the tests,
and its speed is still read from its full run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent

# A figure: name=value, anywhere on a line (bench/load.py prints several on one line, and names
# such as lost(ours_not_at_broker)).
FIGURE = re.compile(r"(?:^|\s)([A-Za-z_][\w()]*)=(\S+)")


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    small: tuple[str, ...]


# The full runs are the READMEs' (make bench); the small ones take a few seconds each on 2 cores.
BENCHES = (
    Bench(
        "ingest",
        "ingest.py",
        (),
        ("--candles", "20000", "--batch", "5000", "--table-rows", "40000", "--queries", "20"),
    ),
    Bench(
        "backfill",
        "backfill.py",
        (),
        ("--days", "2", "--pairs", "2", "--minutes", "0.2", "--warmup", "5"),
    ),
    Bench("qfh", "qfh.py", (), ("--backend", "numpy", "--scale", "0.001", "--repeat", "1")),
    Bench("oandasim", "oandasim.py", (), ("--seconds", "0.5")),
    Bench(
        "train",
        "train.py",
        (),
        ("--backend", "numpy", "--scale", "0.001", "--sets", "10", "--pairs", "1", "--folds", "2"),
    ),
    Bench("latency", "latency.py", (), ("--signals", "20")),
    Bench("console", "console.py", (), ("--days", "2", "--requests", "2")),
    Bench(
        "api",
        "api.py",
        (),
        ("--seconds", "1", "--rate", "50", "--users", "2", "--inprocess-requests", "20"),
    ),
    # Two pairs for three simulated minutes: every process of the system still starts and stops.
    Bench("load", "load.py", (), ("--pairs", "2", "--hours", "0.05", "--no-web")),
)
SMALL = {bench.name: bench.small for bench in BENCHES}


def figures_of(output: str) -> dict[str, str]:
    """Every ``name=value`` printed, the last value of a name winning."""
    return {match[1]: match[2] for match in FIGURE.finditer(output)}


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def bench_environment() -> dict[str, str]:
    """This environment without what a test run adds: the benches use the project's settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SETTINGS_MODULE", "SEPTRADER_ENV"}
    }


def command_of(bench: Bench, arguments: tuple[str, ...]) -> list[str]:
    return [sys.executable, str(REPO / "bench" / bench.script), *arguments]


@dataclass
class Outcome:
    bench: Bench
    command: str
    status: int
    finished: datetime
    load_before: str
    load_after: str
    output: str
    errors: str

    @property
    def figures(self) -> dict[str, str]:
        return figures_of(self.output)


def run(
    bench: Bench, arguments: tuple[str, ...], *, echo: bool = True, timeout: float | None = None
) -> Outcome:
    """Run one bench to its end, its output echoed as it comes (``echo``) and kept. Past
    ``timeout`` seconds it is interrupted as by Ctrl-C, so it stops the processes it started,
    and killed a minute later."""
    command = command_of(bench, arguments)
    shown = " ".join(["python", f"bench/{bench.script}", *map(shlex.quote, arguments)])
    load_before = load_average()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=bench_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # The figures are on stdout; logs and warnings, on stderr, are kept apart from them.
    errors: list[str] = []

    def drain(stream: IO[str]) -> None:
        for line in stream:
            errors.append(line)
            if echo:
                print(line, end="", file=sys.stderr, flush=True)

    draining = threading.Thread(target=drain, args=(process.stderr,), daemon=True)
    draining.start()
    timers = (
        [
            threading.Timer(timeout, process.send_signal, [signal.SIGINT]),
            threading.Timer(timeout + 60, process.kill),
        ]
        if timeout
        else []
    )
    for timer in timers:
        timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
        status = process.wait()
        draining.join()
    finally:
        for timer in timers:
            timer.cancel()
    return Outcome(
        bench,
        shown,
        status,
        datetime.now(UTC),
        load_before,
        load_average(),
        "".join(lines),
        "".join(errors),
    )


def table(outcomes: list[Outcome], where: str) -> str:
    rows = [
        f"# Benchmarks: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {where}; Python {platform.python_version()}; {platform.platform()}. The load",
        "average (1/5/15 minutes) before and after each bench says how busy the machine was.",
        "",
        "| figure | value | command | finished (UTC) | machine | load average |",
        "|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        common = (
            f"`{outcome.command}` | {outcome.finished:%Y-%m-%d %H:%M} | {where} | "
            f"{outcome.load_before} → {outcome.load_after}"
        )
        if outcome.status != 0:
            rows.append(f"| {outcome.bench.name} | **failed: exit {outcome.status}** | {common} |")
        for name, value in outcome.figures.items():
            rows.append(f"| {name} | {value} | {common} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated names: " + ", ".join(bench.name for bench in BENCHES),
    )
    parser.add_argument("--small", action="store_true", help="the small-scale runs of make test")
    parser.add_argument("--load-args", default="", help="arguments of bench/load.py's full run")
    parser.add_argument("--output", type=Path, default=REPO / "var" / "bench" / "latest.md")
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {bench.name for bench in BENCHES}
    if unknown:
        parser.error(f"--only names {', '.join(sorted(unknown))}; expected names from --help")
    where = machine()
    outcomes = []
    for bench in BENCHES:
        if wanted and bench.name not in wanted:
            continue
        arguments = bench.small if args.small else bench.full
        if bench.name == "load" and args.load_args and not args.small:
            arguments = tuple(shlex.split(args.load_args))
        print(f"== bench/{bench.script} {' '.join(arguments)}", flush=True)
        began = time.monotonic()
        outcome = run(bench, arguments)
        print(f"== {bench.name}: exit {outcome.status} in {time.monotonic() - began:.0f} s\n")
        outcomes.append(outcome)
    text = table(outcomes, where)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    print(f"written to {args.output}")
    return 0 if all(outcome.status == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
