"""The console's panes at 80x24, where an on-call engineer at a bastion meets them.

Pilot tests (fast) for each pane: the grid's selected row is always whole on screen,
status words are never cut and earlier runs' rows say so, the cursor row is drawn in
the cursor's colours, the log wraps and says what only the disk still has, the results
view shows a long reason whole, and inventory names never reach the screen raw. Then
the real console in tmux at 80x24, TERM=screen: the ninth job selected with `j` is on
screen, and a real ~400-character failure reason is readable in `v`.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from textual.app import App, ComposeResult

from tests.conftest import INVENTORY, PLAYBOOKS, TEST_PLAYBOOKS, playbook, run
from tests.console_support import FrozenSession, frozen_job, job_named, live_app
from tests.test_console_keys import wait
from tests.tmux_console import Terminal, needs_tmux
from tui.client.remote import RemoteJob
from tui.console.app import PlaydeckApp
from tui.console.screens.host_vars import HostVarsScreen
from tui.console.screens.results import ResultsScreen
from tui.console.widgets.inventory_pane import EXPAND_ALL, InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.log_view import LogView
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.results import HostCounts
from tui.core.storage.logstore import LogTail

CONTROL = ("\x1b", "\x07", "\x9b", "\x9d")  # what must never reach the terminal from a name
TAIL = RemoteJob({"id": 0}).tail.lines.maxlen or 0  # lines of a job's log a console keeps in memory


def screen_lines(app: App) -> list[str]:
    """The whole screen as text, as the compositor would draw it now."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def drawn_segments(app: App) -> list[str]:
    return [segment.text for strip in app.screen._compositor.render_strips() for segment in strip]


class LogOnly(App):
    def compose(self) -> ComposeResult:
        yield LogView()


def frozen_app(**kwargs) -> PlaydeckApp:
    """The console on a frozen session: the test says what the server has (no server runs)."""
    kwargs.setdefault("inventory", INVENTORY)
    kwargs.setdefault("playbook_dirs", [PLAYBOOKS])
    return PlaydeckApp(session=FrozenSession(), **kwargs)


async def frozen(pilot, count: int) -> list:
    """`count` finished jobs in the grid (as a server delta brings them), one of them interrupted,
    the last from an earlier run."""
    app: PlaydeckApp = pilot.app
    pane = app.query_one(InventoryPane)
    await wait(pilot, lambda: pane.inventory is not None, what="the inventory")
    jobs = []
    for n in range(count):
        status = Status.INTERRUPTED if n == 3 else Status.FAILED if n % 2 else Status.SUCCESSFUL
        jobs.append(
            frozen_job(
                n, f"job-{n:02d}", "deploy.yml", status, "web01", {"web01": HostCounts(ok=1)}, 3, history=n == count - 1
            )
        )
    if jobs:
        app.session.show(*jobs)
    app._tick()
    await pilot.pause(0.2)
    return [app.engine.by_id[job["id"]] for job in jobs]


STATUS_WORDS = "|".join(s.value for s in Status)


def row_of(lines: list[str], name: str) -> str | None:
    """The grid row of job `name` on screen (its name, then its status word), or None."""
    row = re.compile(rf"(?:▎|^) ?{re.escape(name)} +({STATUS_WORDS})\b")
    return next((line for line in lines if row.search(line)), None)


# -- the job grid ------------------------------------------------------------
def test_the_selected_row_is_always_whole_on_screen():
    async def main():
        app = frozen_app()
        async with app.run_test(size=(80, 24)) as pilot:
            jobs = await frozen(pilot, 12)
            grid = app.query_one(JobGrid)
            assert grid.show_horizontal_scrollbar  # 80 columns: the grid scrolls sideways too
            shown = [j for j in grid.visible_jobs()]
            for step in range(1, len(shown)):
                await pilot.press("j")
                await pilot.pause(0.02)
                job = shown[step]
                assert grid.selected_id == job.id
                # a row under the horizontal scrollbar is painted over: its name would not be on screen
                assert row_of(screen_lines(app), job.name) is not None, (step, "\n".join(screen_lines(app)))
            await pilot.press("home")
            await pilot.pause(0.02)
            assert row_of(screen_lines(app), shown[0].name) is not None

            # n/a launch a job and select it once the server reports it (the app's own path)
            new = frozen_job(len(jobs), "just-added", "deploy.yml", Status.QUEUED, "web01", {}, 0)
            app.select_when_seen = new["id"]
            app.session.show(new)
            app._tick()
            await pilot.pause(0.1)
            assert grid.selected_id == new["id"]
            assert row_of(screen_lines(app), "just-added") is not None, "\n".join(screen_lines(app))

            # a smaller terminal keeps it on screen too
            await pilot.resize_terminal(80, 18)
            await pilot.pause(0.2)
            assert row_of(screen_lines(app), "just-added") is not None, "\n".join(screen_lines(app))
            for key in ("pageup", "pagedown", "end", "home", "end"):
                await pilot.press(key)
                await pilot.pause(0.02)
                assert row_of(screen_lines(app), app.selected_job.name) is not None, key

    run(main())


