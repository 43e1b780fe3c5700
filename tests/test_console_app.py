"""The console app itself: footer, keys that do not apply, status bar, history warning,
ad-hoc names, clean toasts, prompts, the pager and hangup (the last two in a real terminal)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.style import Style

from tests.conftest import INVENTORY, PLAYBOOKS, TEST_PLAYBOOKS, pids_with_cmdline, run
from tests.console_support import FrozenSession, frozen_job, job_named, jobs, live_app, show_frozen_jobs
from tests.test_console_keys import job_file, wait
from tests.tmux_console import Terminal, grid_status, needs_tmux
from tui.console.actions import adhoc_name
from tui.console.app import PlaydeckApp
from tui.console.commands import COMMANDS
from tui.console.screens.prompt import PromptDialog
from tui.console.screens.timeout import TimeoutDialog
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.key_bar import NOT_NOW, KeyBar
from tui.core.planning.spec import Status
from tui.core.running.results import HostCounts

LABELS = {command.label for command in COMMANDS} | {"Show hosts"}


def footer(app: PlaydeckApp) -> str:
    return app.query_one(KeyBar).render().plain


def pieces(line: str) -> list[str]:
    """`c Cancel t Timeout ... ? Help` -> ['Cancel', 'Timeout', ..., 'Help'] (NOT_NOW kept as a marker)."""
    found, words = [], line.replace(NOT_NOW, " \0 ").split()
    index = 0
    while index < len(words):
        if words[index] == "\0":
            found.append(NOT_NOW)
            index += 1
            continue
        label = next(
            (
                lab
                for lab in sorted(LABELS, key=len, reverse=True)
                if words[index + 1 : index + 1 + len(lab.split())] == lab.split()
            ),
            None,
        )
        assert label is not None, f"a cut or unknown label at {words[index:]!r} in {line!r}"
        found.append(label)
        index += 1 + len(label.split())
    return found


def notes(app: PlaydeckApp) -> list[str]:
    return [n.message for n in app._notifications]


def running_job(app: PlaydeckApp, name: str = "live-job", job_id: int = 5):
    """A running job, as the server would report it, shown through the app's frozen session."""
    job = frozen_job(job_id, name, "slow_task.yml", Status.RUNNING, "db01", {"db01": HostCounts()}, 5)
    app.engine._on_jobs("delta", [job])  # as the server's next delta would
    app._tick()
    return app.engine.by_id[job_id]


def test_footer_shows_what_applies_first_whole_labels_and_help(tmp_path):
    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24)) as pilot:
            await show_frozen_jobs(pilot)  # job 0: failed, an unreachable host
            live = running_job(app)
            for job in app.engine.jobs:
                app.query_one("#jobs").selected_id = job.id
                app._tick()
                await pilot.pause(0.05)
                line = footer(app)
                assert len(line) <= 80 and line.rstrip().endswith("? Help"), line
                shown = pieces(line)
                applicable = shown[: shown.index(NOT_NOW)] if NOT_NOW in shown else shown
                for label in applicable[:-1]:
                    command = next(
                        c
                        for c in COMMANDS
                        if c.label == label or (label == "Show hosts" and c.id == "toggle-inventory")
                    )
                    assert app.applies(command.action), (job.name, label)
                ranks = [
                    next(i for i, c in enumerate(COMMANDS) if c.label == label.replace("Show", "Hide"))
                    for label in applicable
                ]
                assert ranks == sorted(ranks), line  # most needed first
                if job is live:
                    assert applicable[:3] == ["Cancel", "Timeout", "Results"], line
                    assert "Retry" not in applicable
                elif job.status is Status.FAILED:
                    assert applicable[:3] == ["Retry failed", "Retry", "Results"], line
                    assert "Cancel" not in applicable and "Timeout" not in applicable
            log = app.query_one("#log")
            wrapped = log.wrap
            await pilot.press("w")
            assert log.wrap is not wrapped and notes(app)[-1].startswith("log: long lines")
            await pilot.press("h")  # the grid takes the width: the footer says how to get the hosts back
            assert not app.query_one("#inventory").display and "h Show hosts" in footer(app)

            await pilot.resize_terminal(160, 30)  # room for the keys that do not apply, apart and dim
            await pilot.pause(0.1)
            app.query_one("#jobs").selected_id = 1  # deploy-web: successful
            app._tick()
            await pilot.pause(0.05)
            bar = app.query_one(KeyBar)
            line = bar.render()
            shown = pieces(line.plain)
            assert NOT_NOW in shown and shown.index("Cancel") > shown.index(NOT_NOW) and shown[-1] == "Help"
            at = line.plain.index(NOT_NOW)
            assert all(
                Style.parse(str(span.style)).dim
                for span in line.spans
                if span.start >= at and span.end <= line.plain.index("? Help")
            ), "not-applicable keys are drawn dim"
            await pilot.press("q")
        return app

    run(main())


