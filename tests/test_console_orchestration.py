"""The console's orchestration keys on a real server: a schedule paused, run now and resumed
(`z`, `R`), the grid's next-run countdown, a key that does not apply saying why, and a launch
onto protected hosts that needs the job's name typed before the server runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.widgets import Input

from tests.conftest import INVENTORY, PLAYBOOKS, run
from tests.console_support import FrozenSession, job_named, live_app, show_frozen_jobs
from tests.test_console_keys import wait
from tests.test_server import server  # noqa: F401 - a fixture
from tui.console.app import PlaydeckApp
from tui.console.screens.confirm_name import ConfirmNameDialog
from tui.console.screens.launch import AdhocDialog
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.key_bar import KeyBar
from tui.core.planning.spec import Status, spec_for_playbook
from tui.core.planning.wirespec import spec_to_json


def notes(app: PlaydeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def timing_cell(app: PlaydeckApp, job_id: int) -> str:
    try:
        return app.query_one(JobGrid).row_cells(job_id)[7].plain
    except KeyError:  # not drawn yet
        return ""


def test_schedule_keys_pause_run_now_and_resume_a_scheduled_job_on_a_real_server():
    """`z` pauses (the grid says paused, the footer offers Resume), `R` runs it once at once
    although paused, `z` resumes (a next run again); each reached the server (its audit)."""
    spec = spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, name="every-minute", limit="web01")
    from dataclasses import replace

    spec = replace(spec, schedule="* * * * *", timezone="UTC")

    async def main() -> None:
        app = live_app([spec])
        async with app.run_test(size=(100, 24)) as pilot:
            job = await job_named(pilot, "every-minute")
            await wait(pilot, lambda: job.status is Status.SCHEDULED and job.next_run is not None, what="scheduled")
            assert job.schedule == {"cron": "* * * * *", "timezone": "UTC", "paused": False}
            await wait(pilot, lambda: timing_cell(app, job.id).startswith("next "), what="the countdown")
            assert "Pause" in app.query_one(KeyBar).render().plain
            # a boundary may fire it meanwhile: pausing applies to a running fire too
            await pilot.press("z")
            await wait(pilot, lambda: (job.schedule or {}).get("paused") is True, what="the pause")
            await wait(pilot, lambda: job.status is Status.SCHEDULED, timeout=60, what="the rest")
            await wait(pilot, lambda: timing_cell(app, job.id) == "paused", what="the grid to say paused")
            assert job.next_run is None
            await wait(pilot, lambda: "Resume" in app.query_one(KeyBar).render().plain, what="the Resume label")
            runs = job.last.number if job.last is not None else 0
            await pilot.press("R")  # runs at once, paused or not
            await wait(
                pilot, lambda: job.last is not None and job.last.number > runs, timeout=20, what="the run-now fire"
            )
            await wait(pilot, lambda: job.status is Status.SCHEDULED, timeout=60, what="the fire to end")
            assert "successful" in job.message, job.message
            await pilot.press("z")
            await wait(pilot, lambda: job.next_run is not None, what="the resume")
            assert (job.schedule or {}).get("paused") is False
            await pilot.press("c")  # ends its schedule
            await wait(pilot, lambda: job.status is Status.CANCELED, what="the cancel")

    run(main())
    trail = [json.loads(line) for line in (Path(os.environ["PLAYDECK_STATE_DIR"]) / "audit.jsonl").open()]
    asked = [e["args"]["request"] for e in trail if e.get("action") == "client" and e.get("job") == "every-minute"]
    assert ["pause", "run-now", "resume"] == [a for a in asked if a in ("pause", "run-now", "resume")], asked


def test_schedule_keys_on_a_job_without_a_schedule_say_why():
    """No server needed: the keys judge the selected job, and say why in one line."""

    async def main() -> None:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(100, 24), notifications=True) as pilot:
            await show_frozen_jobs(pilot)
            await pilot.press("R")
            await pilot.pause(0.1)
            await pilot.press("z")
            await pilot.pause(0.1)
            said = notes(app)
            assert any("only a scheduled job waiting for its next run can run now" in n for n in said), said
            assert any("only a scheduled job can be paused or resumed" in n for n in said), said
            assert not [c for c in app.session.commands.calls if c[0] not in ("results",)]

    run(main())


def test_a_launch_onto_protected_hosts_needs_the_jobs_name_typed():
    """The server refuses (409, protected hosts); the dialog names the job and the host; a wrong
    name keeps it open and says so; the exact name launches it, audited with yes."""

    async def main() -> tuple[Status, list[str]]:
        app = live_app(protect=["db*"])
        async with app.run_test(size=(80, 24)) as pilot:
            await wait(pilot, lambda: app.engine is not None, timeout=60, what="the server")
            await pilot.press("a")
            await wait(pilot, lambda: isinstance(app.screen, AdhocDialog), what="the ad-hoc dialog")
            for field, text in (("launch-limit", "db01"), ("adhoc-module", "ping")):
                box = app.screen.query_one(f"#{field}", Input)
                box.focus()
                box.value = text
                await pilot.pause(0.05)
            await pilot.press("enter")
            await wait(pilot, lambda: isinstance(app.screen, ConfirmNameDialog), timeout=60, what="the confirmation")
            dialog = app.screen

            def shown() -> str:
                return " ".join(str(s.render()) for s in dialog.query("Static"))

            await wait(pilot, lambda: "adhoc-ping" in shown(), what="the dialog drawn")  # pushed, then composed
            assert "adhoc-ping" in shown() and "db01" in shown(), shown()
            assert app.engine.get("adhoc-ping") is None  # nothing was submitted
            box = dialog.query_one("#confirm-name-input", Input)
            box.value = "adhoc-pin"
            await pilot.press("enter")
            assert app.screen is dialog
            assert "not adhoc-ping" in str(dialog.query_one("#confirm-name-error").render())
            box.value = "adhoc-ping"
            await pilot.press("enter")
            job = await job_named(pilot, "adhoc-ping")
            await wait(pilot, lambda: job.status.finished, timeout=60, what="the ping")
            assert job.protected == ("db01",)
            # a retry touches db01 again: the name is asked for again; Escape leaves it be
            await wait(pilot, lambda: app.selected_job is job, what="the new job selected")
            await pilot.press("r")
            await wait(pilot, lambda: isinstance(app.screen, ConfirmNameDialog), what="the retry's confirmation")
            await pilot.press("escape")
            await pilot.pause(0.3)
            assert job.last is not None and job.last.number == 1
            await pilot.press("r")
            await wait(pilot, lambda: isinstance(app.screen, ConfirmNameDialog), what="the retry's confirmation")
            app.screen.query_one("#confirm-name-input", Input).value = "adhoc-ping"
            await pilot.press("enter")
            await wait(
                pilot,
                lambda: job.last is not None and job.last.number == 2 and job.status.finished,
                timeout=60,
                what="the confirmed retry",
            )
            return job.status, [h for h in job.hosts]

    status, hosts = run(main())
    assert status is Status.SUCCESSFUL and hosts == ["db01"]
    trail = [json.loads(line) for line in (Path(os.environ["PLAYDECK_STATE_DIR"]) / "audit.jsonl").open()]
    client = [e["args"] for e in trail if e.get("action") == "client"]
    refused = [a for a in client if a["request"] == "protect-refused"]
    submitted = [a for a in client if a["request"] == "submit" and a.get("jobs") == ["adhoc-ping"]]
    assert refused and refused[0]["protected"] == {"adhoc-ping": ["db01"]}, refused
    assert len(submitted) == 1 and submitted[0]["yes"] is True and submitted[0]["protect"] == ["db*"], submitted
    retries = [a for a in client if a["request"] in ("retry", "protect-confirmed")]
    assert [a["request"] for a in retries] == ["protect-confirmed", "retry"], retries


def test_the_server_takes_protect_with_a_spec_and_refuses_a_bad_one(server, tmp_path):  # noqa: F811
    """The wire: a spec's "protect" is checked like a job file's; without yes a touching spec is
    a 409 naming its hosts, with yes it is submitted; a bad pattern list is a 400, nothing runs."""
    srv = server()
    spec = spec_to_json(spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, name="hc-db", limit="db01"))
    code, bad = srv("POST", "/v1/jobs", {"spec": spec, "protect": [1]})
    assert code == 400 and "protect" in " ".join(bad["problems"]), bad
    code, refused = srv("POST", "/v1/jobs", {"spec": spec, "protect": "db*"})
    assert code == 409 and refused["protected"] == {"hc-db": ["db01"]}, refused
    code, answer = srv("POST", "/v1/jobs", {"spec": spec, "protect": ["web*"]})  # db01 is not covered
    assert code == 201, answer
    code, jobs = srv("GET", "/v1/jobs")
    assert [j["name"] for j in jobs["jobs"]] == ["hc-db"]
