"""The dialogs: readable without colour, become for ad-hoc commands, empty arguments refused.

Driven with Textual's pilot on the real console app; what is checked on screen is the
composed screen as the terminal gets it (characters and attributes), not widget state.
A console that runs jobs is attached to a real server (`live_app`); one that only opens
dialogs gets a FrozenSession (no server behind it).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Select

from tests.conftest import INVENTORY, PLAYBOOKS, run, until
from tests.console_support import FrozenSession, live_app
from tests.console_support import job_reported as job_named
from tests.tmux_console import Terminal, needs_tmux
from tui.console.app import PlaydeckApp
from tui.console.screens.launch import AdhocDialog, LaunchRequest, NewJobDialog, Toggle
from tui.console.screens.timeout import TimeoutDialog
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.log_view import LogView
from tui.core.engine import Engine
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.attempt import runner_kwargs
from tui.core.sanitize import strip_sgr

Look = list[tuple[str, bool, bool, bool, bool]]


def look(app: PlaydeckApp, widget: Widget) -> Look:
    """What `widget`'s first line shows without colour: each cell's character and its bold,
    reverse, underline and italic attributes, read from the composed screen (the app's line
    filters, NO_COLOR's monochrome among them, are already applied). Colour is left out on purpose."""
    strip = app.screen._compositor.render_strips()[widget.region.y]
    cells: Look = []
    for segment in strip.crop(widget.region.x, widget.region.right):  # with its left border: the focus edge
        style = segment.style
        for char in segment.text:
            cells.append(
                (
                    char,
                    bool(style and style.bold),
                    bool(style and style.reverse),
                    bool(style and style.underline),
                    bool(style and style.italic),
                )
            )
    return cells


def screen_text(app: PlaydeckApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


# --- without colour: NO_COLOR and 16 colours ----------------------------------


def test_toggles_focus_and_the_selected_row_are_visible_without_colour(monkeypatch):
    """Under NO_COLOR=1 Textual greys every colour. Checked and unchecked, focused and not, the
    selected grid row and the others must still differ in characters or attributes."""
    monkeypatch.setenv("NO_COLOR", "1")
    specs = [
        JobSpec(name=f"ping-{n}", inventory=INVENTORY, module="ansible.builtin.ping", limit="web01") for n in (1, 2)
    ]

    async def main() -> None:
        app = live_app(specs)
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.no_color
            # the grid: its selected row stays apart, focused and not
            grid = app.query_one(JobGrid)
            pings = [await job_named(pilot, "ping-1"), await job_named(pilot, "ping-2")]
            await until(lambda: all(j.status.finished for j in pings), 60, "the two pings")
            app._tick()
            for focus in (grid, app.query_one(LogView)):
                focus.focus()
                await pilot.pause(0.2)
                strips = app.screen._compositor.render_strips()

                def attributes(index: int) -> set[tuple[bool, bool]]:
                    """(bold, reverse) of the words in the grid's row of job `index`."""
                    segments = strips[grid.region.y + 1 + index].crop(grid.region.x, grid.region.right)
                    return {
                        (bool(s.style.bold), bool(s.style.reverse))
                        for s in segments
                        if s.style and s.text.strip() and not s.text.strip().isdigit()
                    }

                other = 1 - grid.cursor
                assert attributes(grid.cursor) != attributes(other), (focus, attributes(grid.cursor), attributes(other))
                assert (True, False) in attributes(grid.cursor) or (False, True) in attributes(grid.cursor)

            for dialog in (AdhocDialog("web01"), NewJobDialog(sorted(PLAYBOOKS.glob("*.yml")), None)):
                await app.push_screen(dialog)
                await pilot.pause(0.2)
                toggles = list(dialog.query(Toggle))
                assert toggles, "no toggle in the dialog"
                for toggle in toggles:
                    off = look(app, toggle)
                    toggle.value = True
                    await pilot.pause(0.1)
                    on = look(app, toggle)
                    assert "".join(c[0] for c in on) != "".join(c[0] for c in off), (off, on)
                    assert "[x]" in "".join(c[0] for c in on) and "[ ]" in "".join(c[0] for c in off)
                for field in [*dialog.query(Input), *toggles, *dialog.query(Select), *dialog.query(Button)]:
                    dialog.set_focus(None)
                    await pilot.pause(0.05)
                    unfocused = look(app, field)
                    field.focus()
                    await pilot.pause(0.1)
                    assert field.has_focus or field.has_focus_within
                    focused = look(app, field)
                    assert focused != unfocused, f"{field.id}: focus not visible without colour"
                    if isinstance(field, Button):  # Textual's own: reversed
                        assert all(cell[2] for cell in focused if cell[0].strip()), (field.id, focused)
                    else:  # ours: an edge
                        assert (focused[0][0], unfocused[0][0]) == ("▌", " "), (field.id, focused[:2], unfocused[:2])
                await pilot.press("escape")
                await pilot.pause(0.1)
            await pilot.press("q")

    run(main())


# --- the ad-hoc dialog ----------------------------------------------------------


async def open_adhoc(app: PlaydeckApp, pilot, results: list[Any]) -> AdhocDialog:
    dialog = AdhocDialog("web01")
    await app.push_screen(dialog, results.append)
    await pilot.pause(0.2)
    return dialog


async def type_into(app: PlaydeckApp, pilot, dialog, widget_id: str, text: str) -> None:
    """Focus the field and set its text (Input.Changed fires as for typed keys)."""
    box = dialog.query_one(f"#{widget_id}", Input)
    box.focus()
    box.value = text
    box.cursor_position = len(text)
    await pilot.pause(0.05)


def test_adhoc_become_toggle_and_user_reach_the_command_line():
    async def main() -> list[Any]:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        results: list[Any] = []
        async with app.run_test(size=(80, 24)) as pilot:
            dialog = await open_adhoc(app, pilot, results)
            become = dialog.query_one("#launch-become", Checkbox)
            assert become.value is False  # off by default, as `ansible` without -b
            become.focus()
            await pilot.press("space")
            assert become.value is True
            await type_into(app, pilot, dialog, "launch-become-user", "deploy")
            await type_into(app, pilot, dialog, "adhoc-args", "id -un")
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert results and not app.screen.is_modal

            # naming a user ticks the toggle, visibly; unticked again, the user is refused, not ignored
            dialog = await open_adhoc(app, pilot, results)
            await type_into(app, pilot, dialog, "launch-become-user", "postgres")
            assert dialog.query_one("#launch-become", Checkbox).value is True
            dialog.query_one("#launch-become", Checkbox).value = False
            await type_into(app, pilot, dialog, "adhoc-args", "id")
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.screen is dialog and "become (-b) is off" in screen_text(app)
            await pilot.press("escape")

            # no become: nothing added
            dialog = await open_adhoc(app, pilot, results)
            await type_into(app, pilot, dialog, "adhoc-args", "uptime")
            await pilot.press("enter")
            await pilot.pause(0.1)
        return results

    results = run(main())
    assert len(results) == 3 and results[1] is None
    request = results[0]
    assert isinstance(request, LaunchRequest)
    assert (request.become, request.become_user, request.module_args, request.limit) == (
        True,
        "deploy",
        "id -un",
        "web01",
    )
    spec = request.spec("adhoc", INVENTORY)
    assert (spec.become, spec.become_user, spec.module, spec.module_args) == (True, "deploy", request.module, "id -un")
    assert shlex.split(runner_kwargs(spec, Path("/tmp/x"), "web01")["cmdline"]) == [
        "--become",
        "--become-user",
        "deploy",
    ]
    plain = results[2].spec("adhoc", INVENTORY)
    assert plain.become is False and "cmdline" not in runner_kwargs(plain, Path("/tmp/x"), "web01")


def test_runner_kwargs_quote_the_become_user():
    spec = JobSpec(
        name="x",
        inventory=INVENTORY,
        module="ansible.builtin.command",
        module_args="id",
        check=True,
        become=True,
        become_user="de ploy;rm",
    )
    cmdline = runner_kwargs(spec, Path("/tmp/x"), "web01")["cmdline"]
    assert shlex.split(cmdline) == ["--check", "--become", "--become-user", "de ploy;rm"]
    assert "cmdline" not in runner_kwargs(JobSpec(name="y", inventory=INVENTORY, module="ping"), Path("/x"), None)


def test_empty_arguments_are_refused_inline_for_modules_that_need_them_and_stay_readable():
    async def main() -> list[Any]:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        results: list[Any] = []
        async with app.run_test(size=(80, 24)) as pilot:
            for module in ("shell", "ansible.builtin.command", "ansible.legacy.raw", "script"):
                dialog = await open_adhoc(app, pilot, results)
                await type_into(app, pilot, dialog, "adhoc-module", module)
                await type_into(app, pilot, dialog, "adhoc-args", "  " if module == "shell" else "")
                # jobs that fail meanwhile raise toasts: they must not cover the dialog's own error
                for n in range(3):
                    app.notify(
                        f"job failed number {n}: " + "x" * 60,
                        title="job failed",
                        severity="error",
                        markup=False,
                        timeout=30,
                    )
                await pilot.press("enter")
                await pilot.pause(0.3)
                assert app.screen is dialog, f"{module}: the dialog closed with no arguments"
                assert app.focused is dialog.query_one("#adhoc-args", Input)
                error = f"{module} needs arguments: the command to run"
                assert error in screen_text(app), f"{module}: error not fully visible:\n{screen_text(app)}"
                await pilot.press("escape")
                await pilot.pause(0.1)
            for module in ("ping", "ansible.builtin.setup"):  # no arguments needed: accepted
                dialog = await open_adhoc(app, pilot, results)
                await type_into(app, pilot, dialog, "adhoc-module", module)
                await pilot.press("enter")
                await pilot.pause(0.1)
                assert app.screen is not dialog, module
        return results

    results = run(main())
    assert results[:4] == [None] * 4
    assert [(r.module, r.module_args) for r in results[4:]] == [("ping", ""), ("ansible.builtin.setup", "")]


def test_timeout_dialog_shows_a_hostile_job_name_as_text():
    name = "evil\x1b]0;PWNED\x07[bold]B[/]\x9b"

    async def main() -> str:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        async with app.run_test(size=(80, 24)) as pilot:
            await app.push_screen(TimeoutDialog(name, "none"))
            await pilot.pause(0.2)
            return screen_text(app)

    text = run(main())
    assert "New timeout for evil␛]0;PWNED␇[bold]B[/]" in text, text
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


def test_the_ad_hoc_key_launches_a_job_with_become():
    """`a`, the become toggle and a user: the job the server runs carries them (app.py sends the
    request on; `LaunchRequest.spec` is the one place that maps every field): the ansible command
    line ansible-runner recorded for the attempt has them."""

    async def main() -> tuple[str, Path]:
        app = live_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.engine is not None, 60, "the server")
            await pilot.press("a")
            await until(lambda: isinstance(app.screen, AdhocDialog), 5, "the ad-hoc dialog")
            dialog = app.screen
            await type_into(app, pilot, dialog, "launch-limit", "web01")
            await type_into(app, pilot, dialog, "adhoc-module", "ping")
            await type_into(app, pilot, dialog, "launch-become-user", "root")
            await pilot.press("enter")
            job = await job_named(pilot, "adhoc-ping")
            await until(lambda: job.status.finished, 60, "the ping to end")
            target, log = job.spec.target, job.last.log
            await pilot.press("q")
            return target, log

    target, log = run(main())
    assert target == "ping:"  # `module: args`, with no arguments
    command = json.loads((log.parent / "pdd" / "artifacts" / "attempt" / "command").read_text())["command"]
    assert command[command.index("-m") + 1] == "ping" and "web01" in command
    become = command.index("--become")
    assert command[become + 1 : become + 3] == ["--become-user", "root"], command


# --- a real become ----------------------------------------------------------------


def _become_target() -> str | None:
    """A local account su can switch to and run /usr/bin/python3 as (we must be root: no password)."""
    if os.geteuid() != 0 or shutil.which("su") is None or not os.access("/usr/bin/python3", os.X_OK):
        return None
    for entry in pwd.getpwall():
        if entry.pw_uid >= 1000 and entry.pw_shell in ("/bin/bash", "/bin/sh", "/usr/bin/bash"):
            return entry.pw_name
    return None


@pytest.mark.skipif(_become_target() is None, reason="needs root, su, /usr/bin/python3 and a local user")
def test_a_real_ad_hoc_run_becomes_the_user():
    """`--become --become-user USER` through ansible-runner: `whoami` on the host answers USER.
    su (sudo is absent here); the system python, which USER can read (the venv's is under /root)."""
    user = _become_target()
    spec = JobSpec(
        name="become",
        inventory=INVENTORY,
        module="ansible.builtin.command",
        module_args="whoami",
        limit="web01",
        become=True,
        become_user=user,
        extra_vars={"ansible_become_method": "su", "ansible_python_interpreter": "/usr/bin/python3"},
    )

    async def main():
        engine = Engine(max_parallel=1)
        job = engine.add(spec)
        await engine.wait_idle()
        return job

    job = run(main())
    log = strip_sgr(job.attempts[-1].log.read_text())
    assert job.status is Status.SUCCESSFUL, log
    assert user in [line.strip() for line in log.splitlines()], log  # whoami's answer, a line of its own
    assert "root" not in [line.strip() for line in log.splitlines()], log


def test_a_job_file_can_ask_for_become(tmp_path):
    """`become: true` and `become_user` in a job file reach the command line like the dialog's;
    a wrong type is refused by line and key."""
    good = tmp_path / "jobs.yml"
    good.write_text(
        f"inventory: {INVENTORY}\njobs:\n  - name: b\n    playbook: {PLAYBOOKS / 'deploy.yml'}\n"
        "    become: true\n    become_user: deploy\n"
    )
    (spec,) = load_job_file(good).jobs
    assert (spec.become, spec.become_user) == (True, "deploy")
    assert shlex.split(runner_kwargs(spec, tmp_path, None)["cmdline"]) == ["--become", "--become-user", "deploy"]
    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("become: true", "become: sudo"))
    with pytest.raises(InputError, match=r"jobs\[0\]\.become.*true or false"):
        load_job_file(bad)


