"""The server's jobs as a console reads them, and its actions as requests.

The console was written against the engine's `Job` objects; `RemoteJob` offers the same
read-only face (status, results, last attempt, timeout left, log tail) built from the
mirror's JOB dicts, so the widgets render a mirror exactly as they rendered an engine.
It owns no state of its own beyond what the server last said and when it said it: clocks
(elapsed, time left, retry in) move on locally between deltas from that moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.client.connection import Connection
from tui.client.mirror import Job as JobDict
from tui.client.session import Session
from tui.core.job import Prompt
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.results import COUNT_NAMES, HostCounts, ResultTracker, TaskResult
from tui.core.storage.logstore import LogTail

# listener(job, what): what is "added", "status", "prompt" or "progress" (anything else changed)
Listener = Callable[["RemoteJob", str], None]


@dataclass(frozen=True)
class RemoteAttempt:
    """The last attempt as the server described it: where its files are, when it ran."""

    number: int
    limit: str | None
    log: Path
    events_log: Path
    started: datetime


@dataclass(frozen=True)
class Target:
    """What `job.spec.target` gives the grid: the playbook's file name or `module: args`."""

    target: str


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class RemoteJob:
    """One job of the server, read-only; `update` takes the server's newer description."""

    def __init__(self, data: JobDict, tail_lines: int = 2000) -> None:
        self.id = int(data["id"])
        self.tail = LogTail(tail_lines)
        self.data: JobDict = {}
        self.received = 0.0
        self.update(data)

    def update(self, data: JobDict) -> str:
        """Take a newer JOB dict; says what changed the way the engine's listeners hear it."""
        before = self.data
        self.data = data
        self.received = time.monotonic()
        self.status = _status(data.get("status"))
        self.name = str(data.get("name", ""))
        self.message = str(data.get("message") or "")
        self.history = bool(data.get("history"))
        self.run = str(data.get("run") or "")  # the server run it belongs to (earlier ones for history)
        self.limit: str | None = data.get("limit") if isinstance(data.get("limit"), str) else None
        self.spec = Target(str(data.get("target") or ""))
        self.timeout = _number(data.get("timeout"))
        retry_in = _number(data.get("retry_in"))
        self.retry_at = self.received + retry_in if retry_in is not None else None
        self.prompt = _prompt(data.get("prompt"))
        self.results = _results(data)
        self.last = _attempt(data)
        self.next_run = _time(data.get("next_run"))  # None: no schedule, paused, or circuit open
        schedule = data.get("schedule")
        self.schedule: dict[str, Any] | None = schedule if isinstance(schedule, dict) else None
        self.after = _after(data.get("after"))
        node = data.get("node")
        self.node: str | None = node if isinstance(node, str) and node else None  # runs on this execution node
        raw = data.get("protected")
        # the protected hosts its submission confirmed (None: none): a retry or run-now asks again
        self.protected: tuple[str, ...] | None = tuple(str(h) for h in raw) if isinstance(raw, list) else None
        if not before:
            return "added"
        if before.get("status") != data.get("status"):
            return "status"
        if before.get("prompt") != data.get("prompt"):
            return "prompt"
        return "progress"

    @property
    def hosts(self) -> dict[str, HostCounts]:
        return self.results.hosts

    @property
    def attempts(self) -> list[RemoteAttempt]:
        """The server describes the last attempt; the earlier ones are where the run directory's
        layout puts them (`<job>/attempt-N/`), their limits and start times not known here."""
        last = self.last
        if last is None:
            return []
        job_dir = last.log.parent.parent
        earlier = [
            RemoteAttempt(
                n,
                None,
                job_dir / f"attempt-{n}" / last.log.name,
                job_dir / f"attempt-{n}" / last.events_log.name,
                last.started,
            )
            for n in range(1, last.number)
        ]
        return [*earlier, last]

    def _since(self) -> float:
        return time.monotonic() - self.received if self.status is Status.RUNNING else 0.0

    def elapsed(self) -> float | None:
        elapsed = _number(self.data.get("elapsed"))
        return None if elapsed is None else elapsed + self._since()

    def timeout_remaining(self) -> float | None:
        left = _number(self.data.get("timeout_left"))
        if self.status is not Status.RUNNING or left is None:
            return None
        return max(0.0, left - self._since())


