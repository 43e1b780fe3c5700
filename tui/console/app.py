"""The console: renders the server's jobs and turns keys into requests to it.

The server owns job state; the console attaches to it (starting it if needed) and renders
the client library's mirror (`tui.client.remote`), keeping only what is on screen. Mirror
listeners just mark jobs dirty; a 4 Hz tick renders them, so a burst of events costs one
redraw, and only the selected job's log is asked for and rendered. Quitting or losing the
terminal detaches: the jobs go on under the server. What each key does is in `actions.py`;
leaving (quit, detach, hangup) in `leaving.py`, protected hosts and the incident report in
`safety.py`, theme and keys in `settings.py`, the redraw pace in `pacing.py`, the server link
in `attaching.py`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterable, Mapping

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.client.remote import RemoteEngine
from tui.client.remote import RemoteJob as Job
from tui.client.session import Session
from tui.console.actions import JobActions, clean
from tui.console.attaching import ServerLink
from tui.console.commands import COMMANDS, PaletteCommands, PaletteEntry, app_bindings, key_label
from tui.console.config import Config, remember, remembered
from tui.console.leaving import Leaving
from tui.console.pacing import REFRESH_SECONDS as REFRESH_SECONDS
from tui.console.pacing import SLOWEST_REFRESH as SLOWEST_REFRESH
from tui.console.pacing import RedrawPacing
from tui.console.safety import Safeguards
from tui.console.screens.help import HelpScreen
from tui.console.screens.host_vars import HostVarsScreen
from tui.console.settings import Settings
from tui.console.widgets.chain_view import parents_label
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.key_bar import KeyBar
from tui.console.widgets.log_view import LogView
from tui.core.config import configured_nodes
from tui.core.planning.inventory import InventoryError, load_inventory
from tui.core.planning.nodes import Node
from tui.core.planning.spec import JobSpec, Status

ALERT = (Status.FAILED, Status.TIMEOUT, Status.ERROR)
WARNED_RUNS = "interrupted_warned"  # ui.json: runs whose interruption was already reported


class PlaydeckApp(JobActions, Leaving, Safeguards, Settings, RedrawPacing, ServerLink, App[int]):
    CSS_PATH = "console.tcss"
    TITLE = "playdeck"
    BINDINGS = app_bindings()
    COMMANDS = App.COMMANDS | {PaletteCommands}

    def __init__(
        self,
        *,
        session: Session | None = None,
        socket: Path | None = None,
        specs: Iterable[JobSpec] = (),
        playbooks: Iterable[Path] = (),
        inventory: Path | None = None,
        playbook_dirs: Iterable[Path] = (),
        config: Config | None = None,
        theme: str | None = None,
        server_args: Iterable[str] = (),
        protect: Iterable[str] = (),
        nodes: Mapping[str, Node] | None = None,
    ):
        """`session`: already attached (the CLI attaches before the screen switches, so a server
        that cannot start is reported on a plain terminal); else the console attaches to `socket`
        (or the default one) itself. `specs` are submitted once attached; `playbooks` are offered
        by the launch dialog besides those in `playbook_dirs`; `server_args` are for a server this
        console starts (`python -m tui.server` options); `protect`: host patterns (the job file's
        `protect:`) a launch from the console must confirm by typing the job's name; `nodes`: the
        job file's execution nodes, offered by the launch dialogs with the config's."""
        super().__init__()
        self.config = config or Config()
        self.initial_specs = list(specs)
        self.initial_playbooks = [*playbooks, *(s.playbook for s in self.initial_specs if s.playbook is not None)]
        self.inventory_path = inventory
        self.playbook_dirs = [p for p in playbook_dirs if p.is_dir()]
        self.session = session
        self.socket = session.socket if session is not None else socket
        self.server_args = list(server_args)
        self.protect = tuple(protect)
        self.nodes: dict[str, Node] = {**configured_nodes(), **dict(nodes or {})}
        # the jobs run under the server, at a lower CPU priority than the console (keys stay quick)
        self.engine: RemoteEngine | None = None
        self._dirty: set[int] = set()
        self._added = False
        self._last_second = -1
        self.refresh_interval = REFRESH_SECONDS
        self._governed_at: tuple[float, float] | None = None  # (wall, process CPU) when last judged
        self._selected_status: tuple[Status, bool] | None = None
        self._bindings_key: object = None
        self._shown_text: dict[str, str] = {}
        self._requested_theme = theme
        self._quitting = False
        self._search_from: int | None = None  # the log line the last search landed on
        self._miss_said = False  # a search that found nothing in memory said so once
        self._hung_up = False
        self._paging = False
        self._detached = False
        self.select_when_seen: int | None = None  # a launched job to select once the server reports it
        self._attach_problem = ""  # why there is no server right now ("" while attached)
        self._theme_set_by_us: str | None = None  # the theme the config (or the default) set, not the operator

    # -- layout -------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with Horizontal(id="main"):
            yield InventoryPane(id="inventory")
            with Vertical(id="right"):
                yield Input(placeholder="filter jobs: name, playbook, hosts or status", id="job-filter")
                yield JobGrid(id="jobs")
                yield Static(id="log-title")
                yield LogView(id="log")
                yield Input(placeholder="search the log (Enter: next older match, Esc: close)", id="log-search")
        yield KeyBar(id="footer")

    def on_mount(self) -> None:
        self._apply_settings()
        self._watch_hangup()
        grid = self.query_one(JobGrid)
        grid.rebuild()
        grid.focus()
        self._load_inventory()
        if self.session is not None:
            self._attached(self.session)
        else:
            self._attach()
        self._frame()

    @property
    def jobs(self) -> list[Job]:
        """The server's jobs as last heard (none before the console has attached)."""
        return self.engine.jobs if self.engine is not None else []

    # -- saying things ------------------------------------------------------
    def say(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None:
        """A toast, never markup and never a control character, whatever names it carries.

        Toasts gather bottom-right; a dialog shows its own errors under its title, out of their
        way, and while one is open only the newest toast shows, briefly (a stack would climb up
        over the dialog). Nothing is shown after a hangup
        (there is no terminal to show it on).
        """
        if self._hung_up:
            return
        if timeout is None:
            timeout = 5.0
        if isinstance(self.screen, ModalScreen):  # one short toast at a time: a stack would climb over it
            self.call_later(self.clear_notifications)  # in order with notify's own (queued) message
            timeout = min(timeout, 4.0)
        self.notify(clean(message), title=clean(title), severity=severity, markup=False, timeout=timeout)

    def bell(self) -> None:
        if not (self._paging or self._hung_up):  # the terminal is someone else's, or gone
            super().bell()

    # -- state in, screen out -----------------------------------------------
    def _on_engine_change(self, job: Job, what: str) -> None:
        """Called by the mirror, possibly many times a second: only note what changed."""
        if what == "log":
            return  # the selected job's log is drawn every frame anyway; nothing else shows log lines
        self._dirty.add(job.id)
        if what == "added":
            self._added = True
            return
        if what == "status" and job.status in ALERT and not self._quitting:
            self.say(
                f"{job.name}: {job.status.value}. {job.message}",
                title="job " + job.status.value,
                severity="error" if job.status is not Status.TIMEOUT else "warning",
                timeout=8,
            )
            if self.config.bell:
                self.bell()
        if what == "prompt" and not self._quitting:
            if job.prompt is not None:
                self.say(
                    f"{job.name} is waiting for input: {job.prompt.text}".rstrip(": "),
                    title=f"job waiting · {self.key_for('answer-prompt')} answers",
                    severity="warning",
                    timeout=10,
                )
                if self.config.bell:
                    self.bell()
            self._bindings_key = None  # the answer key (un)dims

    def _tick(self) -> None:
        try:
            self._render_state()
        except NoMatches:  # the screen is being torn down (quitting): nothing left to draw
            return

    def _render_state(self) -> None:
        grid = self.query_one(JobGrid)
        dirty, self._dirty = self._dirty, set()
        if self._added:
            self._added = False
            grid.jobs = self.jobs
            if self.select_when_seen is not None and self.engine is not None:
                if self.select_when_seen in self.engine.by_id:  # a job this console launched: show it
                    grid.selected_id, self.select_when_seen = self.select_when_seen, None
                else:
                    self._added = True  # not in the mirror yet: look again next frame
            grid.rebuild()
        elif dirty:
            if grid.sort_index:
                grid.rebuild()
            else:
                for job in self.jobs:
                    if job.id in dirty:
                        grid.update_job(job)
        second = int(self._clock())
        if second != self._last_second:
            self._last_second = second
            grid.tick_clocks()
        if dirty:
            self._mark_hosts(dirty)
        self._show_log()
        self._update_status_bar()
        job = self.selected_job
        # a paused schedule keeps its status: its key's label (Pause/Resume) changes all the same
        status = (job.status, bool((job.schedule or {}).get("paused"))) if job is not None else None
        if status != self._selected_status or self._bindings_key is None:  # keys may (un)dim
            self._selected_status = status
            self._selection_changed()

    @staticmethod
    def _clock() -> float:
        return time.monotonic()

    def _mark_hosts(self, dirty: set[int]) -> None:
        marks: dict[str, str] = {}
        for job in self.jobs:
            if job.id not in dirty:
                continue
            for host, counts in job.hosts.items():
                if counts.unreachable:
                    marks[host] = "unreachable"
                elif counts.failed:
                    marks[host] = "failed"
                elif counts.changed:
                    marks[host] = "changed"
                elif counts.ok:
                    marks[host] = "ok"
        if marks:
            self.query_one(InventoryPane).mark_hosts(marks)

    def _show_log(self) -> None:
        log = self.query_one(LogView)
        job = self.selected_job
        title = self.query_one("#log-title", Static)
        if self.engine is not None and not self._hung_up and self.engine.watching != (job and job.id):
            self._watch(job)
        if job is None:
            log.show(None, [], 0)
            self._update_if_changed(
                title, Text(f" no job selected · {self.key_for('new-job')} launches one", style="dim")
            )
            return
        log.show(job, job.tail.lines, max(job.tail.total, 0))
        where = f" · log {job.last.log}" if job.last is not None else ""
        follow = "following" if log.follow else "paused (G follows)"
        after = parents_label(self.engine, job) if self.engine is not None else ""
        after = f" · {after}" if after else ""
        if job.node:  # the grid's @node column is off-screen at 80 columns: the title says it
            after = f" · on {job.node}{after}"
        if job.prompt is not None:
            follow = f"waiting for input ({self.key_for('answer-prompt')} answers) · {follow}"
        self._update_if_changed(
            title,
            Text(
                clean(f" {job.name} · {job.status.value}{after} · {follow}{where}"),
                no_wrap=True,
                overflow="ellipsis",
            ),
        )

    def _update_status_bar(self) -> None:
        """This run's jobs by status; the earlier runs' shown in the grid are counted apart."""
        counts: dict[Status, int] = {}
        earlier = 0
        for job in self.jobs:
            if job.history:
                earlier += 1
            else:
                counts[job.status] = counts.get(job.status, 0) + 1
        parts = [f"{counts[s]} {s.value}" for s in Status if counts.get(s)]
        if not parts:
            parts = [
                f"no jobs yet: {self.key_for('new-job')} launches a playbook, {self.key_for('adhoc')} an ad-hoc command"
            ]
        text = Text(" playdeck ", style="bold reverse")
        text.append("  " + " · ".join(parts))
        if earlier:
            text.append(f" · {earlier} earlier", style="dim")
        if self.engine is None or self._attach_problem:
            text.append(f"   not attached: {self._attach_problem or 'attaching to the server…'}", style="bold")
        elif self.engine.max_parallel and self.jobs:  # with no job yet the hint needs the room
            text.append(f"   max {self.engine.max_parallel} at once", style="dim")
        self._update_if_changed(self.query_one("#status-bar", Static), text)

    def _update_if_changed(self, widget: Static, text: Text) -> None:
        """A 4 Hz tick must not redraw what did not change: on a slow link every byte counts."""
        key = text.plain + repr(text.spans)
        if self._shown_text.get(widget.id or "") != key:
            self._shown_text[widget.id or ""] = key
            widget.update(text, layout=False)  # one-line bars (CSS height 1): a layout would repaint every pane

    @property
    def selected_job(self) -> Job | None:
        grid = self.query_one(JobGrid)
        if grid.selected_id is None or self.engine is None:
            return None
        return self.engine.by_id.get(grid.selected_id)

    @on(JobGrid.Selected)
    def _selection_changed(self) -> None:
        self._show_log()
        job = self.selected_job
        # the footer re-judges every key: only when what decides whether a key applies changed
        key = (
            (
                job.id,
                job.status,
                job.history,
                bool(job.results.failed_hosts()),
                job.last is not None,
                job.prompt is not None,
                bool((job.schedule or {}).get("paused")),
            )
            if job is not None
            else ()
        )
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()
            self.query_one(KeyBar).refresh()

    # -- inventory ----------------------------------------------------------
    @work(exclusive=True, group="inventory", exit_on_error=False)
    async def _load_inventory(self) -> None:
        pane = self.query_one(InventoryPane)
        if self.inventory_path is None:
            pane.set_error("no inventory: start with -i INVENTORY or a job file")
            return
        try:
            inventory = await load_inventory(self.inventory_path)
        except InventoryError as exc:
            pane.set_error(clean(exc))
            self.say(str(exc), title="inventory", severity="error", timeout=10)
            return
        pane.set_inventory(inventory)

    # -- history ------------------------------------------------------------
    def _warn_interrupted(self) -> None:
        """Say once that jobs were interrupted when a server (or console) last died under them:
        the server shows them as earlier jobs; each is reported only the first time a console sees it."""
        earlier = [j for j in self.jobs if j.history]
        last_run = max((j.run for j in earlier), default="")  # run ids sort by the time they started
        interrupted = [j for j in earlier if j.run == last_run and j.status is Status.INTERRUPTED]
        keys = {f"{j.run}/{j.name}" for j in interrupted}
        warned = remembered(WARNED_RUNS)
        warned = [w for w in warned if isinstance(w, str)] if isinstance(warned, list) else []
        fresh = sorted(keys - set(warned))
        if not fresh:
            return
        remember(WARNED_RUNS, [*warned, *fresh][-200:])
        names = sorted({clean(j.name) for j in interrupted})
        self.say(
            f"interrupted when playdeck last stopped: {', '.join(names)}",
            title="history",
            severity="warning",
            timeout=10,
        )

    @on(HostTree.ShowVars)
    def _show_vars(self, message: HostTree.ShowVars) -> None:
        inventory = self.query_one(InventoryPane).inventory
        if inventory is not None:
            self.push_screen(
                HostVarsScreen(
                    message.host, inventory.hostvars.get(message.host, {}), inventory.host_groups(message.host)
                )
            )

    # -- focus, filter and search ---------------------------------------------
    def action_filter(self) -> None:
        self._reveal("#job-filter")

    def _reveal(self, selector: str) -> None:
        """The filter and search inputs take no room until asked for."""
        box = self.query_one(selector, Input)
        box.display = True
        box.focus()

    def _conceal(self, box: Input) -> None:
        box.value = ""
        box.display = False

    @on(Input.Changed, "#job-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        grid = self.query_one(JobGrid)
        grid.filter_text = event.value
        grid.rebuild()

    @on(Input.Submitted, "#job-filter")
    def _filter_done(self) -> None:
        self.query_one(JobGrid).focus()

    def action_focus_log(self) -> None:
        """Enter on the grid: the log, or the prompt's dialog when the job waits for input."""
        job = self.selected_job
        if job is not None and job.prompt is not None and self.why_not("answer_prompt") is None:
            self.action_answer_prompt()
            return
        self.query_one(LogView).focus()

    def action_focus_grid(self) -> None:
        self.query_one(JobGrid).focus()

    def action_help(self) -> None:
        keymap = {c.id: self._keymap.get(c.id, c.key) for c in COMMANDS}
        self.push_screen(HelpScreen(keymap))

    def key_escape(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.id == "job-filter":
            self._conceal(focused)
            self.query_one(JobGrid).focus()
        elif isinstance(focused, Input) and focused.id == "log-search":
            self._conceal(focused)
            self.query_one(LogView).focus()
        elif isinstance(focused, (LogView, HostTree)):
            self.query_one(JobGrid).focus()

    def action_search_log(self) -> None:
        self._reveal("#log-search")

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        log = self.query_one(LogView)
        log.search = event.value
        self._search_from = None
        if event.value:
            index = log.find(event.value)
            if index is not None:
                log.jump_to(index)
                self._search_from = index
            elif log.dropped and not self._miss_said:
                self._miss_said = True  # once per search: not a toast per keystroke
                self.say(log.search_miss(), timeout=5)
        else:
            self._miss_said = False

    @on(Input.Submitted, "#log-search")
    def _search_next(self, event: Input.Submitted) -> None:
        log = self.query_one(LogView)
        index = log.find(event.value, self._search_from)
        if index is None:
            # what is only on disk cannot be searched here: say so, and where it is
            self.say(log.search_miss(older=self._search_from is not None), timeout=5 if log.dropped else 2)
            return
        self._search_from = index
        log.jump_to(index)

    # -- palette ----------------------------------------------------------------
    def palette_entries(self) -> list[PaletteEntry]:
        """Every command for the palette (Ctrl+P), as plain text: see `PaletteCommands`."""
        entries = []
        for command in COMMANDS:
            key = key_label(self._keymap.get(command.id, command.key))
            what = re.split(r"[:;(]", command.help)[0].strip()
            title = command.label if what.lower() == command.label.lower() else f"{command.label}: {what}"
            entries.append((title, f"{command.help}  · key {key}", getattr(self, f"action_{command.action}")))
        return entries
