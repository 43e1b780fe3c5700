"""Cron schedules, pure: parsing, the next fire, the catch-up and overlap decisions.

No clock is read here except `local_zone`'s look at the system: every decision takes
"now" as an argument, so tests pass fixed clocks (DST transitions included). The
library is cronsim, which follows Debian cron's DST rules: a run a forward jump skips
runs at once after it, and a fixed-time run is not doubled by a fall-back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from tui.core.planning.spec import CATCH_UPS, OVERLAPS

FIELDS = 5  # minute hour day-of-month month day-of-week; no seconds, no @-words
FIRE = "fire"


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why (one line)."""


@dataclass(frozen=True)
class Cron:
    """One schedule: its expression and the zone its times are read in."""

    expr: str
    zone_name: str  # an IANA name, or "UTC" / the local zone's name
    zone: tzinfo

    def next_after(self, moment: datetime) -> datetime:
        """The first fire strictly after `moment` (aware), in the schedule's zone."""
        return next(CronSim(self.expr, moment.astimezone(self.zone)))

    def last_until(self, moment: datetime) -> datetime | None:
        """The newest fire at or before `moment` (None if cronsim finds none)."""
        start = (moment + timedelta(seconds=1)).astimezone(self.zone).replace(microsecond=0)
        when = next(CronSim(self.expr, start, reverse=True), None)  # strictly before `start`
        return when if when is not None and when <= moment else None


def check_expr(expr: str) -> str:
    """A 5-field cron expression, as written; CronError saying what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        raise CronError("a cron expression is a non-empty string")
    if len(expr.split()) != FIELDS:
        raise CronError(f"a cron expression has {FIELDS} fields (minute hour day month weekday), got {expr!r}")
    try:
        CronSim(expr, datetime(2026, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        raise CronError(f"{exc} in {expr!r}") from None
    return expr


def check_zone(name: str) -> ZoneInfo:
    """An IANA zone by name; CronError if the system's zone database does not know it."""
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in name:
        raise CronError(f"not an IANA time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (an IANA name like Europe/Berlin or UTC)") from None


def local_zone() -> tuple[str, tzinfo]:
    """The server's local zone as an IANA zone when it can be named ($TZ, /etc/timezone,
    /etc/localtime's link), so DST applies; else UTC."""
    names = [os.environ.get("TZ", "").lstrip(":")]
    try:
        names.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        link = os.readlink("/etc/localtime")
        names.append(link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "")
    except OSError:
        pass
    for name in names:
        if name:
            try:
                return name, check_zone(name)
            except CronError:
                continue
    return "UTC", timezone.utc


def cron(expr: str, zone_name: str | None) -> Cron:
    """A schedule from a job's `schedule` and `timezone` (None: the local zone)."""
    check_expr(expr)
    if zone_name is None:
        name, zone = local_zone()
        return Cron(expr, name, zone)
    return Cron(expr, zone_name, check_zone(zone_name))


def catch_up(schedule: Cron, policy: str, last_fire: datetime | None, now: datetime) -> datetime | None:
    """The missed fire to run at once on registration, if any: with `once`, the newest fire after
    the persisted `last_fire` and at or before `now` (one run however many were missed). With
    `skip`, or nothing persisted (never registered: nothing was missed), or nothing missed: None."""
    if policy not in CATCH_UPS:
        raise ValueError(f"catch_up must be one of {CATCH_UPS}")
    if policy == "skip" or last_fire is None:
        return None
    missed = schedule.last_until(now)
    return missed if missed is not None and missed > last_fire else None


def first_due(schedule: Cron, last_fire: datetime | None, now: datetime) -> datetime:
    """The next fire to wait for: after now, and after the persisted last fire, so a restarted
    server never fires a time it already fired (even with a clock that stepped back)."""
    after = now if last_fire is None or last_fire < now else last_fire
    return schedule.next_after(after)


def overlap(policy: str, running: bool) -> str:
    """What a fire does: "fire" (nothing running), else the policy: "skip" this fire, "queue" it
    until the running one ends, or "cancel" the running one and fire when it has ended."""
    if policy not in OVERLAPS:
        raise ValueError(f"overlap must be one of {OVERLAPS}")
    return FIRE if not running else policy


def describe(when: datetime | None, schedule: Cron) -> str:
    """A next run for people: local time of the schedule's zone, with the zone's name."""
    if when is None:
        return "no next run"
    return f"{when.astimezone(schedule.zone).strftime('%Y-%m-%d %H:%M')} {schedule.zone_name}"