def _status(value: Any) -> Status:
    try:
        return Status(value)
    except ValueError:
        return Status.ERROR  # a newer server's word we do not know: shown as a problem, not hidden


def _after(value: Any) -> tuple[tuple[str, str], ...]:
    """The job's parents as (name, condition); a malformed pair (an older or odd server) is left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        (pair[0], pair[1])
        for pair in value
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
    )


def _prompt(value: Any) -> Prompt | None:
    if not isinstance(value, dict):
        return None
    return Prompt(
        kind=str(value.get("kind") or "pause"),
        text=str(value.get("text") or ""),
        varname=value.get("varname") if isinstance(value.get("varname"), str) else None,
        private=bool(value.get("private")),
    )


def _results(data: JobDict) -> ResultTracker:
    hosts: dict[str, HostCounts] = {}
    raw_hosts = data.get("hosts")
    for host, counts in raw_hosts.items() if isinstance(raw_hosts, dict) else ():
        if isinstance(counts, dict):
            hosts[str(host)] = HostCounts(**{n: int(counts.get(n) or 0) for n in COUNT_NAMES})
    dropped = data.get("dropped")
    return ResultTracker(
        hosts=hosts,
        task=str(data.get("task") or ""),
        play=str(data.get("play") or ""),
        dropped=dropped if isinstance(dropped, int) else 0,
    )


def _attempt(data: JobDict) -> RemoteAttempt | None:
    log = data.get("log")
    started = _time(data.get("started"))
    if not isinstance(log, str) or started is None:
        return None
    events = data.get("events")
    number = data.get("number") or data.get("attempt") or 1
    return RemoteAttempt(
        number=int(number),
        limit=data.get("last_limit") if isinstance(data.get("last_limit"), str) else None,
        log=Path(log),
        events_log=Path(events) if isinstance(events, str) else Path(log).with_name("events.jsonl"),
        started=started,
    )


class RemoteEngine:
    """What the console calls instead of an engine: the mirror's jobs, and actions by request.

    Actions are coroutines; a refusal comes back as `tui.client.connection.ServerError` with
    the server's one line for people (the engine's own words).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.status = session.status
        self.by_id: dict[int, RemoteJob] = {}
        self.jobs: list[RemoteJob] = []
        self._listeners: list[Listener] = []
        self._watched: int | None = None
        session.mirror.listen(self._on_jobs)
        session.mirror.listen_logs(self._on_log)
        self._on_jobs("snapshot", list(session.mirror.jobs.values()))

    @property
    def commands(self) -> Connection:
        return self.session.commands

    @property
    def max_parallel(self) -> int | None:
        value = self.status.get("max_parallel")
        return value if isinstance(value, int) else None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _on_jobs(self, kind: str, jobs: list[JobDict]) -> None:
        added = False
        for data in jobs:
            job = self.by_id.get(int(data["id"]))
            if job is None:
                job = self.by_id[int(data["id"])] = RemoteJob(data)
                what = "added"
                added = True
            else:
                what = job.update(data)
            for listener in list(self._listeners):
                listener(job, what)
        if kind == "snapshot":
            gone = set(self.by_id) - {int(d["id"]) for d in jobs}
            for job_id in gone:  # a new server (after a restart) has no such job
                del self.by_id[job_id]
            added = added or bool(gone)
        if added:
            self.jobs = [self.by_id[i] for i in sorted(self.by_id)]

    def _on_log(self, name: str, lines: list[str], total: int, job_id: int | None) -> None:
        job = self.by_id.get(job_id) if job_id is not None else None
        if job is None:
            return
        missed = total - len(lines) - job.tail.total
        if missed > 0 and job.tail.total > 0:  # lines the server dropped for us: say so, never hide it
            job.tail.extend([f"… {missed} lines not received (the link was slow); all are in {job.data.get('log')}"])
            job.tail.total += missed - 1
        elif missed > 0:
            job.tail.total += missed  # the lines before its tail, as with any long log
        job.tail.extend(lines)
        for listener in list(self._listeners):
            listener(job, "log")

    @property
    def watching(self) -> int | None:
        """The id of the job whose log lines come to us."""
        return self._watched

    async def watch(self, job: RemoteJob | None) -> None:
        """Log lines of the selected job only: a hundred streaming jobs cost one."""
        job_id = job.id if job is not None else None
        if job_id == self._watched:
            return
        self._watched = job_id
        if job is not None:  # its tail comes again whole: what streamed meanwhile is in it
            job.tail = LogTail(job.tail.lines.maxlen or 2000)
            self.session.mirror.log_seen.pop(job.id, None)
        await self.session.mirror.watch_ids([] if job_id is None else [job_id])

    # -- actions ----------------------------------------------------------------
    async def cancel(self, job: RemoteJob) -> None:
        await self.commands.cancel(job.name, job_id=job.id)

    async def retry(self, job: RemoteJob, failed_only: bool = False, yes: bool = False) -> None:
        """`yes`: the operator typed the job's name to touch its protected hosts again."""
        await self.commands.retry(job.name, failed_only, job_id=job.id, yes=yes)

    async def set_timeout(self, job: RemoteJob, seconds: float | None) -> None:
        await self.commands.set_timeout(job.name, seconds, job_id=job.id)

    async def answer_prompt(self, job: RemoteJob, text: str) -> None:
        await self.commands.answer(job.name, text, job_id=job.id)

    async def pause(self, job: RemoteJob) -> None:
        await self.commands.pause(job.name, job_id=job.id)

    async def resume(self, job: RemoteJob) -> None:
        await self.commands.resume(job.name, job_id=job.id)

    async def run_now(self, job: RemoteJob, yes: bool = False) -> None:
        await self.commands.run_now(job.name, job_id=job.id, yes=yes)

    async def add(
        self,
        spec: JobSpec,
        secrets: dict[str, str] | None = None,
        *,
        yes: bool = False,
        protect: tuple[str, ...] = (),
    ) -> int:
        """Submit one job (the launch dialogs); its id, once the server accepted it. A job touching
        a `protect`ed host is refused (ServerError 409 with `protected`) unless `yes`."""
        extra: dict[str, Any] = {}
        if protect:
            extra["protect"] = protect
        if yes:
            extra["yes"] = True
        ids = await self.commands.submit_spec(spec, secrets, **extra)
        return ids[0]

    async def results(self, job: RemoteJob) -> tuple[list[TaskResult], int]:
        """The last attempt's task results, for the results view (fetched when it opens)."""
        data = await self.commands.results(job.name, job_id=job.id)
        tasks = []
        for raw in data.get("tasks") or []:
            if isinstance(raw, dict):
                tasks.append(
                    TaskResult(
                        host=str(raw.get("host", "")),
                        task=str(raw.get("task", "")),
                        play=str(raw.get("play", "")),
                        outcome=str(raw.get("outcome", "")),
                        message=str(raw.get("message") or ""),
                    )
                )
        dropped = data.get("dropped")
        return tasks, dropped if isinstance(dropped, int) else 0

    def get(self, name: str) -> RemoteJob | None:
        """The job a name means to the server: its own newest of that name, else an earlier run's."""
        found = [job for job in self.jobs if job.name == name]
        return max(found, key=lambda job: (not job.history, job.id)) if found else None

    def _kin(self, job: RemoteJob) -> dict[str, RemoteJob]:
        """The jobs a chain of `job` can name, newest of each name: the jobs of its own server run
        (the server's own jobs for a job of this run, that earlier run's for a history job)."""
        newest: dict[str, RemoteJob] = {}
        for other in self.jobs:  # sorted by id: a later one of a name replaces an earlier one
            if other.history == job.history and other.run == job.run:
                newest[other.name] = other
        return newest

    def parents_of(self, job: RemoteJob) -> list[tuple[str, str, RemoteJob | None]]:
        """`job`'s parents in its `after` order: (name, condition, the job of that name, or None
        when the mirror has none, e.g. a parent of an earlier run)."""
        if not job.after:  # most jobs: no scan of the mirror (the log title asks on every frame)
            return []
        kin = self._kin(job)
        return [(name, condition, kin.get(name)) for name, condition in job.after]

    def children_of(self, job: RemoteJob) -> list[tuple[RemoteJob, str]]:
        """The jobs that run after `job` (newest of each name, in id order) with the condition
        they wait for. Names, as the server resolves `after`: an earlier job of the same name
        counts as the parent too, since the children name it the same way."""
        return [
            (child, condition)
            for child in sorted(self._kin(job).values(), key=lambda kin: kin.id)
            for name, condition in child.after
            if name == job.name and child.id != job.id
        ]

    def unfinished(self) -> list[RemoteJob]:
        return [job for job in self.jobs if not job.history and not job.status.finished]
