"""The engine server (tui/server) as a real process on a real Unix socket, driven over HTTP and websockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    INVENTORY,
    ROOT,
    TEST_PLAYBOOKS,
    end_leftovers,
    pids_with_cmdline,
    pids_with_env,
    playbook,
)
from tui.server.clients import MAX_BYTES, MAX_FRAMES

URL = "http://playdeck"


class Server:
    """`python -m tui.server --foreground` with its socket and state under tmp_path."""

    def __init__(self, tmp_path: Path, *args: str, socket: Path | None = None):
        self.socket = socket or tmp_path / "sock" / "server.sock"
        self.state = Path(os.environ["PLAYDECK_STATE_DIR"])
        env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(self.socket))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.server", "--foreground", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.proc.stdout.read().decode() if self.proc.stdout else ""
            assert time.monotonic() < deadline, "the server never answered"
            try:
                if call(self.socket, "GET", "/v1/status")[0] == 200:
                    break
            except (aiohttp.ClientError, OSError):
                pass
            time.sleep(0.1)

    def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        return call(self.socket, method, path, body, headers)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def call(
    sock: Path,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async def main() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as session,
            session.request(method, URL + path, json=body, headers=headers or {}) as response,
        ):
            text = await response.text()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(text) if kind.startswith("application/json") else text

    return asyncio.run(main())


@pytest.fixture
def server(tmp_path: Path):
    servers: list[Server] = []

    def start(*args: str, socket: Path | None = None) -> Server:
        servers.append(Server(tmp_path, *args, socket=socket))
        return servers[-1]

    yield start
    for one in servers:
        one.stop()
    state = os.environ["PLAYDECK_STATE_DIR"]
    end_leftovers(lambda: pids_with_env(f"PLAYDECK_STATE_DIR={state}"), wait=5)


def job_file(tmp_path: Path, *jobs: dict[str, Any], name: str = "jobs.yml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"inventory": str(INVENTORY), "jobs": list(jobs)}))  # JSON is YAML
    return path


def hello(name: str = "hello") -> dict[str, Any]:
    return {
        "name": name,
        "playbook": str(TEST_PLAYBOOKS / "load_one_debug.yml"),
        "limit": "web01",
    }


def slow(name: str, seconds: int) -> dict[str, Any]:
    return {
        "name": name,
        "playbook": str(playbook("slow_task")),
        "limit": "db01",
        "extra_vars": {"slow_seconds": seconds},
    }


def wait_for(check, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def job_status(srv: Server, name: str) -> str | None:
    jobs = {job["name"]: job for job in srv("GET", "/v1/jobs")[1]["jobs"] if not job["history"]}
    return jobs[name]["status"] if name in jobs else None


def audit(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]


def test_status_submit_validate_clash_and_audit(server, tmp_path):
    srv = server()
    code, status = srv("GET", "/v1/status")
    assert code == 200 and status["pid"] == srv.proc.pid and status["socket"] == str(srv.socket)
    assert (
        oct(srv.socket.stat().st_mode & 0o777) == "0o600" and oct(srv.socket.parent.stat().st_mode & 0o777) == "0o700"
    )

    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(srv.socket))
    second = subprocess.run(
        [sys.executable, "-m", "tui.server", "--foreground"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1 and "already running" in second.stderr and srv("GET", "/v1/status")[0] == 200

    who = {
        "X-Playdeck-User": "alice",
        "X-Playdeck-Sudo-User": "bob",
        "X-Playdeck-SSH-Client": "10.1.2.3 5555 22",
    }
    code, body = srv(
        "POST",
        "/v1/jobs",
        {"jobfile": str(job_file(tmp_path, hello())), "preflight": False},
        **who,
    )
    assert (code, body) == (201, {"jobs": ["hello"], "ids": [0]})
    wait_for(lambda: job_status(srv, "hello") == "successful", what="hello to succeed")
    summary = srv("GET", "/v1/jobs")[1]["jobs"][0]
    assert summary["hosts"]["web01"]["ok"] == 1 and summary["attempts"][0]["rc"] == 0 and summary["id"] == 0
    code, text = srv("GET", "/v1/jobs/hello/log")
    assert code == 200 and "TASK [say hello]" in text and "ok=1" in text

    entry = next(e for e in audit(srv.state) if e["action"] == "client" and e["args"]["request"] == "submit")
    assert entry["args"]["client_user"] == "alice" and entry["args"]["client_sudo_user"] == "bob"
    assert entry["args"]["client_ssh"] == "10.1.2.3 5555 22" and entry["args"]["jobs"] == ["hello"]
    assert isinstance(entry["args"]["client_pid"], int) and entry["args"]["client_pid"] != srv.proc.pid

    # invalid job file: every problem as file:line: key: why, and nothing submitted
    bad = tmp_path / "bad.yml"
    bad.write_text(
        f"inventory: {INVENTORY}\njobs:\n  - name: x\n    playbook: {TEST_PLAYBOOKS / 'load_one_debug.yml'}\n"
        "    timeout: soon\n  - name: y\n"
    )
    code, body = srv("POST", "/v1/jobs", {"jobfile": str(bad)})
    assert code == 400 and len(body["problems"]) == 2, body
    assert body["problems"][0].startswith(f"{bad}:5: ") and "timeout" in body["problems"][0]
    # the preflight catches a limit that matches no host, before anything runs
    code, body = srv(
        "POST",
        "/v1/jobs",
        {"jobfile": str(job_file(tmp_path, {**hello("z"), "limit": "nosuchhost"}, name="nolimit.yml"))},
    )
    assert code == 400 and body["problems"] and "job 'z'" in body["problems"][0], body
    assert srv("POST", "/v1/jobs/nosuch/cancel")[0] == 404
    assert srv("POST", "/v1/jobs/hello/cancel")[0] == 409  # finished: the engine's reason, nothing changes
    # a finished job's name is free: launching it again makes a new job (new id) beside the old one
    # (a clash with an unfinished job is a 409: tests/test_server_console_api.py)
    code, body = srv(
        "POST",
        "/v1/jobs",
        {
            "jobfile": str(job_file(tmp_path, hello("new"), hello(), name="again.yml")),
            "preflight": False,
        },
    )
    assert (code, body) == (201, {"jobs": ["new", "hello"], "ids": [1, 2]}), body
    assert [(job["name"], job["id"]) for job in srv("GET", "/v1/jobs")[1]["jobs"]] == [
        ("hello", 0),
        ("new", 1),
        ("hello", 2),
    ]
    wait_for(lambda: job_status(srv, "hello") == "successful" and job_status(srv, "new") == "successful")
    # the next preflight runs in the spare worker the first one left (Ansible already imported)
    assert srv("POST", "/v1/jobs", {"jobfile": str(job_file(tmp_path, hello("checked"), name="ok.yml"))})[0] == 201
    assert len(pids_with_cmdline("-m tui.server.warm")) >= 1
    srv.stop()
    assert srv.proc.returncode == 0 and pids_with_env(f"PLAYDECK_STATE_DIR={srv.state}") == []  # spare included


async def _events_until(
    ws: aiohttp.ClientWebSocketResponse,
    seen: list[dict[str, Any]],
    done,
    timeout: float = 30.0,
):
    deadline = time.monotonic() + timeout
    while not done():
        msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        seen.append(json.loads(msg.data))


def test_websocket_snapshot_deltas_logs_and_cancel(server, tmp_path):
    srv = server()
    srv(
        "POST",
        "/v1/jobs",
        {"jobfile": str(job_file(tmp_path, hello("first"))), "preflight": False},
    )
    wait_for(lambda: job_status(srv, "first") == "successful")

    async def main() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
            session.ws_connect(URL + "/v1/events") as ws,
        ):
            await _events_until(ws, seen, lambda: seen)
            await ws.send_json({"watch": ["sleeper"]})
            body = {
                "jobfile": str(job_file(tmp_path, slow("sleeper", 71), name="slow.yml")),
                "preflight": False,
            }
            async with session.post(URL + "/v1/jobs", json=body) as response:
                assert response.status == 201

            def states() -> list[str]:
                return [j["status"] for m in seen if m["t"] == "delta" for j in m["jobs"] if j["name"] == "sleeper"]

            await _events_until(ws, seen, lambda: "running" in states())
            for _ in range(300):  # the sleep starts after the task's last event: no message to wait for
                if pids_with_cmdline("sleep 71"):
                    break
                await asyncio.sleep(0.1)
            async with session.post(URL + "/v1/jobs/sleeper/timeout", json={"seconds": 60}) as response:
                assert response.status == 200

            def timed() -> list[dict]:
                return [j for m in seen if m["t"] == "delta" for j in m["jobs"] if j["timeout_left"]]

            await _events_until(ws, seen, timed)
            async with session.post(URL + "/v1/jobs/sleeper/cancel") as response:
                assert response.status == 200
            await _events_until(ws, seen, lambda: "canceled" in states())
        return seen

    seen = asyncio.run(main())
    first = seen[0]
    assert first["t"] == "snapshot" and [j["name"] for j in first["jobs"]] == ["first"]
    assert first["jobs"][0]["status"] == "successful" and first["jobs"][0]["totals"]["ok"] == 1
    deltas = [m for m in seen if m["t"] == "delta"]
    assert all(m["seq"] > first["seq"] for m in deltas) and [m["seq"] for m in deltas] == sorted(
        m["seq"] for m in deltas
    )
    running = next(j for m in deltas for j in m["jobs"] if j["name"] == "sleeper" and j["status"] == "running")
    assert running["target"] == "slow_task.yml" and running["limit"] == "db01" and running["attempt"] == 1
    # changed jobs only ("first" may come once more: a change noted before the snapshot, sent after it)
    assert {(j["name"], j["status"]) for m in deltas for j in m["jobs"] if j["name"] != "sleeper"} <= {
        ("first", "successful")
    }
    timed = next(j for m in deltas for j in m["jobs"] if j["timeout_left"])
    assert 50 < timed["timeout_left"] <= 60 and timed["timeout"] == pytest.approx(
        timed["elapsed"] + timed["timeout_left"]
    )
    logs = [line for m in seen if m["t"] == "log" and m["job"] == "sleeper" for line in m["lines"]]
    assert any("Run long database migration" in line for line in logs)
    assert pids_with_cmdline("sleep 71") == []  # the cancel ended the process, not just the job
    assert job_status(srv, "sleeper") == "canceled"


STALL_CLIENT = textwrap.dedent("""\
    import asyncio, json, sys, aiohttp
    async def main():
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sys.argv[1])) as s:
            async with s.ws_connect("http://playdeck/v1/events") as ws:
                await ws.send_json({"watch": ["chatty"]})
                print("ready", flush=True)
                async for msg in ws:
                    with open(sys.argv[2], "a") as fh:
                        fh.write(json.loads(msg.data)["t"] + "\\n")
    asyncio.run(main())