def test_status_words_are_whole_and_earlier_runs_say_so():
    async def main():
        app = frozen_app()
        async with app.run_test(size=(80, 24)) as pilot:
            jobs = await frozen(pilot, 5)
            lines = screen_lines(app)
            assert "interrupted" in row_of(lines, "job-03"), "\n".join(lines)
            app.query_one("#inventory").display = False  # the grid gets the whole width (the app's `i`)
            await pilot.pause(0.1)
            lines = screen_lines(app)
            earlier = row_of(lines, jobs[-1].name)
            assert earlier is not None and "earlier" in earlier, "\n".join(lines)
            assert all("earlier" not in row_of(lines, j.name) for j in jobs[:-1])
            grid = app.query_one(JobGrid)
            grid.filter_text = "earlier"  # the word filters too
            grid.rebuild()
            assert [j.id for j in grid.visible_jobs()] == [jobs[-1].id]
            app.query_one("#inventory").display = True
            await pilot.pause(0.1)

    run(main())


def test_the_cursor_row_draws_its_status_in_the_cursor_colours():
    async def main():
        app = frozen_app(theme="playdeck-dark")
        async with app.run_test(size=(80, 24)) as pilot:
            await frozen(pilot, 4)
            grid = app.query_one(JobGrid)
            await pilot.press("j")  # job-01: failed (bold, the error colour off the cursor)
            await pilot.pause(0.05)
            for theme in ("playdeck-dark", "playdeck-light", "playdeck-high-contrast"):
                app.theme = theme
                await pilot.pause(0.05)
                grid.render_lines(grid.size.region)  # the frame's styles
                cursor = grid.get_component_rich_style("job-grid--cursor")
                on_cursor = grid.render_line(grid.cursor + 1 - round(grid.scroll_y))
                word = next(s for s in on_cursor if s.text.strip() == "failed")
                assert word.style.color == cursor.color, (theme, word.style, cursor)
                assert word.style.bold  # the attribute stays
                off = grid.render_line(grid.cursor + 2 - round(grid.scroll_y))  # job-02: successful
                other = next(s for s in off if s.text.strip() == "successful")
                assert other.style.color != cursor.color and other.style.color is not None, theme

    run(main())


# -- the log -------------------------------------------------------------------
LONG = 'fatal: [web01]: FAILED! => {"msg": "' + " ".join(f"w{n}" for n in range(80)) + ' TAILWORD"}'


def test_the_log_wraps_by_default_and_toggles():
    async def main():
        app = LogOnly()
        async with app.run_test(size=(60, 12)) as pilot:
            log = app.query_one(LogView)
            assert log.wrap
            log.show("job-a", ["short", LONG, "last line"], 3)
            await pilot.pause(0.05)
            text = "".join(screen_lines(app))
            assert "TAILWORD" in text and "last line" in text  # the end of a 330-char line, wrapped
            assert not log.show_horizontal_scrollbar and log.row_count > 3

            assert log.toggle_wrap() is False
            await pilot.pause(0.05)
            assert "TAILWORD" not in "".join(screen_lines(app)) and log.max_scroll_x > 0
            log.scroll_to(x=40, animate=False, immediate=True)
            assert log.scroll_x == 40
            log.show("job-b", ["another job", LONG], 2)  # a new job starts at its left edge
            assert log.scroll_x == 0
            await pilot.pause(0.05)
            assert "another job" in "".join(screen_lines(app))
            assert log.toggle_wrap() is True
            await pilot.pause(0.05)
            assert "TAILWORD" in "".join(screen_lines(app))

    run(main())


