"""A chain in a job's detail (`v`): its parents and children as `parent (status) -> child
[on condition: held] status` lines at 80x24, names clipped and never read as markup; then the
same on a real server with a failing parent; and the orchestration sample run headless to its end."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import INVENTORY, PLAYBOOKS, run
from tests.console_support import FrozenSession, frozen_job, job_reported, live_app
from tests.test_console_80x24 import screen_lines
from tests.test_console_keys import wait
from tui.console.app import PlaydeckApp
from tui.console.screens.results import ResultsScreen
from tui.console.widgets.chain_view import parents_label
from tui.console.widgets.inventory_pane import InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.core.planning.spec import Status
from tui.core.running.results import HostCounts

HOSTILE = "[bold]x[/] \x1b]0;pwned\x07"  # markup and an OSC: must show as plain characters
LONG = "notify-the-release-channel-of-the-european-production-web-tier"


def chain_jobs() -> list[dict]:
    """A failed deploy, a rollback running on its failure, a verify skipped by it, a hostile-named
    child that runs always (queued), a long-named child, and an unrelated job."""
    deploy = frozen_job(
        0,
        "deploy",
        "deploy.yml",
        Status.FAILED,
        "web01,web02",
        {"web01": HostCounts(ok=4), "web02": HostCounts(ok=2, failed=1)},
        6,
        "1 host failed (web02)",
    )
    rollback = dict(
        frozen_job(1, "rollback", "deploy.yml", Status.RUNNING, "web01,web02", {"web01": HostCounts(ok=1)}, 2),
        after=[["deploy", "failure"]],
    )
    verify = dict(
        frozen_job(
            2, "verify", "health_check.yml", Status.SKIPPED, "web01,web02", {}, 0,
            "skipped: deploy ended failed (runs only on its success)",
        ),
        after=[["deploy", "success"]],
        log=None, started=None,
    )  # fmt: skip
    hostile = dict(
        frozen_job(3, HOSTILE, "health_check.yml", Status.QUEUED, None, {}, 0),
        after=[["deploy", "always"]],
        log=None, started=None,
    )  # fmt: skip
    long = dict(
        frozen_job(4, LONG, "health_check.yml", Status.BLOCKED, None, {}, 0, "waiting for rollback"),
        after=[["deploy", "always"], ["rollback", "success"]],
        log=None, started=None,
    )  # fmt: skip
    alone = frozen_job(5, "disk-cleanup", "disk_cleanup.yml", Status.SUCCESSFUL, None, {}, 3)
    return [deploy, rollback, verify, hostile, long, alone]


async def open_detail(pilot, job_id: int) -> ResultsScreen:
    app: PlaydeckApp = pilot.app
    grid = app.query_one(JobGrid)
    grid.selected_id = job_id
    app._tick()
    await wait(pilot, lambda: app.selected_job is not None and app.selected_job.id == job_id, what="the selection")
    await pilot.press("v")
    await wait(pilot, lambda: isinstance(app.screen, ResultsScreen), what="the results view")
    await pilot.pause(0.2)
    assert isinstance(app.screen, ResultsScreen)
    return app.screen


def section(lines: list[str]) -> list[str]:
    """The chain section's rows as drawn (inside the dialog's border), header first, up to the
    hosts table's header."""
    start = next(i for i, line in enumerate(lines) if "Chain (parent -> child)" in line)
    rows = []
    for line in lines[start:]:
        inner = line.strip()[1:-1].strip()  # the dialog's thick border on both sides
        if not inner or inner.startswith("host "):
            break
        rows.append(inner)
    return rows


