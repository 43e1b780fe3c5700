"""A console killed with SIGKILL leaves nothing running, and the next start tells what it was doing.

The real console runs in tmux with two long jobs; it is SIGKILLed (no chance to
clean up); every job process must end within a few seconds (each supervisor
gets SIGTERM from the kernel when its parent dies). A new console on the same
state directory then shows both jobs as `interrupted`, with the output they had
written.
"""

from __future__ import annotations

import os
import signal
import time

from tests.conftest import INVENTORY, playbook
from tests.test_console_e2e import wait_until
from tests.tmux_console import Terminal, needs_tmux

pytestmark = needs_tmux

SLEEP_A, SLEEP_B = "sleep 91", "sleep 92"


def test_sigkill_of_the_console_leaves_no_process_and_the_next_start_shows_interrupted(tmp_path):
    jobfile = tmp_path / "jobs.yml"
    slow = playbook("slow_task")
    jobfile.write_text(
        f"inventory: {INVENTORY}\nmax_parallel: 2\njobs:\n"
        f"  - {{name: crash-a, playbook: {slow}, limit: db01, extra_vars: {{slow_seconds: 91}}}}\n"
        f"  - {{name: crash-b, playbook: {slow}, limit: db02, extra_vars: {{slow_seconds: 92}}}}\n"
    )
    console = Terminal(tmp_path, [jobfile], size=(100, 30), term="tmux-256color", name="crash")
    try:
        console.start()
        wait_until(lambda: console.ours(SLEEP_A) and console.ours(SLEEP_B), "both jobs to be sleeping", timeout=60)
        (pid,) = console.ours(f"-m tui {jobfile}")
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        console.wait_for(lambda s: "EXIT=137" in s, "the shell to see the console die", timeout=10)
        wait_until(lambda: not console.ours(), "every job process to end after the console died", timeout=10)
        assert time.monotonic() - killed_at < 10  # "within a few seconds", with room for a loaded CI machine

        # the next start, on the same state directory (same name), without the job file,
        # on a fresh tmux server (a new socket): restarting one just killed races its shutdown
        again = Terminal(tmp_path, ["-i", INVENTORY], size=(100, 30), term="tmux-256color", name="crash")
        assert again.state == console.state
        again.start()
        screen = again.wait_for(lambda s: s.count("interrupted") >= 2, "both jobs shown as interrupted", timeout=20)
        assert "crash-a" in screen and "crash-b" in screen
        # the first history row is selected: its log is what it had written before the crash
        again.wait_for(lambda s: "Run long database migration" in s, "the interrupted job's log", timeout=10)
        again.press("q")
        again.wait_for(lambda s: "EXIT=0" in s, "a clean exit", timeout=10)
        again.close()
    finally:
        console.close()