""")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_stalled_client_neither_slows_another_nor_grows_the_server(server, tmp_path):
    srv = server()
    chatty = tmp_path / "chatty.yml"
    chatty.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ 'x' * 4000 }}\"}\n"
        '      loop: "{{ range(1000) | list }}"\n'
    )
    seen_file = tmp_path / "stalled.txt"
    stalled = subprocess.Popen(
        [sys.executable, "-c", STALL_CLIENT, str(srv.socket), str(seen_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stalled.stdout is not None and stalled.stdout.readline() == "ready\n"
        wait_for(lambda: seen_file.exists() and "snapshot" in seen_file.read_text())
        stalled.send_signal(signal.SIGSTOP)
        rss_before = _rss_kb(srv.proc.pid)

        async def main() -> list[float]:
            arrivals: list[float] = []
            async with (
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
                session.ws_connect(URL + "/v1/events", max_msg_size=0) as ws,
            ):
                await ws.send_json({"watch": ["chatty"]})
                chatty_job = {"name": "chatty", "playbook": str(chatty), "limit": "web01"}
                body = {"jobfile": str(job_file(tmp_path, chatty_job)), "preflight": False}
                async with session.post(URL + "/v1/jobs", json=body) as response:
                    assert response.status == 201
                done = flowing = False
                while not done:
                    data = json.loads((await ws.receive(timeout=30)).data)
                    if data["t"] != "delta":
                        continue
                    if flowing or any(j["task"] for j in data["jobs"]):  # its loop items flow from here
                        flowing = True
                        arrivals.append(time.monotonic())
                    done = any(j["name"] == "chatty" and j["status"] == "successful" for j in data["jobs"])
            return arrivals

        arrivals = asyncio.run(main())
        status = srv("GET", "/v1/status")[1]
        rss_after = _rss_kb(srv.proc.pid)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert len(arrivals) > 10 and max(gaps) < 2.0, gaps  # deltas kept coming every ~0.1 s
        stuck = [q for q in status["queues"] if q["resyncs"]]
        assert status["clients"] == 1 and len(stuck) == 1, status  # the live client never needed one
        assert stuck[0]["bytes"] <= MAX_BYTES and stuck[0]["queued"] <= MAX_FRAMES and stuck[0]["dropped"] > 0
        assert rss_after - rss_before < 80_000, (rss_before, rss_after)  # ~6 MB of log went to the stalled client
        stalled.send_signal(signal.SIGCONT)

        def resynced() -> bool:  # a fresh snapshot, then the watched job's tail (it has finished: no new lines)
            kinds = seen_file.read_text().split()
            return kinds.count("snapshot") >= 2 and "log" in kinds[kinds.index("snapshot", 1) :]

        wait_for(resynced, what="the resync snapshot and the watched tail")
    finally:
        stalled.send_signal(signal.SIGCONT)
        stalled.kill()
        stalled.wait()


def _connect_as(uid: int, path: Path, request: bytes) -> str:
    """In a forked child that gave up root for `uid`: connect, send `request`, return what came back."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read)
            os.setgid(uid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
                sock.sendall(request)
                answer = b"connected:" + sock.recv(4096)
            except OSError as exc:
                answer = f"refused:{exc.__class__.__name__}".encode()
            os.write(write, answer)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        answer = fh.read()
    os.waitpid(pid, 0)
    return answer.decode(errors="replace")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another uid")
def test_another_uid_cannot_connect(server, tmp_path, request):
    base = Path(tempfile.mkdtemp(prefix="playdeck-test-", dir="/tmp"))  # pytest's own tmp dirs are 0700
    os.chmod(base, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    srv = server(socket=base / "sock" / "server.sock")
    http = b"GET /v1/status HTTP/1.1\r\nHost: playdeck\r\nConnection: close\r\n\r\n"
    assert _connect_as(65534, srv.socket, http) == "refused:PermissionError"  # the 0700 directory
    # open the door (as an attacker who could would): the SO_PEERCRED check still turns uid 65534 away
    os.chmod(srv.socket.parent, 0o711)
    os.chmod(srv.socket, 0o666)
    answer = _connect_as(65534, srv.socket, http)
    assert answer.startswith("connected:") and " 200 " not in answer and '"pid"' not in answer, answer
    assert srv("GET", "/v1/status")[0] == 200  # our own uid still is served


def test_server_refuses_a_loose_or_foreign_socket_dir(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "sock-real")
    (tmp_path / "sock-real").mkdir(mode=0o700)
    for directory, why in ((loose, "mode 755"), (link, "symlink")):
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            PLAYDECK_SOCKET=str(directory / "server.sock"),
        )
        result = subprocess.run(
            [sys.executable, "-m", "tui.server", "--foreground"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and why in result.stderr and "refused" in result.stderr, result.stderr
        assert not (directory / "server.sock").exists()


def test_sigterm_cancels_every_job_and_removes_the_socket(server, tmp_path):
    stubborn = tmp_path / "stubborn.yml"  # ignores SIGTERM (and so does its sleep): its cancel takes the grace
    stubborn.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: \"trap '' TERM; sleep 75\"\n")
    srv = server()
    jobs = job_file(tmp_path, slow("doomed", 72), {"name": "stubborn", "playbook": str(stubborn), "limit": "web01"})
    srv("POST", "/v1/jobs", {"jobfile": str(jobs), "preflight": False})
    wait_for(lambda: pids_with_cmdline("sleep 72") and pids_with_cmdline("sleep 75"), what="the jobs' sleeps")
    srv.proc.send_signal(signal.SIGHUP)  # a hangup is ignored: the jobs are why the server exists
    time.sleep(0.3)
    assert srv("GET", "/v1/status")[1]["jobs"]["unfinished"] == 2 and pids_with_cmdline("sleep 72")
    srv.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not srv.socket.exists(), what="the socket to go")
    # a start while it is still stopping waits for it to finish, then serves
    after = server()
    assert srv.proc.wait(30) == 0
    assert pids_with_cmdline("sleep 72") == [] and pids_with_cmdline("sleep 75") == []
    stop = next(e for e in audit(srv.state) if e["action"] == "server-stop")
    assert stop["args"] == {"reason": "SIGTERM", "canceled": ["doomed", "stubborn"]}
    listed = {j["name"]: (j["status"], j["history"]) for j in after("GET", "/v1/jobs")[1]["jobs"]}
    assert listed == {"doomed": ("canceled", True), "stubborn": ("canceled", True)}


def test_sigkill_leaves_no_job_process_and_the_next_server_shows_it_interrupted(server, tmp_path):
    first = server()
    first(
        "POST",
        "/v1/jobs",
        {"jobfile": str(job_file(tmp_path, slow("orphan", 73))), "preflight": False},
    )
    wait_for(lambda: pids_with_cmdline("sleep 73"), what="the job's sleep")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    wait_for(
        lambda: not pids_with_cmdline("sleep 73") and not pids_with_env(f"PLAYDECK_STATE_DIR={first.state}"),
        timeout=10,
        what="the job's processes to die with the server",
    )
    second = server()  # the killed server's socket file is still there: a stale one is replaced
    jobs = second("GET", "/v1/jobs")[1]["jobs"]
    assert [(j["name"], j["status"], j["history"]) for j in jobs] == [("orphan", "interrupted", True)]
    assert Path(jobs[0]["attempts"][0]["log"]).exists()
    code, text = second("GET", "/v1/jobs/orphan/log")
    assert code == 200 and "Run long database migration" in text
    assert second("POST", "/v1/jobs/orphan/retry")[0] == 409  # read-only history


def test_idle_exit_waits_for_clients_and_stop_request(server, tmp_path):
    srv = server("--idle-exit", "1.5")

    async def hold(seconds: float) -> None:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
            session.ws_connect(URL + "/v1/events") as ws,
        ):
            await ws.receive(timeout=10)
            await asyncio.sleep(seconds)

    asyncio.run(hold(3.0))  # a connected client keeps it alive past its idle time
    assert srv.proc.poll() is None
    started = time.monotonic()
    assert srv.proc.wait(15) == 0
    assert 1.0 < time.monotonic() - started < 6 and not srv.socket.exists()

    again = server()
    assert again("POST", "/v1/server/stop")[1] == {"ok": True}
    assert again.proc.wait(15) == 0 and not again.socket.exists()
    assert any(e["action"] == "client" and e["args"]["request"] == "server-stop" for e in audit(again.state))