def test_a_hostile_host_selected_as_the_limit_is_shown_clean_and_targeted_by_its_real_name():
    """The inventory pane's selection prefills the limit field: shown made visible (an Input draws
    its value raw), and, left as shown, the real name is what Ansible gets."""
    real = "hA\x1b]0;PWNED\x07\x9b2J,web01"

    async def main() -> tuple[list[Any], list[str]]:
        app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY)
        results: list[Any] = []
        shown: list[str] = []
        async with app.run_test(size=(80, 24)) as pilot:
            for edit in (False, True):
                dialog = AdhocDialog(real)
                await app.push_screen(dialog, results.append)
                await pilot.pause(0.2)
                shown.append(dialog.query_one("#launch-limit", Input).value)
                assert "hA␛]0;PWNED␇" in screen_text(app) and "\x1b" not in screen_text(app)
                if edit:
                    await type_into(app, pilot, dialog, "launch-limit", "web02")
                await type_into(app, pilot, dialog, "adhoc-args", "id")
                await pilot.press("enter")
                await pilot.pause(0.1)
        return results, shown

    results, shown = run(main())
    assert shown == ["hA␛]0;PWNED␇<U+009B>2J,web01"] * 2
    assert [r.limit for r in results] == [real, "web02"]


# --- the same, in a real terminal: tmux, TERM=screen (16 colours), NO_COLOR=1 ----------

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def cells(line: str) -> list[tuple[str, frozenset[str]]]:
    """A `capture-pane -e` line as (character, attributes) pairs; colours dropped on purpose."""
    out: list[tuple[str, frozenset[str]]] = []
    attrs: set[str] = set()
    pos = 0
    for match in SGR.finditer(line + "\x1b[m"):
        out.extend((c, frozenset(attrs)) for c in line[pos : match.start()])
        pos = match.end()
        codes = match.group(1).split(";") if match.group(1) else ["0"]
        skip = 0
        for code in codes:
            if skip:
                skip -= 1
                continue
            if code in ("38", "48"):
                skip = 2 if len(codes) > 1 else 0  # 38;5;N (colour): not an attribute
                continue
            if code in ("0", ""):
                attrs.clear()
            elif code in ("1", "3", "4", "7"):
                attrs.add({"1": "bold", "3": "italic", "4": "underline", "7": "reverse"}[code])
            elif code in ("22", "23", "24", "27"):
                attrs.discard({"22": "bold", "23": "italic", "24": "underline", "27": "reverse"}[code])
    return out


