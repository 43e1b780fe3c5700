"""The server's state: its engine, its event hub, when it was last busy, and how it stops."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tui import __version__
from tui.core.config import ServerConfig
from tui.core.engine import Engine
from tui.core.job import Job
from tui.core.planning.spec import JobSpec
from tui.core.storage.history import load_history, prune
from tui.server.alerts import Alerts
from tui.server.clients import Hub
from tui.server.metrics import Metrics
from tui.server.reload import ConfigKeeper
from tui.server.schedules import Schedules
from tui.server.warm import Spares

log = logging.getLogger(__name__)

KEEP_RUNS = 50  # the console's history defaults (tui/console/config.py)
KEEP_DAYS = 30.0
SHOW_HISTORY = 50


class Server:
    """Owns the engine exactly as the console does: nice 10, prompts kept for a client to answer."""

    def __init__(
        self,
        socket: Path,
        state_dir: Path | None,
        max_parallel: int,
        idle_exit: float,
        config_file: Path | None = None,
    ):
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
        self.config = ServerConfig()  # the defaults until start() applies the file
        self.max_parallel_given = False  # --max-parallel given: the config's does not override it
        self.keeper = ConfigKeeper(self, config_file)
        self.metrics = Metrics(self)
        self.alerts = Alerts(self)
        self.engine.subscribe(self.metrics.on_change)
        self.engine.subscribe(self.alerts.on_change)
        self.schedules.on_missed = self.alerts.schedule_missed

    # -- config -----------------------------------------------------------------
    async def apply_config(self, config: ServerConfig) -> None:
        """A checked config takes effect; raises OSError (nothing changed) if its metrics
        address cannot be bound. Running jobs go on as they are."""
        await self.metrics.apply(config.metrics_listen)
        self.alerts.configure(config.notify)
        if (
            not self.max_parallel_given
            and config.max_parallel is not None
            and config.max_parallel != self.engine.max_parallel
        ):
            self.engine.set_max_parallel(config.max_parallel)
        self.config = config

    def submit_config_jobs(self, specs: list[JobSpec], protect: tuple[str, ...], path: Path) -> list[Job]:
        """A config's schedules file, submitted as its owner's (no preflight: no one to confirm
        protected hosts at 3 a.m., so a file that names any is refused here)."""
        if protect or self.config.protect:
            raise ValueError("a schedules file in the config cannot touch protected hosts (submit it yourself)")
        jobs = self.place(specs)
        self.engine.record("submit", None, jobfile=str(path), jobs=[job.name for job in jobs], by="config")
        return jobs

    def place(
        self,
        specs: list[JobSpec],
        secrets: dict[str, str] | None = None,
        protected: dict[str, list[str]] | None = None,
    ) -> list[Job]:
        """A checked submission into the engine, all or none (EngineError): queued before any
        starts, so priorities and chains apply across the batch; `protected`: the protected hosts
        each job's confirmed submission touched (its retries and run-now ask again); the scheduled
        ones rest until their time (or catch up once)."""
        jobs = self.engine.add_all(specs, secrets=secrets)
        for job in jobs:
            if protected and job.name in protected:
                job.protected = tuple(protected[job.name])
        self.schedules.register(jobs)
        return jobs

    def notice(self, text: str, level: str = "warning", standing: str | None = None) -> None:
        """One line for every attached console (a standing one also for those attaching later)."""
        log.warning("notice: %s", text)
        self.hub.notice(text, level, standing)

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
            "config": str(self.keeper.path),
            "config_problem": (self.hub.standing.get("config") or {}).get("text"),
            "metrics": "{}:{}".format(*self.config.metrics_listen) if self.config.metrics_listen else None,
            "notify": [target.redacted() for target in self.config.notify],
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