def test_search_lands_on_the_wrapped_row_and_following_shows_the_end():
    async def main():
        app = LogOnly()
        async with app.run_test(size=(60, 12)) as pilot:
            log = app.query_one(LogView)
            lines = [LONG.replace("TAILWORD", f"T{n}") for n in range(40)]
            lines[7] = "needle is here"
            log.show("job", lines, 40)
            await pilot.pause(0.05)
            assert log.follow and log.scroll_y == log.max_scroll_y
            assert "T39" in "".join(screen_lines(app))  # following: the last wrapped row is on screen
            index = log.find("NEEDLE")
            assert index == 7
            log.jump_to(index)
            await pilot.pause(0.05)
            assert not log.follow
            assert any("needle is here" in line for line in screen_lines(app)), "\n".join(screen_lines(app))
            assert log.line_at(log.row_of(7)) == (7, 0)
            top = log.line_at(round(log.scroll_y))[0]
            assert log.toggle_wrap() is False  # the line at the top stays at the top
            await pilot.pause(0.05)
            assert log.line_at(round(log.scroll_y))[0] == top
            assert log.toggle_wrap() is True
            await pilot.pause(0.05)
            assert log.line_at(round(log.scroll_y))[0] == top
            top = log.scroll_y
            log.show("job", [*lines, "more"], 41)  # paused: new output does not move it
            assert log.scroll_y == top

    run(main())


def test_the_log_says_which_lines_are_only_on_disk():
    async def main():
        app = LogOnly()
        async with app.run_test(size=(80, 12)) as pilot:
            log = app.query_one(LogView)
            job = RemoteJob(frozen_job(0, "evil\x1b]0;TITLE\x07name", "deploy.yml", Status.FAILED, None, {}, 3))
            job.tail = LogTail(5)
            job.tail.extend(f"line {n}" for n in range(20))
            log.show(job, job.tail.lines, job.tail.total)
            log.scroll_home(animate=False, immediate=True)
            await pilot.pause(0.05)
            assert log.dropped == 15
            text = "".join(screen_lines(app))
            assert "15 earlier lines are only on disk:" in text and "output.log" in text
            assert "␛]0;TITLE␇name" in text  # a job name in the path: shown, never obeyed
            assert not any(c in seg for seg in drawn_segments(app) for c in CONTROL)
            miss = log.search_miss(older=True)
            assert "15 earlier lines are only on disk" in miss and "output.log" in miss and "\x1b" not in miss
            assert log.find("line 3") is None and log.find("line 19") == 4
            # retried: the server describes its second attempt (its own log beside the first's)
            job.update(frozen_job(0, "evil\x1b]0;TITLE\x07name", "deploy.yml", Status.FAILED, None, {}, 3, attempts=2))
            job.tail.extend(["retried"])
            log.show(job, job.tail.lines, job.tail.total)  # older lines may be the first attempt's
            assert "one log per attempt" in log.search_miss() and "(o opens the latest)" in log.search_miss()
            other = RemoteJob(frozen_job(1, "whole", "deploy.yml", Status.SUCCESSFUL, None, {}, 3))
            other.tail.extend(["only line"])
            log.show(other, other.tail.lines, other.tail.total)
            await pilot.pause(0.05)
            assert log.dropped == 0 and log.search_miss() == "no match"
            assert "on disk" not in "".join(screen_lines(app))

    run(main())


def test_a_real_job_whose_tail_dropped_lines_says_so_in_the_console():
    # the console keeps the last TAIL lines of the job it shows: this log has more
    spec = JobSpec(
        name="chatty",
        inventory=INVENTORY,
        playbook=playbook("chatty"),
        limit="lb01",
        extra_vars={"chatty_lines": 60, "chatty_cmd_lines": TAIL + 100},
    )

    async def main():
        app = live_app([spec])
        async with app.run_test(size=(80, 24)) as pilot:
            job = await job_named(pilot, "chatty", timeout=60)
            assert job.tail.lines.maxlen == TAIL
            log = app.query_one(LogView)
            await wait(pilot, lambda: job.status.finished, timeout=60, what="the chatty job")
            app._tick()
            await wait(pilot, lambda: log.dropped > 0, timeout=30, what="the log to know what it dropped")
            assert log.dropped == job.tail.total - len(job.tail.lines)
            log.scroll_home(animate=False, immediate=True)
            await pilot.pause(0.1)
            width = log.scrollable_content_region.width
            text = "".join(log.render_line(y).text[:width] for y in range(log.scrollable_content_region.height))
            assert f"… {log.dropped} earlier lines are only on disk: {job.last.log} (o opens" in text, text
            # a search for a line that only the disk still has says so, and where (the app's `/`)
            first = "request 1 handled in 37 ms"  # the chatty playbook's first debug line
            assert first in job.last.log.read_text() and not any(first in line for line in job.tail.lines)
            await pilot.press("enter", "slash")
            await pilot.press(*first, "enter")
            await wait(
                pilot,
                lambda: any("earlier lines are only on disk" in str(n.message) for n in app._notifications),
                what="the search to say where to look",
            )
            await pilot.press("escape", "escape", "q")

    run(main())