def test_the_chain_of_a_failed_parent_and_of_a_child_at_80x24():
    async def main() -> None:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS])
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, what="the inventory")
            app.session.show(*chain_jobs())
            app._tick()
            await pilot.pause(0.2)

            screen = await open_detail(pilot, 0)
            drawn = screen_lines(app)
            assert len(drawn) == 24 and all(len(line) <= 80 for line in drawn)
            rows = section(drawn)
            assert rows[0] == "Chain (parent -> child)"
            assert rows[1] == "deploy (failed) -> rollback [on failure: held] running", rows
            assert rows[2] == "deploy (failed) -> verify [on success: not held] skipped", rows
            assert rows[3] == "skipped: deploy ended failed (runs only on its success)", rows
            # a hostile name shows as the characters it is: no markup read, the ESC and BEL visible
            assert rows[4] == "deploy (failed) -> [bold]x[/] ␛]0;pwned␇ [always: held] queued", rows
            # a long name is clipped with an ellipsis, the line's end (condition, status) stays
            assert rows[5].startswith("deploy (failed) -> notify-the-release-channel"), rows
            assert "…" in rows[5] and rows[5].endswith(" [always: held] blocked"), rows
            assert len(rows) == 6, rows
            assert screen.chain_text.splitlines()[1:] == rows[1:3] + ["    " + rows[3]] + rows[4:]
            # the rest of the detail still fits: the message area keeps its rows
            assert screen.query_one("#results-message").outer_size.height >= 4
            assert screen.query_one("#results-box").outer_size.height <= 24
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, ResultsScreen), what="the view to close")

            # the log title's words for a job's parents (for app.py's log title): none for deploy
            by_id = app.engine.by_id
            assert parents_label(app.engine, by_id[0]) == ""
            assert parents_label(app.engine, by_id[1]) == "after deploy (failed)"
            assert parents_label(app.engine, by_id[4]) == "after deploy (failed), rollback (running)"
            assert parents_label(app.engine, by_id[4], most=1) == "after deploy (failed) +1"

            # a child with two parents: one held, one still pending (its parent running)
            screen = await open_detail(pilot, 4)
            rows = section(screen_lines(app))
            assert len(rows) == 3, rows
            assert rows[1].startswith("deploy (failed) -> notify-the-") and rows[1].endswith("[always: held] blocked")
            assert rows[2].startswith("rollback (running) -> notify-the-"), rows
            assert rows[2].endswith("[on success: pending] blocked"), rows
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, ResultsScreen), what="the view to close")

            # the running child updates in place while its detail is open: the parent's line moves on
            screen = await open_detail(pilot, 1)
            assert section(screen_lines(app))[1] == "deploy (failed) -> rollback [on failure: held] running"
            app.session.show(dict(chain_jobs()[1], status="successful", ended="2026-11-22T09:30:09+00:00"))
            await wait(pilot, lambda: "held] successful" in screen.chain_text, timeout=5, what="the update")
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, ResultsScreen), what="the view to close")

            # no chain: no section at all
            screen = await open_detail(pilot, 5)
            assert screen.chain_text == ""
            assert not any("Chain (parent" in line for line in screen_lines(app))
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, ResultsScreen), what="the view to close")

            # the worst case at 80x24: a longer chain, many hosts and tasks; the chain is cut to
            # what fits (the rest counted), the message keeps its rows and the hint its line
            more = [
                dict(
                    frozen_job(10 + n, f"after-{n}", "ping", Status.QUEUED, None, {}, 0), after=[["deploy", "success"]]
                )
                for n in range(3)
            ]
            hosts = {f"web{n:02d}": HostCounts(ok=3, failed=n % 2) for n in range(12)}
            app.session.show(dict(chain_jobs()[0], hosts={h: c.as_dict() for h, c in hosts.items()}), *more)
            app.session.commands.tasks[0] = [
                {"host": h, "task": f"step {k}", "play": "p", "outcome": "ok", "message": ""}
                for h in hosts
                for k in range(3)
            ]
            screen = await open_detail(pilot, 0)
            drawn = screen_lines(app)
            rows = section(drawn)
            assert len(rows) == 6 and rows[-1] == "… 4 more in this chain", rows
            assert rows[1].startswith("deploy (failed) -> rollback"), rows
            assert screen.query_one("#results-message").outer_size.height >= 4
            assert "Esc closes · o full log" in drawn[-2], drawn

    run(main())


def test_the_chain_of_a_failed_parent_on_a_real_server(tmp_path: Path):
    """A real job file: deploy fails (web02), rollback runs on its failure, verify ends skipped.
    `v` on deploy shows both children with their real statuses and the skip's message."""
    path = tmp_path / "chain.yml"
    path.write_text(
        textwrap.dedent(f"""\
        inventory: {INVENTORY}
        jobs:
          - name: deploy
            playbook: {PLAYBOOKS / "failing_host.yml"}
            limit: web02
            extra_vars: {{failing_host: web02}}
          - name: rollback
            playbook: {PLAYBOOKS / "health_check.yml"}
            limit: web01
            after: {{deploy: failure}}
          - name: verify
            playbook: {PLAYBOOKS / "health_check.yml"}
            limit: web01
            after: deploy
        """),
        encoding="utf-8",
    )

    async def main() -> None:
        app = live_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            jobs = {name: await job_reported(pilot, name) for name in ("deploy", "rollback", "verify")}
            await wait(pilot, lambda: jobs["verify"].status is Status.SKIPPED, timeout=60, what="verify skipped")
            await wait(pilot, lambda: jobs["rollback"].status.finished, timeout=60, what="the rollback")
            assert jobs["deploy"].status is Status.FAILED and jobs["rollback"].status is Status.SUCCESSFUL
            assert jobs["rollback"].after == (("deploy", "failure"),)
            await open_detail(pilot, jobs["deploy"].id)
            rows = section(screen_lines(app))
            assert rows == [
                "Chain (parent -> child)",
                "deploy (failed) -> rollback [on failure: held] successful",
                "deploy (failed) -> verify [on success: not held] skipped",
                "skipped: deploy ended failed (runs only on its success)",
            ], rows
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, ResultsScreen), what="the view to close")
            await open_detail(pilot, jobs["verify"].id)  # the child's side: its parent, and why it skipped
            assert section(screen_lines(app))[1:] == [
                "deploy (failed) -> verify [on success: not held] skipped",
                "skipped: deploy ended failed (runs only on its success)",
            ]

    run(main())
