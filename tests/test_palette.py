"""The command palette (Ctrl+P): it opens, searches and runs every command, themes included,
and no command text is ever parsed as markup (the `/` key's label once ended the console)."""

from __future__ import annotations

import json
import time

from textual.command import CommandInput, CommandList, CommandPalette
from textual.content import Content
from textual.theme import Theme

from tests.conftest import INVENTORY, PLAYBOOKS, run
from tests.console_support import FrozenSession, frozen_job
from tests.test_console_keys import job_file
from tests.tmux_console import Terminal, needs_tmux
from tui.console.app import PlaydeckApp
from tui.console.commands import COMMANDS, PaletteCommands
from tui.console.config import Config
from tui.console.widgets.inventory_pane import InventoryPane
from tui.core.planning.spec import Status
from tui.core.running.results import HostCounts


async def wait(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


async def _run_from_palette(pilot, title: str) -> None:
    """Ctrl+P, search for `title`, Enter: as an operator would (the search set in one go, not per key)."""
    app: PlaydeckApp = pilot.app
    await pilot.press("ctrl+p")
    await wait(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    palette = app.screen
    palette.query_one(CommandInput).value = title
    await wait(pilot, lambda: palette.query_one(CommandList).option_count > 0, what=f"hits for {title}")
    await pilot.press("enter")
    if app.screen is palette and palette.query_one(CommandList).option_count > 1:
        await pilot.press("enter")  # the first Enter highlights the best hit, the second runs it
    await wait(pilot, lambda: app.screen is not palette, what=f"{title} to run")
    await pilot.pause(0.05)


def test_every_palette_command_runs_and_none_is_markup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Screenshot writes where it runs
    # keys whose labels are markup ("/" closes a tag, "[" opens one): the palette must show them as text
    config = Config(keys={"filter": "slash", "help": "left_square_bracket", "cancel-job": "x"})

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS], config=config)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, what="the inventory")
            entries = app.palette_entries()
            assert len(entries) == len(COMMANDS)
            help_texts = [help_text for _title, help_text, _callback in entries]
            assert any("key [" in text for text in help_texts) and any("key /" in text for text in help_texts)

            provider = PaletteCommands(app.screen)
            hits = [hit async for hit in provider.discover()]
            assert all(isinstance(hit.prompt, Content) and isinstance(hit.help, Content) for hit in hits)
            assert [hit.help.plain for hit in hits] == help_texts  # shown as typed, brackets and all

            system = [command.title for command in app.get_system_commands(app.screen) if command.title != "Quit"]
            assert "Theme" in system
            ran = []
            leaving = ("Quit", "Detach: Leave the console now")  # each ends the console: run last
            for title in [t for t, _h, _c in entries if t not in leaving] + system:
                await _run_from_palette(pilot, title)
                assert app.is_running, title
                ran.append((title, type(app.screen).__name__))
                if title.startswith("Hide hosts"):
                    assert not pane.display
                while len(app.screen_stack) > 1:  # a dialog the command opened (or the theme picker)
                    await pilot.press("escape")
                    await pilot.pause(0.05)
            opened = dict(ran)
            assert opened["Help: Show every key"] == "HelpScreen"
            assert opened["New job: Launch a playbook on the selected hosts"] == "NewJobDialog"
            assert opened["Theme"] == "CommandPalette"  # the theme picker
            assert pane.display and app.focused is not None  # "Hosts" showed the pane again

            await _run_from_palette(pilot, "Theme")
            await pilot.press(*"playdeck-light")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait(pilot, lambda: app.theme == "playdeck-light", what="the theme switch")

            # a theme file's name is the user's text: the picker shows it, markup and all
            app.register_theme(Theme(name="evil[/][@click=app.quit]", primary="#ff8700", dark=True))
            await _run_from_palette(pilot, "Theme")
            picker = app.screen
            picker.query_one(CommandInput).value = "evil"
            await wait(pilot, lambda: picker.query_one(CommandList).option_count == 1, what="the evil theme")
            assert "[/][@click=app.quit]" in str(picker.query_one(CommandList).get_option_at_index(0).prompt)
            await pilot.press("enter")
            await wait(pilot, lambda: app.theme == "evil[/][@click=app.quit]", what="the evil theme's switch")
            assert app.is_running

            await _run_from_palette(pilot, "Quit")  # nothing runs: quits at once
            await wait(pilot, lambda: not app.is_running, what="quit")
        return app

    app = run(main())
    assert app.return_value == 0


