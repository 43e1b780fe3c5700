"""The circuit breaker: an automatic retry loop against a broken target must stop by itself.

No peer (AWX, Semaphore, Rundeck) has one; retries hammering a target whose side counts
failures can lock accounts out. Only failed and timed-out attempts count, automatic retries
included; any other end breaks the run of failures; an operator's manual retry closes it.
"""

from __future__ import annotations

from tui.core.planning.spec import RETRYABLE, Status


def failures_after(failures: int, status: Status) -> int:
    """The count of failed/timeout attempts in a row once an attempt ended with `status`."""
    return failures + 1 if status in RETRYABLE else 0


def opens(limit: int | None, failures: int) -> bool:
    """Whether `failures` in a row open a circuit of `limit` (None: the job has no breaker)."""
    return limit is not None and failures >= limit


def open_message(message: str, failures: int) -> str:
    """The failed job's message once its circuit opened: why it failed, then that it stopped."""
    said = (
        f"circuit opened after {failures} consecutive failure{'s' if failures != 1 else ''}: no more automatic retries"
    )
    return f"{message}; {said}" if message else said
