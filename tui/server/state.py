"""The server's state: its engine, its event hub, when it was last busy, and how it stops."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tui import __version__
from tui.core.engine import Engine
from tui.core.job import Job
from tui.core.storage.history import load_history, prune
from tui.server.clients import Hub
from tui.server.schedules import Schedules
from tui.server.warm import Spares

KEEP_RUNS = 50  # the console's history defaults (tui/console/config.py)
KEEP_DAYS = 30.0
SHOW_HISTORY = 50


class Server:
    """Owns the engine exactly as the console does: nice 10, prompts kept for a client to answer."""

    def __init__(self, socket: Path, state_dir: Path | None, max_parallel: int, idle_exit: float):
        self.socket = socket
        self.idle_exit = idle_exit
        self.engine = Engine(state_dir, max_parallel=max_parallel, job_nice=10, prompts="ask")
        self.hub = Hub(lambda: self.engine.jobs)
        self.schedules = Schedules(self.engine, self.engine.state_dir)  # before the hub: a delta shows next_run
        self.engine.subscribe(self.hub.on_change)
        self.started = datetime.now().astimezone()
        self.busy_at = time.monotonic()
        self.streams = 0  # open log streams count as clients for the idle exit
        self.stopping = asyncio.Event()
        self.spares = Spares()  # preflight workers with Ansible imported, from the first submission on
        self.stop_reason = ""

    def restore_history(self) -> list[str]:
        """Earlier runs' jobs, read-only; those a dead server or console ran come back interrupted."""
        state = self.engine.state_dir
        prune(state, KEEP_RUNS, KEEP_DAYS, self.engine.run_id)
        records = load_history(state, self.engine.run_id, limit=SHOW_HISTORY)
        interrupted = []
        for record in reversed(records):  # oldest first, so ids grow with time
            try:
                job = self.engine.restore(record)
            except (KeyError, ValueError, TypeError):
                continue  # a damaged record is skipped; the rest still show
            if job.status.value == "interrupted":
                interrupted.append(job.name)
        return interrupted

    def unfinished(self) -> list[Job]:
        return [job for job in self.engine.jobs if not job.history and not job.status.finished]

    def find(self, name: str) -> Job | None:
        """The job a name means: this server's own (newest) before an earlier run's."""
        found = [job for job in self.engine.jobs if job.name == name]
        own = [job for job in found if not job.history]
        pick = own or found
        return pick[-1] if pick else None

    def by_id(self, number: int) -> Job | None:
        """A job by its id (its place in the engine's list), history or not."""
        jobs = self.engine.jobs
        if 0 <= number < len(jobs) and jobs[number].id == number:
            return jobs[number]
        return next((job for job in jobs if job.id == number), None)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "socket": str(self.socket),
            "version": __version__,
            "started": self.started.isoformat(timespec="seconds"),
            "jobs": {
                "total": len(self.engine.jobs),
                "unfinished": len(self.unfinished()),
            },
            "clients": len(self.hub.clients),
            "idle_exit": self.idle_exit,
            "queues": [client.info() for client in self.hub.clients],
            "max_parallel": self.engine.max_parallel,
            "state_dir": str(self.engine.state_dir),
            "run": self.engine.run_id,
        }

    def stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    async def idle_watch(self) -> None:
        """Exit after `idle_exit` seconds with no unfinished job, no schedule and no client."""
        while not self.stopping.is_set():
            await asyncio.sleep(min(1.0, max(0.1, self.idle_exit / 4)))
            if self.unfinished() or self.schedules.active() or self.hub.clients or self.streams:
                self.busy_at = time.monotonic()
            elif self.idle_exit > 0 and time.monotonic() - self.busy_at >= self.idle_exit:
                self.stop("idle")
