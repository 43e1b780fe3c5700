"""`playdeck run`: the engine without a screen, for scripts, CI and cron.

Progress goes to stderr as jobs change state, the summary table to stdout,
and the contract JSON to `--json FILE`.

A headless run is often the one left behind when its terminal goes away: a
closed ssh session (SIGHUP, dead stderr), a pipe into `head` (dead stdout), a
`kill` from a supervisor (SIGTERM). Whatever is gone, the jobs are still
canceled, the JSON is still written, and no write error becomes a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui.core.durations import format_duration
from tui.core.engine import Engine, Job
from tui.core.planning.spec import JobSpec, Status
from tui.core.sanitize import strip_sgr
from tui.core.summary import run_summary
from tui.streams import say, silence

STATUS_STYLE = {
    Status.SUCCESSFUL: "green",
    Status.FAILED: "red",
    Status.TIMEOUT: "magenta",
    Status.CANCELED: "yellow",
    Status.ERROR: "bold red",
    Status.RUNNING: "cyan",
    Status.WAITING: "yellow",
    Status.QUEUED: "dim",
    Status.BLOCKED: "dim",
    Status.SKIPPED: "dim",
}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def handled_signals() -> list[signal.Signals]:
    """The signals that end a run: a SIGHUP ignored at start (nohup) stays ignored."""
    return [s for s in SIGNALS if not (s is signal.SIGHUP and signal.getsignal(s) is signal.SIG_IGN)]


def exit_status(signo: int) -> int:
    """What the shell expects of a run ended by `signo`: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + signo


class Progress:
    """One line on stderr per status change, aligned, readable in a CI log."""

    def __init__(self, stream: TextIO, width: int):
        self.stream = stream
        self.width = width

    def __call__(self, job: Job, what: str) -> None:
        if what != "status" or job.status is Status.QUEUED:
            return
        detail = ""
        if job.status is Status.RUNNING and job.last is not None:
            detail = f"attempt {job.last.number}" + (f" · limit {job.last.limit}" if job.last.limit else "")
        elif job.status is not Status.RUNNING:
            detail = job.message
        # job names, limits and messages are untrusted: stderr is a terminal too
        line = f"{time.strftime('%H:%M:%S')}  {plain(job.name):<{self.width}}  {job.status.value:<10}  {plain(detail)}"
        say(self.stream, line.rstrip())


def plain(text: object) -> str:
    """Untrusted text as plain characters: no colour, no control character reaches the terminal."""
    return strip_sgr(str(text))


def summary_table(jobs: list[Job]) -> Table:
    table = Table(title="playdeck run", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("status", no_wrap=True)
    for header in ("att.", "ok", "changed", "failed", "unreach.", "elapsed"):
        table.add_column(header, justify="right", no_wrap=True)
    for job in jobs:
        totals = job.results.totals()
        # every cell a Text: a str cell would be parsed as markup
        table.add_row(
            Text(plain(job.name)),
            Text(job.status.value, style=STATUS_STYLE.get(job.status, "")),
            *(Text(str(n)) for n in (len(job.attempts), totals.ok, totals.changed, totals.failed, totals.unreachable)),
            Text(format_duration(job.elapsed())),
        )
    return table


def problem_lines(jobs: list[Job]) -> list[Text]:
    """Why each unsuccessful job ended as it did, with the log to read next."""
    lines = []
    for job in jobs:
        if job.status is Status.SUCCESSFUL:
            continue
        line = Text(f"{plain(job.name)}: ", style="bold")
        line.append(plain(job.message or job.status.value))
        if job.last is not None:
            line.append(f"\n  log: {plain(job.last.log)}", style="dim")
        lines.append(line)
    return lines


class Interrupt:
    """The signal that ended the run, if any; also takes one that arrived before the loop ran."""

    def __init__(self) -> None:
        self.signo: int | None = None


async def run_jobs(
    specs: list[JobSpec], max_parallel: int, state_dir: Path | None, interrupt: Interrupt | None = None
) -> Engine:
    engine = Engine(state_dir, max_parallel=max_parallel)
    engine.subscribe(Progress(sys.stderr, max(len(plain(s.name)) for s in specs)))
    loop = asyncio.get_running_loop()
    interrupt = interrupt or Interrupt()
    announced = False

    def on_signal(signo: int) -> None:
        """Cancel first, talk after: stderr may be a closed pipe and a failed write must not stop the cancel."""
        nonlocal announced
        if interrupt.signo is None:
            interrupt.signo = signo
        engine.drain()  # a canceled parent must not start its `failure` children now
        running = [j for j in engine.jobs if not j.status.finished]
        for job in running:
            try:
                engine.cancel(job)
            except Exception:  # noqa: BLE001 - one job that cannot be canceled must not spare the others
                pass
        if not announced:
            announced = True
            try:
                engine.record("interrupt", running=[j.name for j in running], signal=signal.Signals(signo).name)
            except Exception:  # noqa: BLE001 - a full disk must not stop the cancel either
                pass
            say(
                sys.stderr,
                f"playdeck: {signal.Signals(signo).name}: interrupted, canceling every job "
                "(its processes are being ended)",
            )

    handled = handled_signals()
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, int(sig))
    try:
        engine.add_all(specs)  # all queued before any starts: priorities apply from the first
        if interrupt.signo is not None:  # arrived while we were starting
            on_signal(interrupt.signo)
        await engine.wait_idle()
        await engine.close()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
            # the run is over: a late signal must not kill the JSON or summary half-written
            signal.signal(sig, signal.SIG_IGN)
    return engine


