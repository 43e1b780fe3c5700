"""Cron schedules in the server: one engine job per schedule, fired again at each cron time.

A scheduled job rests as `scheduled` (its message the next run, with the zone); a fire runs
it again through the engine (`Engine.fire`: its retries and timeout, its circuit kept, so an
open circuit stops the schedule). What a fire does while the previous run still goes is the
job's `overlap`; what a restarted server does about fires missed while none ran is its
`catch_up`. The newest fire handled per schedule is persisted (schedules.json in the state
dir, written atomically) before the run starts, so a restart never fires a time twice.
The decisions are tui/core/scheduling/cron.py's; this module only keeps time and state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tui.core.engine import BUSY, Engine, EngineError
from tui.core.job import Job
from tui.core.planning.spec import Status
from tui.core.scheduling import cron
from tui.core.storage.history import write_json
from tui.server.wire import SCHEDULED

log = logging.getLogger(__name__)
FILE = "schedules.json"
Clock = Callable[[], datetime]
Missed = Callable[[Job, datetime, str], None]  # a fire that did not run: the alerts' schedule-missed


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Entry:
    job: Job
    cron: cron.Cron
    next_at: datetime | None
    paused: bool = False
    pending: bool = False  # a fire held back by overlap queue/cancel: it runs when the run ends
    seen: Status = Status.SCHEDULED  # the status last seen, to tell a run's end from a cancel at rest


def _key(job: Job) -> str:
    """One persisted record per name, expression and zone: a changed schedule starts afresh."""
    return f"{job.name}\t{job.spec.schedule}\t{job.spec.timezone or ''}"


class Schedules:
    """The server's schedules; every method runs on the loop's thread."""

    def __init__(self, engine: Engine, state_dir: Path, clock: Clock = utc_now):
        self.engine = engine
        self.path = state_dir / FILE
        self.clock = clock
        self.entries: dict[int, Entry] = {}  # by job id
        self.handled = self._load()  # key -> {"handled": iso, "last_fire": iso | None}
        self.stopped = False
        self.on_missed: Missed | None = None
        self._wake = asyncio.Event()
        engine.subscribe(self._on_change)

    # -- persistence ----------------------------------------------------------
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or damaged: every schedule starts afresh (no catch-up, no double fire after now)
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def _mark(self, entry: Entry, when: datetime, fired: bool) -> None:
        record = self.handled.setdefault(_key(entry.job), {})
        record["handled"] = when.isoformat()
        if fired:
            record["last_fire"] = when.isoformat()

    def _persist(self, entry: Entry, when: datetime, fired: bool) -> None:
        self._mark(entry, when, fired)
        self._write()

    def _write(self) -> None:
        try:
            write_json(self.path, self.handled)
        except OSError as exc:
            log.warning("schedules not saved: %s", exc)

    def _save_paused(self, entry: Entry) -> None:
        """A pause outlives a restart: a schedule stopped during an incident stays stopped."""
        self.handled.setdefault(_key(entry.job), {})["paused"] = entry.paused
        self._write()

    def _handled(self, job: Job) -> datetime | None:
        raw = self.handled.get(_key(job), {}).get("handled")
        try:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None

    # -- registering ----------------------------------------------------------
    def register(self, jobs: list[Job]) -> None:
        """The scheduled ones of a submission: catch up (once, if missed and asked for) or rest."""
        now = self.clock()
        catch_ups: list[tuple[Entry, datetime]] = []
        resting: list[Entry] = []
        for job in jobs:
            if job.spec.schedule is None:
                continue
            schedule = cron.cron(job.spec.schedule, job.spec.timezone)
            last = self._handled(job)
            missed = cron.catch_up(schedule, job.spec.catch_up, last, now)
            owed = cron.catch_up(schedule, "once", last, now)  # whatever the policy, was one missed?
            if missed is None and owed is not None:
                self._missed(job, owed, "missed while no server ran (catch_up: skip)")
            paused = self.handled.get(_key(job), {}).get("paused") is True
            if paused:
                missed = None  # a paused schedule owes nothing; resume starts from its next time
            entry = Entry(job, schedule, cron.first_due(schedule, missed or last, now), paused=paused)
            self.entries[job.id] = entry
            if missed is not None:
                catch_ups.append((entry, missed))
                self._mark(entry, missed, fired=True)
            else:
                self._mark(entry, max(last, now) if last else now, fired=False)  # nothing before now is owed
                resting.append(entry)
        if catch_ups or resting:
            self._write()  # once for the whole submission, before any of it runs
        for entry in resting:
            self._rest(entry)
        for entry, missed in catch_ups:
            self._fire(entry, missed, "catch-up", persisted=True)
        if catch_ups:
            self.engine.start_queued()
        self._wake.set()

    def active(self) -> bool:
        return bool(self.entries)

    # -- the clock --------------------------------------------------------------
    async def run(self) -> None:
        """Sleep until the earliest next fire (or a change), then fire what is due."""
        while not self.stopped:
            self._wake.clear()
            due = [e.next_at for e in self.entries.values() if e.next_at is not None and not e.paused]
            delay = None if not due else max(0.0, min(due).timestamp() - time.time())
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            if not self.stopped:
                self.tick(self.clock())

    def tick(self, now: datetime) -> None:
        """Everything due fires in one batch: one write of the persisted times before any runs,
        and one scheduling pass after (1,000 schedules on one minute: one write, not 1,000)."""
        due: list[tuple[Entry, datetime]] = []
        for entry in list(self.entries.values()):
            if entry.paused or entry.next_at is None or entry.next_at > now or entry.job.circuit_open:
                continue
            when = entry.next_at
            entry.next_at = entry.cron.next_after(max(when, now))  # a suspended host does not fire a burst
            action = cron.overlap(entry.job.spec.overlap, entry.job.status in BUSY)
            if action == cron.FIRE:
                due.append((entry, when))
                continue
            self._persist(entry, when, fired=False)
            self.engine.record(f"schedule-{action}", entry.job, at=when.isoformat(), status=entry.job.status.value)
            if action == "skip":
                self._missed(entry.job, when, "the previous run was still going (overlap: skip)")
            if action != "skip":
                entry.pending = True
            if action == "cancel":
                self.engine.cancel(entry.job)
        if due:
            for entry, when in due:
                self._mark(entry, when, fired=True)
            self._write()
            for entry, when in due:
                self._fire(entry, when, "schedule", persisted=True)
            self.engine.start_queued()

    def _missed(self, job: Job, when: datetime, why: str) -> None:
        if self.on_missed is not None:
            self.on_missed(job, when, why)

    def _fire(self, entry: Entry, when: datetime, why: str, persisted: bool = False) -> None:
        job = entry.job
        if not persisted:
            self._persist(entry, when, fired=True)  # before it runs: a crash now must not fire it again
        late = round((self.clock() - when).total_seconds(), 3)
        self.engine.record("schedule-fire", job, at=when.isoformat(), late=late, reason=why)
        try:
            self.engine.fire(job, schedule=not persisted)
        except EngineError as exc:  # an open circuit, or a history job
            self.engine.record("schedule-refused", job, at=when.isoformat(), why=str(exc))

    # -- the job's changes ----------------------------------------------------
    def _on_change(self, job: Job, what: str) -> None:
        entry = self.entries.get(job.id)
        if what != "status" or entry is None or entry.job is not job or self.stopped:
            return
        before, entry.seen = entry.seen, job.status
        if not job.status.finished:
            self._publish(entry)
            return
        if before is Status.SCHEDULED:  # canceled at rest: the schedule ends
            del self.entries[job.id]
            SCHEDULED.pop((job.run, job.id), None)
            return
        if job.circuit_open:  # the breaker stops the schedule; an operator's retry restarts it
            entry.pending = False
            entry.next_at = None
            self._publish(entry)
            return
        asyncio.get_running_loop().call_soon(self._after_run, entry)  # not inside the engine's own notify

    def _after_run(self, entry: Entry) -> None:
        if self.stopped or self.entries.get(entry.job.id) is not entry or not entry.job.status.finished:
            return
        if entry.pending:
            entry.pending = False
            self._fire(entry, self.clock(), "overlap")
            return
        if entry.next_at is None:
            entry.next_at = cron.first_due(entry.cron, self._handled(entry.job), self.clock())
            self._wake.set()
        self._rest(entry)

    def _rest(self, entry: Entry) -> None:
        job = entry.job
        last = "" if not job.attempts else f"; last run {job.status.value}"
        if entry.paused:
            message = f"paused (cron {job.spec.schedule}, {entry.cron.zone_name}){last}"
        else:
            message = f"next run {cron.describe(entry.next_at, entry.cron)}{last}"
        self._publish(entry)
        self.engine.rest(job, message)

    def _publish(self, entry: Entry) -> None:
        """What the JOB objects carry (tui/server/wire.py): next_run and the schedule."""
        when = None if entry.paused or entry.job.circuit_open or entry.next_at is None else entry.next_at
        SCHEDULED[(entry.job.run, entry.job.id)] = {
            "cron": entry.job.spec.schedule,
            "timezone": entry.cron.zone_name,
            "paused": entry.paused,
            "next_run": when.isoformat() if when is not None else None,
        }

    # -- operator actions -----------------------------------------------------
    def entry(self, job: Job) -> Entry:
        entry = self.entries.get(job.id)
        if entry is None or entry.job is not job:
            raise EngineError(f"{job.name} has no schedule on this server")
        return entry

    def pause(self, job: Job) -> None:
        entry = self.entry(job)
        if entry.paused:
            raise EngineError(f"{job.name}'s schedule is already paused")
        entry.paused = True
        self._save_paused(entry)
        self.engine.record("pause", job, cron=job.spec.schedule)
        self._changed(entry)

    def resume(self, job: Job) -> None:
        """Fires missed while paused are not made up: the next one is after now."""
        entry = self.entry(job)
        if not entry.paused:
            raise EngineError(f"{job.name}'s schedule is not paused")
        entry.paused = False
        now = self.clock()
        entry.next_at = cron.first_due(entry.cron, None, now)
        self.engine.record("resume", job, cron=job.spec.schedule, next_run=entry.next_at.isoformat())
        self._mark(entry, now, fired=False)
        self._save_paused(entry)  # one write for both
        self._changed(entry)

    def run_now(self, job: Job) -> None:
        """One run now, outside the cron times (the schedule's own times are unchanged)."""
        entry = self.entry(job)
        if job.status in BUSY:
            raise EngineError(f"{job.name} is {job.status}: it is already running")
        if job.circuit_open:
            raise EngineError(f"{job.name}'s circuit is open: retry it to close it")
        self.engine.record("run-now", job, cron=job.spec.schedule)
        self.engine.fire(job)  # EngineError if its circuit is open
        self._publish(entry)

    def _changed(self, entry: Entry) -> None:
        if entry.job.status is Status.SCHEDULED:
            self._rest(entry)
        else:
            self._publish(entry)
        self._wake.set()

    def drop(self, job: Job) -> None:
        """The schedule is gone from the config (a reload): no further fire. A run in progress
        goes on to its end; a job resting until its next time ends canceled."""
        entry = self.entries.pop(job.id, None)
        if entry is None:
            return
        SCHEDULED.pop((job.run, job.id), None)
        self.engine.record("schedule-removed", job, cron=job.spec.schedule)
        if job.status is Status.SCHEDULED:
            self.engine.cancel(job)

    def stop(self) -> None:
        """The server is stopping: no more fires; the engine cancels the resting jobs."""
        self.stopped = True
        self._wake.set()
        for job_id, entry in self.entries.items():
            SCHEDULED.pop((entry.job.run, job_id), None)