# -- the results view ----------------------------------------------------------
def test_results_show_a_long_reason_whole_at_80x24():
    reason = "release check failed: " + " ".join(f"part{n}" for n in range(1, 52)) + " reason ends with QUETZALEND"

    async def main():
        app = frozen_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await frozen(pilot, 0)
            job = frozen_job(
                7,
                "release",
                "deploy.yml",
                Status.FAILED,
                "web",
                {f"web0{n}": HostCounts(ok=2, failed=int(n == 1)) for n in range(1, 4)},
                3,
            )
            app.session.commands.tasks[7] = [  # what the server answers for the job's results
                {
                    "host": "web01",
                    "task": "check the release",
                    "play": "Rollout",
                    "outcome": "failed",
                    "message": reason,
                },
                *(
                    {"host": f"web0{n}", "task": f"step {k}", "play": "Rollout", "outcome": "ok", "message": ""}
                    for n in (2, 3)
                    for k in range(6)
                ),
            ]
            app.session.show(job)
            app._tick()
            await pilot.pause(0.1)
            await pilot.press("v")  # the results are fetched from the server, then the view opens
            await wait(pilot, lambda: isinstance(app.screen, ResultsScreen), what="the results view")
            await pilot.pause(0.2)
            screen = app.screen
            box = screen.query_one("#results-box")
            assert box.outer_size.width <= 80 and box.outer_size.height <= 24
            message = screen.query_one("#results-message")
            assert message.outer_size.height >= 6, "the tables ate the message's rows"
            text = " ".join(screen_lines(app))
            if "QUETZALEND" not in text:
                await pilot.press("pagedown")  # the documented key, from the task list
                await pilot.pause(0.1)
                text = " ".join(screen_lines(app))
            assert "QUETZALEND" in text, "\n".join(screen_lines(app))
            assert "part1 " in screen.message_text and "PgUp/PgDn" in text

            await pilot.resize_terminal(80, 16)  # too short for the whole reason: PgDn reaches its end
            await pilot.pause(0.2)
            assert "QUETZALEND" not in " ".join(screen_lines(app))
            for _ in range(3):
                await pilot.press("pagedown")
            await pilot.pause(0.1)
            assert "QUETZALEND" in " ".join(screen_lines(app)), "\n".join(screen_lines(app))
            await pilot.press("pageup", "pageup", "pageup")
            await pilot.pause(0.1)
            assert "part1 " in " ".join(screen_lines(app))
            await pilot.press("escape")

    run(main())


# -- the inventory -------------------------------------------------------------
HOSTILE_INVENTORY = """\
all:
  vars: {ansible_connection: local}
  children:
    "grp\\e]52;c;cHduZWQ\\aCLIP":
      hosts:
        "web\\e]0;PWNED\\aTITLE":
          note: "v\\e]0;PWNED\\a"
          "k\\e[2Jey": 1
    plain:
      children:
        inner:
          hosts:
            db01:
            db02:
"""


def test_inventory_names_are_sanitized_and_a_small_inventory_opens_whole(tmp_path: Path):
    inventory = tmp_path / "hostile.yml"
    inventory.write_text(HOSTILE_INVENTORY)

    async def main():
        app = frozen_app(inventory=inventory)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, timeout=60, what="the inventory")
            await pilot.pause(0.1)
            tree = pane.tree
            labels = [n.label.plain for n in pane._walk(tree.root)]
            hosts = [n for n in pane._walk(tree.root) if n.data and n.data[0] == "host"]
            # small: every group is open, so every host is a node on screen without a key
            assert {n.data[1] for n in hosts} == {"web\x1b]0;PWNED\x07TITLE", "db01", "db02"}
            assert all(n.parent is not None and n.parent.is_expanded for n in hosts)
            assert not any(c in label for label in labels for c in CONTROL), labels
            assert any("␛]52;c;cHduZWQ␇CLIP" in label for label in labels)
            text = "\n".join(screen_lines(app))
            assert "db02" in text and "␛]0;PWNED" in text, text
            assert not any(c in seg for seg in drawn_segments(app) for c in CONTROL)

            # the real name is kept for Ansible; x shows its variables, sanitized
            tree.focus()
            tree.move_cursor(next(n for n in hosts if n.data[1].startswith("web")))
            await pilot.press("space")
            assert pane.limit() == "web\x1b]0;PWNED\x07TITLE"
            await pilot.press("x")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HostVarsScreen)
            shown = "\n".join(screen_lines(app))
            assert "PWNED" in shown and "2Jey" in shown, shown  # shown (escaped by YAML or made visible)
            assert not any(c in seg for seg in drawn_segments(app) for c in CONTROL)
            assert app.screen.query_one("#host-vars-box").outer_size.width <= 80
            await pilot.press("escape")

            # hidden (the app's toggle) and changed meanwhile, then shown: nothing breaks
            pane.display = False
            await pilot.pause(0.05)
            pane.mark_hosts({"db01": "failed"})
            pane.rebuild()
            pane.display = True
            await pilot.pause(0.1)
            assert any("db01 ✗" in line for line in screen_lines(app)), "\n".join(screen_lines(app))

    run(main())


