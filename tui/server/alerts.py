"""Alerts through Apprise: a finished job (or an opened circuit) posted to chat, paging, webhooks.

The engine tells us in its own call stack, so `on_change` only builds the message and puts it on
a per-target queue; a task per target (started lazily, ended when its queue is empty) sends it
with a timeout and retries with backoff. A slow or dead target therefore delays neither the
engine nor another target. Apprise URLs hold secrets (tokens, passwords in paths and queries):
no URL, and no exception text that might quote one, ever reaches a log line or a notice; targets
are named by their place in the config and `NotifyTarget.redacted()`. Apprise's and urllib3's
own log records are dropped for the same reason (their debug lines print what they post to).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tui.core.config import NotifyTarget
from tui.core.job import Job
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr

if TYPE_CHECKING:
    from tui.server.state import Server

log = logging.getLogger(__name__)

#: the config's event word for each finished status
STATUS_EVENTS = {
    Status.FAILED: "failed",
    Status.TIMEOUT: "timeout",
    Status.ERROR: "error",
    Status.CANCELED: "canceled",
    Status.INTERRUPTED: "interrupted",
    Status.SUCCESSFUL: "succeeded",
    Status.SKIPPED: "skipped",
}
_TITLES = {"timeout": "timed out", "error": "ended in error", "circuit-open": "circuit open"}
_KINDS = {"succeeded": "success", "canceled": "warning", "skipped": "warning", "schedule-missed": "warning"}
SEND_TIMEOUT = 10.0  # seconds for one try of one message to one target
TRIES = 5
BACKOFF = 1.0  # first delay between tries; doubles, capped at BACKOFF_CAP
BACKOFF_CAP = 30.0
QUEUE_MAX = 200  # per target: a dead target with a flood of failures must not grow memory without bound
MAX_HOSTS = 20  # failed hosts named in one message; the rest are counted
REASON_MAX = 300  # characters of a host's first reason line


class _Quiet(logging.Filter):
    """Drops Apprise's own records: they may quote the URL (its secret) it posts to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _silence_apprise() -> None:
    """Apprise's records, and urllib3's connection lines (which name host, port and path), are
    dropped: in the server only Apprise uses urllib3, and a webhook's path is its secret."""
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(_Quiet())