def test_detach_from_the_palette_leaves_a_running_job_alone():
    """Detach (`d`, or the palette): the console leaves at once, without a question, and asks the
    server for nothing: the job goes on (a FrozenSession records every request)."""

    async def main():
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS])
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(InventoryPane)
            await wait(pilot, lambda: pane.inventory is not None, what="the inventory")
            app.session.show(
                frozen_job(0, "sleeper", "slow_task.yml", Status.RUNNING, "db01", {"db01": HostCounts()}, 5)
            )
            await wait(pilot, lambda: app.engine.unfinished() != [], what="the running job")
            await _run_from_palette(pilot, "Detach")
            await wait(pilot, lambda: not app.is_running, what="the detach")
        return app

    app = run(main())
    assert app.return_value == 0
    assert app.session.commands.calls == []  # nothing cancelled


@needs_tmux
def test_palette_in_a_real_terminal_at_80x24(tmp_path):
    """TERM=screen, 80x24: Ctrl+P, search, Enter runs the command; the theme switches; the console
    (and its running job) is still there afterwards."""
    path = job_file(
        tmp_path,
        f"""\
        - name: sleeper
          playbook: {PLAYBOOKS / "slow_task.yml"}
          limit: db01
          extra_vars: {{slow_seconds: 71}}
    """,
    )
    term = Terminal(tmp_path, [path], size=(80, 24), term="screen")
    try:
        term.start()
        term.wait_for(lambda s: "sleeper" in s and "running" in s and "hosts.yml" in s, "the job and the hosts")
        deadline = time.monotonic() + 30
        while not term.ours("sleep 71"):
            assert time.monotonic() < deadline, "the job's sleep never started"
            time.sleep(0.1)
        term.press("C-p")
        screen = term.wait_for(lambda s: "Search for commands" in s, "the palette")
        assert "Cancel the selected job" in screen  # every command is offered before typing
        term.type("hide hos")
        screen = term.wait_for(lambda s: "Hide hosts" in s and "Theme" not in s, "the search to narrow")
        term.press("Enter")  # runs the best hit (the palette highlights it)
        screen = term.wait_for(lambda s: "filter hosts" not in s and "Search for" not in s, "the pane to hide")
        assert "sleeper" in screen and "Show hosts" in screen.splitlines()[-1]

        term.press("C-p")
        term.wait_for(lambda s: "Search for commands" in s, "the palette again")
        term.type("theme")
        term.wait_for(lambda s: "Change the current theme" in s, "the theme command")
        term.press("Enter")
        term.wait_for(lambda s: "Search for themes" in s, "the theme picker")
        term.type("playdeck-light")
        term.wait_for(lambda s: "playdeck-light" in s and "playdeck-dark" not in s, "the light theme")
        term.press("Enter")
        term.wait_for(lambda s: "Search for" not in s and "sleeper" in s, "the console after the switch")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ui = term.state / "ui.json"
            if ui.exists() and json.loads(ui.read_text()).get("theme") == "playdeck-light":
                break
            time.sleep(0.2)
        assert json.loads((term.state / "ui.json").read_text())["theme"] == "playdeck-light"
        screen = term.screen()
        assert "EXIT=" not in screen and "running" in screen  # still running, the job too
        assert term.ours("sleep 71"), "the job's sleep must still run"
        assert term.ours("-m tui"), "the console must still run"
    finally:
        term.close()
