"""The server's structured log (tui/server/jsonlog.py) written by real Python processes, and
`playdeck server log` (tui/server_log_cli.py) reading it as a real process: readable lines,
--json, hostile fields that never reach the terminal as escapes, rotation that keeps the
files 0600, and -f following new lines across rotations until SIGINT."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT, TEST_PLAYBOOKS
from tests.test_server import hello, job_file, server, wait_for  # noqa: F401 - server is a fixture

HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\nfake 00:00:00 info forged\r\u009b31m\u202eeno"

EVENTS = r"""
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.WARNING, format="playdeck server: %(message)s")
from tui.server import jsonlog
jsonlog.setup(Path(sys.argv[1]))
log = logging.getLogger("tui.server")
jsonlog.event(log, "server-start", pid=4242, socket="/run/x.sock")
log.info("job-ended", extra={"fields": {"job": sys.argv[2], "status": "failed", "hosts": [sys.argv[2]]}})
log.warning("schedules not saved: %s", "disk full")
try:
    {}["missing"]
except KeyError:
    log.exception("attempt failed to run")
jsonlog.event(log, "odd", logging.INFO, thing=object(), time="not the time")
jsonlog.event(log, "config-refused", logging.WARNING, file="/etc/x y.yml", line=3)
jsonlog.event(log, "server-stop", reason="SIGTERM")
"""

WRITER = r"""
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.WARNING)
from tui.server import jsonlog
jsonlog.MAX_BYTES = int(sys.argv[2])
jsonlog.setup(Path(sys.argv[1]))
log = logging.getLogger("tui.server")
seq = 0
for line in sys.stdin:
    for _ in range(int(line)):
        jsonlog.event(log, "tick", seq=seq, pad="x" * 150)
        seq += 1
    print("ok", flush=True)
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def write_events(state: Path, job: str = HOSTILE) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [sys.executable, "-c", EVENTS, str(state), job], env=env(), capture_output=True, timeout=30, check=True
    )
    return done


def show(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [sys.executable, "-m", "tui.server_log_cli", *args], env=env(), capture_output=True, timeout=30
    )
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_events_are_json_lines_and_shown_safely(isolated_state: Path) -> None:
    written = write_events(isolated_state)
    log = isolated_state / "server.log.jsonl"
    assert mode(isolated_state) == 0o700 and mode(log) == 0o600
    # stderr as before: the warnings, readable; info events go to the file only
    assert written.stderr.decode().splitlines()[0] == "playdeck server: schedules not saved: disk full"
    assert b"server-start" not in written.stderr and b"job-ended" not in written.stderr
    # a warning event on stderr is readable too, not its bare name
    assert 'playdeck server: config-refused file="/etc/x y.yml" line=3' in written.stderr.decode().splitlines()

    raw = log.read_bytes()
    assert raw.isascii() and b"\x1b" not in raw  # every control character is a JSON escape
    entries = [json.loads(line) for line in raw.splitlines()]
    assert [e["event"] for e in entries] == [
        "server-start",
        "job-ended",
        "message",
        "message",
        "odd",
        "config-refused",
        "server-stop",
    ]
    start, ended, plain, failure, odd, refused, _ = entries
    assert start["level"] == "info" and start["pid"] == 4242 and start["logger"] == "tui.server"
    assert start["time"][:4].isdigit() and (start["time"].endswith("+00:00") or start["time"][-6] in "+-")
    assert ended["job"] == HOSTILE and ended["hosts"] == [HOSTILE]  # stored exactly, nothing stripped
    assert ended["status"] == "failed"
    assert plain == {**plain, "level": "warning", "message": "schedules not saved: disk full"}
    assert failure["level"] == "error" and failure["message"] == "attempt failed to run"
    assert "Traceback" in failure["error"] and "KeyError: 'missing'" in failure["error"]
    assert odd["thing"].startswith("<object object at") and odd["time_"] == "not the time"
    assert refused == {**refused, "level": "warning", "file": "/etc/x y.yml", "line": 3}

    out = show("--state-dir", str(isolated_state)).stdout
    assert b"\x1b" not in out and b"\x07" not in out and b"\r" not in out and "\u202e".encode() not in out
    lines = out.decode().splitlines()
    # one line per entry, the traceback's lines indented below its entry: a newline in a
    # job name cannot forge a line of its own
    assert not any(line.startswith("fake") for line in lines)
    assert lines[0].split()[1:] == ["info", "server-start", "pid=4242", "socket=/run/x.sock"]
    assert lines[0][:8].count(":") == 2 and lines[0][:2].isdigit()
    assert lines[1].split(" ", 1)[1].startswith('info    job-ended job="evil\\u001b]0;pwned\\u0007')
    assert '\\nfake 00:00:00 info forged\\r<U+009B>31m<U+202E>eno"' in lines[1]
    assert lines[1].endswith("status=failed hosts=[" + lines[1].split("job=", 1)[1].split(" status=")[0] + "]")
    assert lines[2].split(" ", 1)[1] == "warning schedules not saved: disk full"
    assert lines[3].split(" ", 1)[1] == "error   attempt failed to run"
    assert lines[4] == "    Traceback (most recent call last):" and lines[-4] == "    KeyError: 'missing'"
    assert all(line.startswith("    ") for line in lines[4:-3])
    assert lines[-3].split(" ", 1)[1].startswith('info    odd thing="<object object at ')
    assert lines[-2].split(" ", 1)[1] == 'warning config-refused file="/etc/x y.yml" line=3'
    assert lines[-1].split(" ", 1)[1] == "info    server-stop reason=SIGTERM"

    as_json = show("--state-dir", str(isolated_state), "--json").stdout
    assert b"\x1b" not in as_json
    assert [json.loads(line) for line in as_json.splitlines()] == entries
    last_two = show("--state-dir", str(isolated_state), "--json", "-n", "2")
    assert [json.loads(line)["event"] for line in last_two.stdout.splitlines()] == ["config-refused", "server-stop"]


