"""`playdeck report` on real history: jobs run by `playdeck run` (one succeeds, one fails on a host
and retries, one with a hostile name fails on a hostile host) and a job a real server runs that an
operator cancels with `playdeck cancel`. Built once per module (about 20 s); every test reads it."""

from __future__ import annotations

import getpass
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    INVENTORY,
    PLAYBOOKS,
    ROOT,
    TEST_PLAYBOOKS,
    end_leftovers,
    pids_with_cmdline,
    pids_with_env,
)
from tui.core.durations import format_duration
from tui.core.reporting import ReportError, build_report, render
from tui.core.reporting.records import clean
from tui.report_cli import cmd_report

HOSTILE_JOB = "evil | job `code` *b* _i_ [x](http://e.invalid) <script>alert(1)</script>\x1b]0;T\x07 ~~s~~ &lt;"
HOSTILE_HOST = "pwn|host<b>`x`*y*_z_ &lt; ~~s~~"  # no [ ]: Ansible reads those as a range of hosts
REASON = "Configuration validation failed on web01: /etc/app/app.conf line 12"
SLEEP = 67  # a sleep no other test runs: the server's job is running once this process exists


class History:
    """The module's state dir and what happened in it."""

    def __init__(self, base: Path):
        self.base = base
        self.state = base / "state"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "PLAYDECK_SOCKET")},
            "PLAYDECK_STATE_DIR": str(self.state),
            "TMPDIR": str(base),  # the server's socket goes under it: a server of this module's own
            "PYTHONPATH": str(ROOT),
        }
        self.cancel_pid = 0
        self.server_run = ""

    def playdeck(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def job(self, name: str) -> dict[str, Any]:
        (path,) = [p for p in self.state.glob("runs/*/*/job.json") if json.loads(p.read_text())["name"] == name]
        return json.loads(path.read_text())


def _wait(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Any:
    h = History(tmp_path_factory.mktemp("report"))
    hostile_inventory = h.base / "hostile.yml"
    hostile_inventory.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    },
                    "hosts": {HOSTILE_HOST: None},
                }
            }
        )
    )
    rollout = str(PLAYBOOKS / "failing_host.yml")
    jobs = h.base / "jobs.yml"
    jobs.write_text(
        json.dumps(
            {
                "inventory": str(INVENTORY),
                "max_parallel": 3,
                "jobs": [
                    {"name": "deploy-ok", "playbook": str(TEST_PLAYBOOKS / "load_one_debug.yml"), "limit": "web03"},
                    {
                        "name": "config-rollout",
                        "playbook": rollout,
                        "limit": "web01",
                        "retries": 1,
                        "extra_vars": {"failing_host": "web01"},
                    },
                    {
                        "name": HOSTILE_JOB,
                        "playbook": rollout,
                        "inventory": str(hostile_inventory),
                        "extra_vars": {"failing_host": HOSTILE_HOST},
                    },
                ],
            }
        )
    )
    ran = h.playdeck("run", str(jobs), "--no-preflight")
    assert ran.returncode == 1, ran.stderr  # two jobs failed
    # a job of a real server, canceled by an operator's `playdeck cancel`: the audit trail says who
    sleeper = h.base / "sleeper.yml"
    sleeper.write_text(
        json.dumps(
            {
                "inventory": str(INVENTORY),
                "jobs": [
                    {
                        "name": "sleeper",
                        "playbook": str(PLAYBOOKS / "slow_task.yml"),
                        "limit": "db02",
                        "extra_vars": {"slow_seconds": SLEEP},
                    },
                ],
            }
        )
    )
    try:
        submitted = h.playdeck("submit", str(sleeper))
        assert submitted.returncode == 0, submitted.stderr
        _wait(lambda: pids_with_cmdline(f"sleep {SLEEP}"), "the server's job to run")
        cancel = subprocess.Popen(
            [sys.executable, "-m", "tui", "cancel", "sleeper"],
            env=h.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        h.cancel_pid = cancel.pid
        out, err = cancel.communicate(timeout=60)
        assert cancel.returncode == 0, err
        _wait(lambda: h.job("sleeper")["status"] == "canceled", "the cancel to be recorded")
        h.server_run = h.job("sleeper")["run"]
    finally:
        h.playdeck("server", "stop")
        end_leftovers(lambda: pids_with_env(f"PLAYDECK_STATE_DIR={h.state}"), wait=10)
    # An old record, for --since: a real job.json copied into a run of three days ago with its
    # name changed and every time moved back 72 hours (nothing in playdeck writes old records).
    old = json.loads(next(h.state.glob("runs/*/deploy-ok/job.json")).read_text())
    old["name"], old["run"] = "ancient-job", "20200101-000000-a0a0a0"
    for attempt in old["attempts"]:
        for key in ("started", "ended"):
            attempt[key] = (datetime.fromisoformat(attempt[key]) - timedelta(hours=72)).isoformat()
    path = h.state / "runs" / old["run"] / "ancient-job" / "job.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    three_days_ago = time.time() - 72 * 3600
    os.utime(path, (three_days_ago, three_days_ago))
    return h


def _rows(text: str, title: str) -> list[list[str]]:
    """The cells of the Markdown table under `## title`, split at unescaped pipes only."""
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in _unescaped_pipes.split(line)[1:-1]])
    return rows[1:]  # without the header


