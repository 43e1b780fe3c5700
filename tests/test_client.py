"""The client library and the CLI verbs against the real server process on a real socket.

Every test gets its own socket and state dir under tmp_path; the verbs run as real processes
(`python -m tui.verbs`), auto-start the real `python -m tui.server`, and real ansible-playbook
runs the jobs on the local host. Each test stops its server and checks nothing is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    INVENTORY,
    PLAYBOOKS,
    TEST_PLAYBOOKS,
    end_leftovers,
    pids_with_env,
    until,
)
from tui.client.autostart import ensure_server
from tui.client.connection import Connection
from tui.client.mirror import Mirror
from tui.client.session import attach


class Deck:
    """One private server's world: its socket, and the verbs run as separate processes."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.socket = tmp_path / "run" / "server.sock"
        # who the audit should see: the verbs send these as X-Playdeck-* headers
        self.env = dict(
            os.environ, PLAYDECK_SOCKET=str(self.socket), SUDO_USER="alice", SSH_CLIENT="203.0.113.7 50000 22"
        )

    def verb(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui.verbs", *args],
            env=self.env,
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tui.verbs", *args],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def jobs(self) -> dict[str, dict[str, Any]]:
        result = self.verb("ls", "--json")
        assert result.returncode == 0, result.stderr
        return {job["name"]: job for job in json.loads(result.stdout)["jobs"]}

    def wait_status(self, name: str, *statuses: str, attempts: int = 1, timeout: float = 90) -> dict[str, Any]:
        """The job once it has one of `statuses` in attempt `attempts` (or later)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.jobs().get(name)
            if job is not None and job["status"] in statuses and len(job["attempts"]) >= attempts:
                return job
            assert time.monotonic() < deadline, f"{name} never became {statuses}: {job}"
            time.sleep(0.2)

    def job_file(self, text: str, name: str = "jobs.yml") -> Path:
        path = self.tmp / name
        path.write_text(f"inventory: {INVENTORY}\n" + text, encoding="utf-8")
        return path

    def server_pids(self) -> list[int]:
        return pids_with_env(f"PLAYDECK_SOCKET={self.socket}\0")


@pytest.fixture
def deck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deck]:
    deck = Deck(tmp_path)
    monkeypatch.setenv("PLAYDECK_SOCKET", str(deck.socket))
    yield deck
    deck.verb("server", "stop")
    end_leftovers(deck.server_pids, wait=10)
    assert deck.server_pids() == []


HELLO = f"""jobs:
  - name: hello
    playbook: {TEST_PLAYBOOKS / "load_one_debug.yml"}
    limit: web01
"""
SLOW = f"""jobs:
  - name: slow
    playbook: {PLAYBOOKS / "slow_task.yml"}
    limit: db01
    extra_vars: {{slow_seconds: 30}}
"""


def test_two_clients_at_once_start_one_server(deck: Deck) -> None:
    """Through a dead server's socket, left behind: connect is refused, so it is replaced."""
    deck.socket.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(deck.socket))
    stale.close()
    first, second = deck.start("ls", "--json"), deck.start("ls", "--json")
    outputs = [proc.communicate(timeout=60) for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert all(json.loads(out) == {"jobs": []} for out, _ in outputs)
    status = deck.verb("server", "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["socket"] == str(deck.socket)
    assert deck.server_pids() == [info["pid"]]  # one server, not two
    assert (deck.socket.stat().st_mode & 0o777) == 0o600


EVIL = "ev\x1b]0;pwned\x07il\x1b[31m"  # a job name that would retitle the terminal and colour it


def test_submit_logs_follow_and_ls(deck: Deck) -> None:
    hostile = (
        HELLO
        + f"""  - name: "{EVIL.encode("unicode_escape").decode()}"
    playbook: {TEST_PLAYBOOKS / "load_one_debug.yml"}
    limit: web02
"""
    )
    submitted = deck.verb("submit", str(deck.job_file(hostile)))
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.splitlines() == ["hello", "ev\u241b]0;pwned\u2407il"]  # visible, no colour
    logs = deck.verb("logs", "hello", "-f")  # returns once the job has ended
    assert logs.returncode == 0, logs.stderr
    assert '"msg": "hello"' in logs.stdout and "PLAY RECAP" in logs.stdout
    assert all(ch == "\x1b" or ch in "\n\t" or ord(ch) >= 32 for ch in logs.stdout)
    evil_logs = deck.verb("logs", EVIL, "-f")  # the name travels as one quoted URL segment
    assert evil_logs.returncode == 0 and "web02" in evil_logs.stdout, evil_logs.stderr
    jobs = deck.jobs()
    job = jobs["hello"]
    assert job["status"] == "successful" and job["hosts"]["web01"]["ok"] == 1
    assert [a["number"] for a in job["attempts"]] == [1] and Path(job["attempts"][0]["log"]).is_file()
    assert jobs[EVIL]["status"] == "successful"
    table = deck.verb("ls")
    assert table.returncode == 0 and "hello" in table.stdout and "successful" in table.stdout
    assert "\x07" not in table.stdout and "]0;pwned" in table.stdout
    assert "\x1b" not in table.stdout  # not a tty: no colour, and never the name's own


def test_submit_invalid_input_submits_nothing(deck: Deck) -> None:
    bad = deck.job_file(HELLO + "    bogus_key: 1\n", "bad.yml")
    result = deck.verb("submit", str(bad))
    assert result.returncode == 2
    assert "nothing was submitted" in result.stderr and f"{bad}:" in result.stderr and "bogus_key" in result.stderr
    assert deck.jobs() == {}
    missing = deck.verb("submit", str(deck.tmp / "absent.yml"))
    assert missing.returncode == 2 and "absent.yml" in missing.stderr
    assert deck.verb("timeout", "hello", "5 parsecs").returncode == 2
    assert deck.verb("frobnicate").returncode == 2


def test_timeout_retry_cancel_on_a_real_job(deck: Deck, isolated_state: Path) -> None:
    jobfile = deck.job_file(
        SLOW
        + f"""  - name: failing
    playbook: {PLAYBOOKS / "failing_host.yml"}
    limit: web01,web02
"""
    )
    assert deck.verb("submit", str(jobfile)).returncode == 0
    deck.wait_status("slow", "running")
    clash = deck.verb("submit", str(jobfile))
    assert clash.returncode == 1 and "slow" in clash.stderr
    assert deck.verb("timeout", "slow", "1s").returncode == 0
    job = deck.wait_status("slow", "timeout")
    assert len(job["attempts"]) == 1
    assert deck.verb("retry", "slow").returncode == 0
    job = deck.wait_status("slow", "running", attempts=2)
    assert len(job["attempts"]) == 2
    assert deck.verb("timeout", "slow", "0").returncode == 0
    assert deck.verb("cancel", "slow").returncode == 0
    deck.wait_status("slow", "canceled")
    again = deck.verb("cancel", "slow")
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    unknown = deck.verb("cancel", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    # the other job ends first: on a loaded machine it may still run, and the sweep below ends
    # whatever of the server's children is left (it would stop "failing" as terminated)
    deck.wait_status("failing", "failed")
    server = json.loads(deck.verb("server", "status", "--json").stdout)["pid"]
    end_leftovers(lambda: [p for p in deck.server_pids() if p != server], wait=10)  # the job's processes ended
    assert deck.verb("logs", "slow").returncode == 0

    assert deck.verb("retry", "failing", "--failed").returncode == 0
    job = deck.wait_status("failing", "failed", "successful", attempts=2)
    assert job["attempts"][1]["limit"] == "web02"  # only the host that failed
    follow = deck.verb("logs", "failing", "-f")
    assert follow.returncode == 1 and follow.stderr.startswith("playdeck: failing: failed")

    entries = [json.loads(line) for line in (isolated_state / "audit.jsonl").read_text().splitlines()]
    cancel = next(e for e in entries if e["action"] == "client" and e["args"].get("request") == "cancel")
    assert cancel["args"]["client_sudo_user"] == "alice" and cancel["args"]["client_ssh"] == "203.0.113.7 50000 22"
    assert cancel["args"]["client_user"] and cancel["args"]["client_pid"] not in (None, server)


def test_server_status_and_stop(deck: Deck) -> None:
    assert deck.verb("server", "status").returncode == 3  # status never starts one
    start = deck.verb("server", "start")
    assert start.returncode == 0 and str(deck.socket) in start.stdout
    status = deck.verb("server", "status")
    assert status.returncode == 0 and "pid" in status.stdout and str(deck.socket) in status.stdout
    pid = json.loads(deck.verb("server", "status", "--json").stdout)["pid"]
    assert deck.verb("server", "start").stdout.startswith("already running")
    stop = deck.verb("server", "stop")
    assert stop.returncode == 0 and str(pid) in stop.stdout
    assert not deck.socket.exists() and deck.server_pids() == []  # stop returns once the server has ended
    assert deck.verb("server", "status").returncode == 3

    foreground = deck.start("server", "start", "--foreground")  # for a systemd unit: execs the server
    try:
        deadline = time.monotonic() + 30
        while (status := deck.verb("server", "status", "--json")).returncode != 0:
            assert foreground.poll() is None and time.monotonic() < deadline, foreground.stderr
            time.sleep(0.1)
        assert json.loads(status.stdout)["pid"] == foreground.pid
        assert deck.verb("server", "stop").returncode == 0
        assert foreground.wait(timeout=30) == 0
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.wait()


def test_mirror_gets_snapshot_then_deltas(deck: Deck) -> None:
    """One job at a time, so `hello` waits in the queue behind `first` long enough to be seen queued."""
    jobfile = deck.job_file(
        f"""jobs:
  - name: first
    playbook: {PLAYBOOKS / "slow_task.yml"}
    limit: db01
    extra_vars: {{slow_seconds: 1}}
"""
        + HELLO[len("jobs:\n") :]
    )
    started = subprocess.run(
        [sys.executable, "-m", "tui.server", "--max-parallel", "1"], env=deck.env, timeout=60, check=False
    )
    assert started.returncode == 0  # it detaches once its socket is bound

    async def scenario() -> tuple[list[str], list[str], Mirror]:
        assert (await ensure_server(deck.socket))["pid"] in deck.server_pids()
        mirror = Mirror()
        kinds: list[str] = []
        seen: list[str] = []
        logs: list[str] = []

        def heard(kind: str, jobs: list[dict[str, Any]]) -> None:
            kinds.append(kind)
            seen.extend(job["status"] for job in jobs if job["name"] == "hello")

        mirror.listen(heard)
        mirror.listen_logs(lambda name, lines, total, _id: logs.extend(f"{name}: {line}" for line in lines))
        async with Connection(deck.socket, timeout=None) as events, Connection(deck.socket) as conn:
            follower = asyncio.create_task(mirror.run(events))
            await until(lambda: mirror.snapshots == 1, 10, "the snapshot")
            await mirror.watch(["hello"])
            assert await conn.submit(jobfile) == ["first", "hello"]
            await until(lambda: (mirror.by_name("hello") or {}).get("status") == "successful", 60, "success")
            await until(lambda: any("PLAY RECAP" in line for line in logs), 10, "the watched job's log")
            assert all(line.startswith("hello: ") for line in logs)  # only the watched job's
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        return kinds, seen, mirror

    kinds, seen, mirror = asyncio.run(scenario())
    assert kinds[0] == "snapshot" and set(kinds[1:]) == {"delta"}
    assert seen[0] == "queued" and seen[-1] == "successful"
    assert "running" in seen and seen.index("running") < len(seen) - 1
    assert mirror.snapshots == 1 and mirror.by_name("first")["status"] == "successful"  # type: ignore[index]
    job = mirror.by_name("hello")
    assert job is not None and job["totals"]["ok"] == 1 and job["hosts"]["web01"]["ok"] == 1


def test_mirror_resync_replaces_everything() -> None:
    """A second snapshot (the server resynced a slow client) drops what it no longer lists."""
    mirror = Mirror()
    heard: list[tuple[str, list[str]]] = []
    mirror.listen(lambda kind, jobs: heard.append((kind, [job["name"] for job in jobs])))
    mirror.apply({"t": "snapshot", "seq": 1, "jobs": [{"id": 0, "name": "a", "status": "running"}]})
    mirror.apply({"t": "delta", "seq": 2, "jobs": [{"id": 1, "name": "b", "status": "queued"}]})
    assert sorted(job["name"] for job in mirror.jobs.values()) == ["a", "b"]
    mirror.apply({"t": "something-newer", "seq": 3})  # ignored, not an error
    mirror.apply({"t": "snapshot", "seq": 9, "jobs": [{"id": 1, "name": "b", "status": "running"}]})
    assert list(mirror.jobs) == [1] and mirror.seq == 9 and mirror.snapshots == 2
    assert heard == [("snapshot", ["a"]), ("delta", ["b"]), ("snapshot", ["b"])]


def test_unsafe_socket_dir_and_a_server_that_cannot_start(deck: Deck, tmp_path: Path) -> None:
    deck.socket.parent.mkdir(mode=0o700)
    os.chmod(deck.socket.parent, 0o755)  # others could swap the socket: refused, nothing started
    unsafe = deck.verb("ls")
    assert unsafe.returncode == 2 and "755" in unsafe.stderr and "refused" in unsafe.stderr
    assert not deck.socket.exists() and deck.server_pids() == []
    os.chmod(deck.socket.parent, 0o700)
    (tmp_path / "not-a-dir").write_text("")
    deck.env["PLAYDECK_STATE_DIR"] = str(tmp_path / "not-a-dir")  # the server refuses to start
    broken = deck.verb("ls")
    assert broken.returncode == 3 and broken.stderr.count("\n") == 1
    assert "while starting" in broken.stderr and "not-a-dir" in broken.stderr and "not a directory" in broken.stderr
    assert deck.server_pids() == []


def test_two_attached_sessions_see_each_others_actions(deck: Deck) -> None:
    jobfile = deck.job_file(SLOW)

    async def scenario() -> float:
        first, second = await asyncio.gather(attach(deck.socket), attach(deck.socket))  # one server for both
        try:
            assert first.status["pid"] == second.status["pid"] and first.mirror.snapshots == 1
            assert (await second.commands.status())["clients"] == 2
            assert await first.commands.submit(jobfile) == ["slow"]
            await until(lambda: (second.mirror.by_name("slow") or {}).get("status") == "running", 30, "running")
            await second.commands.cancel("slow")
            canceled = time.monotonic()
            await until(lambda: (first.mirror.by_name("slow") or {}).get("status") == "canceled", 5, "canceled")
            return time.monotonic() - canceled
        finally:
            await first.close()
            assert not first.attached and second.attached
            await second.close()

    assert asyncio.run(scenario()) < 1.0  # an action in one client shows in the other within a second


def test_mirror_skips_stale_deltas_and_repeated_log_lines() -> None:
    """A delta older than the snapshot is ignored; a watched log resent after a resync is not
    heard twice (only its new lines are)."""
    mirror = Mirror()
    heard: list[tuple[str, list[str], int]] = []
    mirror.listen_logs(lambda name, lines, total, _id: heard.append((name, lines, total)))
    mirror.apply({"t": "snapshot", "seq": 5, "jobs": [{"id": 0, "name": "a", "status": "running"}]})
    mirror.apply({"t": "delta", "seq": 4, "jobs": [{"id": 0, "name": "a", "status": "queued"}]})
    assert mirror.jobs[0]["status"] == "running" and mirror.seq == 5
    mirror.apply({"t": "delta", "seq": 6, "jobs": [{"id": 0, "name": "a", "status": "successful"}]})
    assert mirror.jobs[0]["status"] == "successful"
    mirror.apply({"t": "log", "job": "a", "lines": ["1", "2"], "total": 2})
    mirror.apply({"t": "log", "job": "a", "lines": ["1", "2", "3"], "total": 3})  # the tail again, after a resync
    mirror.apply({"t": "log", "job": "a", "lines": ["4"], "total": 4})
    assert heard == [("a", ["1", "2"], 2), ("a", ["3"], 3), ("a", ["4"], 4)]


def test_a_stopped_server_is_reported_not_replaced(deck: Deck) -> None:
    """A server that holds the socket but does not answer (SIGSTOP) is not a stale socket."""
    assert deck.verb("server", "start").returncode == 0
    (pid,) = deck.server_pids()
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        stuck = deck.verb("ls")
        assert stuck.returncode == 3 and "does not answer" in stuck.stderr and stuck.stderr.count("\n") == 1
        assert time.monotonic() - began < 20
        assert deck.server_pids() == [pid] and deck.socket.exists()  # no second server took its place
    finally:
        os.kill(pid, signal.SIGCONT)
    assert deck.verb("ls").returncode == 0