def test_timeout_retry_answer_and_followed_log(server, tmp_path):
    srv = server()
    jobs = job_file(
        tmp_path,
        slow("napper", 74),
        {
            "name": "asker",
            "playbook": str(TEST_PLAYBOOKS / "prompt_vars.yml"),
            "limit": "web01",
        },
    )
    assert srv("POST", "/v1/jobs", {"jobfile": str(jobs), "preflight": False})[0] == 201
    wait_for(lambda: pids_with_cmdline("sleep 74"), what="napper's sleep")

    async def follow() -> tuple[int, str, float]:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
            session.get(URL + "/v1/jobs/napper/log?follow=1") as response,
        ):
            first = await response.content.readline()  # the log so far comes at once
            await session.post(URL + "/v1/jobs/napper/timeout", json={"seconds": 0.5})
            started = time.monotonic()
            rest = await asyncio.wait_for(response.content.read(), 30)  # ends when the job does
            return response.status, (first + rest).decode(), time.monotonic() - started

    code, text, took = asyncio.run(follow())
    assert code == 200 and "Run long database migration" in text and took < 15, (took, text)
    assert job_status(srv, "napper") == "timeout" and pids_with_cmdline("sleep 74") == []
    assert srv("POST", "/v1/jobs/napper/timeout", {"seconds": "soon"})[0] == 400
    assert srv("POST", "/v1/jobs/napper/retry", {"failed": False})[0] == 200
    wait_for(lambda: pids_with_cmdline("sleep 74"), what="the retry's sleep")
    jobs_now = {j["name"]: j for j in srv("GET", "/v1/jobs")[1]["jobs"]}
    assert [a["status"] for a in jobs_now["napper"]["attempts"]] == ["timeout", "running"]
    assert srv("POST", "/v1/jobs/napper/cancel")[0] == 200

    async def answer() -> dict[str, Any]:
        """The prompt reaches clients as part of the job; an answer then goes through."""
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
            session.ws_connect(URL + "/v1/events") as ws,
        ):
            while True:
                data = json.loads((await ws.receive(timeout=30)).data)
                asker = next((j for j in data["jobs"] if j["name"] == "asker"), None)
                if asker is not None and asker["prompt"] is not None:
                    break
            async with session.post(URL + "/v1/jobs/asker/answer", json={"text": "v1.2.3"}) as response:
                assert response.status == 200
            return asker["prompt"]

    prompt = asyncio.run(answer())
    assert prompt["kind"] == "vars_prompt" and prompt["varname"] == "release" and "Release to deploy" in prompt["text"]
    wait_for(lambda: job_status(srv, "asker") == "successful", what="asker to succeed")
    assert "release is v1.2.3" in srv("GET", "/v1/jobs/asker/log")[1]
    assert "v1.2.3" not in (srv.state / "audit.jsonl").read_text()  # answers are never logged
    requests = [e["args"]["request"] for e in audit(srv.state) if e["action"] == "client"]
    assert requests[:1] == ["submit"] and {"timeout", "retry", "cancel", "answer"} <= set(requests)
