"""The console and execution nodes: the launch dialogs offer the job file's and the config's
nodes (none: no field, the dialog as before), the chosen one goes into the submitted spec, and
the log pane's title names the node a job runs on (the grid's @node is off-screen at 80x24)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Select, Static

from tests.conftest import INVENTORY, PLAYBOOKS, run
from tests.console_support import FrozenSession, frozen_job, show_frozen_jobs
from tests.test_console_keys import wait
from tui.console.app import PlaydeckApp
from tui.console.screens.launch import AdhocDialog, NewJobDialog
from tui.core.planning.nodes import Node
from tui.core.planning.spec import Status
from tui.core.running.results import HostCounts


def log_title(app: PlaydeckApp) -> str:
    return str(app.query_one("#log-title", Static).render())


NODE = Node("dc2", "ops@bastion-dc2.example", port=2222, python="/opt/playdeck/bin/python", capacity=2)


def test_launch_dialogs_offer_nodes_and_the_choice_reaches_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "config.yml"
    config.write_text("nodes:\n  edge:\n    ssh: edge.example\n")
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))

    async def main() -> None:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS], nodes={"dc2": NODE})
        async with app.run_test(size=(80, 24)) as pilot:
            await show_frozen_jobs(pilot)
            assert sorted(app.nodes) == ["dc2", "edge"]  # the job file's and the config's
            await pilot.press("n")
            await wait(pilot, lambda: isinstance(app.screen, NewJobDialog), what="the launch dialog")
            dialog = app.screen
            nodes = dialog.query_one("#launch-node", Select)
            assert nodes.value == ""  # this machine unless chosen
            nodes.value = "dc2"
            dialog.query_one("#launch-playbook", Select).value = str(PLAYBOOKS / "health_check.yml")
            await pilot.pause(0.1)
            dialog.submit()
            await wait(pilot, lambda: any(c[0] == "submit" for c in app.session.commands.calls), what="the submit")
            spec = next(c[1][0] for c in app.session.commands.calls if c[0] == "submit")
            assert spec.node == NODE and spec.playbook.name == "health_check.yml"
            await pilot.press("a")
            await wait(pilot, lambda: isinstance(app.screen, AdhocDialog), what="the ad-hoc dialog")
            assert app.screen.query_one("#launch-node", Select).value == ""
            await pilot.press("escape")

    run(main())


def test_without_nodes_the_dialog_has_no_node_field_and_the_title_names_a_jobs_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PLAYDECK_CONFIG", str(tmp_path / "absent.yml"))

    async def main() -> str:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS])
        async with app.run_test(size=(80, 24)) as pilot:
            await show_frozen_jobs(pilot)
            await pilot.press("n")
            await wait(pilot, lambda: isinstance(app.screen, NewJobDialog), what="the launch dialog")
            assert not list(app.screen.query("#launch-node"))
            await pilot.press("escape")
            job = dict(frozen_job(5, "patch-dc2", "health_check.yml", Status.RUNNING, "dc2", {"db01": HostCounts()}, 5))
            job["node"] = "dc2"
            app.select_when_seen = 5  # as after a launch: selected once the server reports it
            app.session.show(job)
            await wait(pilot, lambda: "on dc2" in log_title(app), what="the title")
            return log_title(app)

    title = run(main())
    assert "patch-dc2 · running · on dc2" in title, title
