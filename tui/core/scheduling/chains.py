"""Chains: which jobs may start, which wait, which are skipped; and the order queued jobs start in.

A child lists its parents as (name, condition). It waits while a parent has not ended; it
runs once every parent has ended and every condition holds; as soon as one condition can no
longer hold it is skipped, naming that parent. A skipped parent skips its children whatever
their condition: it never ran, so nothing ran "after" it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence, TypeVar

from tui.core.planning.spec import Status

SUCCESS = frozenset({Status.SUCCESSFUL})
#: `failure` covers every unsuccessful end, as AWX counts error and cancel as failure.
FAILURE = frozenset({Status.FAILED, Status.TIMEOUT, Status.ERROR, Status.CANCELED, Status.INTERRUPTED})

RUN, WAIT, SKIP = "run", "wait", "skip"


@dataclass(frozen=True)
class Verdict:
    """What a child does now: RUN, WAIT (status blocked) or SKIP; `message` says why, for people."""

    action: str
    message: str = ""


def holds(condition: str, status: Status) -> bool:
    """Whether a parent that ended with `status` lets a child with `condition` run."""
    if condition == "always":
        return status in SUCCESS or status in FAILURE
    if condition == "failure":
        return status in FAILURE
    return status in SUCCESS


def verdict(parents: Sequence[tuple[str, str, Status]]) -> Verdict:
    """The verdict for a child whose parents are (name, condition, current status)."""
    waiting: list[str] = []
    for name, condition, status in parents:
        if status is Status.SKIPPED:
            return Verdict(SKIP, f"skipped: {name} was skipped")
        if not status.finished:
            waiting.append(name)  # names only: a parent's status would go stale in the message
        elif not holds(condition, status):
            return Verdict(SKIP, f"skipped: {name} ended {status.value} (runs only on its {condition})")
    if waiting:
        return Verdict(WAIT, f"waiting for {', '.join(waiting)}")
    return Verdict(RUN)


class Queued(Protocol):
    id: int

    @property
    def priority(self) -> int: ...


Q = TypeVar("Q", bound=Queued)


def start_order(queued: Iterable[Q]) -> list[Q]:
    """Higher priority first; ties in the order the jobs were added (file order)."""
    return sorted(queued, key=lambda job: (-job.priority, job.id))


def cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of `graph` (name -> parent names) as [a, b, ..., a], or None. Iterative: deep
    chains must not hit Python's recursion limit. Names missing from the graph are leaves."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(graph[root])]
        state[root] = 1
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(parent) == 1:
                return path[path.index(parent) :] + [parent]
            elif not state.get(parent) and parent in graph:
                state[parent] = 1
                path.append(parent)
                stack.append(iter(graph[parent]))
    return None


def parents_first(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """The names of an acyclic `graph` in an order where every parent comes before its children,
    otherwise keeping the given order (a child moves only as far as behind its last parent).
    O(n log n): Kahn's algorithm with a heap of positions."""
    position = {name: i for i, name in enumerate(graph)}
    waiting = {name: sum(1 for p in set(parents) if p in graph) for name, parents in graph.items()}
    children: dict[str, list[str]] = {name: [] for name in graph}
    for name, parents in graph.items():
        for parent in set(parents):
            if parent in children:
                children[parent].append(name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(graph)
    out: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        out.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    if len(out) != len(graph):
        raise ValueError("the graph has a cycle")
    return out