def test_state_dir_from_the_environment_damaged_lines_and_a_missing_log(isolated_state: Path, tmp_path: Path) -> None:
    write_events(isolated_state, job="web")
    with open(isolated_state / "server.log.jsonl", "ab") as log:
        log.write(b"not json \x1b[2J\x1b]52;c;cHduZWQ=\x07 \xff\xfe\rhidden\n\n")
        log.write(b'["a list", "\\u001b[2J"]\n')
    out = show().stdout  # $PLAYDECK_STATE_DIR (the fixture's) is the state dir
    assert b"\x1b" not in out and b"\x07" not in out
    lines = out.decode().splitlines()
    assert lines[-2] == "not json \u241b[2J\u241b]52;c;cHduZWQ=\u2407 \ufffd\ufffd\u240dhidden"
    assert lines[-3].endswith("server-stop reason=SIGTERM")
    as_json = [json.loads(line) for line in show("--json", "-n", "2").stdout.splitlines()]
    assert as_json[0] == {
        "event": "unparsed-line",
        "line": "not json \x1b[2J\x1b]52;c;cHduZWQ=\x07 \ufffd\ufffd\rhidden",
    }
    assert as_json[1]["event"] == "unparsed-line"

    missing = show("--state-dir", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 1 and missing.stdout == b""
    assert b"no server log at " + str(tmp_path / "nowhere" / "server.log.jsonl").encode() in missing.stderr
    bad = show("-n", "-3", check=False)
    assert bad.returncode == 2 and b"-n must be 0 or more" in bad.stderr


class Writer:
    """A process writing "tick" events (seq 0, 1, ...) on request, with a small rotation size."""

    def __init__(self, state: Path, max_bytes: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(state), str(max_bytes)],
            env=env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def write(self, count: int) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


def test_rotation_keeps_every_file_private_and_the_tail_spans_them(isolated_state: Path) -> None:
    writer = Writer(isolated_state, 1000)
    try:
        writer.write(30)  # ~220 bytes a line: a new file every 4 lines, 3 copies kept
    finally:
        writer.close()
    log = isolated_state / "server.log.jsonl"
    files = [log] + [log.with_name(f"{log.name}.{k}") for k in (1, 2, 3)]
    assert all(mode(path) == 0o600 for path in files)
    assert not log.with_name(f"{log.name}.4").exists()
    assert all(path.stat().st_size <= 1000 for path in files)
    kept = sum(len(path.read_bytes().splitlines()) for path in files)
    seqs = [json.loads(line)["seq"] for line in show("--json", "-n", "100").stdout.splitlines()]
    assert len(seqs) == kept and seqs == list(range(30 - kept, 30))  # oldest copy first, in order
    seqs = [int(line.split("seq=")[1].split()[0]) for line in show("-n", "6").stdout.decode().splitlines()]
    assert seqs == list(range(24, 30))


class Follower:
    """`python -m tui.server_log_cli -f` with its stdout read by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.server_log_cli", "-f", *args],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)

    def take(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {got!r} of {count} lines within {timeout}s"
            try:
                got.append(self.lines.get(timeout=left))
            except queue.Empty:
                pass
        return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def seq_of(line: bytes) -> int:
    return int(json.loads(line)["seq"])


def test_follow_picks_up_new_lines_across_rotations_and_ends_on_sigint(isolated_state: Path) -> None:
    log = isolated_state / "server.log.jsonl"
    writer = Writer(isolated_state, 2000)
    follower: Follower | None = None
    try:
        writer.write(3)
        follower = Follower("--json", "-n", "2")
        assert [seq_of(line) for line in follower.take(2)] == [1, 2]
        inodes = {log.stat().st_ino}
        seen = []
        for _ in range(8):  # 3 lines (~660 bytes) at a time: at most one rotation between two polls
            writer.write(3)
            seen += [seq_of(line) for line in follower.take(3)]
            inodes.add(log.stat().st_ino)
        assert seen == list(range(3, 27))
        assert len(inodes) >= 3, "the log was expected to rotate at least twice"
        assert follower.lines.empty()
        follower.proc.send_signal(signal.SIGINT)
        assert follower.proc.wait(10) == 0
        assert follower.proc.stderr and follower.proc.stderr.read() == b""

    finally:
        if follower:
            follower.stop()
        writer.close()


def test_follow_ends_quietly_when_its_reader_goes_away(isolated_state: Path) -> None:
    """`playdeck server log -f | head -1`: the next write finds the pipe closed; exit 0, no traceback."""
    writer = Writer(isolated_state, 2000)
    writer.write(2)  # the log exists before its reader starts
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.server_log_cli", "-f", "-n", "1"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout and b"seq=" in proc.stdout.readline()
        proc.stdout.close()
        writer.write(2)
        assert proc.wait(10) == 0
        assert proc.stderr and proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        writer.close()


def test_a_real_server_logs_its_start_jobs_and_stop(server, isolated_state: Path, tmp_path: Path) -> None:  # noqa: F811
    """`python -m tui.server --foreground` writes server-start, each job's status changes and
    server-stop; `playdeck server log` (python -m tui) shows them, a failed job as a warning."""
    srv = server()
    failing = {**hello("breaks"), "playbook": str(TEST_PLAYBOOKS / "long_reason.yml")}
    code, body = srv("POST", "/v1/jobs", {"jobfile": str(job_file(tmp_path, hello(), failing)), "preflight": False})
    assert code == 201, body
    ended = {"successful", "failed"}
    wait_for(lambda: {job["status"] for job in srv("GET", "/v1/jobs")[1]["jobs"]} <= ended, what="both jobs to end")
    srv.stop()
    assert srv.proc.returncode == 0
    log = isolated_state / "server.log.jsonl"
    assert mode(log) == 0o600
    entries = [json.loads(line) for line in log.read_bytes().splitlines()]
    events = [(e["event"], e.get("job"), e.get("status"), e["level"]) for e in entries]
    assert events[0][0] == "server-start" and entries[0]["pid"] == srv.proc.pid
    assert events[-1][0] == "server-stop" and entries[-1]["reason"] == "SIGTERM"
    assert ("job-status", "breaks", "failed", "warning") in events
    assert events.index(("job-status", "hello", "running", "info")) < events.index(
        ("job-status", "hello", "successful", "info")
    )
    done = subprocess.run(
        [sys.executable, "-m", "tui", "server", "log", "-n", "100"], env=env(), capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    shown = [line.split(" ", 1)[1] for line in done.stdout.decode().splitlines()]
    assert shown[0].startswith(f"info    server-start pid={srv.proc.pid} socket=")
    assert any(line.startswith("warning job-status job=breaks id=1 status=failed attempt=1") for line in shown)
    assert shown[-1].startswith("info    server-stop reason=SIGTERM")
