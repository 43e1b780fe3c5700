"""End to end: the real console, in a real terminal (tmux), running real Ansible jobs.

Drives `playdeck JOBFILE` with keys only and checks both the screen and the
process table (through /proc, independently of the app): `c` cancels the
selected job and its processes only, `r` runs it again, `t` gives it a new
timeout (bad input is refused and changes nothing), `q` then `y` quits and
leaves nothing running.

The terminal is `tests.tmux_console.Terminal`: tmux on a private socket (`-L`), so a
user's own tmux is never touched, and that server is always killed at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import INVENTORY, pids_with_cmdline, playbook
from tests.tmux_console import Terminal, grid_status, needs_tmux

STATUSES = ("queued", "running", "waiting", "successful", "failed", "timeout", "canceled", "error")
SLEEP_A, SLEEP_B = "sleep 61", "sleep 62"  # unique to this test, so /proc tells the two jobs apart

pytestmark = needs_tmux


def status_of(screen: str, job: str) -> str | None:
    """The status word in `job`'s grid row (None when the row is not on screen)."""
    return grid_status(screen, job, STATUSES)


def is_(job: str, status: str) -> Callable[[str], bool]:
    return lambda screen: status_of(screen, job) == status


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def console(tmp_path: Path):
    jobfile = tmp_path / "jobs.yml"
    slow = playbook("slow_task")
    jobfile.write_text(
        f"""\
inventory: {INVENTORY}
max_parallel: 2
jobs:
  - name: long-a
    playbook: {slow}
    limit: db01
    extra_vars: {{slow_seconds: 61}}
  - name: long-b
    playbook: {slow}
    limit: db02
    extra_vars: {{slow_seconds: 62}}
""",
        encoding="utf-8",
    )
    assert not pids_with_cmdline(SLEEP_A) and not pids_with_cmdline(SLEEP_B), "a stray sleep 61/62 is running"
    console = Terminal(tmp_path, [jobfile], size=(100, 30), term="tmux-256color", name="e2e")
    try:
        console.start()
        yield console
    finally:
        console.close()


def test_cancel_retry_timeout_and_quit_in_the_real_console(console: Terminal):
    # both jobs start at once (max_parallel 2); the first row, long-a, is selected
    console.wait_for(
        lambda s: is_("long-a", "running")(s) and is_("long-b", "running")(s), "both jobs to be running", timeout=45
    )
    wait_until(lambda: console.ours(SLEEP_A) and console.ours(SLEEP_B), "both sleep tasks to start", timeout=45)
    first_b = console.ours(SLEEP_B)

    # c: cancels long-a only
    console.press("c")
    screen = console.wait_for(is_("long-a", "canceled"), "long-a to be canceled", timeout=20)
    assert pids_with_cmdline(SLEEP_A) == [], "long-a is shown canceled but its sleep is still alive"
    assert console.ours(SLEEP_B) == first_b, "canceling long-a touched long-b's sleep"
    assert status_of(screen, "long-b") == "running", screen

    # r: runs long-a again
    console.press("r")
    console.wait_for(is_("long-a", "running"), "long-a to run again", timeout=30)
    wait_until(lambda: console.ours(SLEEP_A), "long-a's sleep to start again", timeout=45)

    # t with bad input: refused, says why, the dialog stays; Esc closes it and nothing changed
    console.press("t")
    console.wait_for(lambda s: "New timeout for long-a" in s, "the timeout dialog")
    console.type("soon")
    console.press("Enter")
    screen = console.wait_for(lambda s: "not a duration" in s, "the dialog to refuse 'soon'", timeout=10)
    assert "New timeout for long-a" in screen, f"the dialog closed on bad input:\n{screen}"
    console.press("Escape")
    screen = console.wait_for(lambda s: "New timeout" not in s, "Esc to close the dialog", timeout=10)
    assert status_of(screen, "long-a") == "running", screen
    time.sleep(0.5)  # nothing was set: it must still be running a little later
    assert status_of(console.screen(), "long-a") == "running"
    assert console.ours(SLEEP_A), "the aborted timeout dialog stopped long-a"

    # t 2: long-a times out about two seconds later
    console.press("t")
    console.wait_for(lambda s: "New timeout for long-a" in s, "the timeout dialog")
    console.type("2")
    console.press("Enter")
    confirmed = time.monotonic()
    screen = console.wait_for(is_("long-a", "timeout"), "long-a to time out", timeout=15)
    took = time.monotonic() - confirmed
    assert 1.5 <= took <= 20.0, f"long-a timed out {took:.1f}s after its 2s timeout was set"
    assert pids_with_cmdline(SLEEP_A) == [], "long-a is shown as timed out but its sleep is still alive"
    assert status_of(screen, "long-b") == "running", screen
    assert console.ours(SLEEP_B) == first_b, "long-a's timeout touched long-b"

    # q, y: asks first (long-b still runs), then cancels it and exits 0
    console.press("q")
    console.wait_for(lambda s: "still queued or running" in s and "y: yes" in s, "the quit confirmation", timeout=10)
    console.press("y")
    console.wait_for(lambda s: "EXIT=0" in s, "the console to exit with status 0", timeout=30)
    assert pids_with_cmdline(SLEEP_A) == [] and pids_with_cmdline(SLEEP_B) == [], "a job's sleep outlived the console"
    assert [p for p in pids_with_cmdline("tui.core.running.supervisor") if p in console.ours()] == [], (
        "an attempt supervisor outlived the console"
    )
    assert console.ours() == [], "a process started by the console outlived it"