def test_a_key_that_does_not_apply_says_why_and_changes_nothing(tmp_path):
    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24)) as pilot:
            await show_frozen_jobs(pilot)
            grid = app.query_one("#jobs")
            await pilot.press("j")  # deploy-web: successful
            assert app.selected_job.name == "deploy-web"
            expected = {
                "c": "deploy-web is successful: only a queued, blocked, waiting or running job can be cancelled",
                "t": "deploy-web is successful: only a queued, blocked, waiting or running job has a timeout to change",
                "f": "deploy-web is successful: only a failed, timed-out, canceled or errored job can retry "
                "its failed hosts",
                "p": "deploy-web is successful: it is not waiting for input",
            }
            for key, message in expected.items():
                await pilot.press(key)
                await pilot.pause(0.05)
                assert notes(app)[-1] == message, key
                assert len(app.screen_stack) == 1  # no dialog opened
            assert app.session.commands.calls == []  # nothing was asked of the server

            frozen = jobs()
            app.session.show(dict(frozen[0], history=True))  # an earlier run's job is read-only
            grid.selected_id = 0
            await pilot.press("r")
            assert notes(app)[-1] == "health-check is from an earlier run and is read-only: n launches it again"
            grid.selected_id = 3  # failing-host: failed, with a failed host; retry-failed applies
            assert app.why_not("retry_failed") is None
            app.session.show(dict(frozen[3], hosts={}))
            await pilot.press("f")
            assert notes(app)[-1] == (
                "failing-host has no failed or unreachable hosts in its last attempt: r retries all of it"
            )
            await pilot.press("q")
        return app

    run(main())


def test_untrusted_job_names_reach_toasts_titles_and_bars_clean(tmp_path):
    hostile = "evil\x1b]52;c;cHduZWQ=\x07[/][@click=app.quit]x\x9b2J"

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24)) as pilot:
            await show_frozen_jobs(pilot)
            frozen = jobs()
            app.session.show(dict(frozen[1], name=hostile))
            await pilot.press("j")
            app._tick()
            await pilot.press("c")  # does not apply: the reason names the job
            message = notes(app)[-1]
            assert "\x1b" not in message and "\x07" not in message and "\x9b" not in message
            assert message.startswith("evil␛]52;c;cHduZWQ=␇[/][@click=app.quit]x<U+009B>2J is successful")
            title = app.query_one("#log-title").render()
            assert "\x1b" not in str(title) and "[@click=app.quit]" in str(title)  # plain text, not markup
            app.session.show(dict(frozen[1], name=hostile, status="failed"))  # as when it ended: a toast
            await pilot.pause(0.1)
            assert any(n.startswith("evil␛]52;c;cHduZWQ=␇[/][@click=app.quit]x<U+009B>2J: failed") for n in notes(app))
            assert all("\x1b" not in n and "\x07" not in n for n in notes(app))
            assert app.is_running  # no markup error, no click action ran
            await pilot.press("q")
        return app

    run(main())


def test_toasts_keep_clear_of_a_dialogs_error(tmp_path):
    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await show_frozen_jobs(pilot)
            live = running_job(app)
            app.query_one("#jobs").selected_id = live.id
            await pilot.press("t")
            assert isinstance(app.screen, TimeoutDialog)
            await pilot.press(*"soon", "enter")
            for n in range(3):
                app.say(f"another-job-{n}: failed. 3 hosts failed (web01, web02, web03)", severity="error")
            await pilot.pause(0.3)
            error = app.screen.query_one("#timeout-error")
            assert "not a duration" in str(error.render())
            toasts = list(app.screen.query("Toast"))
            assert len(toasts) == 1 and "another-job-2" in str(toasts[0].render())  # the newest only
            assert not toasts[0].region.overlaps(error.region)
            await pilot.press("escape", "q")
        return app

    run(main())