def _line(text: str, limit: int = REASON_MAX) -> str:
    """One line of untrusted text, plain: controls made visible, whitespace folded, clipped."""
    flat = " ".join(strip_sgr(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_line(text: str) -> str:
    for line in strip_sgr(text).splitlines():
        if line.strip():
            return _line(line)
    return ""


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str  # an apprise NotifyType value: info, success, warning, failure


def build_message(job: Job, event: str, host: str) -> Message:
    """What a person paged at night needs first: which job, how it ended, where, and why."""
    name = _line(job.name, 200)
    status = job.status.value
    said = _TITLES.get(event, event)
    lines = [f"job: {name}", f"status: {status}"]
    if job.message:
        lines.append(f"message: {_line(job.message, 1000)}")
    attempt = job.last
    results = job.results
    failed = results.failed_hosts()
    if failed:
        reasons: dict[str, str] = {}
        for task in results.tasks:
            if task.outcome in ("failed", "unreachable") and task.host not in reasons:
                reasons[task.host] = _first_line(task.message)
        lines.append(f"failed hosts ({len(failed)}):")
        for name_ in failed[:MAX_HOSTS]:
            reason = reasons.get(name_, "")
            lines.append(f"  {_line(name_, 200)}: {reason}" if reason else f"  {_line(name_, 200)}")
        if len(failed) > MAX_HOSTS:
            lines.append(f"  ... and {len(failed) - MAX_HOSTS} more")
    if attempt is not None:
        lines.append(f"attempt: {attempt.number}")
        lines.append(f"log: {_line(str(attempt.log), 1000)}")
    if job.circuit_open:
        lines.append(f"circuit: open after {job.failures} consecutive failures (a manual retry closes it)")
    lines.append(f"server: {_line(host, 200)}")
    kind = _KINDS.get(event, "failure")
    return Message(title=f"playdeck: {name} {said}", body="\n".join(lines), kind=kind)


def build_missed(job: Job, when: datetime, why: str, host: str) -> Message:
    """A scheduled run that did not happen: which job, which fire time, and why not."""
    name = _line(job.name, 200)
    lines = [
        f"job: {name}",
        f"missed run: {when.isoformat(timespec='seconds')}",
        f"why: {_line(why, 1000)}",
        f"status: {job.status.value}",
    ]
    if job.spec.schedule:
        lines.append(f"schedule: {_line(job.spec.schedule, 200)} ({_line(job.spec.timezone or 'local', 100)})")
    lines.append(f"server: {_line(host, 200)}")
    return Message(title=f"playdeck: {name} schedule missed", body="\n".join(lines), kind="warning")


class _Sender:
    """One target's queue and its sending task; kept while queued messages remain."""

    def __init__(self, alerts: Alerts, target: NotifyTarget, label: str):
        self.alerts = alerts
        self.target = target
        self.label = label  # "alert target 2 (json://…)": never the URL
        alerts._made += 1
        self.key = f"alerts-{alerts._made}"  # its standing notice's key
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=QUEUE_MAX)
        self.task: asyncio.Task[None] | None = None
        self.failing = False  # a notice was shown; the next delivery clears it
        self.full_said = False
        self._apprise: asyncio.Task[Any] | None = None  # the Apprise object (False: a bad URL)

    def load(self) -> asyncio.Task[Any]:
        """Build the Apprise object off the loop's thread, once: the first Apprise() imports every
        plugin (~0.3 s, seconds on a loaded machine), which must not delay the first alert."""
        if self._apprise is None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(_load, self.target.url))
            self.alerts._tasks.add(task)
            task.add_done_callback(self.alerts._tasks.discard)
            self._apprise = task
        return self._apprise

    def put(self, message: Message) -> None:
        if self.alerts.closed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            if not self.full_said:
                self.full_said = True
                log.warning("%s: %d alerts waiting, dropping new ones", self.label, QUEUE_MAX)
            return
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._drain(), name=f"alerts {self.label}")
            self.alerts._tasks.add(self.task)
            self.task.add_done_callback(self.alerts._tasks.discard)

    async def _drain(self) -> None:
        while not self.queue.empty():
            await self._deliver(self.queue.get_nowait())
        self.full_said = False
        if self not in self.alerts._senders:  # a removed target, done with what was queued for it
            self.alerts._clear(self)

    async def _deliver(self, message: Message) -> None:
        alerts = self.alerts
        problem = ""
        for attempt in range(1, alerts.tries + 1):
            problem = await self._send(message)
            if not problem:
                if self.failing:
                    self.failing = False
                    log.warning("%s: delivering again", self.label)
                    alerts._clear(self)
                return
            if problem == "invalid":
                problem = "not a valid Apprise URL"
                break
            if not self.failing:
                self.failing = True
                alerts._notice(self, f"{self.label}: alert not delivered ({problem}); retrying")
            if attempt < alerts.tries:
                await asyncio.sleep(min(alerts.backoff_cap, alerts.backoff * 2 ** (attempt - 1)))
        if not self.failing:
            self.failing = True
            alerts._notice(self, f"{self.label}: alert not delivered ({problem})")
        log.warning("%s: alert %r dropped after %d tries (%s)", self.label, message.title, attempt, problem)

    async def _send(self, message: Message) -> str:
        """One try: "" when delivered, else why not (never with the URL in it)."""
        try:
            apobj = await asyncio.shield(self.load())
        except Exception as exc:  # its text may quote the URL: the type only
            self._apprise = None  # try to build it again next time
            return f"{type(exc).__name__}"
        if apobj is False:
            return "invalid"
        import apprise

        timeout = self.alerts.timeout
        try:
            result = await asyncio.wait_for(
                apobj.async_notify(
                    body=message.body,
                    title=message.title,
                    notify_type=apprise.NotifyType(message.kind),
                    body_format=apprise.NotifyFormat.TEXT,
                    timeout=timeout,
                ),
                timeout + 2.0,
            )
        except asyncio.TimeoutError:
            return f"no answer in {timeout:g}s"
        except Exception as exc:  # its text may quote the URL: the type only
            return f"{type(exc).__name__}"
        if result:
            return ""
        status = getattr(result, "status", None)
        if status is apprise.AppriseResultStatus.TIMEOUT:
            return f"no answer in {timeout:g}s"
        return "the service refused it or could not be reached"


