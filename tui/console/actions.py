"""What the console's keys do (to the selected job, the log, the panes, launches, prompts),
and why a key does not apply when it does not. Quitting, detaching and hangups are in
`leaving.py`; the protected-hosts confirmation and the incident report in `safety.py`.

Job commands are requests to the server (`RemoteEngine`); the server's refusal is said in one
line.

A key that does not apply is set apart in the footer (after `not now:`, dim, when there
is room), but still reaches its action: the action says why in one line (`c` on a finished job: "health-check is successful: only
a queued, waiting or running job can be cancelled") instead of being silently ignored.
Mixed into `PlaydeckApp`; every text built from a job or host name goes through `clean`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from textual import work
from textual.app import SuspendNotSupported

from tui.client.connection import ServerError
from tui.client.remote import RemoteEngine
from tui.client.remote import RemoteJob as Job
from tui.console.commands import BY_ACTION, BY_ID, key_label
from tui.console.screens.confirm_name import ConfirmNameDialog
from tui.console.screens.launch import AdhocDialog, LaunchRequest, NewJobDialog
from tui.console.screens.prompt import PromptDialog
from tui.console.screens.results import ResultsScreen
from tui.console.screens.timeout import TimeoutDialog
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.key_bar import KeyBar
from tui.console.widgets.log_view import LogView
from tui.core.durations import format_duration
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp

DEFAULT_PAGER = "less -R"
WHY_NOT = {  # what a job command needs, said when it is pressed on a job it does not apply to
    "cancel_job": "only a queued, blocked, waiting or running job can be cancelled",
    "retry_job": "only a finished job, or one waiting to retry, can be retried",
    "retry_failed": "only a failed, timed-out, canceled or errored job can retry its failed hosts",
    "set_timeout": "only a queued, blocked, waiting or running job has a timeout to change",
    "results": "it has no results until it runs",
    "pause_schedule": "only a scheduled job can be paused or resumed",
    "run_now": "only a scheduled job waiting for its next run can run now",
}
SCHEDULED_ONLY = ("pause_schedule", "run_now")


def clean(text: object) -> str:
    """Untrusted text (job and host names, messages) as plain, control-free text for the screen."""
    return strip_sgr(str(text))


class JobActions:
    """The console's key actions, for `PlaydeckApp` (which provides `selected_job`, `engine`, `say`)."""

    # -- does it apply? -------------------------------------------------------
    def key_for(self: PlaydeckApp, command_id: str) -> str:
        """The key the operator has for a command (after the config's keymap), for messages."""
        return key_label(self._keymap.get(command_id, BY_ID[command_id].key)).split(",")[0]

    def why_not(self: PlaydeckApp, action: str) -> str | None:
        """Why `action` does not apply right now, in one line; None when it does."""
        command = BY_ACTION.get(action)
        if action == "toggle_inventory" or command is None or not command.needs_job:
            return None
        job = self.selected_job
        if job is None:
            return f"no job selected: {self.key_for('new-job')} launches one"
        name = clean(job.name)
        if action == "open_log":
            return None if job.last is not None else f"{name} has not run yet: it has no log"
        if job.history and action != "results":
            return f"{name} is from an earlier run and is read-only: {self.key_for('new-job')} launches it again"
        if action == "answer_prompt":
            return None if job.prompt is not None else f"{name} is {job.status.value}: it is not waiting for input"
        if command.applies_to is not None and job.status not in command.applies_to:
            return f"{name} is {job.status.value}: {WHY_NOT[action]}"
        if action in SCHEDULED_ONLY and job.schedule is None:
            return f"{name} has no schedule: {WHY_NOT[action]}"
        if action == "retry_failed" and not job.results.failed_hosts():
            return (
                f"{name} has no failed or unreachable hosts in its last attempt: "
                f"{self.key_for('retry-job')} retries all of it"
            )
        return None

    def applies(self: PlaydeckApp, action: str) -> bool:
        """For the footer: shown as applicable, or dimmed after `not now:`."""
        return self.why_not(action) is None

    def footer_label(self: PlaydeckApp, action: str, default: str) -> str:
        if action == "toggle_inventory":
            return "Hide hosts" if self.query_one(InventoryPane).display else "Show hosts"
        if action == "pause_schedule":
            job = self.selected_job
            return "Resume" if job is not None and (job.schedule or {}).get("paused") else default
        return default

    def check_action(self: PlaydeckApp, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Every key reaches its action (which says why when it does not apply): never silently ignored."""
        return True

    def _job_for(self: PlaydeckApp, action: str) -> Job | None:
        """The selected job if `action` applies to it; else says why (one line) and gives None."""
        reason = self.why_not(action)
        if reason is not None:
            self.say(reason, severity="warning", timeout=4)
            return None
        return self.selected_job

    def _act(self: PlaydeckApp, call: Callable[[RemoteEngine], Awaitable[Any]], job: Job | None = None) -> None:
        """Send a request without waiting for it: keys stay quick on a slow server; the answer
        shows when the server's delta arrives (a refusal, at once, in one line)."""

        async def send() -> None:
            await self.remote_call(call)
            if job is not None:
                self._dirty.add(job.id)

        self.run_worker(send, group="request", exit_on_error=False)

    # -- the job commands -------------------------------------------------------
    def action_cancel_job(self: PlaydeckApp) -> None:
        job = self._job_for("cancel_job")
        if job is not None:
            self._act(lambda engine: engine.cancel(job), job)

    def action_retry_job(self: PlaydeckApp) -> None:
        job = self._job_for("retry_job")
        if job is not None:
            self._confirm_protected(job, "retried", lambda yes: self._act(lambda e: e.retry(job, yes=yes), job))

    def action_retry_failed(self: PlaydeckApp) -> None:
        job = self._job_for("retry_failed")
        if job is not None:
            self._confirm_protected(job, "retried", lambda yes: self._act(lambda e: e.retry(job, True, yes), job))

    def action_pause_schedule(self: PlaydeckApp) -> None:
        """One key both ways: a paused schedule resumes (from its next cron time), else it pauses."""
        job = self._job_for("pause_schedule")
        if job is None:
            return
        if (job.schedule or {}).get("paused"):
            self._act(lambda engine: engine.resume(job), job)
        else:
            self._act(lambda engine: engine.pause(job), job)

    def action_run_now(self: PlaydeckApp) -> None:
        job = self._job_for("run_now")
        if job is not None:
            self._confirm_protected(job, "run", lambda yes: self._act(lambda e: e.run_now(job, yes), job))

    def action_set_timeout(self: PlaydeckApp) -> None:
        job = self._job_for("set_timeout")
        if job is None:
            return
        current = format_duration(job.timeout_remaining() if job.status is Status.RUNNING else job.timeout)
        current = "none" if current == "-" else current + (" left" if job.status is Status.RUNNING else "")

        def apply(seconds: float | None) -> None:
            if seconds is not None:
                self._act(lambda engine: engine.set_timeout(job, seconds or None), job)

        self.push_screen(TimeoutDialog(clean(job.name), current), apply)

    def action_results(self: PlaydeckApp) -> None:
        job = self._job_for("results")
        if job is not None:
            self._open_results(job)

    @work(exclusive=True, group="results", exit_on_error=False)
    async def _open_results(self: PlaydeckApp, job: Job) -> None:
        """The task results live on the server: fetched when asked for, not streamed."""
        found = await self.remote_call(lambda engine: engine.results(job))
        if found is not None:
            tasks, dropped = found
            self.push_screen(ResultsScreen(job, tasks, dropped))

    # -- the log ----------------------------------------------------------------
    def action_wrap_log(self: PlaydeckApp) -> None:
        wrapped = self.query_one(LogView).toggle_wrap()
        self.say("log: long lines wrap" if wrapped else "log: long lines do not wrap (Left/Right scroll)", timeout=2)

    def action_open_log(self: PlaydeckApp) -> None:
        job = self._job_for("open_log")
        if job is None or job.last is None:
            return
        path = job.last.log
        if not Path(path).is_file():
            self.say(f"{clean(job.name)}: its log is not on disk: {clean(path)}", severity="warning")
            return
        pager = os.environ.get("PAGER", "").strip() or DEFAULT_PAGER
        try:
            argv = shlex.split(pager)
        except ValueError as exc:
            self.say(f"PAGER={clean(pager)} cannot be split into a command: {exc}", severity="error")
            return
        self._page(argv or shlex.split(DEFAULT_PAGER), Path(path))

    @work(exclusive=True, group="pager", exit_on_error=False)
    async def _page(self: PlaydeckApp, argv: list[str], path: Path) -> None:
        """The pager owns the terminal until it exits; jobs, timeouts and cancels go on meanwhile.

        Nothing is drawn while it runs (the console's writer is stopped: a draw would block).
        """
        error: str | None = None
        self._paging = True
        try:
            with self.batch_update(), self.suspend():
                try:
                    process = await asyncio.create_subprocess_exec(*argv, str(path))
                    code = await process.wait()
                except OSError as exc:
                    error = f"cannot run the pager {clean(argv[0])}: {exc.strerror or exc}"
                else:
                    if code != 0:
                        error = f"the pager {clean(argv[0])} exited with status {code}"
        except SuspendNotSupported:
            error = "the pager needs a real terminal"
        finally:
            self._paging = False
        if error is not None:
            self.say(error, severity="error")

    # -- the inventory pane -------------------------------------------------------
    def action_focus_inventory(self: PlaydeckApp) -> None:
        pane = self.query_one(InventoryPane)
        if not pane.display:
            self._show_inventory(True)
        self.query_one(HostTree).focus()

    def action_toggle_inventory(self: PlaydeckApp) -> None:
        pane = self.query_one(InventoryPane)
        self._show_inventory(not pane.display)

    def _show_inventory(self: PlaydeckApp, shown: bool) -> None:
        pane = self.query_one(InventoryPane)
        if not shown and self.focused is not None and pane in self.focused.ancestors_with_self:
            self.action_focus_grid()
        pane.display = shown
        self.query_one(KeyBar).refresh()

    # -- prompts ------------------------------------------------------------
    def action_answer_prompt(self) -> None:
        job = self._job_for("answer_prompt")  # None unless it waits at a prompt
        if job is None or job.prompt is None:
            return
        prompt = job.prompt

        def answer(text: str | None) -> None:
            if text is None:
                return  # Esc: the job keeps waiting
            if job.prompt is None:
                self.say(f"{job.name} no longer waits for input: the answer was not sent", severity="warning")
                return
            self._act(lambda engine: engine.answer_prompt(job, text), job)

        self.push_screen(PromptDialog(clean(job.name), clean(prompt.text), prompt.kind, prompt.private), answer)

    # -- launching ------------------------------------------------------------
    def action_new_job(self) -> None:
        limit = self.query_one(InventoryPane).limit()
        self.push_screen(NewJobDialog(self._playbooks(), limit, self.nodes), self._launch)

    def action_adhoc(self) -> None:
        self.push_screen(AdhocDialog(self.query_one(InventoryPane).limit(), self.nodes), self._launch)

    def _launch(self, request: LaunchRequest | None) -> None:
        if request is None:
            return
        if self.inventory_path is None:
            self.say("no inventory to run against: start with -i INVENTORY", severity="error")
            return
        base = request.playbook.stem if request.playbook else adhoc_name(request.module, request.module_args)
        names = {j.name for j in self.jobs}
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        self._send_launch(request.spec(name, self.inventory_path), request.secrets)

    @work(group="launch", exit_on_error=False)
    async def _send_launch(self: PlaydeckApp, spec: Any, secrets: dict[str, str], yes: bool = False) -> None:
        """Submitted with the server's preflight; the new job is selected once the mirror has it.
        A launch onto protected hosts is refused (409) until the operator types the job's name."""

        async def add(engine: RemoteEngine) -> int | ServerError:
            try:
                return await engine.add(spec, secrets=secrets, yes=yes, protect=self.protect)
            except ServerError as exc:
                if exc.protected and not yes:
                    return exc
                raise

        answer = await self.remote_call(add, severity="error")
        if isinstance(answer, ServerError):
            hosts = sorted({host for found in answer.protected.values() for host in found})

            def confirmed(typed: bool | None) -> None:
                if typed:
                    self._send_launch(spec, secrets, yes=True)
                else:
                    self.say(f"{clean(spec.name)} was not launched (protected hosts)", severity="warning")

            self.push_screen(ConfirmNameDialog(spec.name, hosts), confirmed)
        elif isinstance(answer, int):
            self.select_when_seen = answer
            self._added = True

    def _playbooks(self) -> list[Path]:
        found: dict[str, Path] = {}
        for playbook in self.initial_playbooks:
            found.setdefault(str(playbook), playbook)
        for directory in self.playbook_dirs:
            for path in sorted(directory.glob("*.y*ml")):
                if path.suffix in (".yml", ".yaml") and _looks_like_playbook(path):
                    found.setdefault(str(path), path)
        return sorted(found.values(), key=lambda p: p.name)


def adhoc_name(module: str | None, args: str | None) -> str:
    """`adhoc-shell-uptime`: the module and the command it ran (its first word only: arguments
    can hold secrets), as a short slug."""
    words = [(module or "command").rsplit(".", 1)[-1]]
    first = (args or "").split(None, 1)[0] if (args or "").strip() else ""
    if "=" in first:  # key=value arguments (service name=nginx): the value says what
        first = first.split("=", 1)[1]
    if first:
        words.append(first.rstrip("/").rsplit("/", 1)[-1])
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")[:40].rstrip("-")
    return f"adhoc-{slug or 'command'}"


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
