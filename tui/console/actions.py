"""What the console's keys do (to the selected job, the log, the panes, launches, prompts,
quitting and detaching), why a key does not apply when it does not, and what a hangup does.

Job commands are requests to the server (`RemoteEngine`); the server's refusal is said in one
line. Quitting never has to stop a job: `d` (and a hangup) detach, and the jobs go on.

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
import signal
import sys
import termios
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from rich.console import RenderableType
from textual import work
from textual.app import SuspendNotSupported

from tui.client.connection import ServerError
from tui.client.remote import RemoteEngine
from tui.client.remote import RemoteJob as Job
from tui.console.commands import BY_ACTION, BY_ID, key_label
from tui.console.screens.confirm_name import ConfirmNameDialog
from tui.console.screens.launch import AdhocDialog, LaunchRequest, NewJobDialog
from tui.console.screens.prompt import PromptDialog
from tui.console.screens.quit import QuitDialog
from tui.console.screens.results import ResultsScreen
from tui.console.screens.timeout import TimeoutDialog
from tui.console.widgets.inventory_pane import HostTree, InventoryPane
from tui.console.widgets.key_bar import KeyBar
from tui.console.widgets.log_view import LogView
from tui.core.durations import format_duration
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr
from tui.core.storage.paths import ensure_private_dir

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp

DEFAULT_PAGER = "less -R"
HANGUP_EXIT = 128 + signal.SIGHUP  # the shell's convention for "ended by SIGHUP"
HANGUP_DEADLINE = 5.0  # seconds: after a hangup the console ends by then, whatever is stuck
STOP_WAIT = 15.0  # seconds `y` at the quit question waits for the stopped jobs to end
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

    def _confirm_protected(self: PlaydeckApp, job: Job, what: str, send: Callable[[bool], None]) -> None:
        """A job whose submission touched protected hosts asks again before it runs again: the
        operator types its name (the server refuses without that, and audits either way)."""
        if job.protected is None:
            send(False)
            return

        def confirmed(typed: bool | None) -> None:
            if typed:
                send(True)
            else:
                self.say(f"{clean(job.name)} was not {what} (protected hosts)", severity="warning")

        self.push_screen(ConfirmNameDialog(job.name, list(job.protected) or ["(not resolved)"]), confirmed)

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

    def action_incident_report(self: PlaydeckApp) -> None:
        """The last 24 hours as `playdeck report` writes them, into the server's state dir
        (reports/, 0600); the toast gives the path to paste from."""
        status = getattr(self.session, "status", None) or {}
        state = status.get("state_dir")
        if not isinstance(state, str) or not state:
            self.say("no report: not attached to a server", severity="warning")
            return
        self._write_report(Path(state))

    @work(group="report", exit_on_error=False, thread=True)
    def _write_report(self: PlaydeckApp, state: Path) -> None:
        from tui.core.reporting import build_report, render  # noqa: PLC0415 - only when asked
        from tui.report_cli import write_atomic  # noqa: PLC0415

        try:
            report = build_report(state, datetime.now().astimezone() - timedelta(hours=24), None)
            path = state / "reports" / f"incident-{datetime.now():%Y%m%d-%H%M%S}.md"
            ensure_private_dir(path.parent)
            write_atomic(path, render(report, "md"))
        except (OSError, ValueError) as exc:
            self.call_from_thread(self.say, f"the report was not written: {exc}", severity="error")
            return
        self.call_from_thread(self.say, f"incident report written: {path}", title="report", timeout=15)

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

    # -- quitting, detaching and hanging up ----------------------------------------
    def action_quit_console(self: PlaydeckApp) -> None:
        """No unfinished job: quit. Else ask: y stops them and quits, d detaches, Esc stays."""
        running = self.engine.unfinished() if self.engine is not None else []
        if not running:
            self.action_detach()
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self._stop_all_and_exit()
            elif choice == "detach":
                self.action_detach()

        self.push_screen(QuitDialog(len(running)), answer)

    def action_detach(self: PlaydeckApp) -> None:
        """Leave: the jobs go on under the server; any console (or `playdeck ls`) finds them."""
        self._detached = True
        self.run_worker(self._leave, group="quit", exclusive=True, exit_on_error=False)

    async def _leave(self: PlaydeckApp) -> None:
        """Close the connection first, so the server hears (and audits) the detach at once."""
        try:
            if self.session is not None:
                await asyncio.wait_for(self.session.close(), 2.0)
        except (TimeoutError, OSError):
            pass
        finally:
            self.exit(0)

    @work(exclusive=True, group="quit")
    async def _stop_all_and_exit(self: PlaydeckApp) -> None:
        """Cancel every unfinished job, wait (a while) until the server says they ended, then go."""
        self._quitting = True
        engine = self.engine
        if engine is None:
            self.exit(0)
            return
        jobs = engine.unfinished()
        self.say(f"stopping {len(jobs)} job(s)…", timeout=10)
        for job in reversed(jobs):  # children before parents: a canceled parent must not start a child
            await self.remote_call(lambda engine, job=job: engine.cancel(job))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT
        while engine.unfinished() and loop.time() < deadline and (self.session is None or self.session.attached):
            await asyncio.sleep(0.1)
        self._detached = True
        await self._leave()

    async def action_quit(self: PlaydeckApp) -> None:
        self.action_quit_console()

    def _watch_hangup(self: PlaydeckApp) -> None:
        if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
            return  # started under nohup: the user asked for hangups to be ignored
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no signals
            pass

    def _hangup(self: PlaydeckApp) -> None:
        """The terminal is gone: detach (the jobs go on under the server) and exit non-zero.

        Nothing may wait on the terminal now: drawing stops at once (a write to a dead
        terminal fails, and the writer's queue would then block the loop), and a watchdog
        ends the process if closing the connection gets stuck anyway.
        """
        if self._hung_up:
            return
        self._hung_up = self._quitting = self._detached = True
        self.batch_update().__enter__()  # Textual draws nothing while a batch is open: this one stays open
        watchdog = threading.Timer(HANGUP_DEADLINE, os._exit, (HANGUP_EXIT,))
        watchdog.daemon = True
        watchdog.start()
        self.run_worker(self._close_after_hangup(), group="hangup", exclusive=True, exit_on_error=False)

    def panic(self, *renderables: RenderableType) -> None:
        """The input thread panics when the terminal it reads is hung up: that is a hangup too
        (whichever of it and SIGHUP comes first), never a reason to leave the jobs behind."""
        if self._hung_up:
            return
        if not self.is_headless and _terminal_gone():
            self._hangup()
            return
        super().panic(*renderables)

    async def _close_after_hangup(self: PlaydeckApp) -> None:
        """Detach cleanly (the server audits it), then out at once: Textual's own shutdown restores
        the terminal, and with no terminal left its writer's queue blocks it (seen: forever)."""
        try:
            if self.session is not None:
                await asyncio.wait_for(self.session.close(), 2.0)
        finally:
            os._exit(HANGUP_EXIT)


def _terminal_gone() -> bool:
    try:
        termios.tcgetattr(sys.__stdin__.fileno())
    except (termios.error, OSError, ValueError, AttributeError):
        return True
    return False


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
