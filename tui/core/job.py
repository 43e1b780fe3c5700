"""What a job is while it runs: its state, its attempts, and the input it may be waiting for.

The engine (`engine.py`) changes these objects; listeners and the console read them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from tui.core.planning.nodes import Node
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.attempt import Attempt, AttemptProcess, now
from tui.core.running.results import HostCounts, ResultTracker
from tui.core.sanitize import strip_sgr
from tui.core.storage.logstore import LogTail


@dataclass(frozen=True)
class Prompt:
    """A playbook waiting for input (`vars_prompt`, or `pause` without seconds/minutes).

    `text` is the prompt as Ansible shows it, sanitized; `varname` is the variable a
    vars_prompt sets (None for pause); `private` means the answer is not echoed.
    """

    kind: str  # "vars_prompt" | "pause"
    text: str
    varname: str | None = None
    private: bool = False

    def how_to_answer(self) -> str:
        """For an unattended run, which cannot answer: what to change so it does not ask (one line)."""
        text = " ".join(self.text.split())
        if self.kind == "vars_prompt":
            name = self.varname or "VAR"
            return (
                f'waiting for input: vars_prompt "{text}" (variable {name}): pass it as an extra var '
                f"(-e {name}=... / extra_vars: in the job file)"
            )
        return f'waiting for input: pause "{text}"; give the pause a seconds: value or remove it for unattended runs'


@dataclass(eq=False)
class Job:
    id: int
    spec: JobSpec
    status: Status = Status.QUEUED
    attempts: list[Attempt] = field(default_factory=list)
    tail: LogTail = field(default_factory=LogTail)
    timeout: float | None = None  # for the next attempt; a running one has `deadline`
    deadline: float | None = None  # time.monotonic() at which the running attempt times out
    retries_left: int = 0
    next_limit: str | None = None
    retry_at: float | None = None  # time.monotonic() when a waiting job is queued again
    message: str = ""  # why it ended the way it did, for people
    history: bool = False  # read back from an earlier run: shown, never run again from here
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # memory only: never saved or logged
    prompt: Prompt | None = None  # the running attempt waits for this input (prompts="ask")
    dirname: str = ""  # its directory in the run dir: unique per job, though two names may slug alike
    run: str = ""  # the run (engine) it belongs to: an earlier run's for a job read back from history
    # its `after`, bound to the jobs it waits for: (parent, condition); and the jobs waiting for it
    parents: list[tuple[Job, str]] = field(default_factory=list, repr=False)
    children: list[Job] = field(default_factory=list, repr=False)
    failures: int = 0  # failed/timeout attempts in a row, for the circuit breaker
    circuit_open: bool = False  # the breaker stopped its automatic retries; a manual retry closes it
    # protected hosts its submission confirmed (None: none); its retries and run-now ask again
    protected: tuple[str, ...] | None = None
    _failed_prompt: Prompt | None = None  # prompts="fail": why the running attempt is being stopped
    _process: AttemptProcess | None = None
    _timer: asyncio.TimerHandle | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def priority(self) -> int:
        return self.spec.priority

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def results(self) -> ResultTracker:
        last = self.last
        return last.results if last is not None else ResultTracker()

    @property
    def hosts(self) -> dict[str, HostCounts]:
        return self.results.hosts

    @property
    def limit(self) -> str | None:
        """What the job targets now: the running or next attempt's limit."""
        if self.status in (Status.RUNNING,) and self.last is not None:
            return self.last.limit
        return self.next_limit

    def elapsed(self) -> float | None:
        last = self.last
        if last is None:
            return None
        end = last.ended or now()
        return (end - last.started).total_seconds()

    def timeout_remaining(self) -> float | None:
        if self.status is Status.RUNNING and self.deadline is not None:
            return max(0.0, self.deadline - time.monotonic())
        return None


def restored_job(record: dict[str, Any], id: int, tail: LogTail) -> Job:
    """A job of an earlier run, read-only, from its record (tui.core.storage.history)."""
    spec_data = record.get("spec") or {}
    spec = JobSpec(
        name=str(record.get("name")),
        inventory=Path(spec_data.get("inventory") or "."),
        playbook=Path(spec_data["playbook"]) if spec_data.get("playbook") else None,
        limit=spec_data.get("limit"),
        module=spec_data.get("module"),
        module_args=spec_data.get("module_args"),
        timeout=spec_data.get("timeout"),
        node=_restored_node(spec_data.get("node")),
    )
    job = Job(
        id=id,
        spec=spec,
        status=Status(record.get("status", "interrupted")),
        message=str(record.get("message") or ""),
        history=True,
        run=str(record.get("run") or ""),
        next_limit=spec.limit,
        tail=tail,
    )
    for data in record.get("attempts") or []:
        results = ResultTracker(
            hosts={h: HostCounts(**c) for h, c in (data.get("hosts") or {}).items()},
            play=data.get("play") or "",
            task=data.get("task") or "",
        )
        attempt = Attempt(
            number=data["number"],
            limit=data.get("limit"),
            directory=Path(data["directory"]),
            marker="",
            started=datetime.fromisoformat(data["started"]),
            ended=datetime.fromisoformat(data["ended"]) if data.get("ended") else None,
            status=Status(data.get("status", "interrupted")),
            rc=data.get("rc"),
            error=data.get("error"),
            results=results,
            node=data["node"] if isinstance(data.get("node"), str) else None,
        )
        job.attempts.append(attempt)
    return job


def _restored_node(raw: Any) -> Node | None:
    """The node a recorded job ran on, as recorded (only shown, never run on again from here)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("ssh"), str):
        return None
    port, capacity, python = raw.get("port"), raw.get("capacity"), raw.get("python")
    return Node(
        name=raw["name"],
        ssh=raw["ssh"],
        port=port if isinstance(port, int) else None,
        identity=Path(raw["identity"]) if isinstance(raw.get("identity"), str) else None,
        known_hosts=Path(raw["known_hosts"]) if isinstance(raw.get("known_hosts"), str) else None,
        python=python if isinstance(python, str) else "python3",
        capacity=capacity if isinstance(capacity, int) else 1,
    )


def failure_summary(attempt: Attempt, tail: Iterable[str] = ()) -> str:
    """Say which hosts failed, which is what an operator asks first; else Ansible's own error line."""
    hosts = attempt.results.hosts
    failed = [h for h, c in hosts.items() if c.failed]
    unreachable = [h for h, c in hosts.items() if c.unreachable]
    parts = []
    if failed:
        parts.append(f"{len(failed)} host{'s' if len(failed) > 1 else ''} failed ({', '.join(failed)})")
    if unreachable:
        parts.append(f"{len(unreachable)} unreachable ({', '.join(unreachable)})")
    if parts:
        return "; ".join(parts)
    errors = [strip_sgr(line).strip() for line in tail if "ERROR" in line]
    return errors[-1] if errors else f"ansible-playbook exited with rc {attempt.rc}"
