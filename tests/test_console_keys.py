"""Pilot tests: every key of the console, against real jobs on the sample inventory.

The console is attached to a real server (started under the test's TMPDIR, stopped after it):
each key is a request, and its effect is waited for as the server's delta arrives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from textual.widgets import Input, Static

from tests.conftest import INVENTORY, PLAYBOOKS, ROOT, pids_with_cmdline, run
from tests.console_support import client_requests, live_app
from tests.console_support import job_reported as job_named
from tui.console.app import PlaydeckApp
from tui.console.config import Config
from tui.console.screens.help import HelpScreen
from tui.console.screens.launch import AdhocDialog, NewJobDialog
from tui.console.screens.quit import QuitDialog
from tui.console.screens.results import ResultsScreen
from tui.console.screens.timeout import TimeoutDialog
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.log_view import LogView
from tui.core.planning.spec import Status


def job_file(tmp_path: Path, jobs: str, max_parallel: int = 2) -> Path:
    path = tmp_path / "jobs.yml"
    path.write_text(
        f"inventory: {INVENTORY}\nmax_parallel: {max_parallel}\njobs:\n" + textwrap.indent(textwrap.dedent(jobs), "  ")
    )
    return path


def make_app(path: Path, **kwargs) -> PlaydeckApp:
    """The console attached to a real server, which it starts, with the job file's jobs submitted."""
    return live_app(path, max_parallel=2, **kwargs)


