"""Point the unmodified oandapyV20 client at a simulator, and start one as a subprocess.

    api = sim_api("http://127.0.0.1:8081", token="sim-token")
    api.request(oandapyV20.endpoints.accounts.AccountList())

oandapyV20 has no host argument: it looks every URL up in the module-level dict
`oandapyV20.oandapyV20.TRADING_ENVIRONMENTS`, so we add an environment there.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ENVIRONMENT = "oandasim"
# A read timeout longer than the 5 s heartbeat, or streams time out between heartbeats.
DEFAULT_REQUEST_PARAMS = {"timeout": (5, 15)}


def register_environment(base_url: str, name: str = ENVIRONMENT) -> str:
    """Add (or update) an oandapyV20 environment whose REST and stream hosts are `base_url`."""
    import oandapyV20.oandapyV20 as core

    base_url = base_url.rstrip("/")
    core.TRADING_ENVIRONMENTS[name] = {"api": base_url, "stream": base_url}
    return name


def sim_api(
    base_url: str,
    token: str,
    *,
    name: str = ENVIRONMENT,
    request_params: dict[str, Any] | None = None,
) -> Any:
    """An `oandapyV20.API` that talks to the simulator at `base_url`."""
    import oandapyV20

    environment = register_environment(base_url, name)
    return oandapyV20.API(
        access_token=token,
        environment=environment,
        request_params=request_params or dict(DEFAULT_REQUEST_PARAMS),
    )


class SimulatorProcess:
    """Run `python -m oandasim` in a subprocess and wait for its ready line.

    Used as a context manager by tests and by the demo; `port=0` lets the simulator pick a free
    port, which the ready line reports.
    """

    def __init__(
        self,
        *,
        token: str = "sim-token",
        account: str = "101-001-0000000-001",
        port: int = 0,
        extra_args: list[str] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.token = token
        self.account = account
        self.port = port
        self.extra_args = extra_args or []
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[str] | None = None
        self.ready_line = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorProcess:
        if self.process is not None:
            return self
        root = Path(__file__).resolve().parent.parent
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(root), environment.get("PYTHONPATH", "")])
        )
        command = [
            sys.executable,
            "-m",
            "oandasim",
            "--port",
            str(self.port),
            "--token",
            self.token,
            "--account",
            self.account,
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=None, text=True, env=environment
        )
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("oandasim ready on "):
                self.ready_line = line.strip()
                url = line.split()[3]
                self.port = int(url.rsplit(":", 1)[1])
                return self
        self.stop()
        raise RuntimeError(f"oandasim did not start: {' '.join(command)}")

    def api(self, name: str = ENVIRONMENT, **kwargs: Any) -> Any:
        return sim_api(self.base_url, self.token, name=name, **kwargs)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send SIGTERM and wait; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
