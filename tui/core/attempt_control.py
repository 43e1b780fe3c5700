"""What the engine does to a running attempt: its deadline, the prompt it waits at, stopping it.

A mixin of `Engine` (engine.py), kept apart so the engine stays readable; it holds no state of
its own and uses only the engine's `grace`, `prompts`, `_writable`, `record` and `_notify`.
`EngineError` lives here because these methods raise it too; engine.py re-exports it, and
callers import it from there.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tui.core.job import Job, Prompt
from tui.core.planning.spec import Status
from tui.core.running.attempt import Attempt
from tui.core.sanitize import sanitize, strip_sgr


class EngineError(Exception):
    """An operator action that does not apply; the message says why, and nothing changed."""


class AttemptControl:
    """Timeouts, prompts and stops of running attempts; mixed into `Engine`."""

    grace: float
    prompts: str

    if TYPE_CHECKING:  # the engine's, which this mixin uses

        def _writable(self, job: Job) -> None: ...
        def record(self, action: str, job: Job | None = None, **args: Any) -> None: ...
        def _notify(self, job: Job, what: str) -> None: ...

    # -- operator actions ---------------------------------------------------
    def answer_prompt(self, job: Job, text: str) -> None:
        """Type `text` and Enter at the prompt the job waits at. The answer is never logged or
        audited (only that one was given); a non-private answer shows in the job's output, as
        on a terminal."""
        self._writable(job)
        prompt = job.prompt
        if prompt is None or job.status is not Status.RUNNING or job._process is None:
            raise EngineError(f"{job.name} is not waiting for input")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
            raise EngineError("an answer is one line of text, without control characters")
        self.record("answer", job, prompt=prompt.kind, variable=prompt.varname)  # that, never what
        job._process.send({"cmd": "input", "text": text})
        job.prompt = None
        self._notify(job, "prompt")

    def set_timeout(self, job: Job, seconds: float | None) -> None:
        """A new timeout counted from now ("300" = 300 more seconds); None or 0 removes it.

        For a job not yet running it becomes the timeout of its next attempt.
        """
        self._writable(job)
        seconds = seconds or None
        if seconds is not None and seconds < 0:
            raise EngineError("a timeout cannot be negative")
        if not job.status.finished:
            self.record("timeout", job, seconds=seconds, status=job.status.value)
        if job.status is Status.RUNNING:
            job.deadline = None if seconds is None else time.monotonic() + seconds
            self._arm_deadline(job)
            if job._process is not None:
                job._process.set_deadline(job.deadline)
        elif job.status in (Status.QUEUED, Status.BLOCKED, Status.WAITING):
            job.timeout = seconds
        else:
            raise EngineError(f"{job.name} is {job.status}: a finished job has no timeout to change")
        self._notify(job, "timeout")

    # -- the running attempt --------------------------------------------------
    def _on_prompt(self, job: Job, attempt: Attempt, message: dict[str, Any]) -> None:
        varname = message.get("varname")
        prompt = Prompt(
            kind="pause" if message.get("kind") == "pause" else "vars_prompt",
            text=strip_sgr(str(message.get("text") or "")).strip(),  # strip_sgr sanitizes too
            varname=sanitize(str(varname)) if varname else None,
            private=bool(message.get("private")),
        )
        if attempt.ended is not None or attempt.stop_reason is not None:
            return  # already stopping: nobody will answer
        if self.prompts == "fail":
            job._failed_prompt = prompt
            self._stop(job, "prompt")
        else:
            job.prompt = prompt
            self._notify(job, "prompt")

    # -- stopping -----------------------------------------------------------
    def _stop(self, job: Job, reason: str) -> None:
        attempt = job.last
        if attempt is None or attempt.ended is not None:
            return
        # the first reason stands, except that an operator's cancel overrides a timeout in progress:
        # a job the operator canceled must end canceled, and never retry
        if attempt.stop_reason is None or reason == "cancel":
            attempt.stop_reason = reason
        self._clear_timer(job)
        if job._process is not None:
            job._process.stop(attempt.stop_reason, self.grace)

    def _arm_deadline(self, job: Job) -> None:
        self._clear_timer(job)
        if job.deadline is not None:
            delay = max(0.0, job.deadline - time.monotonic())
            job._timer = asyncio.get_running_loop().call_later(delay, self._stop, job, "timeout")

    def _clear_timer(self, job: Job) -> None:
        if job._timer is not None:
            job._timer.cancel()
            job._timer = None