async def wait(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def row_text(app: PlaydeckApp, name: str) -> str:
    grid = app.query_one(JobGrid)
    job = app.engine.get(name)
    return " ".join(cell.plain for cell in grid.row_cells(job.id))


SLOW_PAIR = """\
- name: long-a
  playbook: {pb}
  limit: db01
  extra_vars: {{slow_seconds: 63}}
- name: long-b
  playbook: {pb}
  limit: db02
  extra_vars: {{slow_seconds: 64}}
"""


def test_cancel_retry_timeout_keys_move_and_dim(tmp_path):
    path = job_file(tmp_path, SLOW_PAIR.format(pb=PLAYBOOKS / "slow_task.yml"))

    async def main():
        app = make_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            grid = app.query_one(JobGrid)
            a, b = await job_named(pilot, "long-a"), await job_named(pilot, "long-b")
            await wait(pilot, lambda: grid.selected_id == a.id, what="the first job selected")
            assert app.focused is grid  # grid focused, first job selected
            await wait(
                pilot, lambda: pids_with_cmdline("sleep 63") and pids_with_cmdline("sleep 64"), what="both sleeps"
            )
            await wait(pilot, lambda: a.status is Status.RUNNING and b.status is Status.RUNNING, what="both running")
            app._tick()
            assert app.applies("cancel_job")
            assert not app.applies("retry_job")  # dimmed: a running job cannot be retried
            assert not app.applies("retry_failed")

            for key, expected in (("j", b.id), ("k", a.id), ("down", b.id), ("up", a.id)):
                await pilot.press(key)
                assert grid.selected_id == expected, key

            await pilot.press("c")
            await wait(pilot, lambda: a.status is Status.CANCELED, what="cancel")
            await wait(pilot, lambda: "canceled" in row_text(app, "long-a"), what="the canceled row")
            assert pids_with_cmdline("sleep 63") == [] and pids_with_cmdline("sleep 64")
            assert b.status is Status.RUNNING
            await wait(pilot, lambda: app.applies("retry_job") and not app.applies("cancel_job"), what="keys to move")

            await pilot.press("r")
            await wait(pilot, lambda: pids_with_cmdline("sleep 63"), what="the retried sleep")
            await wait(pilot, lambda: a.status is Status.RUNNING and a.last.number == 2, what="the second attempt")

            await pilot.press("t")
            assert isinstance(app.screen, TimeoutDialog)
            await pilot.press(*"soon", "enter")
            error = app.screen.query_one("#timeout-error", Static)
            assert "not a duration" in str(error.render())
            assert isinstance(app.screen, TimeoutDialog)  # invalid input keeps the dialog, changes nothing
            await pilot.press("escape")
            await pilot.pause(0.3)  # a request would have had its answer by now
            assert not isinstance(app.screen, TimeoutDialog) and a.timeout_remaining() is None

            await pilot.press("t", "2", "enter")
            set_at = time.monotonic()
            await wait(pilot, lambda: a.status is Status.TIMEOUT, what="the new timeout")
            assert 1.5 < time.monotonic() - set_at < 20  # far below the sleep's 63 s
            assert pids_with_cmdline("sleep 63") == []

            await pilot.press("q")
            assert isinstance(app.screen, QuitDialog)  # long-b still runs: asks first
            await pilot.press("escape")  # Esc stays: nothing stopped
            await pilot.pause(0.3)
            assert not isinstance(app.screen, QuitDialog) and app.is_running
            assert b.status is Status.RUNNING and pids_with_cmdline("sleep 64")
            await pilot.press("q")
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("y")  # y stops them, waits for them to end, then quits
            await wait(pilot, lambda: b.status is Status.CANCELED, what="quit to cancel the rest")
            await wait(pilot, lambda: app.return_value is not None, what="the console to quit by itself")
        return app

    app = run(main())
    assert app.return_value == 0
    assert pids_with_cmdline("sleep 64") == []


def test_failed_hosts_results_log_filter_and_help(tmp_path):
    path = job_file(
        tmp_path,
        f"""\
        - name: failing
          playbook: {PLAYBOOKS / "failing_host.yml"}
          limit: web01,web02
          extra_vars: {{failing_host: web02}}
        - name: health
          playbook: {PLAYBOOKS / "health_check.yml"}
          limit: lb01
    """,
    )

    async def main():
        app = make_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            failing, health = await job_named(pilot, "failing"), await job_named(pilot, "health")
            await wait(pilot, lambda: failing.status.finished and health.status.finished, timeout=60, what="both jobs")
            assert failing.status is Status.FAILED
            await wait(pilot, lambda: app.selected_job is failing, what="the first job selected")
            assert app.applies("retry_failed")

            await pilot.press("v")  # one keystroke: the failed host's message is on screen
            await wait(pilot, lambda: isinstance(app.screen, ResultsScreen), what="the results from the server")
            message = str(app.screen.query_one("#task-message", Static).render())
            assert message.startswith("failed: [web02]") and "web02" in message
            await pilot.press("escape")

            await pilot.press("enter")
            assert isinstance(app.focused, LogView)
            await wait(pilot, lambda: app.query_one(LogView).line_count > 5, what="the log from the server")
            await pilot.press("escape")
            assert isinstance(app.focused, JobGrid)

            await pilot.press("f")
            await wait(
                pilot,
                lambda: failing.status.finished and failing.last.number == 2,
                timeout=60,
                what="retry of failed hosts",
            )
            assert failing.last.limit == "web02"

            await pilot.press("slash")
            box = app.query_one("#job-filter", Input)
            assert box.display and app.focused is box
            await pilot.press(*"heal")
            assert box.value == "heal"  # shows what you type as you type it
            await pilot.pause(0.1)
            grid = app.query_one(JobGrid)
            assert grid.row_count == 1 and grid.selected_id == health.id
            await pilot.press("escape")
            assert grid.row_count == 2

            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")

            await pilot.press("q")  # nothing running: quits without asking
        return app

    app = run(main())
    assert app.return_value == 0


def test_new_job_and_adhoc_launch_on_the_inventory_selection(tmp_path):
    async def main():
        app = live_app()
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None and app.engine is not None, what="inventory, server")
            tree = app.query_one(HostTree)
            await pilot.press("i")
            assert app.focused is tree
            # select the cache group (a group node selects all its hosts)
            node = next(n for n in pane._walk(tree.root) if n.data == ("group", "cache"))
            tree.move_cursor(node)
            await pilot.press("space")
            assert pane.limit() == "cache"

            await pilot.press("n")
            dialog = app.screen
            assert isinstance(dialog, NewJobDialog)
            assert dialog.query_one("#launch-limit", Input).value == "cache"  # prefilled from the selection
            dialog.query_one("#launch-limit", Input).focus()
            await pilot.press("enter")  # no playbook chosen: says so, stays open
            assert isinstance(app.screen, NewJobDialog)
            assert "choose a playbook" in str(dialog.query_one("#launch-error", Static).render())
            from textual.widgets import Select

            dialog.query_one(Select).value = str(PLAYBOOKS / "health_check.yml")
            dialog.query_one("#launch-timeout", Input).value = "2m"
            dialog.query_one("#launch-limit", Input).focus()
            await pilot.press("enter")
            await wait(pilot, lambda: len(app.engine.jobs) == 1, what="the launch")
            job = app.engine.jobs[0]
            await wait(pilot, lambda: app.selected_job is job, what="the launched job selected")
            assert (job.name, job.spec.target) == ("health_check", "health_check.yml")
            assert job.timeout is not None and abs(job.timeout - 120.0) < 1  # counted from its start while it runs

            await pilot.press("a")
            assert isinstance(app.screen, AdhocDialog)
            await pilot.press(*"echo hello-adhoc", "enter")
            await wait(pilot, lambda: len(app.engine.jobs) == 2, what="the ad-hoc job")
            adhoc = app.engine.jobs[1]
            await wait(pilot, lambda: job.status.finished and adhoc.status.finished, timeout=60, what="both jobs")
            assert job.status is Status.SUCCESSFUL and job.last.limit == "cache", job.message
            assert adhoc.status is Status.SUCCESSFUL, adhoc.message
            assert adhoc.spec.target == "ansible.builtin.command: echo hello-adhoc" and adhoc.last.limit == "cache"
            assert adhoc.name == "adhoc-command-echo"  # says what ran
            assert app.selected_job is adhoc  # the launched job is selected: its log is the one shown
            await wait(pilot, lambda: any("hello-adhoc" in line for line in adhoc.tail.lines), what="its log")
            await wait(
                pilot,
                lambda: pane.marks.get("cache01") in ("ok", "changed"),  # latest result marked in the tree
                what="the host's mark",
            )
            await pilot.press("q")  # nothing unfinished: quits without asking
        return app

    run(main())


