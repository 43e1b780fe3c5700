"""`playdeck run` when its terminal goes away: signals with a dead stderr, a broken stdout, nohup,
hostile job names, an unwritable state dir, and a signal during the preflight. Real processes only."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS, end_leftovers, pids_with_cmdline

HOSTILE_NAME = "[bold]x[/] [/]\x1b]52;c;cHduZWQ=\x07\x1b]0;title\x07\x9b31m"


def job_file(tmp_path: Path, seconds: float, name: str = "slow", db: str = "db02") -> Path:
    path = tmp_path / "jobs.yml"
    path.write_text(
        textwrap.dedent(f"""\
        inventory: {INVENTORY}
        jobs:
          - name: {json.dumps(name)}
            playbook: {PLAYBOOKS / "slow_task.yml"}
            limit: {db}
            extra_vars: {{slow_seconds: {seconds}}}
    """),
        encoding="utf-8",
    )
    return path


def start(*argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "run", *argv],
        stdin=subprocess.DEVNULL,
        stdout=kwargs.pop("stdout", subprocess.PIPE),
        stderr=kwargs.pop("stderr", subprocess.PIPE),
        **kwargs,
    )


def wait_for(needle: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pids_with_cmdline(needle):
        assert proc.poll() is None, f"playdeck ended (rc {proc.returncode}) before {needle!r} ran"
        assert time.monotonic() < deadline, f"{needle!r} never ran"
        time.sleep(0.1)


def finish(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_with_a_dead_stderr_cancels_every_job_and_writes_the_json(tmp_path, sig, status):
    """The ssh session is gone: stderr is a pipe nobody reads. The signal still cancels and the JSON is written."""
    sleep = f"sleep 48.{sig.value}"
    summary = tmp_path / "out.json"
    proc = start(str(job_file(tmp_path, float(sleep.split()[1]))), "--json", str(summary))
    proc.stderr.close()  # the read end: every write to stderr now fails with EPIPE
    try:
        wait_for(sleep, proc)
        proc.send_signal(sig)
        finish(proc)
        assert proc.returncode == status
        (job,) = json.loads(summary.read_text())["jobs"]
        assert job["status"] == "canceled"
        assert pids_with_cmdline(sleep) == []
        assert pids_with_cmdline(str(tmp_path)) == []  # ansible-playbook runs in the state dir below it
        audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
        (interrupt,) = [entry for entry in audit if entry["action"] == "interrupt"]
        assert interrupt["args"] == {"running": ["slow"], "signal": sig.name}
    finally:
        end_leftovers(lambda: pids_with_cmdline(sleep), wait=5)
        if proc.poll() is None:
            proc.kill()


def test_a_broken_stdout_still_gets_the_json_written_and_no_traceback(tmp_path):
    """`playdeck run ... | head -c0`: the summary goes nowhere, quietly; the JSON is the contract."""
    summary = tmp_path / "out.json"
    proc = start(str(job_file(tmp_path, 0.1)), "--json", str(summary))
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text and "BrokenPipe" not in text and "Exception ignored" not in text, text
    assert proc.returncode == 0, text
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["status"] == "successful"


def test_nohup_ignored_sighup_stays_ignored_and_the_job_completes(tmp_path):
    summary = tmp_path / "out.json"
    sleep = "sleep 2.22"
    proc = start(
        str(job_file(tmp_path, 2.22)),
        "--json",
        str(summary),
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    try:
        wait_for(sleep, proc)
        proc.send_signal(signal.SIGHUP)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        (job,) = json.loads(summary.read_text())["jobs"]
        assert job["status"] == "successful"
    finally:
        end_leftovers(lambda: pids_with_cmdline(sleep), wait=5)


def test_hangup_with_the_terminal_gone_cancels_and_exits_129(tmp_path):
    """The ssh session closed: SIGHUP, and both stdout and stderr lead nowhere."""
    summary = tmp_path / "out.json"
    sleep = "sleep 48.1"
    proc = start(str(job_file(tmp_path, 48.1)), "--json", str(summary))
    proc.stdout.close()
    proc.stderr.close()
    try:
        wait_for(sleep, proc)
        proc.send_signal(signal.SIGHUP)
        finish(proc)
        assert proc.returncode == 129
        (job,) = json.loads(summary.read_text())["jobs"]
        assert job["status"] == "canceled"
        assert pids_with_cmdline(sleep) == []
    finally:
        end_leftovers(lambda: pids_with_cmdline(sleep), wait=5)


# A kept SGR colour is the only escape sequence allowed through.
NOT_SGR = re.compile(rb"\x1b(?!\[[0-9;:]*m)")


def test_hostile_job_name_reaches_the_terminal_as_plain_text(tmp_path):
    """A job file's name with OSC 52, OSC 0, a C1 CSI and Rich markup: progress lines, summary table
    and problem lines show it as text; nothing reaches the terminal that could drive it."""
    summary = tmp_path / "out.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            str(job_file(tmp_path, 0.1, name=HOSTILE_NAME, db="db99")),
            "--no-preflight",
            "--json",
            str(summary),
        ],
        capture_output=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="200"),
    )
    for stream in (out.stdout, out.stderr):
        assert NOT_SGR.search(stream) is None, stream
        text = stream.decode("utf-8")  # strict: a lone 0x9b byte would fail here (U+241B "␛" holds 0x9b)
        assert "\x07" not in text and "\x9b" not in text, text
    assert out.returncode == 1  # db99 matches no host: a failed job, so its problem line is printed too
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert "[bold]x[/] [/]" in stderr  # the progress lines
    assert stdout.count("[bold]x[/]") >= 2, stdout  # the table and the problem line
    assert "]52;c;cHduZWQ=" in stdout  # shown, made harmless, not dropped
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["name"] == HOSTILE_NAME  # the JSON keeps the real name


@pytest.mark.parametrize("how", ["--state-dir", "PLAYDECK_STATE_DIR", "below a file"])
def test_state_dir_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, how):
    # tests run as root, which ignores permission bits (chmod 0500 would not stop it):
    # a regular file where the directory should be fails for root too
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    state = blocker / "state" if how == "below a file" else blocker
    env = dict(os.environ)
    argv = [str(job_file(tmp_path, 0.1))]
    if how == "PLAYDECK_STATE_DIR":
        env["PLAYDECK_STATE_DIR"] = str(state)
    else:
        argv += ["--state-dir", str(state)]
    out = subprocess.run(
        [sys.executable, "-m", "tui", "run", *argv], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(state) in lines[0] and "not a directory" in lines[0] and "nothing was run" in lines[0]
    assert blocker.read_text() == ""


def test_console_refuses_a_state_dir_that_is_a_file(tmp_path):
    blocker = tmp_path / "state-file"
    blocker.write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "tui", "--demo", "--state-dir", str(blocker)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert f"state dir {blocker} is not a directory" in out.stderr and "Traceback" not in out.stderr


def test_signal_during_the_preflight_ends_the_inventory_script(tmp_path):
    """An inventory script that hangs (a CMDB that does not answer): SIGTERM ends it with playdeck."""
    sleep = "sleep 67.4321"
    script = tmp_path / "cmdb-inventory"
    script.write_text(f"#!/bin/sh\n{sleep}\necho '{{}}'\n")
    script.chmod(0o755)
    proc = start(str(PLAYBOOKS / "slow_task.yml"), "-i", str(script))
    try:
        wait_for(sleep, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 143, stderr
        deadline = time.monotonic() + 5
        while pids_with_cmdline(sleep) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids_with_cmdline(sleep) == []
        assert b"nothing was run" in stderr
    finally:
        end_leftovers(lambda: pids_with_cmdline(sleep), wait=1)
        if proc.poll() is None:
            proc.kill()