# a pipe preceded by an even number (0, 2, ...) of backslashes ends a cell
_unescaped_pipes = re.compile(r"(?<!\\)(?:\\\\)*\|")


def test_markdown_names_the_failed_jobs_hosts_reasons_durations_and_the_operators_cancel(history):
    out = history.playdeck("report")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    summary = text.split("## ", 1)[0]  # the summary comes first
    assert "**Failed jobs:** config-rollout (failed, 2 attempts: 1 host failed (web01))" in summary
    assert "**Hosts failed:** web01 (config-rollout)" in summary
    assert "**Jobs:** 4 jobs: 2 failed, 1 successful, 1 canceled" in summary
    user = getpass.getuser()
    assert f"**Operator actions:** 3 operator actions by {user}" in summary  # submit, cancel, server stop

    failed = {(row[0], row[1], row[2]): row for row in _rows(text, "Failed hosts")}
    record = history.job("config-rollout")
    for attempt in record["attempts"]:  # the retry failed the same way: both attempts are listed
        row = failed[("config-rollout", "web01", str(attempt["number"]))]
        assert row[3:5] == ["failed", "Validate configuration"]
        assert row[5].startswith(REASON.replace("_", "\\_")), row
        assert row[6] == attempt["directory"] + "/output.log" and Path(row[6]).is_file()

    jobs = {row[0]: row for row in _rows(text, "Jobs")}
    first, last = record["attempts"][0], record["attempts"][-1]
    took = datetime.fromisoformat(last["ended"]) - datetime.fromisoformat(first["started"])
    assert jobs["config-rollout"][2:4] == ["failed", "2 (retries 1)"]
    assert jobs["config-rollout"][6] == format_duration(took.total_seconds())
    sleeper = history.job("sleeper")["attempts"][0]
    took = datetime.fromisoformat(sleeper["ended"]) - datetime.fromisoformat(sleeper["started"])
    assert jobs["sleeper"][2] == "canceled" and jobs["sleeper"][6] == format_duration(took.total_seconds())
    assert "ancient-job" not in text  # three days old: outside the default 24 hours

    timeline = _rows(text, "Timeline")
    assert [row[0] for row in timeline] == sorted(row[0] for row in timeline)
    cancels = [row for row in timeline if row[1:3] == ["sleeper", "cancel"]]
    assert len(cancels) == 1, timeline  # the client's request and the engine's line are one row
    assert cancels[0][3] == f"{user} (uid {os.getuid()}, pid {history.cancel_pid})"
    assert cancels[0][4] == "was=running"
    events = [row[2] for row in timeline if row[1] == "config-rollout"]
    assert events == [
        "queued",
        "running (attempt 1)",
        "failed (attempt 1)",
        "running (attempt 2)",
        "failed (attempt 2)",
    ]
    assert [row[2] for row in timeline if row[1] == "sleeper"][-1] == "canceled (attempt 1)"


def test_hostile_job_and_host_names_cannot_break_a_markdown_table_or_inject_markup(history):
    text = history.playdeck("report").stdout
    for title, columns in (("Failed hosts", 7), ("Jobs", 10), ("Timeline", 5)):
        for line in text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines():
            if line.startswith("|"):
                assert len(_unescaped_pipes.findall(line)) == columns + 1, line
    assert "\x1b" not in text and "\x07" not in text  # controls are made visible (␛, ␇), never passed
    assert "<script>" not in text and "<b>" not in text
    assert not re.search(r"(?<!\\)\]\(", text)  # no link: every ] of the names is escaped
    assert "`code`" not in text and "*b*" not in text
    failed = [row for row in _rows(text, "Failed hosts") if row[1] != "web01"]
    assert len(failed) == 1 and failed[0][1] == "pwn\\|host\\<b\\>\\`x\\`\\*y\\*\\_z\\_ \\&lt; \\~\\~s\\~\\~"
    assert failed[0][0].startswith("evil \\| job \\`code\\` \\*b\\* \\_i\\_ \\[x\\](http://e.invalid) \\<script\\>")
    assert "on pwn\\|host\\<b\\>" in failed[0][5]  # the reason names the host: escaped there too


class _Page(HTMLParser):
    """Checks nesting as it reads; collects the tags, attributes and the text of each table cell."""

    VOID = {"meta"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.cells: list[str] = []
        self.rows: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1
            self.cells.append("")
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] in ("td", "th"):
            self.cells[-1] += data