def _earlier_run(state: Path, run_id: str, names: list[str], status: str = "running") -> None:
    """An earlier run's records, as a console killed under them left them (its owner is gone)."""
    run_dir = state / "runs" / run_id
    for name in names:
        (run_dir / name).mkdir(parents=True)
        record = {
            "version": 1,
            "run": run_id,
            "name": name,
            "status": status,
            "message": "",
            "spec": {
                "target": "x.yml",
                "playbook": str(PLAYBOOKS / "slow_task.yml"),
                "inventory": str(INVENTORY),
                "limit": None,
            },
            "attempts": [],
        }
        (run_dir / name / "job.json").write_text(json.dumps(record))
    (run_dir / "owner.json").write_text(json.dumps({"pid": 2**22 + 1, "start": "1", "host": socket.gethostname()}))


def test_status_bar_counts_this_run_and_interrupted_warning_once(tmp_path, isolated_state):
    _earlier_run(isolated_state, "20261101-000000-aaaaaa", ["old-a"])  # interrupted long ago
    _earlier_run(isolated_state, "20261102-000000-bbbbbb", ["last-a", "last-b"])  # the last run

    async def start() -> tuple[list[str], str]:
        app = live_app()  # the server it starts reads the earlier runs from the state dir
        async with app.run_test(size=(80, 24)) as pilot:
            await wait(pilot, lambda: len(app.jobs) == 3, what="the history")
            await pilot.pause(0.3)  # a toast is a message: let it arrive
            running_job(app, job_id=99)  # as if the server had a job running
            app._tick()
            bar = str(app.query_one("#status-bar").render())
            found = [n for n in notes(app) if "interrupted" in n]
            await pilot.press("d")
        return found, bar

    first, bar = run(start())
    assert first == ["interrupted when playdeck last stopped: last-a, last-b"]  # not old-a
    assert "1 running" in bar and "3 earlier" in bar and "interrupted" not in bar
    second, _ = run(start())
    assert second == []  # said once, not on every start


def test_adhoc_job_names_say_what_ran():
    assert adhoc_name("ansible.builtin.shell", "uptime") == "adhoc-shell-uptime"
    assert adhoc_name("ansible.builtin.command", "/usr/bin/systemctl restart nginx") == "adhoc-command-systemctl"
    assert adhoc_name("ansible.builtin.service", "name=nginx state=restarted") == "adhoc-service-nginx"
    assert adhoc_name("ansible.builtin.ping", "") == "adhoc-ping"
    assert adhoc_name("shell", "\x1b]0;x\x07 rm -rf /") == "adhoc-shell-0-x"  # nothing but [a-z0-9-]
    assert adhoc_name("command", "mysql -psecret") == "adhoc-command-mysql"  # never the arguments


def test_prompting_playbook_answered_in_a_dialog_or_canceled(tmp_path):
    path = job_file(
        tmp_path,
        f"""\
        - name: asks
          playbook: {TEST_PLAYBOOKS / "prompt_vars.yml"}
          limit: lb01
        - name: asks-secret
          playbook: {TEST_PLAYBOOKS / "prompt_vars.yml"}
          limit: cache01
          extra_vars: {{prompt_private: true}}
    """,
    )

    async def main():
        from tui.core.planning.jobfile import load_job_file

        app = live_app(load_job_file(path).jobs)
        async with app.run_test(size=(80, 24)) as pilot:
            asks, secret = await job_named(pilot, "asks"), await job_named(pilot, "asks-secret")
            await wait(
                pilot, lambda: asks.prompt is not None and secret.prompt is not None, timeout=60, what="both prompts"
            )
            await wait(
                pilot,
                lambda: "waiting for input" in str(app.query_one("#log-title").render()),
                what="the log title to say so",
            )
            assert any(n.startswith("asks is waiting for input: Release to deploy") for n in notes(app))
            grid = app.query_one(JobGrid)
            await wait(
                pilot,
                lambda: all(grid.row_cells(j.id)[1].plain == "needs input" for j in (asks, secret)),
                what="the grid to say both jobs need input",
            )

            await pilot.press("j")  # the private one: a password input; Esc leaves it waiting
            await pilot.press("p")
            assert isinstance(app.screen, PromptDialog)
            assert app.screen.query_one("#prompt-answer").password
            assert "Release to deploy" in str(app.screen.query_one("#prompt-text").render())
            await pilot.press(*"hunter2", "escape")
            assert not isinstance(app.screen, PromptDialog) and secret.prompt is not None
            await pilot.press("c")  # cancelled as usual
            await wait(pilot, lambda: secret.status is Status.CANCELED, what="the cancel")

            await pilot.press("k", "enter")  # Enter on a waiting job opens its prompt
            assert isinstance(app.screen, PromptDialog) and not app.screen.query_one("#prompt-answer").password
            await pilot.press(*"1.2.3", "enter")
            await wait(pilot, lambda: asks.status.finished, timeout=60, what="the answered job")
            assert asks.status is Status.SUCCESSFUL, asks.message
            assert any("release is 1.2.3" in line for line in asks.tail.lines)
            await pilot.press("q")
        return app

    run(main())
    audit = (Path(tmp_path) / "state" / "audit.jsonl").read_text()
    assert '"answer"' in audit and "1.2.3" not in audit and "hunter2" not in audit


