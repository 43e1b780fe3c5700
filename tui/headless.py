"""`playdeck run`: the engine without a screen, for scripts, CI and cron.

Progress goes to stderr as jobs change state, the summary table to stdout,
and the contract JSON to `--json FILE`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui.core.durations import format_duration
from tui.core.engine import Engine, Job
from tui.core.spec import JobSpec, Status
from tui.core.summary import run_summary

STATUS_STYLE = {
    Status.SUCCESSFUL: "green", Status.FAILED: "red", Status.TIMEOUT: "magenta", Status.CANCELED: "yellow",
    Status.ERROR: "bold red", Status.RUNNING: "cyan", Status.WAITING: "yellow", Status.QUEUED: "dim",
}


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
        # host-derived text is printed as plain text: stderr is a terminal too
        line = f"{time.strftime('%H:%M:%S')}  {job.name:<{self.width}}  {job.status.value:<10}  {detail}".rstrip()
        self.stream.write(_printable(line) + "\n")
        self.stream.flush()


def _printable(text: str) -> str:
    """Drop control characters so nothing a host printed can drive the terminal."""
    return "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in text)


def summary_table(jobs: list[Job]) -> Table:
    table = Table(title="playdeck run", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("status", no_wrap=True)
    for header in ("att.", "ok", "changed", "failed", "unreach.", "elapsed"):
        table.add_column(header, justify="right", no_wrap=True)
    for job in jobs:
        totals = job.results.totals()
        table.add_row(
            Text(job.name), Text(job.status.value, style=STATUS_STYLE.get(job.status, "")),
            str(len(job.attempts)), str(totals.ok), str(totals.changed), str(totals.failed),
            str(totals.unreachable), format_duration(job.elapsed()),
        )
    return table


def problem_lines(jobs: list[Job]) -> list[Text]:
    """Why each unsuccessful job ended as it did, with the log to read next."""
    lines = []
    for job in jobs:
        if job.status is Status.SUCCESSFUL:
            continue
        line = Text(f"{job.name}: ", style="bold")
        line.append(_printable(job.message or job.status.value))
        if job.last is not None:
            line.append(f"\n  log: {job.last.log}", style="dim")
        lines.append(line)
    return lines


async def run_jobs(specs: list[JobSpec], max_parallel: int, state_dir: Path | None) -> Engine:
    engine = Engine(state_dir, max_parallel=max_parallel)
    engine.subscribe(Progress(sys.stderr, max(len(s.name) for s in specs)))
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if not interrupted:
            sys.stderr.write("playdeck: interrupted, canceling every job (its processes are being ended)\n")
            engine.record("interrupt", running=[j.name for j in engine.jobs if not j.status.finished])
        interrupted = True
        for job in engine.jobs:
            if not job.status.finished:
                engine.cancel(job)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal)
    try:
        for spec in specs:
            engine.add(spec)
        await engine.wait_idle()
        await engine.close()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return engine


def run_headless(specs: list[JobSpec], max_parallel: int, json_path: Path | None, state_dir: Path | None) -> int:
    engine = asyncio.run(run_jobs(specs, max_parallel, state_dir))
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(summary_table(engine.jobs))
    for line in problem_lines(engine.jobs):
        console.print(line, soft_wrap=True)
    console.print(Text(f"logs: {engine.state_dir / 'runs' / engine.run_id}", style="dim"))
    if json_path is not None:
        json_path.write_text(json.dumps(run_summary(engine.jobs), indent=2) + "\n", encoding="utf-8")
    return 0 if all(job.status is Status.SUCCESSFUL for job in engine.jobs) else 1
