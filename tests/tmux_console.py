"""The real console in a real terminal: `playdeck` in a detached tmux session, driven by keys.

One helper for every end-to-end test. tmux runs on a private socket (`-L`), so a user's own
tmux is never touched, and `close()` always kills that server and ends whatever the console
started. With `record=True` every byte the console writes to its terminal is kept
(`tmux pipe-pane`), and the console starts only once the recording runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pytest

from tests.conftest import ROOT, end_leftovers, pids_with_cmdline, pids_with_env

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """`python -m tui ARGS` (the `playdeck` entry point) in tmux at `size`, with `TERM=term`."""

    def __init__(
        self,
        tmp_path: Path,
        args: Iterable[str],
        *,
        size: tuple[int, int] = (80, 24),
        term: str = "screen",
        env: Mapping[str, str] | None = None,
        record: bool = False,
        name: str = "console",
    ):
        self.socket = f"playdeck-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "console"
        self.size = size
        self.socket_path: Path | None = None
        self.state = tmp_path / f"{name}-state"
        # every process the console starts inherits this; nothing else on the machine has it
        self.marker = f"PLAYDECK_STATE_DIR={self.state}"
        self.record = record
        self.raw_file = tmp_path / f"{name}.raw"
        self.go = tmp_path / f"{name}.go"  # the console starts only once the test says so
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "NO_COLOR")}
        console_env = {
            "PLAYDECK_STATE_DIR": str(self.state),
            "PLAYDECK_CONFIG": str(tmp_path / "no-config.yml"),  # a user's key map must not change the keys
            "TMPDIR": str(tmp_path),
            "TERM": term,
            # scrolls jump instead of gliding, so each screen read is where the key left it
            "TEXTUAL_ANIMATIONS": "none",
            **(env or {}),
        }
        # env(1) sets these for the console only: the shell's trailing `sleep` must not carry the marker
        command = shlex.join(
            ["env", *(f"{k}={v}" for k, v in console_env.items()), sys.executable, "-m", "tui", *map(str, args)]
        )
        go = shlex.quote(str(self.go))
        self.script = (
            f"while [ ! -e {go} ]; do sleep 0.05; done; "
            f"cd {shlex.quote(str(ROOT))} && {command}; echo EXIT=$?; sleep 60"
        )

    # -- tmux ---------------------------------------------------------------
    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True, timeout=10
        )

    def start(self) -> "Terminal":
        width, height = self.size
        result = self.tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(width),
            "-y",
            str(height),
            "sh",
            "-c",
            self.script,
        )
        assert result.returncode == 0, f"tmux new-session failed: {result.stderr}"
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").stdout.strip())
        if self.record:
            # let applications set tmux paste buffers with OSC 52 (the default, "external", ignores
            # them), so a clipboard write that got through would show up in `list-buffers`
            result = self.tmux("set-option", "-s", "set-clipboard", "on")
            assert result.returncode == 0, f"tmux set-clipboard failed: {result.stderr}"
            result = self.tmux("pipe-pane", "-O", "-t", self.session, f"cat >> {shlex.quote(str(self.raw_file))}")
            assert result.returncode == 0, f"tmux pipe-pane failed: {result.stderr}"
        self.go.touch()
        return self

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session).stdout

    def styled_screen(self) -> str:
        """The screen with its SGR attributes (`capture-pane -e`)."""
        return self.tmux("capture-pane", "-p", "-e", "-t", self.session).stdout

    def press(self, *keys: str) -> None:
        for key in keys:
            result = self.tmux("send-keys", "-t", self.session, key)
            assert result.returncode == 0, f"tmux send-keys {key!r} failed: {result.stderr}"

    def type(self, text: str) -> None:
        result = self.tmux("send-keys", "-t", self.session, "-l", text)
        assert result.returncode == 0, f"tmux send-keys -l {text!r} failed: {result.stderr}"

    def pane_pid(self) -> int:
        """The pid of the pane's shell (the console is its child)."""
        return int(self.tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").stdout.strip())

    def pane_title(self) -> str:
        return self.tmux("display-message", "-p", "-t", self.session, "#{pane_title}").stdout

    def buffers(self) -> str:
        names = self.tmux("list-buffers", "-F", "#{buffer_name}").stdout.split()
        return "\n".join(self.tmux("show-buffer", "-b", name).stdout for name in names)

    # -- waiting ------------------------------------------------------------
    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0, hold: float = 0.0) -> str:
        """The first screen for which `predicate` holds (and keeps holding for `hold` seconds:
        a capture can catch a frame half drawn, so absence needs a second look)."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while True:
            text = self.screen()
            if not predicate(text):
                since = None
            elif hold <= 0 or (since is not None and time.monotonic() - since >= hold):
                return text
            elif since is None:
                since = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last screen:\n{text}")
            time.sleep(0.1)

    def settled(self, before: str | None = None, timeout: float = 10.0) -> str:
        """The screen once it stops changing.

        With `before`, first wait up to 10 s for the screen to differ from it (a key to take effect).
        """
        previous = self.screen()
        deadline = time.monotonic() + 10.0
        while before is not None and previous == before and time.monotonic() < deadline:
            time.sleep(0.1)
            previous = self.screen()
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.2)
            screen = self.screen()
            if screen == previous or time.monotonic() > deadline:
                return screen
            previous = screen

    def exit_status(self, timeout: float = 30.0) -> int:
        """The console's exit status, once the shell has printed it."""
        screen = self.wait_for(lambda s: "EXIT=" in s, "the console to exit", timeout)
        match = re.search(r"EXIT=(\d+)", screen)
        assert match is not None
        return int(match.group(1))

    # -- processes and bytes --------------------------------------------------
    def ours(self, needle: str = "") -> list[int]:
        """Live processes started by this console (whose command line contains `needle`)."""
        mine = set(pids_with_env(self.marker))
        return sorted(p for p in pids_with_cmdline(needle) if p in mine) if needle else sorted(mine)

    def stop_recording(self) -> bytes:
        self.tmux("pipe-pane", "-t", self.session)  # no command: closes the pipe
        time.sleep(0.3)  # let `cat` write what it still holds
        return self.raw_file.read_bytes() if self.raw_file.exists() else b""

    def raw(self) -> bytes:
        """What the console wrote so far (while recording)."""
        return self.raw_file.read_bytes() if self.raw_file.exists() else b""

    def close(self) -> None:
        """Kill the tmux server; then make sure no process of this console outlives the test."""
        self.tmux("kill-server")
        if self.socket_path is not None and self.socket_path.name == self.socket:
            self.socket_path.unlink(missing_ok=True)  # tmux leaves its socket file behind
        for pid in self.ours("tui.server"):  # the server it started: stopped as `playdeck server stop` does
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        end_leftovers(self.ours)  # only after a failure is anything left: it is ours, ended by pid


def control_strings(raw: bytes) -> list[tuple[int, bytes]]:
    """Every OSC, DCS, APC, PM and SOS in a byte stream: (offset, body up to its terminator)."""
    found = []
    for match in re.finditer(rb"\x1b[\]P_^X]", raw):
        start = match.end()
        end = len(raw)
        for terminator in (b"\x07", b"\x1b\\"):
            at = raw.find(terminator, start)
            if at != -1:
                end = min(end, at)
        found.append((match.start(), raw[start : min(end, start + 4096)]))
    return found


def grid_status(screen: str, job: str, statuses: Iterable[str] = ()) -> str | None:
    """The status word in `job`'s grid row (None when the row is not on screen)."""
    words = "|".join(statuses) or r"\w+"
    match = re.search(rf"(?m)^.*?(?:▎|^)\s?{re.escape(job)}\s+({words})\b", screen)
    return match.group(1) if match else None
