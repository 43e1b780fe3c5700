"""Host locks: two `lock: hosts` jobs never run on one host at once.

A locking job holds every host it targets (resolved by the preflight with Ansible's own
inventory manager: `JobSpec.resolved_hosts`) while it runs, from its start until it stops
running (it ended, or waits to retry). It takes all of them at once or none, so no two jobs
each hold a part of what the other needs: never a deadlock. A job that cannot take its hosts
waits as `blocked`, its message naming one host and the job holding it.

Fairness: the engine asks in start order (priority, then file order) on every pass; a job
that waits keeps its hosts reserved for the rest of that pass, so a later job sharing one of
them does not overtake it (a big job is not starved by a stream of small ones).
Jobs without `lock` ignore locks entirely, as they always did.
"""

from __future__ import annotations

from typing import Protocol

from tui.core.planning.spec import JobSpec
from tui.core.sanitize import strip_sgr


class Locker(Protocol):
    """What locks need of a job: who it is (for messages) and what it targets."""

    id: int
    spec: JobSpec

    @property
    def name(self) -> str: ...


class UnresolvedLock(ValueError):
    """A `lock: hosts` job whose hosts are unknown (no preflight ran): it would lock nothing."""


def check_resolved(specs: list[JobSpec]) -> None:
    """Refuse locking jobs without resolved hosts, naming them: locking "the limit string" would
    not see two patterns that name one host, so a lock without hosts is not offered."""
    missing = [spec.name for spec in specs if spec.lock == "hosts" and spec.resolved_hosts is None]
    if missing:
        raise UnresolvedLock(
            f"{', '.join(repr(n) for n in missing)}: lock: hosts needs the hosts resolved by the "
            "preflight (Ansible's inventory check), which was skipped"
        )


class HostLocks:
    """Which job holds which host, and which jobs wait for one (blocked by a lock, not a chain)."""

    def __init__(self) -> None:
        self.holders: dict[str, Locker] = {}
        self.waiting: set[int] = set()  # job ids blocked by a lock; the engine looks at them again
        self._wanted: dict[str, Locker] = {}  # this pass: hosts a job earlier in start order waits for

    def new_pass(self) -> None:
        """A scheduling pass starts: nothing is reserved yet."""
        self._wanted = {}

    def is_waiting(self, job: Locker) -> bool:
        return job.id in self.waiting

    def take(self, job: Locker) -> str | None:
        """Take all of `job`'s hosts (None), or none of them: then why not, for its message.
        A job without `lock` always gets through."""
        if job.spec.lock != "hosts":
            return None
        hosts = job.spec.resolved_hosts or ()
        why = self._conflict(job, hosts)
        if why is not None:
            for host in hosts:
                self._wanted.setdefault(host, job)
            self.waiting.add(job.id)
            return why
        for host in hosts:
            self.holders[host] = job
        self.waiting.discard(job.id)
        return None

    def _conflict(self, job: Locker, hosts: tuple[str, ...]) -> str | None:
        for host in hosts:
            holder = self.holders.get(host)
            if holder is not None and holder is not job:
                return f"waiting for host {strip_sgr(host)} (locked by {strip_sgr(holder.name)})"
        for host in hosts:
            first = self._wanted.get(host)
            if first is not None and first is not job:
                return f"waiting for host {strip_sgr(host)} ({strip_sgr(first.name)} waits for it first)"
        return None

    def release(self, job: Locker) -> None:
        """The job stopped running: its hosts are free (the caller schedules again)."""
        for host in [h for h, holder in self.holders.items() if holder is job]:
            del self.holders[host]

    def forget(self, job: Locker) -> None:
        """The job no longer waits for a lock (it started, ended, or was canceled)."""
        self.waiting.discard(job.id)

    def held_by(self, job: Locker) -> list[str]:
        return [host for host, holder in self.holders.items() if holder is job]
