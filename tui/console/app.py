"""The console: renders the engine's state and turns keys into engine calls.

The engine owns job state; the app only keeps what is on screen. Engine
listeners just mark jobs dirty; a 4 Hz tick renders them, so a burst of
events costs one redraw, and only the selected job's log is ever rendered.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import aiofiles
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Input, Static

from tui.console.commands import BY_ACTION, COMMANDS, app_bindings, key_label
from tui.console.config import Config, remember, remembered
from tui.console.screens.confirm import ConfirmDialog
from tui.console.screens.help import HelpScreen
from tui.console.screens.host_vars import HostVarsScreen
from tui.console.screens.launch import AdhocDialog, LaunchRequest, NewJobDialog
from tui.console.screens.results import ResultsScreen
from tui.console.screens.timeout import TimeoutDialog
from tui.console.themes import DEFAULT_THEME, FALLBACK_THEME, STATUS_KEYS, load_themes
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.key_bar import KeyBar
from tui.console.widgets.log_view import LogView
from tui.core.durations import format_duration
from tui.core.engine import Engine, EngineError, Job
from tui.core.history import load_history, prune
from tui.core.inventory import InventoryError, load_inventory
from tui.core.sanitize import sanitize
from tui.core.spec import JobSpec, Status

REFRESH_SECONDS = 0.25  # the redraw interval while the console is within its CPU budget
SLOWEST_REFRESH = 1.0  # the longest it stretches to when output floods in
CPU_BUDGET = 0.03  # of one core: on a saturated bastion every cycle the console takes, the jobs lose
ALERT = (Status.FAILED, Status.TIMEOUT, Status.ERROR)


class PlaydeckApp(App[int]):
    CSS_PATH = "console.tcss"
    TITLE = "playdeck"
    BINDINGS = app_bindings()

    def __init__(self, *, specs: Iterable[JobSpec] = (), inventory: Path | None = None,
                 playbook_dirs: Iterable[Path] = (), max_parallel: int = 4, config: Config | None = None,
                 theme: str | None = None, state_dir: Path | None = None, job_nice: int = 10):
        super().__init__()
        self.config = config or Config()
        self.initial_specs = list(specs)
        self.inventory_path = inventory
        self.playbook_dirs = [p for p in playbook_dirs if p.is_dir()]
        # jobs run at a lower CPU priority than the console, so keys stay quick on a busy bastion
        self.engine = Engine(state_dir, max_parallel=max_parallel, job_nice=job_nice)
        self.engine.subscribe(self._on_engine_change)
        self._dirty: set[int] = set()
        self._added = False
        self._last_second = -1
        self.refresh_interval = REFRESH_SECONDS
        self._governed_at: tuple[float, float] | None = None  # (wall, process CPU) when last judged
        self._selected_status: Status | None = None
        self._bindings_key: object = None
        self._shown_text: dict[str, str] = {}
        self._requested_theme = theme
        self._quitting = False

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Our CSS uses `$status-*`; Textual's own themes lack them and would otherwise crash the app."""
        return {key: FALLBACK_THEME.variables[key] for key in STATUS_KEYS}

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
        themes, problems = load_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self._requested_theme or remembered("theme") or self.config.theme or DEFAULT_THEME
        names = {t.name for t in themes} | set(self.available_themes)
        if wanted not in names:
            problems.append(f"theme {wanted!r} not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        if self._requested_theme:
            remember("theme", wanted)
        self.theme_changed_signal.subscribe(self, lambda theme: remember("theme", theme.name))
        if self.config.keys:
            self.set_keymap(self.config.keys)
        for problem in [*self.config.problems, *problems]:
            self.notify(problem, severity="warning", markup=False, timeout=8)
        grid = self.query_one(JobGrid)
        grid.jobs = self.engine.jobs
        for spec in self.initial_specs:
            self.engine.add(spec)
        grid.rebuild()
        grid.focus()
        self._load_inventory()
        self._load_history()
        self._frame()

    # -- state in, screen out -----------------------------------------------
    def _on_engine_change(self, job: Job, what: str) -> None:
        """Called by the engine, possibly many times a second: only note what changed."""
        self._dirty.add(job.id)
        if what == "status" and job.status in (Status.QUEUED,) and len(job.attempts) == 0:
            self._added = True
        if what == "status" and job.status in ALERT and not self._quitting:
            self.notify(f"{job.name}: {job.status.value}. {job.message}", title="job " + job.status.value,
                        severity="error" if job.status is not Status.TIMEOUT else "warning",
                        markup=False, timeout=8)
            if self.config.bell:
                self.bell()

    def _tick(self) -> None:
        try:
            self._render_state()
        except NoMatches:  # the screen is being torn down (quitting): nothing left to draw
            return

    def _frame(self) -> None:
        """The refresh loop: draw, judge the CPU spent, come back after the current interval."""
        self._tick()
        self._govern()
        self.set_timer(self.refresh_interval, self._frame)

    def _govern(self) -> None:
        """Draw less often while the console spends more than its CPU budget, and speed up again after.

        Drawing a streaming log costs the same per frame whatever arrived, so under a
        flood of output the frame rate is what bounds the console's CPU; keys are
        answered at once either way (they redraw what they change themselves).
        """
        wall, cpu = time.monotonic(), time.process_time()
        if self._governed_at is None:
            self._governed_at = (wall, cpu)
            return
        elapsed = wall - self._governed_at[0]
        if elapsed < 1.0:
            return
        share = (cpu - self._governed_at[1]) / elapsed
        self._governed_at = (wall, cpu)
        if share > CPU_BUDGET:
            self.refresh_interval = min(SLOWEST_REFRESH, self.refresh_interval * 1.5)
        elif share < CPU_BUDGET / 2:
            self.refresh_interval = max(REFRESH_SECONDS, self.refresh_interval / 1.5)

    def _render_state(self) -> None:
        grid = self.query_one(JobGrid)
        dirty, self._dirty = self._dirty, set()
        if self._added:
            self._added = False
            grid.rebuild()
        elif dirty:
            if grid.sort_index:
                grid.rebuild()
            else:
                for job in self.engine.jobs:
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
        status = job.status if job is not None else None
        if status is not self._selected_status:  # the selected job moved on: keys may (un)dim
            self._selected_status = status
            self._selection_changed()

    @staticmethod
    def _clock() -> float:
        return time.monotonic()

    def _mark_hosts(self, dirty: set[int]) -> None:
        marks: dict[str, str] = {}
        for job in self.engine.jobs:
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
        if job is None:
            log.show(None, [], 0)
            self._update_if_changed(title, Text(" no job selected · n launches one", style="dim"))
            return
        if job.history and job.tail.total == 0:
            job.tail.total = -1  # loading: asked once
            self._load_history_log(job)
        log.show(job, job.tail.lines, max(job.tail.total, 0))
        where = f" · log {job.last.log}" if job.last is not None else ""
        follow = "following" if log.follow else "paused (G follows)"
        self._update_if_changed(title, Text(f" {job.name} · {job.status.value} · {follow}{where}", no_wrap=True,
                                            overflow="ellipsis"))

    def _update_status_bar(self) -> None:
        counts: dict[Status, int] = {}
        for job in self.engine.jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        parts = [f"{counts[s]} {s.value}" for s in Status if counts.get(s)]
        text = Text(" playdeck ", style="bold reverse")
        text.append("  " + (" · ".join(parts) if parts else "no jobs yet: n launches a playbook, a an ad-hoc command"))
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
        if grid.selected_id is None or grid.selected_id >= len(self.engine.jobs):
            return None
        return self.engine.jobs[grid.selected_id]

    @on(JobGrid.Selected)
    def _selection_changed(self) -> None:
        self._show_log()
        job = self.selected_job
        # refresh_bindings re-checks every binding: only when what dims a key changed
        key = (job.status, job.history, bool(job.results.failed_hosts())) if job is not None else None
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()

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
            pane.set_error(str(exc))
            self.notify(str(exc), title="inventory", severity="error", markup=False, timeout=10)
            return
        pane.set_inventory(inventory)

    # -- history ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _load_history(self) -> None:
        """Earlier runs' jobs, read-only; the ones the console died under come back `interrupted`."""
        state = self.engine.state_dir
        prune(state, self.config.keep_runs, self.config.keep_days, self.engine.run_id)
        records = load_history(state, self.engine.run_id, limit=self.config.show_history)
        self.call_from_thread(self._show_history, records)

    def _show_history(self, records: list[dict]) -> None:
        for record in records:
            try:
                self.engine.restore(record)
            except (KeyError, ValueError, TypeError):
                continue  # a damaged record is skipped; the rest still show
        interrupted = [r["name"] for r in records if r.get("status") == Status.INTERRUPTED.value]
        if interrupted:
            self.notify(f"interrupted when playdeck last stopped: {', '.join(interrupted)}", title="history",
                        severity="warning", markup=False, timeout=10)
        self._added = True

    @work(exclusive=True, group="history-log", exit_on_error=False)
    async def _load_history_log(self, job: Job) -> None:
        """A past job's log tail, read from disk without blocking the screen."""
        lines: list[str] = []
        for attempt in job.attempts:
            lines.append(f"── attempt {attempt.number}{f' (limit {attempt.limit})' if attempt.limit else ''} ──")
            try:
                async with aiofiles.open(attempt.log, encoding="utf-8", errors="replace") as fh:
                    content = await fh.read()
            except OSError as exc:
                lines.append(f"(log not readable: {exc.strerror or exc})")
                continue
            lines.extend(sanitize(line) for line in content.splitlines()[-job.tail.lines.maxlen:])
        job.tail.extend(lines)

    @on(HostTree.ShowVars)
    def _show_vars(self, message: HostTree.ShowVars) -> None:
        inventory = self.query_one(InventoryPane).inventory
        if inventory is not None:
            self.push_screen(HostVarsScreen(message.host, inventory.hostvars.get(message.host, {}),
                                            inventory.host_groups(message.host)))

    # -- keys ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        command = BY_ACTION.get(action)
        if command is None or command.applies_to is None:
            return True
        job = self.selected_job
        if job is None or job.status not in command.applies_to:
            return None  # shown, dimmed: it does not apply to the selected job
        if job.history and action != "results":
            return None  # an earlier run's job is read-only
        if action == "retry_failed" and not job.results.failed_hosts():
            return None
        return True

    def _act(self, action, *args: object) -> None:
        try:
            action(*args)
        except EngineError as exc:
            self.notify(str(exc), severity="warning", markup=False)

    def action_cancel_job(self) -> None:
        job = self.selected_job
        if job is not None:
            self._act(self.engine.cancel, job)

    def action_retry_job(self) -> None:
        job = self.selected_job
        if job is not None:
            self._act(self.engine.retry, job)

    def action_retry_failed(self) -> None:
        job = self.selected_job
        if job is not None:
            self._act(self.engine.retry, job, True)

    def action_set_timeout(self) -> None:
        job = self.selected_job
        if job is None:
            return
        current = format_duration(job.timeout_remaining() if job.status is Status.RUNNING else job.timeout)
        current = "none" if current == "-" else current + (" left" if job.status is Status.RUNNING else "")

        def apply(seconds: float | None) -> None:
            if seconds is not None:
                self._act(self.engine.set_timeout, job, seconds or None)
                self._dirty.add(job.id)

        self.push_screen(TimeoutDialog(job.name, current), apply)

    def action_new_job(self) -> None:
        self.push_screen(NewJobDialog(self._playbooks(), self.query_one(InventoryPane).limit()), self._launch)

    def action_adhoc(self) -> None:
        self.push_screen(AdhocDialog(self.query_one(InventoryPane).limit()), self._launch)

    def _launch(self, request: LaunchRequest | None) -> None:
        if request is None:
            return
        if self.inventory_path is None:
            self.notify("no inventory to run against: start with -i INVENTORY", severity="error", markup=False)
            return
        base = request.playbook.stem if request.playbook else f"adhoc-{request.module.rsplit('.', 1)[-1]}"
        names = {j.name for j in self.engine.jobs}
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        spec = JobSpec(name=name, inventory=self.inventory_path, playbook=request.playbook, limit=request.limit,
                       extra_vars=request.extra_vars, check=request.check, timeout=request.timeout,
                       retries=request.retries, module=request.module, module_args=request.module_args)
        job = self.engine.add(spec, secrets=request.secrets)
        grid = self.query_one(JobGrid)
        grid.selected_id = job.id
        grid.rebuild()

    def _playbooks(self) -> list[Path]:
        found: dict[str, Path] = {}
        for spec in self.initial_specs:
            if spec.playbook is not None:
                found.setdefault(str(spec.playbook), spec.playbook)
        for directory in self.playbook_dirs:
            for path in sorted(directory.glob("*.y*ml")):
                if path.suffix in (".yml", ".yaml") and _looks_like_playbook(path):
                    found.setdefault(str(path), path)
        return sorted(found.values(), key=lambda p: p.name)

    def action_results(self) -> None:
        job = self.selected_job
        if job is not None:
            self.push_screen(ResultsScreen(job))

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
        self.query_one(LogView).focus()

    def action_focus_inventory(self) -> None:
        self.query_one(HostTree).focus()

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

    # -- log search ---------------------------------------------------------
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

    @on(Input.Submitted, "#log-search")
    def _search_next(self, event: Input.Submitted) -> None:
        log = self.query_one(LogView)
        index = log.find(event.value, getattr(self, "_search_from", None))
        if index is None:
            self.notify("no older match", timeout=2, markup=False)
            return
        self._search_from = index
        log.jump_to(index)

    # -- palette and quitting -------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in COMMANDS:
            key = key_label(self._keymap.get(command.id, command.key))
            yield SystemCommand(f"{command.label}: {command.help.split(':')[0]}", f"{command.help} [{key}]",
                                getattr(self, f"action_{command.action}"))
        yield from super().get_system_commands(screen)

    def action_quit_console(self) -> None:
        running = [j for j in self.engine.jobs if not j.status.finished]
        if not running:
            self.exit(0)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._cancel_all_and_exit()

        self.push_screen(ConfirmDialog(f"{len(running)} job(s) still queued or running. Cancel them and quit?",
                                       "Their processes are stopped cleanly; their logs stay on disk."), answer)

    @work(exclusive=True, group="quit")
    async def _cancel_all_and_exit(self) -> None:
        self._quitting = True
        self.engine.record("quit", running=[j.name for j in self.engine.jobs if not j.status.finished])
        self.notify("canceling every job…", markup=False, timeout=10)
        await self.engine.close()
        self.exit(0)

    async def action_quit(self) -> None:
        self.action_quit_console()


def _looks_like_playbook(path: Path) -> bool:
    """A playbook is a YAML list; a job file (a mapping) is not offered as one."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    for line in head.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return stripped.startswith("- ")
    return False

