"""The engine against a real sshd on 127.0.0.1: ssh successes and the ways ssh fails.

Every host here is this machine, reached over loopback (tests/sshd.py); no test
touches any other address. Each test runs one small playbook and keeps to a
few seconds. Sleep durations are unique per test so /proc checks are exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import TEST_PLAYBOOKS, pids_with_cmdline, pids_with_env, run, until
from tests.sshd import HOST, SshServer, control_name, descendants, keygen, sshd  # noqa: F401 - sshd is a fixture
from tui.core.engine import Engine
from tui.core.planning.spec import Status, spec_for_playbook
from tui.core.running.procs import MARKER_VAR

SSH_PING = TEST_PLAYBOOKS / "ssh_ping.yml"


def ssh_spec(inventory: Path, name: str, secs: int = 0, **options):
    return spec_for_playbook(SSH_PING, inventory, name=name, extra_vars={"secs": secs}, **options)


def masters(port: int, user: str = "root") -> list[int]:
    """Live ssh ControlPersist masters (`ssh: <dir>/<name> [mux]`) for 127.0.0.1:port, whatever the dir."""
    name = control_name(port, user)
    return [pid for pid in pids_with_cmdline(f"/{name} [mux]") if _cmdline(pid).startswith("ssh: ")]


def _live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def assert_nothing_left(job, port: int, sleep_args: str | None = None) -> None:
    for attempt in job.attempts:
        assert pids_with_env(f"{MARKER_VAR}={attempt.marker}") == [], (
            f"processes of {job.name} attempt {attempt.number} survived"
        )
    assert pids_with_cmdline(f"Port={port}") == [], f"an ssh client for port {port} survived"
    assert masters(port) == [], f"an ssh ControlPersist master for port {port} survived"
    name = control_name(port, "root")
    assert pids_with_cmdline(f"/{name}") == [], f"something using the control socket .../{name} survived"
    if sleep_args:
        assert pids_with_cmdline(sleep_args) == [], f"{sleep_args!r} survived"


def _diagnose(job, server: SshServer | None = None) -> str:
    text = f"status={job.status} message={job.message!r} hosts={job.hosts}"
    if job.last is not None and job.last.log.exists():
        text += "\n--- output.log ---\n" + job.last.log.read_text(errors="replace")[-3000:]
    if server is not None:
        text += "\n--- sshd.log ---\n" + server.log_text()[-2000:]
    return text


# -- 1. reached over ssh ----------------------------------------------------


def test_hosts_reached_over_ssh_succeed_with_per_host_counts(sshd, tmp_path):
    inventory = sshd.inventory(tmp_path, {"node1": None, "node2": None})

    async def main():
        engine = Engine()
        job = engine.add(ssh_spec(inventory, "ssh-ok"))
        start = time.monotonic()
        await engine.wait_idle()
        return job, time.monotonic() - start

    job, took = run(main())
    assert job.status is Status.SUCCESSFUL, _diagnose(job, sshd)
    assert job.last.rc == 0
    assert set(job.hosts) == {"node1", "node2"}
    for counts in job.hosts.values():
        assert (counts.ok, counts.changed, counts.failed, counts.unreachable) == (2, 1, 0, 0), _diagnose(job)
    assert "Accepted publickey for root" in sshd.log_text()  # it really went through our sshd
    assert took < 30
    assert_nothing_left(job, sshd.port)


# -- 2. authentication refused ---------------------------------------------


def test_authentication_failure_is_unreachable_and_fast(sshd, tmp_path):
    stranger = keygen(tmp_path / "not_authorized")
    inventory = sshd.inventory(
        tmp_path,
        {
            "good": None,
            "badkey": {"ansible_ssh_private_key_file": str(stranger)},
            "nouser": {"ansible_user": "playdeck-no-such-user"},
        },
    )

    async def main():
        engine = Engine()
        job = engine.add(ssh_spec(inventory, "ssh-auth"))
        start = time.monotonic()
        await engine.wait_idle()
        return job, time.monotonic() - start

    job, took = run(main())
    assert job.status is Status.FAILED, _diagnose(job, sshd)
    assert job.hosts["good"].ok == 2 and job.hosts["good"].unreachable == 0
    for host in ("badkey", "nouser"):
        counts = job.hosts[host]
        assert counts.unreachable == 1 and counts.ok == 0 and counts.failed == 0, _diagnose(job)
    assert sorted(job.results.failed_hosts()) == ["badkey", "nouser"]
    assert "2 unreachable" in job.message and "badkey" in job.message and "nouser" in job.message
    for result in job.results.tasks:
        if result.host in ("badkey", "nouser"):
            assert result.outcome == "unreachable"
            assert "Permission denied" in result.message, result.message
    # refused at once, not after a connection timeout (10 s in Ansible): Ansible's own timing per host
    durations = {
        event["event_data"]["host"]: event["event_data"]["duration"]
        for event in map(json.loads, job.last.events_log.read_text().splitlines())
        if event.get("event") == "runner_on_unreachable"
    }
    assert set(durations) == {"badkey", "nouser"}
    assert all(seconds < 10.0 for seconds in durations.values()), durations
    assert took < 20, f"took {took:.1f}s"
    assert_nothing_left(job, sshd.port)


# -- 3. a port that accepts and never speaks --------------------------------


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte; stops when told."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if teardown never came
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)  # hold it open, say nothing

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def test_server_that_never_speaks_times_out_and_leaves_nothing(sshd, silent_server, tmp_path):
    # same key and user as a good host: only the port differs, and it never answers
    inventory = sshd.inventory(tmp_path, {"mute": {"ansible_port": silent_server.port}})

    async def main():
        engine = Engine()
        job = engine.add(ssh_spec(inventory, "ssh-mute", secs=73, timeout=3))
        start = time.monotonic()
        await until(
            lambda: pids_with_cmdline(f"Port={silent_server.port}"),
            timeout=10,
            what="an ssh client connecting to the silent port",
        )
        await engine.wait_idle()
        return job, time.monotonic() - start

    job, took = run(main())
    assert job.status is Status.TIMEOUT, _diagnose(job)
    assert job.last.status is Status.TIMEOUT
    assert silent_server.accepted >= 1
    assert 3.0 <= took < 15.0, f"took {took:.1f}s"
    assert "playdeck: stopped (timeout)" in job.last.log.read_text()
    assert_nothing_left(job, silent_server.port, "sleep 73")


# -- 4. the host drops in the middle of a task ------------------------------


@pytest.mark.parametrize("how", ["connection_cut", "host_down"])
def test_host_dropping_mid_task_ends_the_job_as_unreachable(sshd, tmp_path, how):
    """connection_cut: only the per-connection sshd processes die (the listener lives on);
    host_down: everything running for the session on the "remote" dies with them."""
    inventory = sshd.inventory(tmp_path, {"node1": None})
    secs = {"connection_cut": 74, "host_down": 75}[how]
    remote_sleep = f"sleep {secs}"

    async def main():
        engine = Engine()
        job = engine.add(ssh_spec(inventory, f"ssh-drop-{how}", secs=secs))
        await until(lambda: pids_with_cmdline(remote_sleep), timeout=20, what="the remote sleep to start")
        (sleeper,) = pids_with_cmdline(remote_sleep)
        under_sshd = sleeper in descendants(sshd.pid)
        session_sshds = sshd.session_sshds()
        dropped_at = time.monotonic()
        if how == "connection_cut":
            killed = session_sshds
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        else:
            killed = sshd.drop_sessions()
        try:
            await asyncio.wait_for(engine.wait_idle(), 20)
        except asyncio.TimeoutError:
            await engine.close()
            raise AssertionError(f"the job did not end within 20 s of the host dropping: {_diagnose(job, sshd)}")
        took = time.monotonic() - dropped_at
        return job, took, under_sshd, session_sshds, killed

    try:
        job, took, under_sshd, session_sshds, killed = run(main())
        assert under_sshd, "the sleep did not run under our sshd: the test did not go over ssh"
        assert session_sshds and set(session_sshds) <= set(killed)
        assert sshd.process.poll() is None, "the listener itself must survive"
        assert job.status is Status.FAILED, _diagnose(job, sshd)
        counts = job.hosts["node1"]
        # Ansible reports a connection that dies under a running command as unreachable
        # (ssh exits 255), not as a failed task
        assert counts.unreachable == 1 and counts.failed == 0 and counts.ok == 1, _diagnose(job)
        assert job.results.failed_hosts() == ["node1"]
        assert job.message == "1 unreachable (node1)"
        assert took < 15.0, f"the job took {took:.1f}s to notice the host was gone"  # sleep is 74+ s
        assert_nothing_left(job, sshd.port)
        # the remote side: Ansible runs the command on a pty (-tt), so its sshd's death hangs it up
        assert pids_with_cmdline(remote_sleep) == [], f"remote {remote_sleep!r} survived its session"
    finally:
        for pid in pids_with_cmdline(remote_sleep):  # never leave the "remote" sleep behind
            os.kill(pid, signal.SIGKILL)


# -- 5. ControlPersist masters end with the job -----------------------------


def test_controlpersist_master_ends_with_the_job(sshd, tmp_path):
    inventory = sshd.inventory(tmp_path, {"node1": None})

    async def main():
        before = masters(sshd.port)
        engine = Engine()
        job = engine.add(ssh_spec(inventory, "ssh-persist", secs=2))
        await until(lambda: masters(sshd.port), timeout=20, what="an ssh ControlPersist master")
        seen = masters(sshd.port)
        await engine.wait_idle()
        return job, before, seen

    job, before, seen = run(main())
    assert job.status is Status.SUCCESSFUL, _diagnose(job, sshd)
    assert before == [] and seen, "a master left over from an earlier job would hide what this one does"
    for pid in seen:
        assert not _live(pid), f"ControlPersist master {pid} ({_cmdline(pid)!r}) outlived its job"
    assert_nothing_left(job, sshd.port)


def test_controlpersist_master_ends_even_when_the_supervisor_is_killed(sshd, tmp_path):
    """The supervisor SIGKILLed (OOM killer, a stray kill): the console's marker sweep is the last word.

    A ControlPersist master rewrites its process title over its environment
    block (setproctitle), so /proc/<pid>/environ no longer shows the attempt's
    marker; orphaned, it re-parents to PID 1 and would serve for ControlPersist=60s.
    """
    inventory = sshd.inventory(tmp_path, {"node1": None})

    async def main():
        before = masters(sshd.port)
        engine = Engine()
        job = engine.add(ssh_spec(inventory, "ssh-sup-killed", secs=76))
        await until(
            lambda: pids_with_cmdline("sleep 76") and masters(sshd.port),
            timeout=20,
            what="the remote sleep and an ssh ControlPersist master",
        )
        seen = masters(sshd.port)
        marker = f"{MARKER_VAR}={job.last.marker}"
        (supervisor,) = [pid for pid in pids_with_env(marker) if "tui.core.running.supervisor" in _cmdline(pid)]
        os.kill(supervisor, signal.SIGKILL)
        try:
            await asyncio.wait_for(engine.wait_idle(), 20)
        except asyncio.TimeoutError:
            await engine.close()
            raise AssertionError(f"the job did not end within 20 s of its supervisor dying: {_diagnose(job)}")
        return job, before, seen

    try:
        job, before, seen = run(main())
        assert before == [] and seen
        assert job.status is Status.ERROR, _diagnose(job)
        for pid in seen:
            assert not _live(pid), f"ControlPersist master {pid} ({_cmdline(pid)!r}) outlived its job"
        assert_nothing_left(job, sshd.port)
    finally:
        for pid in masters(sshd.port) + pids_with_cmdline("sleep 76"):  # leave nothing for the next test
            os.kill(pid, signal.SIGKILL)
