"""The server's config, kept current: loaded at start, reloaded on change and on SIGHUP.

A reload is all or nothing. The new file is read and checked first (tui/core/config.py),
with every schedules file it names; then the one step that can still fail (binding the
metrics address) is tried; only then does anything else change. A refused config leaves
the last good one in force and says why in the server log and in every attached console
(a standing notice, also shown to consoles that attach later, until a good reload).
Running jobs are never touched by a reload: a removed schedule only stops firing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.config import config_path, load_server_config
from tui.core.job import Job
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.nodes import Node
from tui.core.planning.spec import JobSpec

if TYPE_CHECKING:
    from tui.server.state import Server

log = logging.getLogger(__name__)
Files = dict[Path, tuple[list[JobSpec], tuple[str, ...]]]  # a schedules file: its jobs and protect:
NOTICE_KEY = "config"


@dataclass
class Loaded:
    """One schedules file as submitted: its specs (to tell a change) and the jobs made of them."""

    specs: list[JobSpec]
    protect: tuple[str, ...]
    jobs: list[Job]


class ConfigKeeper:
    """Owns `server.config`; every method runs on the loop's thread."""

    def __init__(self, server: Server, path: Path | None = None):
        self.server = server
        self.path = (path or config_path()).expanduser().absolute()
        self.files: dict[Path, Loaded] = {}
        self.reloads = 0  # good reloads applied (for tests and status)
        self._lock = asyncio.Lock()

    async def reload(self, why: str) -> bool:
        """Read, check and apply the file; False (and the old config kept) when it is refused."""
        async with self._lock:
            try:
                config = await asyncio.to_thread(load_server_config, self.path)
                files = await asyncio.to_thread(load_files, config.schedules, config.nodes)
            except InputError as exc:
                self._refuse(str(exc), why)
                return False
            try:
                await self.server.apply_config(config)
            except OSError as exc:  # the metrics address is taken: nothing changed
                self._refuse(f"{self.path}: metrics_listen: {exc}", why)
                return False
            self.apply_schedules(files)
            self.reloads += 1
            self.server.hub.clear(NOTICE_KEY)
            self.server.hub.config_reloaded(str(self.path))
            self.server.engine.record("config-reload", None, path=str(self.path), reason=why)
            log.info("config-reload", extra={"fields": {"path": str(self.path), "reason": why}})
            return True

    def _refuse(self, problem: str, why: str) -> None:
        text = f"config not reloaded, the last good one stays in force: {problem}"
        self.server.engine.record("config-refused", None, path=str(self.path), reason=why, problem=problem)
        self.server.notice(text, standing=NOTICE_KEY)

    def apply_schedules(self, files: Files) -> None:
        """Files gone or changed: their schedules stop (a run in progress ends on its own);
        files new or changed: their jobs are submitted, as `playdeck submit` would."""
        for path in list(self.files):
            new = files.get(path)
            if new is None or new[0] != self.files[path].specs:
                for job in self.files.pop(path).jobs:
                    self.server.schedules.drop(job)
        for path, (specs, protect) in files.items():
            if path in self.files:
                continue
            try:
                jobs = self.server.submit_config_jobs(specs, protect, path)
            except Exception as exc:  # a name clash with a job already there: said, the rest go on
                log.warning("schedules file %s not submitted: %s", path, exc)
                self.server.notice(f"schedules file {path} not submitted: {exc}")
                continue
            self.files[path] = Loaded(specs, protect, jobs)

    async def watch(self) -> None:
        """Reload when the file changes (editors replace it: the directory is watched)."""
        from watchfiles import awatch  # noqa: PLC0415 - only the server needs it

        directory = self.path.parent
        while not self.server.stopping.is_set():
            if not directory.is_dir():
                await asyncio.sleep(2.0)  # no config dir yet: look again later
                continue
            try:
                async for changes in awatch(directory, stop_event=self.server.stopping, debounce=200, recursive=False):
                    if any(Path(changed).absolute() == self.path for _, changed in changes):
                        await self.reload("file changed")
            except (OSError, RuntimeError) as exc:
                log.warning("config watch stopped (%s); SIGHUP still reloads", exc)
                return


def load_files(paths: tuple[Path, ...], nodes: Mapping[str, Node] | None = None) -> Files:
    """Every schedules file checked before any is applied: one bad file refuses the reload."""
    out: Files = {}
    problems = []
    for path in paths:
        try:
            job_file = load_job_file(path, nodes)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        out[path] = (job_file.jobs, job_file.protect)
    if problems:
        raise InputError(problems)
    return out
