"""Jobs as history left them on disk, read without writing anything.

`tui.core.storage.history.load_history` rewrites the record of a job whose run died
(as `interrupted`); a report must not touch the files of a server that may be
running, so this reads the same records and only computes that status.
Failure reasons are not in `job.json`: they come from each attempt's `events.jsonl`,
the way the results view builds them (`tui.core.running.results.failure_message`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.running.results import failure_message
from tui.core.running.supervisor import item_reasons
from tui.core.sanitize import sanitize, strip_sgr
from tui.core.storage.history import UNFINISHED, owner_alive

#: Final statuses an incident report calls failed.
PROBLEM = ("failed", "timeout", "error", "interrupted")
REASON_CHARS = 400  # a first line is what goes into a ticket; the log has the rest
_FAIL_EVENTS = ("runner_on_failed", "runner_on_unreachable")


def when(value: Any) -> datetime | None:
    """An ISO time from a record, aware (naive ones are local); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def clean(value: Any) -> str:
    """Untrusted text as one plain line: controls made visible, colours dropped, no line breaks."""
    text = strip_sgr(str(value if value is not None else ""))
    return " ".join(text.split())


def first_line(value: Any) -> str:
    """The first non-empty line, plain, clipped: what an operator reads first."""
    for line in strip_sgr(str(value or "")).splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"
    return ""


@dataclass(frozen=True)
class HostFailure:
    """One host that failed (or was unreachable) in one attempt, and why."""

    host: str
    attempt: int
    kind: str  # failed | unreachable
    task: str
    reason: str
    log: str


@dataclass(frozen=True)
class AttemptInfo:
    number: int
    status: str
    rc: int | None
    limit: str | None
    started: datetime | None
    ended: datetime | None
    log: str  # for people (cleaned)
    error: str
    hosts: dict[str, dict[str, int]]
    directory: str = ""  # as recorded, for reading its events

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    def failed_hosts(self) -> list[tuple[str, str]]:
        """(host, failed|unreachable) by the record's counts: the engine's rule (rescued does not count)."""
        found = []
        for host, counts in self.hosts.items():
            if counts.get("failed"):
                found.append((host, "failed"))
            elif counts.get("unreachable"):
                found.append((host, "unreachable"))
        return found


@dataclass
class JobInfo:
    """One job of one run, with its attempts and the reasons its hosts failed."""

    run: str
    name: str
    status: str
    message: str
    target: str
    retries: int
    attempts: list[AttemptInfo]
    failures: list[HostFailure] = field(default_factory=list)
    updated: datetime | None = None  # job.json's mtime: the only time a job that never started has

    @property
    def started(self) -> datetime | None:
        return self.attempts[0].started if self.attempts else None

    @property
    def ended(self) -> datetime | None:
        return self.attempts[-1].ended if self.attempts and self.status not in UNFINISHED else None

    @property
    def duration(self) -> float | None:
        """First start to last end: what the job cost in wall time, retries and backoff included."""
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    @property
    def last_seen(self) -> datetime | None:
        times = [t for a in self.attempts for t in (a.started, a.ended) if t is not None]
        if self.updated is not None:
            times.append(self.updated)
        return max(times) if times else None

    @property
    def problem(self) -> bool:
        return self.status in PROBLEM

    @property
    def log(self) -> str:
        return self.attempts[-1].log if self.attempts else ""

    def totals(self) -> dict[str, int]:
        """The last attempt's per-host counts summed, as the grid shows them."""
        total = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
        if self.attempts:
            for counts in self.attempts[-1].hosts.values():
                for key in total:
                    value = counts.get(key, 0)
                    total[key] += value if isinstance(value, int) else 0
        return total


@dataclass(frozen=True)
class RunInfo:
    """A run directory: one engine (a server, or one `playdeck run`) and the process that owned it."""

    id: str
    path: Path
    pid: int | None
    started: datetime | None
    alive: bool


