"""Jobs as the protocol's JSON (JOB objects) and the frames that carry them.

Built from the engine's Job objects on the loop's thread, serialised once per
frame and shared by every client, so a hundred clients cost one encode.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tui.core.job import Job
from tui.core.running.results import HostCounts
from tui.core.sanitize import sanitize
from tui.core.summary import job_summary

#: Scheduled jobs' live schedule, by (run, job id), kept by tui/server/schedules.py:
#: {"cron", "timezone", "paused", "next_run": iso | None}. Absent: the job has no schedule.
SCHEDULED: dict[tuple[str, int], dict[str, Any]] = {}

COUNTS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")


def _totals(hosts: dict[str, HostCounts]) -> dict[str, int]:
    totals = dict.fromkeys(COUNTS, 0)
    for counts in hosts.values():
        for key in COUNTS:
            totals[key] += getattr(counts, key)
    return totals


def job_dict(job: Job) -> dict[str, Any]:
    """One JOB object of the protocol (see notes/protocol.md)."""
    last = job.last
    results = job.results
    prompt = job.prompt
    left = job.timeout_remaining()
    # a running attempt's timeout as counted from its start (a re-timeout moves it); else the next one's
    timeout = (job.elapsed() or 0.0) + left if left is not None else job.timeout
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status.value,
        "message": job.message,
        "attempt": len(job.attempts),
        "limit": job.limit,
        "target": job.spec.target,
        "node": job.spec.node.name if job.spec.node is not None else None,  # where it runs; None: here
        "totals": _totals(results.hosts),
        "hosts": {host: counts.as_dict() for host, counts in results.hosts.items()},
        "task": results.task,
        "play": results.play,
        "elapsed": job.elapsed(),
        "timeout": timeout,
        "timeout_left": job.timeout_remaining(),
        "retry_in": max(0.0, job.retry_at - time.monotonic()) if job.retry_at is not None else None,
        "history": job.history,
        "run": job.run,
        "protected": list(job.protected) if job.protected is not None else None,
        "prompt": None
        if prompt is None
        else {
            "kind": prompt.kind,
            "text": prompt.text,
            "varname": prompt.varname,
            "private": prompt.private,
        },
        "log": str(last.log) if last is not None else None,
        "started": last.started.isoformat() if last is not None else None,
        "events": str(last.events_log) if last is not None else None,
        "dropped": results.dropped,
        "ended": last.ended.isoformat() if last is not None and last.ended is not None else None,
        "last_limit": last.limit if last is not None else None,
        "number": last.number if last is not None else 0,
        "circuit_open": job.circuit_open,
        "priority": job.spec.priority,
        "after": [[name, condition] for name, condition in job.spec.after],
        **schedule_keys(job),
    }


def schedule_keys(job: Job) -> dict[str, Any]:
    """ "next_run" (iso, or null: none, paused, circuit open) and "schedule" ({cron, timezone, paused} or null)."""
    live = SCHEDULED.get((job.run, job.id))
    if live is None:
        return {"next_run": None, "schedule": None}
    return {"next_run": live["next_run"], "schedule": {k: live[k] for k in ("cron", "timezone", "paused")}}


def results_dict(job: Job) -> dict[str, Any]:
    """The last attempt's task results for the results screen; host text sanitized again here
    (a history job's tracker was read back from disk)."""
    last = job.last
    results = job.results
    return {
        "tasks": [
            {
                "host": sanitize(task.host),
                "task": sanitize(task.task),
                "play": sanitize(task.play),
                "outcome": sanitize(task.outcome),
                "message": sanitize(task.message),
            }
            for task in results.tasks
        ],
        "dropped": results.dropped,
        "events": str(last.events_log) if last is not None else None,
    }


def summary_dict(job: Job) -> dict[str, Any]:
    """`playdeck run --json`'s entry for a job, plus the server's id and history flag."""
    return {**job_summary(job), "id": job.id, "history": job.history, **schedule_keys(job)}


def frame(kind: str, seq: int, jobs: list[Job], notices: list[dict[str, str]] | None = None) -> str:
    message: dict[str, Any] = {"t": kind, "seq": seq, "jobs": [job_dict(job) for job in jobs]}
    if notices:
        message["notices"] = notices  # a snapshot carries the server's standing notices (a bad config)
    return json.dumps(message, default=str)


def notice_frame(text: str, level: str) -> str:
    """A one-line message for every attached console (shown once), e.g. an alert that failed."""
    return json.dumps({"t": "notice", "text": sanitize(text), "level": level})


def log_frame(job: Job, lines: list[str], total: int) -> str:
    return json.dumps(
        {
            "t": "log",
            "job": job.name,
            "id": job.id,
            "lines": [sanitize(line) for line in lines],
            "total": total,
        }
    )