def line_with(styled: str, needle: str) -> list[tuple[str, frozenset[str]]]:
    for line in styled.splitlines():
        if needle in SGR.sub("", line):
            return cells(line)
    raise AssertionError(f"{needle!r} not on screen:\n{SGR.sub('', styled)}")


@needs_tmux
def test_without_colour_in_a_real_terminal(tmp_path):
    """The console under NO_COLOR=1 and TERM=screen: the selected job's row is bold, a toggle reads
    `[x]` once ticked, and the focused field is marked by a character, in what tmux received."""
    book = tmp_path / "quick.yml"
    book.write_text("- hosts: web01\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hi}\n")
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(
        f"inventory: {INVENTORY}\njobs:\n  - name: first\n    playbook: {book}\n"
        f"  - name: second\n    playbook: {book}\n"
    )
    terminal = Terminal(tmp_path, [jobs], size=(80, 24), term="screen", env={"NO_COLOR": "1"}, name="nocolor")
    terminal.start()
    try:
        terminal.wait_for(lambda s: s.count("successful") >= 2, "both jobs to end", timeout=60)
        styled = terminal.styled_screen()

        def grid_part(row: list[tuple[str, frozenset[str]]]) -> set[frozenset[str]]:
            """The attributes of the words right of the inventory pane's `▎` edge."""
            edge = next(i for i, (c, _) in enumerate(row) if c == "▎")
            return {a for c, a in row[edge + 1 :] if c.strip()}

        selected = grid_part(line_with(styled, " first "))
        other = grid_part(line_with(styled, " second "))
        assert any("bold" in a or "reverse" in a for a in selected), selected
        assert selected != other, (selected, other)

        terminal.press("a")
        terminal.wait_for(lambda s: "Ad-hoc command" in s, "the ad-hoc dialog")

        def marked() -> list[bool]:
            """Which of the hosts, module and become fields carry the focus edge `▌`."""
            styled = terminal.styled_screen()
            return [
                "▌" in "".join(c for c, _ in line_with(styled, text))
                for text in ("hosts (required)", "ansible.builtin.command", "become (-b)")
            ]

        # (a detached tmux can start the app without terminal focus: Textual then shows no focus until a key)
        terminal.press("Tab")  # hosts -> module
        terminal.wait_for(lambda s: marked() == [False, True, False], "the module field's focus edge", timeout=10)
        terminal.press("Tab", "Tab", "Tab", "Tab")  # arguments, timeout, retries, become
        terminal.wait_for(lambda s: marked() == [False, False, True], "the become toggle's focus edge", timeout=10)
        assert "[ ] become (-b)" in terminal.screen()
        terminal.press("space")
        terminal.wait_for(lambda s: "[x] become (-b)" in s, "the toggle to read [x]", timeout=10)
        terminal.press("Escape")
    finally:
        terminal.close()
