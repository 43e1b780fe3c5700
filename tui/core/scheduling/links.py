"""Chains over live Job objects: binding `after` names to jobs, and moving children along.

The engine calls these when jobs are added, end or are retried; every rule itself is in
`chains.py`. Work is per edge, with a work list instead of recursion, so a long chain
resolves in linear time and never hits the recursion limit.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterable

from tui.core.job import Job
from tui.core.planning.spec import Status
from tui.core.scheduling.chains import RUN, SKIP, WAIT, Verdict, cycle, verdict

SetStatus = Callable[[Job, Status, str], None]


class ChainError(ValueError):
    """An `after` that cannot be bound (an unknown name, itself, a cycle); nothing was added."""


def check_batch(specs_after: dict[str, tuple[tuple[str, str], ...]], known: Callable[[str], bool]) -> None:
    """Every parent named by a batch (name -> its after) is in the batch or `known`; no cycles."""
    for name, after in specs_after.items():
        for parent, _condition in after:
            if parent == name:
                raise ChainError(f"{name}: after: a job cannot run after itself")
            if parent not in specs_after and not known(parent):
                raise ChainError(f"{name}: after: there is no job named {parent!r}")
    found = cycle({name: [p for p, _ in after] for name, after in specs_after.items()})
    if found:
        raise ChainError(f"after: the jobs form a cycle ({' -> '.join(found)})")


def bind(jobs: Iterable[Job], find: Callable[[str], Job | None]) -> None:
    """Link each job to its parents: a job of the same batch first, else `find(name)`."""
    jobs = list(jobs)
    batch = {job.name: job for job in jobs}
    for job in jobs:
        for name, condition in job.spec.after:
            parent = batch.get(name) or find(name)
            if parent is None:  # check_batch ran first: cannot happen
                raise ChainError(f"{job.name}: after: there is no job named {name!r}")
            job.parents.append((parent, condition))
            parent.children.append(job)


def judge(job: Job) -> Verdict:
    """What a child does given its parents' statuses now."""
    return verdict([(parent.name, condition, parent.status) for parent, condition in job.parents])


def first_status(job: Job) -> tuple[Status, str]:
    """A new job's status: queued, or blocked/skipped by its parents."""
    if not job.parents:
        return Status.QUEUED, ""
    found = judge(job)
    if found.action == RUN:
        return Status.QUEUED, ""
    return (Status.BLOCKED if found.action == WAIT else Status.SKIPPED), found.message


def retry_status(job: Job) -> tuple[Status, str]:
    """A manually retried job runs (the operator decides, whatever its conditions), but still
    waits for a parent that has not ended."""
    waiting = [parent.name for parent, _ in job.parents if not parent.status.finished]
    if waiting:
        return Status.BLOCKED, f"waiting for {', '.join(waiting)}"
    return Status.QUEUED, ""


class Releaser:
    """Moves blocked children on when a parent ends: queued, still blocked, or skipped (which
    moves its own children on in turn)."""

    def __init__(self, set_status: SetStatus):
        self._set_status = set_status
        self._pending: deque[Job] = deque()
        self._busy = False

    def parent_ended(self, parent: Job) -> None:
        self._pending.extend(parent.children)
        if self._busy:  # a skip inside the loop below: its children join the work list
            return
        self._busy = True
        try:
            while self._pending:
                child = self._pending.popleft()
                if child.status is not Status.BLOCKED:
                    continue
                found = judge(child)
                if found.action == RUN:
                    self._set_status(child, Status.QUEUED, "")
                elif found.action == SKIP:
                    self._set_status(child, Status.SKIPPED, found.message)
                elif found.message != child.message:
                    self._set_status(child, Status.BLOCKED, found.message)
        finally:
            self._busy = False

    def parent_restarted(self, parent: Job) -> None:
        """A retried parent: its skipped descendants wait again, unless another parent of theirs
        still rules them out."""
        pending = deque(parent.children)
        while pending:
            child = pending.popleft()
            if child.status is not Status.SKIPPED:
                continue
            found = judge(child)
            if found.action == WAIT:
                self._set_status(child, Status.BLOCKED, found.message)
                pending.extend(child.children)