def write_json(path: Path, engine: Engine) -> str | None:
    """The contract, written before anything is printed; why it could not be, or None."""
    try:
        path.write_text(json.dumps(run_summary(engine.jobs), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


class _Console(Console):
    """Rich exits with status 1 on a broken pipe; here the run's own status must stand."""

    def on_broken_pipe(self) -> None:
        silence(sys.stdout)
        raise BrokenPipeError


def print_summary(engine: Engine) -> None:
    """The table and the reasons on stdout; a closed stdout (`| head`) just gets nothing."""
    try:
        console = _Console(highlight=False, width=None if sys.stdout.isatty() else 120)
        console.print(summary_table(engine.jobs))
        for line in problem_lines(engine.jobs):
            console.print(line, soft_wrap=True)
        console.print(Text(f"logs: {plain(engine.state_dir / 'runs' / engine.run_id)}", style="dim"))
        sys.stdout.flush()
    except (OSError, ValueError):
        silence(sys.stdout)


def run_headless(
    specs: list[JobSpec],
    max_parallel: int,
    json_path: Path | None,
    state_dir: Path | None,
    interrupt: Interrupt | None = None,
) -> int:
    """Exit status: 0 all successful (or skipped: a chain's branch that did not apply), 1 any not,
    2 when --json cannot be written,
    128+signal when a signal ended the run (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    interrupt = interrupt or Interrupt()
    scheduled = [spec.name for spec in specs if spec.schedule is not None]
    if scheduled:  # schedules run only in the server (`playdeck submit`); here each runs once, now
        say(sys.stderr, f"playdeck: schedules run only in the server: running {plain(', '.join(scheduled))} once, now")
        specs = [replace(spec, schedule=None) for spec in specs]
    engine = asyncio.run(run_jobs(specs, max_parallel, state_dir, interrupt))
    problem = write_json(json_path, engine) if json_path is not None else None
    print_summary(engine)
    if problem is not None:
        say(sys.stderr, f"playdeck: --json: {plain(problem)}")
    if interrupt.signo is not None:
        return exit_status(interrupt.signo)
    if problem is not None:
        return 2
    return 0 if all(job.status in (Status.SUCCESSFUL, Status.SKIPPED) for job in engine.jobs) else 1


def latch_signals(interrupt: Interrupt) -> Callable[[], None]:
    """Until the loop takes over, note a signal instead of dying of it; returns the undo."""
    handled = handled_signals()
    previous = {sig: signal.getsignal(sig) for sig in handled}

    def note(signo: int, _frame: object) -> None:
        if interrupt.signo is None:
            interrupt.signo = signo

    for sig in handled:
        signal.signal(sig, note)

    def undo() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return undo
