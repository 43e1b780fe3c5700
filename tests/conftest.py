"""Shared fixtures: real Ansible on the sample inventory, state kept in a temp dir."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "sample_inventory" / "hosts.yml"
PLAYBOOKS = ROOT / "sample_playbooks"
TEST_PLAYBOOKS = ROOT / "tests" / "playbooks"  # playbooks that exist only to test an edge


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never write to the user's state dir; sample playbooks write under this tmp dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("PLAYDECK_STATE_DIR", str(state))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches: make it read TMPDIR again
    # the default server socket is then <tmp_path>/playdeck-<uid>/server.sock: a server per test
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("PLAYDECK_SOCKET", raising=False)
    return state


@pytest.fixture(autouse=True)
def no_server_left(tmp_path: Path) -> Iterator[None]:
    """A console or verb started a server for this test (under its TMPDIR): stop it as
    `playdeck server stop` would (SIGTERM: its jobs are cancelled cleanly), so nothing outlives
    the test. Found by environment, so a server that failed its own tests is stopped too."""
    yield
    marker = f"TMPDIR={tmp_path}\0".encode()

    def servers() -> list[int]:
        return [
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit()
            and b"tui.server" in _read(f"/proc/{p}/cmdline")
            and marker in _read(f"/proc/{p}/environ")
            and _live(p)
        ]

    found = servers()
    for pid in found:
        os.kill(pid, signal.SIGTERM)
    end_leftovers(servers, wait=15.0 if found else 0.0)


def playbook(name: str) -> Path:
    return PLAYBOOKS / f"{name}.yml"


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- looking at the process table, independently of tui.core.running.procs -----------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _live(pid: str) -> bool:
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def pids_with_env(needle: str) -> list[int]:
    """Live processes whose environment contains `needle` (e.g. the attempt marker)."""
    want = needle.encode()
    me = str(os.getpid())
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and p != me and want in _read(f"/proc/{p}/environ") and _live(p)
    ]


def pids_with_cmdline(needle: str) -> list[int]:
    """Live processes whose command line contains `needle` (arguments joined by spaces), ending at an
    argument's end: "sleep 42" must not find an unrelated "sleep 420" running on the same machine."""
    want = needle.encode()

    def has(cmdline: bytes) -> bool:
        joined = cmdline.replace(b"\0", b" ") + b" "
        start = joined.find(want)
        while start != -1:
            if joined[start + len(want) : start + len(want) + 1] in (b" ", b"/", b"="):
                return True
            start = joined.find(want, start + 1)
        return False

    return [int(p) for p in os.listdir("/proc") if p.isdigit() and has(_read(f"/proc/{p}/cmdline")) and _live(p)]


def end_leftovers(
    find: Callable[[], list[int]], wait: float = 15.0, note: Callable[[int, signal.Signals], None] | None = None
) -> None:
    """Give what `find()` returns `wait` seconds to end by itself (supervisors stop their jobs when
    the console dies); then SIGTERM and SIGKILL, by pid, whatever is left. `note(pid, signal)` is
    told of each before it is sent."""
    deadline = time.monotonic() + wait
    while find() and time.monotonic() < deadline:
        time.sleep(0.2)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = find()
        for pid in left:
            if note is not None:
                note(pid, sig)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if left:
            time.sleep(1)
