"""End to end: the real console, in a real terminal (tmux), running real Ansible jobs.

Drives `playdeck JOBFILE` with keys only and checks both the screen and the
process table (through /proc, independently of the app): `c` cancels the
selected job and its processes only, `r` runs it again, `t` gives it a new
timeout (bad input is refused and changes nothing), `q` then `y` quits and
leaves nothing running.

tmux runs on a private socket (`-L`), so a user's own tmux is never touched,
and that server is always killed at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import INVENTORY, ROOT, end_leftovers, pids_with_cmdline, pids_with_env, playbook

STATUSES = ("queued", "running", "waiting", "successful", "failed", "timeout", "canceled", "error")
SLEEP_A, SLEEP_B = "sleep 61", "sleep 62"  # unique to this test, so /proc tells the two jobs apart

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Console:
    """One `playdeck` in a detached tmux session on a private tmux server."""

    def __init__(self, tmp_path: Path, jobfile: Path):
        self.socket = f"playdeck-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "console"
        self.socket_path: Path | None = None
        self.state = tmp_path / "console-state"
        # every process the console starts inherits this; nothing else on the machine has it
        self.marker = f"PLAYDECK_STATE_DIR={self.state}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        console_env = {
            "PLAYDECK_STATE_DIR": str(self.state),
            "PLAYDECK_CONFIG": str(tmp_path / "no-config.yml"),  # a user's key map must not change the keys
            "TMPDIR": str(tmp_path),
            "TERM": "tmux-256color",
        }
        # env(1) sets these for the console only: the shell's trailing `sleep` must not carry the marker
        command = shlex.join(["env", *(f"{k}={v}" for k, v in console_env.items()),
                              sys.executable, "-m", "tui", str(jobfile)])  # = the `playdeck` entry point
        self.script = f"cd {shlex.quote(str(ROOT))} && {command}; echo EXIT=$?; sleep 60"

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True,
                              text=True, timeout=10)

    def start(self) -> None:
        result = self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", "100", "-y", "30",
                           "sh", "-c", self.script)
        assert result.returncode == 0, f"tmux new-session failed: {result.stderr}"
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").stdout.strip())

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session).stdout

    def press(self, *keys: str) -> None:
        for key in keys:
            result = self.tmux("send-keys", "-t", self.session, key)
            assert result.returncode == 0, f"tmux send-keys {key!r} failed: {result.stderr}"

    def type(self, text: str) -> None:
        result = self.tmux("send-keys", "-t", self.session, "-l", text)
        assert result.returncode == 0, f"tmux send-keys -l {text!r} failed: {result.stderr}"

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last screen:\n{text}")
            time.sleep(0.2)

    def ours(self, needle: str = "") -> list[int]:
        """Live processes started by this console (whose command line contains `needle`)."""
        mine = set(pids_with_env(self.marker))
        return sorted(p for p in pids_with_cmdline(needle) if p in mine) if needle else sorted(mine)

    def close(self) -> None:
        """Kill the tmux server; then make sure no process of this console outlives the test."""
        self.tmux("kill-server")
        if self.socket_path is not None and self.socket_path.name == self.socket:
            self.socket_path.unlink(missing_ok=True)  # tmux leaves its socket file behind
        end_leftovers(self.ours)  # only after a failure is anything left: it is ours, ended by pid


def status_of(screen: str, job: str) -> str | None:
    """The status word in `job`'s grid row (None when the row is not on screen)."""
    match = re.search(rf"(?m)^.*▎ {re.escape(job)}\s+({'|'.join(STATUSES)})\b", screen)
    return match.group(1) if match else None


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
    jobfile.write_text(f"""\
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
""", encoding="utf-8")
    assert not pids_with_cmdline(SLEEP_A) and not pids_with_cmdline(SLEEP_B), "a stray sleep 61/62 is running"
    console = Console(tmp_path, jobfile)
    console.start()
    try:
        yield console
    finally:
        console.close()


def test_cancel_retry_timeout_and_quit_in_the_real_console(console: Console):
    # both jobs start at once (max_parallel 2); the first row, long-a, is selected
    console.wait_for(lambda s: is_("long-a", "running")(s) and is_("long-b", "running")(s),
                     "both jobs to be running", timeout=45)
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
    assert [p for p in pids_with_cmdline("tui.core.supervisor") if p in console.ours()] == [], \
        "an attempt supervisor outlived the console"
    assert console.ours() == [], "a process started by the console outlived it"