def _load(url: str) -> Any:
    """An Apprise object holding the one URL, or False when Apprise does not take it."""
    import apprise

    _silence_apprise()
    apobj = apprise.Apprise()
    return apobj if apobj.add(url) else False


class Alerts:
    """The server's alerting: `configure` with the config's targets, subscribe `on_change`."""

    def __init__(
        self,
        server: Server,
        *,
        timeout: float = SEND_TIMEOUT,
        tries: int = TRIES,
        backoff: float = BACKOFF,
        backoff_cap: float = BACKOFF_CAP,
    ):
        self.server = server
        self.timeout = timeout
        self.tries = max(1, tries)
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.host = socket.gethostname()
        self._senders: list[_Sender] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._made = 0  # senders made so far: their notice keys
        self.closed = False  # the server is stopping: nothing new is sent
        self._open: set[int] = set()  # ids of own jobs whose open circuit was already told
        _silence_apprise()

    def configure(self, targets: tuple[NotifyTarget, ...]) -> None:
        """Replace the targets. A kept target keeps its queue and state; a removed one still
        sends what was queued for it, then its task ends."""
        old = {sender.target: sender for sender in self._senders}
        senders = []
        for number, target in enumerate(targets, 1):
            label = f"alert target {number} ({target.redacted()})"
            sender = old.pop(target, None)
            if sender is None:
                sender = _Sender(self, target, label)
                try:
                    sender.load()
                except RuntimeError:  # no running loop yet: built at its first alert
                    pass
            sender.label = label
            senders.append(sender)
        self._senders = senders
        for gone in old.values():  # removed: a task still sending clears its notice when done
            if gone.task is None or gone.task.done():
                self._clear(gone)

    @property
    def targets(self) -> tuple[NotifyTarget, ...]:
        return tuple(sender.target for sender in self._senders)

    def on_change(self, job: Job, what: str) -> None:
        """Engine listener: never blocks, never raises."""
        if what != "status" or job.history:
            return
        try:
            self._on_status(job)
        except Exception:
            log.exception("alerts: a job's change was not handled")

    def _on_status(self, job: Job) -> None:
        events: list[str] = []
        if job.circuit_open:
            if job.id not in self._open:
                self._open.add(job.id)
                events.append("circuit-open")
        else:
            self._open.discard(job.id)
        status_event = STATUS_EVENTS.get(job.status)
        if status_event is not None:
            events.append(status_event)
        if not events or not self._senders:
            return
        built: dict[str, Message] = {}
        for sender in self._senders:
            event = next((e for e in events if e in sender.target.on), None)  # circuit-open first
            if event is None:
                continue
            if event not in built:
                built[event] = build_message(job, event, self.host)
            try:
                sender.put(built[event])
            except RuntimeError:  # no running loop: nothing could send it
                log.warning("%s: no event loop, alert dropped", sender.label)

    def schedule_missed(self, job: Job, when: datetime, why: str) -> None:
        """A scheduled fire that did not run (an overlap skipped it, downtime with catch_up: skip,
        an open circuit): told to the targets whose `on` has schedule-missed. Never raises."""
        try:
            senders = [sender for sender in self._senders if "schedule-missed" in sender.target.on]
            if senders:
                message = build_missed(job, when, why, self.host)
                for sender in senders:
                    sender.put(message)
        except Exception:
            log.exception("alerts: a missed schedule was not told")

    def _notice(self, sender: _Sender, text: str) -> None:
        """Once per failing target; standing (consoles attaching later see it too) until it
        delivers again or is removed from the config."""
        notice = getattr(self.server, "notice", None)
        if notice is None:
            log.warning("%s", text)
            return
        try:
            try:
                notice(text, standing=sender.key)
            except TypeError:  # a notice(text) without standing notices
                notice(text)
        except Exception:
            log.exception("alerts: notice failed")

    def _clear(self, sender: _Sender) -> None:
        hub = getattr(self.server, "hub", None)
        try:
            if hub is not None and hasattr(hub, "clear"):
                hub.clear(sender.key)
        except Exception:
            log.exception("alerts: notice not cleared")

    async def close(self) -> None:
        """Stop at once: the server's stop never waits for a retry or a slow target."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
