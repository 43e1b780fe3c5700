"""The panes beyond the grid: log follow and search, inventory filter and variables, themes, big inventories.

Tests that run a job attach the console to a real server (`live_app`); those that run none
give it a FrozenSession (no server behind it), as the panes need no jobs."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input

from tests.conftest import INVENTORY, PLAYBOOKS, TEST_PLAYBOOKS, run
from tests.console_support import FrozenSession, live_app, show_frozen_jobs
from tests.console_support import job_reported as job_named
from tests.test_console_keys import wait
from tui.console.app import PlaydeckApp
from tui.console.config import Config, remembered
from tui.console.screens.help import HelpScreen
from tui.console.screens.host_vars import HostVarsScreen
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.log_view import LogView
from tui.core.planning.spec import JobSpec, Status


class LogOnly(App):
    """Just a log view, for what it does on its own."""

    def compose(self) -> ComposeResult:
        yield LogView()


def test_log_follows_pauses_when_scrolled_up_and_searches():
    spec = JobSpec(
        name="chatty",
        inventory=INVENTORY,
        playbook=PLAYBOOKS / "chatty.yml",
        limit="lb01",
        extra_vars={"chatty_lines": 150},
    )

    async def main():
        app = live_app([spec], config=Config(bell=True))
        bells = []
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        async with app.run_test(size=(100, 30)) as pilot:
            job = await job_named(pilot, "chatty")
            log = app.query_one(LogView)
            await wait(pilot, lambda: job.status.finished, timeout=60, what="the chatty job")
            assert app.selected_job is job  # the watched job: its log lines come over the socket
            await wait(pilot, lambda: log.line_count == len(job.tail.lines), what="the log's last lines")
            assert job.status is Status.SUCCESSFUL
            assert log.line_count > 200 and log.follow
            assert log.scroll_y == log.max_scroll_y  # following: at the bottom
            await pilot.press("enter")
            assert app.focused is log
            await pilot.press("pageup")
            await pilot.pause(0.1)
            assert not log.follow and log.scroll_y < log.max_scroll_y  # scrolled up: holds still
            held = log.scroll_y
            app._tick()
            assert log.scroll_y == held
            await pilot.press("G")
            await pilot.pause(0.1)
            assert log.follow and log.scroll_y == log.max_scroll_y

            await pilot.press("slash")
            box = app.query_one("#log-search", Input)
            assert app.focused is box
            await pilot.press(*"PLAY RECAP")
            await pilot.pause(0.1)
            assert not log.follow
            index = log.find("PLAY RECAP")
            row = log.row_of(index)  # the line's first row (lines wrap)
            assert index is not None and log.scroll_y <= row < log.scroll_y + log.scrollable_content_region.height
            await pilot.press("escape")
            assert app.focused is log and log.search == ""
            assert bells == []  # nothing failed: no bell
            await pilot.press("escape", "q")
        return app

    run(main())


def test_inventory_filter_and_host_variables():
    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS])
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, what="the inventory")
            pane.query_one("#host-filter", Input).focus()
            await pilot.press(*"web0")
            await pilot.pause(0.1)
            tree = app.query_one(HostTree)
            assert [n.data for n in tree.root.children] == [("host", "web01"), ("host", "web02"), ("host", "web03")]
            tree.focus()
            tree.move_cursor(tree.root.children[2])
            await pilot.press("x")
            screen = app.screen
            assert isinstance(screen, HostVarsScreen)
            assert screen.variables["app_port"] == 8081 and screen.groups == ["web"]
            await pilot.press("escape")
            await pilot.press("space")
            assert pane.limit() == "web03"
        return app

    run(main())


def test_theme_switch_is_remembered_and_no_color_is_honoured(monkeypatch):
    async def first():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, theme="playdeck-light")
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.theme == "playdeck-light"
            app.theme = "playdeck-high-contrast"  # what the palette's Theme command does
            await pilot.pause(0.1)
        return app

    run(first())
    assert remembered("theme") == "playdeck-high-contrast"

    monkeypatch.setenv("NO_COLOR", "1")

    async def second():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.theme == "playdeck-high-contrast"
            assert app.no_color
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
        return app

    run(second())


def test_console_answers_keys_while_a_5000_host_inventory_loads(tmp_path):
    inventory = tmp_path / "big.yml"
    groups = "".join(
        f"    g{g}:\n      hosts:\n" + "".join(f"        h{g:02d}x{h:03d}:\n" for h in range(100)) for g in range(50)
    )
    inventory.write_text("all:\n  vars: {ansible_connection: local}\n  children:\n" + groups)

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=inventory)
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(InventoryPane)
            await pilot.press("question_mark")
            # the key was answered while ansible-inventory was still reading: nothing waits on it
            assert isinstance(app.screen, HelpScreen) and pane.inventory is None
            await pilot.press("escape")
            await wait(pilot, lambda: pane.inventory is not None, timeout=120, what="the big inventory")
            assert len(pane.inventory.hosts) == 5000

    run(main())


def test_grid_repaints_only_what_changed_and_recolours_on_theme_change():
    """A 4 Hz tick must not repaint rows that show the same thing, and a theme change must
    still recolour the status words."""
    spec = JobSpec(name="quick", inventory=INVENTORY, playbook=TEST_PLAYBOOKS / "load_one_debug.yml", limit="web01")

    async def main():
        app = live_app([spec], theme="playdeck-dark")
        async with app.run_test(size=(100, 30)) as pilot:
            job = await job_named(pilot, "quick")
            grid = app.query_one(JobGrid)
            await wait(pilot, lambda: job.status.finished, timeout=60, what="the job")
            await wait(pilot, lambda: grid.row_cells(job.id)[1].plain == job.status.value, what="the final row")
            before = grid.updates
            assert before > 0  # queued -> running -> successful were each drawn
            for _ in range(5):
                app._render_state()
                app._last_second = -1  # as if a second had passed: the clocks are looked at too
            assert grid.updates == before
            dark = grid.row_cells(job.id)[1].style
            app.theme = "playdeck-light"
            await pilot.pause(0.1)
            assert grid.updates == before + 1
            status = grid.row_cells(job.id)[1]
            assert status.plain == job.status.value and str(dark) != str(status.style)
            await pilot.press("q")
        return app

    run(main())


def test_a_growing_log_asks_for_no_layout_of_the_screen():
    """Assigning virtual_size lays out (and repaints) every pane; a log that grows must only move its scrollbar."""

    async def main():
        app = LogOnly()
        async with app.run_test(size=(60, 12)) as pilot:
            log = app.query_one(LogView)
            lines = [f"line {n}" for n in range(50)]
            log.show("job", lines[:30], 30)
            await pilot.pause(0.1)
            assert log.show_vertical_scrollbar and log.scroll_y == log.max_scroll_y
            layouts = []
            app.screen._refresh_layout = lambda *a, **k: layouts.append(1)  # type: ignore[method-assign]
            log.show("job", lines, 50)
            assert not app.screen._layout_required
            await pilot.pause(0.1)
            assert layouts == []
            assert log.virtual_size.height == 50 and log.vertical_scrollbar.window_virtual_size == 50
            assert log.scroll_y == log.max_scroll_y == 50 - log.scrollable_content_region.height
        return app

    run(main())


def test_footer_dims_the_keys_that_do_not_apply_to_the_selected_job():
    """Keys that apply come first; the others come after `not now:`, dim (see key_bar.py)."""
    from tui.console.widgets.key_bar import NOT_NOW, KeyBar

    def split(bar: KeyBar) -> tuple[str, str, dict[str, bool]]:
        """(the applicable part, the `not now` part, each label -> whether it is drawn dim)."""
        plain = bar.render().plain
        now, _, later = plain.partition(NOT_NOW)
        dim = {
            seg.text.strip(): bool(seg.style and seg.style.dim)
            for seg in bar.render().render(bar.app.console)
            if len(seg.text.strip()) > 1
        }
        return now, later, dim

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(140, 30)) as pilot:  # 120 before the footer had d Detach
            await show_frozen_jobs(pilot)  # job 0 selected: failed, with an unreachable host
            bar = app.query_one(KeyBar)
            now, later, dim = split(bar)
            assert "Retry failed" in now and "r Retry" in now and "Quit" in now and "Help" in bar.render().plain
            assert not dim["Retry failed"] and not dim["Retry"] and not dim["Quit"]
            assert "Cancel" not in now  # nothing to cancel in a finished job
            await pilot.press("j")  # deploy-web: successful, so no failed hosts to retry
            await pilot.pause(0.1)
            now, later, dim = split(bar)
            assert "Retry failed" not in now and "r Retry" in now and not dim["Retry"]
            assert "Cancel" in later and dim["Cancel"]
            await pilot.press("q")
        return app

    run(main())


def test_refresh_slows_down_over_the_cpu_budget_and_recovers():
    """Under a flood the frame rate is what bounds the console's CPU; keys are answered regardless."""
    import time as clock

    from tui.console import app as console

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(100, 30)) as pilot:
            assert app.refresh_interval == console.REFRESH_SECONDS
            for _ in range(6):  # judged once a second: pretend each second cost 10 % of a core
                app._governed_at = (clock.monotonic() - 1.0, clock.process_time() - 0.10)
                app._govern()
            assert app.refresh_interval == console.SLOWEST_REFRESH
            for _ in range(6):  # and then almost nothing
                app._governed_at = (clock.monotonic() - 1.0, clock.process_time())
                app._govern()
            assert app.refresh_interval == console.REFRESH_SECONDS
            await pilot.press("q")
        return app

    run(main())


def test_switching_to_a_job_with_as_many_lines_shows_its_own_log():
    async def main():
        app = LogOnly()
        async with app.run_test(size=(60, 12)) as pilot:
            log = app.query_one(LogView)
            log.show("job-a", ["a1", "a2", "a3"], 3)
            log.show("job-b", ["b1", "b2", "b3"], 3)
            await pilot.pause(0.05)
            assert log.plain_lines() == ["b1", "b2", "b3"]
        return app

    run(main())