def read_runs(state: Path) -> list[RunInfo]:
    """Every run directory, oldest first (run ids sort by time)."""
    runs_dir = state / "runs"
    if not runs_dir.is_dir():
        return []
    runs = []
    for path in sorted(runs_dir.iterdir()):
        if not path.is_dir():
            continue
        try:
            info = json.loads((path / "owner.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict):
            info = {}
        pid = info.get("pid")
        runs.append(
            RunInfo(
                id=path.name,
                path=path,
                pid=pid if isinstance(pid, int) else None,
                started=when(info.get("started")),
                alive=owner_alive(info),
            )
        )
    return runs


def read_jobs(run: RunInfo, notes: list[str]) -> list[JobInfo]:
    """The jobs of one run; a record that cannot be read is noted, never fatal."""
    jobs = []
    for path in sorted(run.path.glob("*/job.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            updated = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        except (OSError, ValueError) as exc:
            notes.append(f"{path}: not read ({exc.__class__.__name__})")
            continue
        if isinstance(record, dict):
            jobs.append(job_info(record, run, updated))
    return jobs


def job_info(record: dict[str, Any], run: RunInfo, updated: datetime | None = None) -> JobInfo:
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    attempts = [_attempt(a) for a in record.get("attempts") or [] if isinstance(a, dict)]
    status = str(record.get("status") or "interrupted")
    message = str(record.get("message") or "")
    if status in UNFINISHED and not run.alive:  # as load_history shows it, without rewriting the file
        message = f"playdeck stopped while this job was {status}; its output up to then is in the log"
        status = "interrupted"
        if attempts and attempts[-1].ended is None:
            attempts[-1] = replace(attempts[-1], status="interrupted", ended=_log_time(attempts[-1]) or updated)
    retries = spec.get("retries") if isinstance(spec, dict) else 0
    job = JobInfo(
        run=clean(record.get("run") or run.id),
        name=clean(record.get("name")),
        status=clean(status),
        message=first_line(message),
        target=clean((spec or {}).get("target") or (spec or {}).get("module") or ""),
        retries=retries if isinstance(retries, int) else 0,
        attempts=attempts,
        updated=updated,
    )
    for attempt in attempts:
        if attempt.failed_hosts():
            job.failures.extend(attempt_failures(attempt))
    return job


def _attempt(data: dict[str, Any]) -> AttemptInfo:
    directory = str(data.get("directory") or "")
    hosts = data.get("hosts") if isinstance(data.get("hosts"), dict) else {}
    rc = data.get("rc")
    number = data.get("number")
    return AttemptInfo(
        number=number if isinstance(number, int) else 0,
        status=clean(data.get("status") or "interrupted"),
        rc=rc if isinstance(rc, int) else None,
        limit=clean(data["limit"]) if data.get("limit") else None,
        started=when(data.get("started")),
        ended=when(data.get("ended")),
        log=clean(os.path.join(directory, "output.log")) if directory else "",
        error=first_line(data.get("error")),
        hosts={str(h): c for h, c in (hosts or {}).items() if isinstance(c, dict)},
        directory=directory,
    )


def _log_time(attempt: AttemptInfo) -> datetime | None:
    """When an interrupted attempt last wrote its log: as close to its end as the disk knows."""
    if not attempt.directory:
        return None
    try:
        return datetime.fromtimestamp(os.stat(Path(attempt.directory) / "output.log").st_mtime).astimezone()
    except (OSError, ValueError):
        return None


def attempt_failures(attempt: AttemptInfo) -> list[HostFailure]:
    """Each failed host of an attempt with the task and first reason line of its last failure event."""
    wanted = dict(attempt.failed_hosts())
    seen: dict[str, tuple[str, str]] = {}
    try:
        if not attempt.directory:
            raise FileNotFoundError(attempt.directory)
        with open(Path(attempt.directory) / "events.jsonl", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not any(name in line for name in _FAIL_EVENTS):
                    continue  # most events are not failures: skip them without parsing
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line still being written by a running attempt
                if not isinstance(event, dict) or event.get("event") not in _FAIL_EVENTS:
                    continue
                data = event.get("event_data") or {}
                if not isinstance(data, dict) or data.get("ignore_errors"):
                    continue
                host = sanitize(str(data.get("host") or ""))  # the engine keys hosts by this name
                seen[host] = (clean(data.get("task")), _reason(data.get("res")))
    except OSError:
        pass
    failures = []
    for host, kind in wanted.items():
        task, reason = seen.get(host, ("", ""))
        failures.append(HostFailure(clean(host), attempt.number, kind, task, reason, attempt.log))
    return failures


def _reason(res: Any) -> str:
    """failure_message's first line; for a loop, its summary and the first failed item's reason."""
    if not isinstance(res, dict):
        return ""
    items = res.get("item_msgs") or item_reasons(res.get("results"))
    if not items:
        return first_line(failure_message(res))
    summary = first_line(failure_message({k: v for k, v in res.items() if k != "item_msgs"}))
    first = first_line(items[0])
    if summary in ("", "All items completed"):
        return first
    return first_line(f"{summary}: {first}")