SLEEPER = """\
- name: sleeper
  playbook: {pb}
  limit: db01
  extra_vars: {{slow_seconds: {seconds}}}
"""


def _wait_ours(term: Terminal, needle: str, present: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while bool(term.ours(needle)) is not present:
        assert time.monotonic() < deadline, f"{needle!r} still {'absent' if present else 'present'}"
        time.sleep(0.1)


@needs_tmux
def test_pager_shows_the_full_log_and_a_hangup_detaches_leaving_the_job_running(tmp_path):
    path = job_file(tmp_path, SLEEPER.format(pb=PLAYBOOKS / "slow_task.yml", seconds=73))
    term = Terminal(tmp_path, [path], env={"PAGER": "less -R"}).start()
    try:
        term.wait_for(lambda s: grid_status(s, "sleeper") == "running", "the job")
        _wait_ours(term, "sleep 73", True, 30)
        term.press("o")
        screen = term.wait_for(
            lambda s: "TASK [Run long database migration]" in s and "playdeck" not in s, "the log in less"
        )
        assert "? Help" not in screen  # less owns the terminal
        term.press("q")
        screen = term.wait_for(lambda s: "? Help" in s and grid_status(s, "sleeper") == "running", "the console again")
        assert term.ours("-m tui") and term.ours("sleep 73")

        log = next((term.state / "runs").glob("*/sleeper/attempt-1/output.log"))
        log.rename(log.with_name("moved.log"))
        term.press("o")  # a log that is gone says so, in one line
        term.wait_for(lambda s: "sleeper: its log is not on disk" in s, "the missing log")
        log.with_name("moved.log").rename(log)

        term.tmux("kill-server")  # the terminal goes away: SIGHUP, a detach; the job goes on
        deadline = time.monotonic() + 10
        while term.ours("-m tui") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert term.ours("-m tui") == [], "the console outlived its terminal"
        assert term.ours("tui.server") and term.ours("sleep 73"), "the job did not outlive the console"
        audit = [json.loads(line) for line in (term.state / "audit.jsonl").read_text().splitlines()]
        requests = [entry["args"].get("request") for entry in audit if entry["action"] == "client"]
        assert "detach" in requests and "cancel" not in requests

        again = Terminal(tmp_path, [], env={"PLAYDECK_STATE_DIR": str(term.state)}, name="again").start()
        try:  # a new console attaches to the same server: the job, running, with its log
            again.wait_for(lambda s: grid_status(s, "sleeper") == "running", "the job in a new console")
            again.wait_for(lambda s: "TASK [Run long database migration]" in s, "its log")
            again.press("q")
            again.wait_for(lambda s: "y: stop them" in s, "the quit question")
            again.press("y")
            assert again.exit_status() == 0
            _wait_ours(term, "sleep 73", False, 10)
        finally:
            again.close()
        record = json.loads(next((term.state / "runs").glob("*/sleeper/job.json")).read_text())
        assert record["status"] == "canceled"  # cancelled cleanly by the second console's y
    finally:
        term.close()


@needs_tmux
def test_a_failing_pager_says_so_and_the_console_stays(tmp_path):
    path = job_file(tmp_path, SLEEPER.format(pb=PLAYBOOKS / "slow_task.yml", seconds=74))
    term = Terminal(tmp_path, [path], env={"PAGER": "false --ignored"}).start()
    try:
        term.wait_for(lambda s: grid_status(s, "sleeper") == "running", "the job")
        _wait_ours(term, "sleep 74", True, 30)
        term.press("o")
        term.wait_for(lambda s: "the pager false exited with status 1" in s, "the pager's failure")
        term.press("q", "y")
        assert term.exit_status() == 0
    finally:
        term.close()


@needs_tmux
def test_keys_that_do_not_apply_stay_apart_at_16_colours_and_without_colour(tmp_path):
    """TERM=screen (16 colours) and NO_COLOR=1: the keys that apply are bold, the others come after
    `not now:` in plain weight, and never in an alarm colour."""
    for env in ({}, {"NO_COLOR": "1"}):
        term = Terminal(
            tmp_path, ["--demo"], size=(150, 24), term="screen", env=env, name="nocolor" if env else "ansi16"
        ).start()
        try:  # no job selected: c, r, f, t, v, o do not apply
            term.wait_for(lambda s: NOT_NOW in s.splitlines()[-1] and "hosts.yml" in s, "the footer")
            line = term.styled_screen().splitlines()[-1]
            applies, _, later = line.partition(NOT_NOW)
            assert "\x1b[1m" in applies and "New job" in applies  # keys that apply: bold
            dimmed = later[: later.index("Results") + len("Results")]
            assert "c Cancel" in dimmed and "\x1b[1m" not in dimmed  # the rest: not bold
            assert not any(code in dimmed for code in ("[91m", "[31m", "[41m", "[101m"))  # no red
            if env:
                hues = (*range(31, 37), *range(41, 47), *range(91, 97), *range(101, 107))  # red..cyan
                assert not any(f"[{n}m" in line for n in hues), line  # greys at most
        finally:
            term.close()


@needs_tmux
def test_sighup_exits_non_zero(tmp_path):
    """SIGHUP alone (the terminal still there to show the status): a detach, out with 128+1."""
    term = Terminal(tmp_path, ["--demo"]).start()
    try:
        term.wait_for(lambda s: "? Help" in s and "n launches a playbook" in s, "the console, attached")
        consoles = term.ours("-m tui")
        assert len(consoles) == 1
        os.kill(consoles[0], signal.SIGHUP)
        assert term.exit_status() == 128 + signal.SIGHUP
        audit = [json.loads(line) for line in (term.state / "audit.jsonl").read_text().splitlines()]
        requests = [entry["args"].get("request") for entry in audit if entry["action"] == "client"]
        assert [r for r in requests if r in ("attach", "detach")] == ["attach", "detach"]
        assert term.ours("tui.server"), "the server outlives a console's hangup"
    finally:
        term.close()


def test_a_killed_server_is_said_and_the_next_one_shows_the_job_interrupted(tmp_path):
    """SIGKILL to the server under an attached console: the job's processes end with it, the
    console says it is not attached (and starts no server behind the operator's back); once one is
    started, the console attaches to it by itself and shows the job interrupted."""
    path = job_file(tmp_path, SLEEPER.format(pb=PLAYBOOKS / "slow_task.yml", seconds=83))

    async def main():
        app = live_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            job = await job_named(pilot, "sleeper")
            await wait(pilot, lambda: job.status is Status.RUNNING and pids_with_cmdline("sleep 83"), 60, "the job")
            first = app.session.status["pid"]
            os.kill(first, signal.SIGKILL)
            await wait(pilot, lambda: "not attached" in str(app.query_one("#status-bar").render()), 10, "the loss")
            await wait(pilot, lambda: not pids_with_cmdline("sleep 83"), 10, "the job's processes to end")
            await pilot.pause(1.5)
            assert app.session.attached is False  # no new server was started for it
            started = subprocess.run(
                [sys.executable, "-m", "tui", "server", "start"], capture_output=True, text=True, timeout=60
            )
            assert started.returncode == 0, started.stderr
            await wait(pilot, lambda: app.session.attached and app.session.status["pid"] != first, 15, "the re-attach")
            again = await job_named(pilot, "sleeper")
            await wait(pilot, lambda: again.status is Status.INTERRUPTED, 15, "the job shown interrupted")
            await wait(pilot, lambda: "not attached" not in str(app.query_one("#status-bar").render()), 5, "the bar")
            await pilot.press("q")  # nothing unfinished: quits at once
        return app

    run(main())
