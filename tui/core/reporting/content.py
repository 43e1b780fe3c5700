"""The report's words and tables as plain strings, the same for every format.

Renderers (`markdown.py`, `html.py`) only lay these out and escape every string for
their format, so both formats always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tui.core.durations import format_duration
from tui.core.reporting.timeline import Report

TITLE = "playdeck incident report"


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    empty: str  # said instead of an empty table


def stamp(value: datetime | None) -> str:
    """A time in the reader's zone (the zone is said once, in the window line)."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def zone(report: Report) -> str:
    return report.generated.strftime("UTC%z")


def window(report: Report) -> str:
    span = f"{stamp(report.since) if report.since else 'the oldest record'} to {stamp(report.until)} ({zone(report)})"
    return f"run {report.run}: {span}" if report.run else span


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(report: Report) -> list[tuple[str, str]]:
    """(label, text) pairs for the top of the report: what an on-call reader needs first."""
    statuses = report.by_status()
    jobs = _plural(len(report.jobs), "job")
    if statuses:
        jobs += ": " + ", ".join(f"{count} {status}" for status, count in statuses.items())
    failed = [
        f"{job.name} ({job.status}, {_plural(len(job.attempts), 'attempt')}"
        + (f": {job.message}" if job.message else "")
        + ")"
        for job in report.failed_jobs()
    ]
    hosts = [f"{host} ({', '.join(names)})" for host, names in report.failed_hosts().items()]
    actions = report.operator_actions()
    actors = sorted({row.by.split(" (")[0] for row in actions})
    acted = _plural(len(actions), "operator action")
    if actions:
        acted += " by " + ", ".join(actors)
    retried = [f"{job.name} ({len(job.attempts)})" for job in report.jobs if len(job.attempts) > 1]
    return [
        ("Window", window(report)),
        ("Jobs", jobs),
        ("Failed jobs", "; ".join(failed) or "none"),
        ("Hosts failed", "; ".join(hosts) or "none"),
        ("Retried (attempts)", ", ".join(retried) or "none"),
        ("Operator actions", acted),
        ("Source", f"{report.state_dir} on {report.host}, written {stamp(report.generated)}"),
    ]


def tables(report: Report) -> list[Table]:
    failures = [
        [job.name, f.host, str(f.attempt), f.kind, f.task, f.reason or "(no reason recorded)", f.log]
        for job in report.jobs
        for f in job.failures
    ]
    jobs = [
        [
            job.name,
            job.run,
            job.status,
            f"{len(job.attempts)}" + (f" (retries {job.retries})" if job.retries else ""),
            stamp(job.started) if job.started else "-",
            stamp(job.ended) if job.ended else "-",
            format_duration(job.duration),
            "{ok}/{changed}/{failed}/{unreachable}".format(**job.totals()),
            job.message,
            job.log,
        ]
        for job in report.jobs
    ]
    timeline = [[stamp(row.time), row.job, row.event, row.by, row.detail] for row in report.timeline]
    return [
        Table(
            "Failed hosts",
            ("Job", "Host", "Attempt", "Result", "Task", "Reason", "Log"),
            failures,
            "No host failed.",
        ),
        Table(
            "Jobs",
            ("Job", "Run", "Status", "Attempts", "Started", "Ended", "Duration", "ok/chg/fail/unr", "Message", "Log"),
            jobs,
            "No job in this window.",
        ),
        Table("Timeline", ("Time", "Job", "Event", "By", "Details"), timeline, "Nothing happened in this window."),
    ]