def test_html_is_self_contained_well_formed_and_escapes_hostile_names(history):
    out = history.playdeck("report", "--format", "html")
    assert out.returncode == 0, out.stderr
    page = _Page()
    page.feed(out.stdout)
    page.close()
    assert page.open == []  # every element closed, in order
    assert out.stdout.startswith("<!DOCTYPE html>")
    assert page.tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "dl",
        "dt",
        "dd",
        "table",
        "tr",
        "th",
        "td",
        "p",
        "ul",
        "li",
    }
    assert {name for name, _ in page.attrs} <= {"lang", "charset", "http-equiv", "content", "class"}
    assert "http://" not in out.stdout.replace("http://e.invalid", "")  # no link but the hostile text's own
    assert set(page.rows) == {7, 10, 5}  # every row of each table has its header's cells: nothing split one
    assert clean(HOSTILE_JOB) in page.cells and clean(HOSTILE_HOST) in page.cells  # shown as text, whole
    assert "<script>" not in out.stdout and "&lt;script&gt;" in out.stdout
    assert any(cell.startswith("Configuration validation failed on web01") for cell in page.cells)


def test_since_and_run_choose_the_window(history):
    in_three_days = history.playdeck("report", "--since", "100h").stdout
    assert "ancient-job" in in_three_days  # the moved-back copy (see the fixture) is 72 hours old
    two_hours = history.playdeck("report", "--since", "2h").stdout
    assert "ancient-job" not in two_hours and "config-rollout" in two_hours
    later = (datetime.now().astimezone() - timedelta(seconds=1)).isoformat()
    nothing = history.playdeck("report", "--since", later).stdout
    assert "No job in this window." in nothing and "sleeper" not in nothing and "**Jobs:** 0 jobs" in nothing
    run = history.playdeck("report", "--run", history.server_run).stdout
    assert {row[0] for row in _rows(run, "Jobs")} == {"sleeper"}
    assert [row[2] for row in _rows(run, "Timeline") if row[1] == "sleeper"][:2] == ["queued", "running (attempt 1)"]
    assert any(row[2] == "cancel" for row in _rows(run, "Timeline"))
    assert "config-rollout" not in run and "ancient-job" not in run


def test_output_file_is_private_and_replaced_whole(history, tmp_path):
    target = tmp_path / "incident.md"
    target.write_text("old report\n")
    os.chmod(target, 0o644)
    before = target.stat().st_ino
    out = history.playdeck("report", "-o", str(target))
    assert out.returncode == 0 and out.stdout == "", out.stderr
    assert target.stat().st_mode & 0o777 == 0o600 and target.stat().st_ino != before  # renamed into place
    assert target.read_text().startswith("# playdeck incident report\n") and "config-rollout" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["incident.md"]  # no temp file left

    def small_files() -> None:  # the report cannot be written whole: the old file must stay as it was
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    html = tmp_path / "incident.html"
    html.write_text("old html\n")
    failed = subprocess.run(
        [sys.executable, "-m", "tui", "report", "--format", "html", "-o", str(html)],
        env=history.env,
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=60,
    )
    assert failed.returncode == 1 and "not written" in failed.stderr, failed.stderr
    assert html.read_text() == "old html\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["incident.html", "incident.md"]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--since", "yesterday-ish"], "--since"),
        (["--since", "0"], "--since"),
        (["--run", "20990101-000000-nosuch"], "--run"),
        (["--run", "../runs"], "--run"),
        (["-o", "/nonexistent-dir/report.md"], "-o"),
        (["--since", "2h", "--run", "x"], "--run"),
        (["--format", "pdf"], "--format"),
    ],
)
def test_bad_input_exits_2_naming_the_option(history, capsys, argv, option):
    assert cmd_report([*argv, "--state-dir", str(history.state)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("playdeck report: ") and option in err, err


def test_directory_as_output_exits_2(history, tmp_path, capsys):
    assert cmd_report(["-o", str(tmp_path), "--state-dir", str(history.state)]) == 2
    assert "-o" in capsys.readouterr().err


def test_reading_never_writes_and_a_torn_audit_line_is_skipped(history, tmp_path):
    """A server may be writing while a report reads: a half-written last line is skipped, not fatal; and
    a job a dead run left running is reported interrupted without rewriting its record."""
    state = tmp_path / "state"
    shutil.copytree(history.state, state, ignore=shutil.ignore_patterns("pdd"))
    record_path = next(state.glob("runs/*/deploy-ok/job.json"))
    record = json.loads(record_path.read_text())
    record["status"], record["attempts"][0]["status"], record["attempts"][0]["ended"] = "running", "running", None
    record_path.write_text(json.dumps(record))
    with open(state / "audit.jsonl", "a") as fh:
        fh.write('{"time": "2026-')  # a line still being written
    before = {p: p.stat().st_mtime_ns for p in state.rglob("*")}
    report = build_report(state, None, None)
    assert {p: p.stat().st_mtime_ns for p in state.rglob("*")} == before
    deploy = next(job for job in report.jobs if job.name == "deploy-ok")
    assert deploy.status == "interrupted" and deploy.attempts[0].ended is not None  # owner of that run is gone
    assert any("1 line(s) not readable" in note for note in report.notes)
    text = render(report, "md")
    assert "| deploy-ok |" in text and "interrupted" in text and "## Not read" in text
    with pytest.raises(ValueError):
        render(report, "pdf")
    with pytest.raises(ReportError):
        build_report(state, None, "nosuch")
