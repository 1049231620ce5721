"""The demo's process supervisor: stop-all by default, restart-on-exit when asked."""

from __future__ import annotations

import io
import sys
import time

from septrader.supervisor import Program, Supervisor


def test_a_program_marked_restart_is_started_again_after_it_exits() -> None:
    # Given a program that exits at once, marked to be restarted, next to a long-lived one
    output = io.StringIO()
    supervisor = Supervisor(
        [
            Program("flaky", [sys.executable, "-c", "raise SystemExit(3)"], restart=True),
            Program("steady", [sys.executable, "-c", "import time; time.sleep(60)"]),
        ],
        cwd=".",
        output=output,
        restart_delay=0.1,
    )
    supervisor.start()
    try:
        # When the supervisor watches them for a while
        deadline = time.monotonic() + 20
        while supervisor.restarts["flaky"] < 2 and time.monotonic() < deadline:
            assert supervisor.poll() is None
            time.sleep(0.05)
    finally:
        supervisor.stop(grace=5)

    # Then the exiting program was started again and again, and nothing else was stopped
    assert supervisor.restarts == {"flaky": supervisor.restarts["flaky"], "steady": 0}
    assert supervisor.restarts["flaky"] >= 2
    assert "flaky  | exited with status 3: restarting" in output.getvalue()


def test_a_program_not_marked_restart_that_exits_stops_everything() -> None:
    output = io.StringIO()
    supervisor = Supervisor(
        [
            Program("once", [sys.executable, "-c", "pass"]),
            Program("steady", [sys.executable, "-c", "import time; time.sleep(60)"]),
        ],
        cwd=".",
        output=output,
    )

    status = supervisor.run()

    assert status == 1
    assert supervisor.failed == "once"
    assert "exited with status 0: stopping everything" in output.getvalue()
