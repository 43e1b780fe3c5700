"""`playdeck run` end to end: real processes, exit codes, stderr progress and the JSON contract."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

from tests.conftest import INVENTORY, PLAYBOOKS, ROOT, pids_with_cmdline

COUNT_KEYS = {"ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored"}


def playdeck(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=timeout)


def test_job_file_run_writes_the_json_summary_and_exits_1_when_a_job_fails(tmp_path):
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(
        textwrap.dedent(f"""\
        inventory: {INVENTORY}
        max_parallel: 2
        jobs:
          - name: health
            playbook: {PLAYBOOKS / "health_check.yml"}
            limit: cache01
          - name: failing
            playbook: {PLAYBOOKS / "failing_host.yml"}
            limit: web01,web02
            extra_vars: {{failing_host: web01}}
    """)
    )
    summary = tmp_path / "out.json"
    out = playdeck("run", str(jobs), "--json", str(summary))
    assert out.returncode == 1, out.stderr
    data = json.loads(summary.read_text())
    by_name = {job["name"]: job for job in data["jobs"]}
    assert list(by_name) == ["health", "failing"]
    assert by_name["health"]["status"] == "successful"
    assert by_name["failing"]["status"] == "failed"
    assert by_name["failing"]["hosts"]["web01"]["failed"] == 1
    assert by_name["failing"]["hosts"]["web02"]["failed"] == 0
    for job in data["jobs"]:
        for counts in job["hosts"].values():
            assert set(counts) == COUNT_KEYS
        (attempt,) = job["attempts"]
        assert attempt["number"] == 1 and attempt["limit"] in ("cache01", "web01,web02")
        assert datetime.fromisoformat(attempt["started"]) <= datetime.fromisoformat(attempt["ended"])
        assert Path(attempt["log"]).is_absolute() and Path(attempt["log"]).is_file()
    assert by_name["failing"]["attempts"][0]["rc"] == 2
    # progress on stderr as jobs change state; the table and the reason on stdout
    assert "health" in out.stderr and "running" in out.stderr and "failed" in out.stderr
    assert "1 host failed (web01)" in out.stdout
    # self-contained: it ran its own engine and never started (or needed) a server
    from tui.server.paths import socket_path  # the path alone: the client's would create its directory

    assert str(socket_path()).startswith(str(tmp_path)) and not socket_path().parent.exists()


def test_playbook_flags_run_and_exit_0_on_success(tmp_path):
    summary = tmp_path / "out.json"
    out = playdeck(
        "run",
        str(PLAYBOOKS / "slow_task.yml"),
        "-i",
        str(INVENTORY),
        "--limit",
        "db02",
        "-e",
        "slow_seconds=1",
        "--timeout",
        "1m",
        "--json",
        str(summary),
    )
    assert out.returncode == 0, out.stderr
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["name"] == "slow_task" and job["status"] == "successful"
    assert job["attempts"][0]["limit"] == "db02"
    assert job["hosts"]["db02"]["changed"] == 1


def test_timeout_flag_ends_the_job_as_timeout(tmp_path):
    summary = tmp_path / "out.json"
    out = playdeck(
        "run",
        str(PLAYBOOKS / "slow_task.yml"),
        "-i",
        str(INVENTORY),
        "--limit",
        "db02",
        "-e",
        "slow_seconds=46",
        "--timeout",
        "2s",
        "--json",
        str(summary),
    )
    assert out.returncode == 1
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["status"] == "timeout" and job["attempts"][0]["status"] == "timeout"
    assert pids_with_cmdline("sleep 46") == []


def test_ctrl_c_cancels_every_job_and_leaves_no_process(tmp_path):
    summary = tmp_path / "out.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            str(PLAYBOOKS / "slow_task.yml"),
            "-i",
            str(INVENTORY),
            "--limit",
            "db02",
            "-e",
            "slow_seconds=47",
            "--json",
            str(summary),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pids_with_cmdline("sleep 47"):
        assert time.monotonic() < deadline and proc.poll() is None, "the job never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130  # 128 + SIGINT, what a shell expects of Ctrl-C
    assert "interrupted, canceling every job" in stderr
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["status"] == "canceled"
    assert pids_with_cmdline("sleep 47") == []


def test_help_names_the_headless_command_and_run_help_its_signals():
    console = playdeck("--help")
    assert console.returncode == 0
    assert "playdeck run JOBFILE" in console.stdout and "playdeck run --help" in console.stdout
    headless = playdeck("run", "--help")
    assert headless.returncode == 0
    text = " ".join(headless.stdout.split())
    assert "130" in text and "143" in text and "129" in text and "nohup" in text


def test_a_console_crash_never_exits_0(tmp_path):
    """Textual ends an app that raised with return_code 1 but run() returns None: that was exit 0."""
    from tui.cli import cmd_console
    from tui.console.app import PlaydeckApp

    class Crashing(PlaydeckApp):
        def on_mount(self) -> None:
            raise RuntimeError("boom at mount")

    status = cmd_console(["--demo", "--state-dir", str(tmp_path / "state")], app_class=Crashing, headless=True)
    assert status == 1


def test_server_verbs_are_reached_through_the_playdeck_command(tmp_path, monkeypatch, capsys):
    """`playdeck server status` is a verb, not a job file named "server": with no server on the
    socket it says so and exits 3 (status never starts one)."""
    from tui.cli import main

    monkeypatch.setenv("PLAYDECK_SOCKET", str(tmp_path / "sock" / "server.sock"))
    assert main(["server", "status"]) == 3
    assert "no server" in capsys.readouterr().err.lower()
    assert not (tmp_path / "sock" / "server.sock").exists()


def test_the_console_refuses_a_protected_job_file_until_yes(tmp_path):
    """`playdeck JOBFILE` submits to the server as `playdeck submit` does: a job touching a
    protected host is refused (exit 2, naming job and host, nothing submitted) unless --yes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    refused = subprocess.run(
        [sys.executable, "-m", "tui", str(ROOT / "sample_playbooks" / "locks.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 2, refused.stderr
    assert "migrate" in refused.stderr and "db01" in refused.stderr and "protected" in refused.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "tui", "ls", "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)["jobs"] == []  # nothing was submitted
