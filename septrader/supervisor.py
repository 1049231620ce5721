"""A small process supervisor for the one-command demo (``manage.py demo``).

Starts each process with its own name, prefixes every line it prints with that name, and stops
them all together: on Ctrl-C (SIGINT) or SIGTERM, or when any one of them exits, the others get
SIGTERM, then SIGKILL after a grace period. Production uses docker compose or systemd instead
(docker/); this exists so the demo needs nothing but Python.

A program marked ``restart`` is started again ``restart_delay`` seconds after it exits, whatever
its exit status, as ``Restart=always`` (systemd) or ``restart: unless-stopped`` (compose) would:
the whole-system fault tests (tests/chaos/) run the system this way and kill its processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

COLOURS = ("36", "32", "33", "35", "34", "31", "37")


@dataclass
class Program:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    # Start it again when it exits instead of stopping everything.
    restart: bool = False


class Supervisor:
    def __init__(
        self,
        programs: Sequence[Program],
        *,
        cwd: str,
        output: TextIO = sys.stdout,
        restart_delay: float = 1.0,
    ):
        self.programs = list(programs)
        self.cwd = cwd
        self.output = output
        self.restart_delay = restart_delay
        self.processes: dict[str, subprocess.Popen[str]] = {}
        # Per program: how many times it was started again, and since when it has been down.
        self.restarts: dict[str, int] = {program.name: 0 for program in self.programs}
        self.down_since: dict[str, float] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.width = max(len(program.name) for program in self.programs)
        self.failed: str | None = None

    def say(self, name: str, line: str, index: int = 6) -> None:
        colour = COLOURS[index % len(COLOURS)]
        prefix = (
            f"\033[{colour}m{name:<{self.width}} |\033[0m"
            if self.output.isatty()
            else (f"{name:<{self.width}} |")
        )
        with self.lock:
            self.output.write(f"{prefix} {line.rstrip()}\n")
            self.output.flush()

    def _pump(self, index: int, name: str, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.say(name, line, index)

    def _spawn(self, index: int, program: Program) -> None:
        process = subprocess.Popen(
            list(program.argv),
            cwd=self.cwd,
            env={**os.environ, **program.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Their own process group: Ctrl-C reaches the supervisor only, which then stops
            # each program in order instead of all at once mid-write.
            start_new_session=True,
        )
        with self.lock:
            self.processes[program.name] = process
        threading.Thread(
            target=self._pump, args=(index, program.name, process), daemon=True
        ).start()
        self.say(program.name, f"started (pid {process.pid})", index)

    def start(self) -> None:
        for index, program in enumerate(self.programs):
            self._spawn(index, program)

    def pid(self, name: str) -> int:
        """The process id of the program's current process."""
        with self.lock:
            return self.processes[name].pid

    def poll(self) -> str | None:
        """Restart the programs that exited and may be restarted; return the name of one that
        exited and may not (everything should then stop), else None."""
        now = time.monotonic()
        for index, program in enumerate(self.programs):
            if self.stopping.is_set():
                return None
            process = self.processes[program.name]
            code = process.poll()
            if code is None:
                continue
            if not program.restart:
                self.say(program.name, f"exited with status {code}: stopping everything", index)
                return program.name
            since = self.down_since.setdefault(program.name, now)
            if since == now:
                self.say(program.name, f"exited with status {code}: restarting", index)
            if now - since >= self.restart_delay:
                del self.down_since[program.name]
                self.restarts[program.name] += 1
                self._spawn(index, program)
        return None

    def stop(self, grace: float = 15.0) -> None:
        self.stopping.set()
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                self.say(name, "stopping")
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(name, "did not stop in time: killed")
                process.kill()
                process.wait()

    def run(self) -> int:
        """Run until a signal or until any program exits; return the exit status to use."""

        def on_signal(signum: int, frame: Any) -> None:
            self.stopping.set()

        previous = {
            number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            while not self.stopping.is_set():
                failed = self.poll()
                if failed is not None:
                    self.failed = failed
                    self.stopping.set()
                    break
                self.stopping.wait(0.5)
        finally:
            self.stop()
            for number, handler in previous.items():
                signal.signal(number, handler)
        return 1 if self.failed else 0
