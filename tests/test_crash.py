"""Crashes: a console killed with SIGKILL leaves its jobs running under the server, and a server
killed with SIGKILL leaves nothing running, and the next start tells what it was doing.

The real console runs in tmux with two long jobs; it is SIGKILLed (no chance to clean up,
not even to detach): the jobs belong to the server and go on, and a second console finds them
running. Then the server is SIGKILLed: every job process must end within a few seconds (each
supervisor gets SIGTERM from the kernel when its parent dies). The second console says the
server went away and does not replace it; once `playdeck server start` starts the next one on
the same state directory, the console attaches to it and shows both jobs as `interrupted`,
with the output they had written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import INVENTORY, playbook
from tests.console_support import job_processes
from tests.test_console_e2e import wait_until
from tests.tmux_console import Terminal, grid_status, needs_tmux

pytestmark = needs_tmux

SLEEP_A, SLEEP_B = "sleep 91", "sleep 92"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def test_sigkill_of_the_console_leaves_the_jobs_and_sigkill_of_the_server_leaves_no_process(tmp_path):
    jobfile = tmp_path / "jobs.yml"
    slow = playbook("slow_task")
    jobfile.write_text(
        f"inventory: {INVENTORY}\nmax_parallel: 2\njobs:\n"
        f"  - {{name: crash-a, playbook: {slow}, limit: db01, extra_vars: {{slow_seconds: 91}}}}\n"
        f"  - {{name: crash-b, playbook: {slow}, limit: db02, extra_vars: {{slow_seconds: 92}}}}\n"
    )
    console = Terminal(tmp_path, [jobfile], size=(100, 30), term="tmux-256color", name="crash")
    # a second terminal on the same server and state directory (an operator's other login)
    again = Terminal(
        tmp_path,
        ["-i", INVENTORY],
        size=(100, 30),
        term="tmux-256color",
        name="again",
        env={"PLAYDECK_STATE_DIR": str(console.state)},
    )
    try:
        console.start()
        wait_until(lambda: console.ours(SLEEP_A) and console.ours(SLEEP_B), "both jobs to be sleeping", timeout=60)
        sleeps = console.ours(SLEEP_A) + console.ours(SLEEP_B)
        (pid,) = console.ours(f"-m tui {jobfile}")
        os.kill(pid, signal.SIGKILL)
        console.wait_for(lambda s: "EXIT=137" in s, "the shell to see the console die", timeout=10)
        time.sleep(2)  # time enough for anything tied to the console to go
        assert console.ours(SLEEP_A) + console.ours(SLEEP_B) == sleeps, "the jobs did not outlive their console"

        again.start()
        again.wait_for(
            lambda s: grid_status(s, "crash-a") == "running" and grid_status(s, "crash-b") == "running",
            "both jobs running in a new console",
            timeout=30,
        )
        again.wait_for(lambda s: "Run long database migration" in s, "the selected job's log", timeout=10)

        (server,) = console.ours("tui.server")
        doomed = [p for p in job_processes(console) if p not in console.ours("-m tui")]
        doomed += console.ours("-m tui.server.warm")  # the server's warm preflight worker goes with it
        assert set(sleeps) <= set(doomed)
        os.kill(server, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(
            lambda: not [p for p in doomed if _alive(p)], "every job process to end after the server died", timeout=10
        )
        assert time.monotonic() - killed_at < 10  # "within a few seconds", with room for a loaded CI machine

        # the console says so and keeps the last state; it never starts a server by itself
        again.wait_for(lambda s: "not attached: the server went away" in s, "the console to see it gone", timeout=10)
        time.sleep(2)
        assert console.ours("tui.server") == [], "the console replaced the server by itself"
        # the next start, on the same state directory: the console attaches to it and tells
        started = subprocess.run(
            [sys.executable, "-m", "tui", "server", "start"],
            env={**os.environ, "PLAYDECK_STATE_DIR": str(console.state)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        screen = again.wait_for(
            lambda s: grid_status(s, "crash-a") == "interrupted" and grid_status(s, "crash-b") == "interrupted",
            "both jobs shown as interrupted",
            timeout=60,
        )
        (new_server,) = console.ours("tui.server")
        assert new_server != server
        # the first history row is selected: its log is what it had written before the crash
        again.wait_for(lambda s: "Run long database migration" in s, "the interrupted job's log", timeout=10)
        assert "EXIT=" not in screen
        again.press("q")  # nothing unfinished: quits at once
        assert again.exit_status(timeout=10) == 0
    finally:
        again.close()
        console.close()