def test_a_bigger_inventory_stays_lazy(tmp_path: Path):
    inventory = tmp_path / "big.yml"
    hosts = "".join(f"        h{n:03d}:\n" for n in range(EXPAND_ALL + 1))
    inventory.write_text(f"all:\n  vars: {{ansible_connection: local}}\n  children:\n    many:\n      hosts:\n{hosts}")

    async def main():
        app = frozen_app(inventory=inventory)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, timeout=60, what="the inventory")
            group = next(n for n in pane.tree.root.children if n.data == ("group", "many"))
            assert not group.is_expanded and not group.children  # nothing built until opened
            group.expand()
            await pilot.pause(0.1)
            assert len(group.children) == EXPAND_ALL + 1

    run(main())


# -- the real console in tmux at 80x24, TERM=screen --------------------------------
def _job_file(tmp_path: Path, jobs: str, max_parallel: int = 1) -> Path:
    path = tmp_path / "jobs.yml"
    path.write_text(
        f"inventory: {INVENTORY}\nmax_parallel: {max_parallel}\njobs:\n" + textwrap.indent(textwrap.dedent(jobs), "  ")
    )
    return path


@needs_tmux
def test_the_ninth_job_selected_with_j_is_on_screen_in_tmux(tmp_path: Path):
    # one job sleeps, the other nine wait their turn (max_parallel 1): nothing heavy runs
    jobs = f"- name: sleeper\n  playbook: {playbook('slow_task')}\n  limit: db01\n  extra_vars: {{slow_seconds: 65}}\n"
    jobs += "".join(
        f"- name: queued-{n}\n  playbook: {TEST_PLAYBOOKS / 'load_one_debug.yml'}\n  limit: web01\n"
        for n in range(2, 11)
    )
    term = Terminal(tmp_path, [_job_file(tmp_path, jobs)], name="ninth")
    try:
        term.start()
        term.wait_for(lambda s: "sleeper" in s and "queued-2" in s, "the grid", timeout=30)
        for _ in range(8):
            term.press("j")
        screen = term.wait_for(lambda s: "queued-9 · queued" in s, "the ninth job to be selected", timeout=10)
        plain = screen.splitlines()
        at = next((i for i, line in enumerate(plain) if "queued-9 " in line and "queued-9 ·" not in line), None)
        assert at is not None and "queued" in plain[at].split("queued-9", 1)[1], screen  # its row, whole
        styled = term.styled_screen().splitlines()
        neighbour = next(i for i, line in enumerate(plain) if "queued-8 " in line)
        # the cursor row is drawn unlike its neighbour (the block cursor's colours)
        assert styled[at].split("queued-9")[0][-40:] != styled[neighbour].split("queued-8")[0][-40:]
        term.press("q")
        term.wait_for(lambda s: "y: stop them" in s, "the quit question", timeout=10)
        term.press("y")
        assert term.exit_status(timeout=30) == 0
    finally:
        term.close()


@needs_tmux
def test_a_long_failure_reason_is_readable_in_results_at_80x24_in_tmux(tmp_path: Path):
    jobs = f"- name: release\n  playbook: {TEST_PLAYBOOKS / 'long_reason.yml'}\n  limit: web01\n"
    term = Terminal(tmp_path, [_job_file(tmp_path, jobs)], name="reason")
    try:
        term.start()
        term.wait_for(lambda s: "release · failed" in s, "the job to fail", timeout=60)
        term.press("v")
        screen = term.wait_for(lambda s: "PgUp/PgDn" in s, "the results view", timeout=10)
        if "QUETZALEND" not in screen:
            term.press("PageDown")  # the key the hint line names
            screen = term.wait_for(lambda s: "QUETZALEND" in s, "the end of the reason", timeout=10)
        assert "release check failed" in screen or "QUETZALEND" in screen
        assert max(len(line.rstrip()) for line in screen.splitlines()) <= 80
        term.press("Escape")
        term.wait_for(lambda s: "PgUp/PgDn" not in s, "the results view to close", timeout=10)
        term.press("q")
        assert term.exit_status(timeout=30) == 0
    finally:
        term.close()
