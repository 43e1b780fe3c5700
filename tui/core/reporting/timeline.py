"""What an incident report says, gathered from the state dir: jobs, failures, and a timeline.

Read only, so it can run beside a live server: job records (`runs/<run>/<job>/job.json`),
each failed attempt's `events.jsonl` for the reasons, and the audit trail for who did
what. Nothing here formats text for a reader; `markdown.py` and `html.py` do, each
escaping for its own format. Every string taken from disk is already one plain line.
"""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tui.core.durations import format_duration
from tui.core.reporting.records import JobInfo, RunInfo, read_jobs, read_runs
from tui.core.reporting.trail import AuditLine, Row, audit_rows, read_audit
from tui.core.storage.history import UNFINISHED

RUN_MARGIN = timedelta(seconds=2)  # owner.json's start has whole seconds; its first lines may precede it


class ReportError(ValueError):
    """The report cannot be made as asked (an unknown run): one line for the user."""


@dataclass
class Report:
    generated: datetime
    host: str
    state_dir: Path
    since: datetime | None
    until: datetime
    run: str | None
    jobs: list[JobInfo]
    timeline: list[Row]
    notes: list[str] = field(default_factory=list)  # what could not be read

    def by_status(self) -> dict[str, int]:
        """Jobs by final (or current) status, most first."""
        return dict(Counter(job.status for job in self.jobs).most_common())

    def failed_jobs(self) -> list[JobInfo]:
        return [job for job in self.jobs if job.problem]

    def failed_hosts(self) -> dict[str, list[str]]:
        """Host -> the jobs it failed in (any attempt), in the order first seen."""
        hosts: dict[str, list[str]] = {}
        for job in self.jobs:
            for failure in job.failures:
                names = hosts.setdefault(failure.host, [])
                if job.name not in names:
                    names.append(job.name)
        return hosts

    def operator_actions(self) -> list[Row]:
        return [row for row in self.timeline if row.kind == "operator"]


def build_report(state_dir: Path | str, since: datetime | None, run: str | None) -> Report:
    """The report for one run (`run`), or for everything active since `since` (None: all history).

    Raises ReportError for a run the state dir does not hold."""
    state = Path(state_dir)
    generated = datetime.now().astimezone()
    notes: list[str] = []
    runs = read_runs(state)
    if since is not None and since.tzinfo is None:
        since = since.astimezone()
    if run is not None:
        chosen = [r for r in runs if r.id == run]
        if not chosen:
            raise ReportError(f"no run {run!r} in {state / 'runs'}")
        since = None
    else:
        chosen = runs
    jobs = [job for r in chosen for job in read_jobs(r, notes)]
    if since is not None:
        jobs = [job for job in jobs if _active_since(job, since)]
    lines = read_audit(state / "audit.jsonl", notes)
    if run is not None:
        lines = _lines_of_run(lines, chosen[0], runs)
    elif since is not None:
        lines = [line for line in lines if line.time >= since]
    rows = audit_rows(lines) + [row for job in jobs for row in job_rows(job)]
    if since is not None:
        rows = [row for row in rows if row.time >= since]
    for index, row in enumerate(rows):
        row.seq = index
    rows.sort(key=lambda row: (row.time, row.seq))
    jobs.sort(key=lambda job: (job.started or job.updated or generated, job.name))
    until = generated
    if run is not None:  # the run's own span; a run still going (its owner alive) ends now
        times = [t for job in jobs for t in (job.started, job.ended) if t is not None] + [r.time for r in rows]
        since = min(times, default=chosen[0].started)
        if not chosen[0].alive and times:
            until = max(times)
    return Report(
        generated=generated,
        host=socket.gethostname(),
        state_dir=state,
        since=since,
        until=until,
        run=run,
        jobs=jobs,
        timeline=rows,
        notes=notes,
    )


def _active_since(job: JobInfo, since: datetime) -> bool:
    """In the window: it did something since then, or it is still going."""
    seen = job.last_seen
    return job.status in UNFINISHED or (seen is not None and seen >= since)


def _lines_of_run(lines: list[AuditLine], run: RunInfo, runs: list[RunInfo]) -> list[AuditLine]:
    """The audit lines the run's process wrote (a server writes its clients' requests too): its pid,
    from its start until a later run of the same pid (a reused pid is another process)."""
    if run.pid is None or run.started is None:
        return []
    start = run.started - RUN_MARGIN
    later = [r.started for r in runs if r.pid == run.pid and r.started is not None and r.started > run.started]
    end = min(later) - RUN_MARGIN if later else None
    return [line for line in lines if line.pid == run.pid and line.time >= start and (end is None or line.time < end)]


def job_rows(job: JobInfo) -> list[Row]:
    """Status changes as the record has them: each attempt's start and end; a final status
    that is not the last attempt's (canceled while waiting to retry) at the record's last write."""
    rows = []
    for attempt in job.attempts:
        if attempt.started is not None:
            detail = f"limit={attempt.limit}" if attempt.limit else ""
            rows.append(Row(attempt.started, job.name, f"running (attempt {attempt.number})", "", detail, "status"))
        if attempt.ended is not None:
            bits = [f"after {format_duration(attempt.duration)}"]
            if attempt.rc is not None:
                bits.append(f"rc={attempt.rc}")
            failed = attempt.failed_hosts()
            if failed:
                bits.append("hosts: " + ", ".join(f"{host} {kind}" for host, kind in failed))
            elif attempt.error:
                bits.append(attempt.error)
            event = f"{attempt.status} (attempt {attempt.number})"
            rows.append(Row(attempt.ended, job.name, event, "", "; ".join(bits), "status"))
    last = job.attempts[-1] if job.attempts else None
    if job.status not in UNFINISHED and job.updated is not None:
        if last is None or last.status != job.status:
            rows.append(Row(job.updated, job.name, job.status, "", job.message, "status"))
    elif last is not None and last.ended is not None and job.status == "waiting":
        rows.append(Row(last.ended, job.name, "waiting to retry", "", job.message, "status"))
    return rows