def test_keys_are_remappable_and_in_the_palette_and_d_detaches(tmp_path):
    path = job_file(
        tmp_path,
        f"""\
        - name: long
          playbook: {PLAYBOOKS / "slow_task.yml"}
          limit: db01
          extra_vars: {{slow_seconds: 65}}
    """,
    )

    async def main():
        app = make_app(path, config=Config(keys={"cancel-job": "x"}))
        async with app.run_test(size=(100, 30)) as pilot:
            job = await job_named(pilot, "long")
            await wait(pilot, lambda: pids_with_cmdline("sleep 65"), what="the sleep")
            await wait(pilot, lambda: job.status is Status.RUNNING and app.selected_job is job, what="running")
            titles = [title for title, _help, _callback in app.palette_entries()]
            for label in (
                "Cancel",
                "Retry",
                "Retry failed",
                "Timeout",
                "New job",
                "Ad-hoc",
                "Filter",
                "Log",
                "Help",
                "Quit",
                "Detach",
                "Results",
                "Hosts",
                "Full log",
                "Wrap",
                "Hide hosts",
                "Answer",
            ):
                assert any(t == label or t.startswith(label + ":") for t in titles), label
            await pilot.press("c")  # no longer cancel
            await pilot.pause(0.5)
            assert job.status is Status.RUNNING
            await pilot.press("x")
            await wait(pilot, lambda: job.status is Status.CANCELED, what="remapped cancel")
            assert pids_with_cmdline("sleep 65") == []

            await pilot.press("r")  # running again: q asks, d detaches and leaves it running
            await wait(pilot, lambda: job.status is Status.RUNNING and job.last.number == 2, what="the retry")
            await wait(pilot, lambda: pids_with_cmdline("sleep 65"), what="the retried sleep")
            await pilot.press("q")
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("d")
        return app

    app = run(main())
    assert app.return_value == 0
    state = Path(os.environ["PLAYDECK_STATE_DIR"])
    deadline = time.monotonic() + 5
    while "detach" not in client_requests(state) and time.monotonic() < deadline:
        time.sleep(0.1)  # the console has exited: the server hears it leave
    assert client_requests(state) == ["attach", "submit", "cancel", "retry", "detach"]  # no cancel for d
    assert pids_with_cmdline("sleep 65"), "detaching stopped the job"
    # the job goes on under the server: a second terminal's `playdeck cancel` stops it
    done = subprocess.run(
        [sys.executable, "-m", "tui", "cancel", "long"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 15
    while pids_with_cmdline("sleep 65") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_with_cmdline("sleep 65") == []
