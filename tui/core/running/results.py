"""Per-host and per-task results, built from events as they arrive.

A killed run never emits `playbook_on_stats`, so counts are kept from the
`runner_on_*` events with the same rules Ansible's PLAY RECAP uses; when the
stats event does arrive it is authoritative and replaces them (it alone knows
which failures a `rescue:` block absorbed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_TASK_RESULTS = 2000
COUNT_NAMES = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
# playbook_on_stats names -> our names
_STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def needs_retry(self) -> bool:
        """The AWX / `.retry` file rule: failed or unreachable; rescued and ignored do not count."""
        return self.failed > 0 or self.unreachable > 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class TaskResult:
    """One host's outcome of one task, with the message an operator needs when it failed."""

    host: str
    task: str
    play: str
    outcome: str  # ok, changed, failed, unreachable, skipped, ignored
    message: str = ""


@dataclass
class ResultTracker:
    """Feeds on events of one attempt; holds its per-host counts and where it is now."""

    hosts: dict[str, HostCounts] = field(default_factory=dict)
    tasks: list[TaskResult] = field(default_factory=list)
    play: str = ""
    task: str = ""
    ansible_pid: int | None = None
    has_stats: bool = False
    dropped: int = 0  # task results not kept in memory (over MAX_TASK_RESULTS)
    # shown (sanitized) host name -> the name Ansible knows, for names the sanitizer changed:
    # a retry must target the real host, while only the clean name is ever shown
    real_names: dict[str, str] = field(default_factory=dict)

    def _host(self, name: str) -> HostCounts:
        counts = self.hosts.get(name)
        if counts is None:
            counts = self.hosts[name] = HostCounts()
        return counts

    def feed(self, event: dict[str, Any]) -> None:
        name = event.get("event", "")
        data = event.get("event_data") or {}
        if event.get("pid") and self.ansible_pid is None:
            self.ansible_pid = event["pid"]
        if name == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
            self.task = ""
        elif name in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.task = str(data.get("task") or data.get("name") or "")
        elif name == "playbook_on_stats":
            self._apply_stats(data)
        elif name.startswith("runner_on_") and data.get("host"):
            self._runner_event(name[len("runner_on_") :], data)

    def _runner_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.has_stats:
            return
        res = data.get("res") or {}
        host = str(data["host"])
        if kind == "start":
            self._host(host)
            return
        counts = self._host(host)
        changed = bool(isinstance(res, dict) and res.get("changed"))
        if kind == "ok":
            counts.ok += 1
            counts.changed += changed
            outcome = "changed" if changed else "ok"
        elif kind == "failed":
            if data.get("ignore_errors"):
                counts.ok += 1
                counts.ignored += 1
                counts.changed += changed
                outcome = "ignored"
            else:
                counts.failed += 1
                outcome = "failed"
        elif kind == "unreachable":
            counts.unreachable += 1
            outcome = "unreachable"
        elif kind == "skipped":
            counts.skipped += 1
            outcome = "skipped"
        else:  # async_poll and friends carry no recap meaning
            return
        problem = outcome in ("failed", "unreachable", "ignored")
        # bounded: a 100,000-task job must not keep 100,000 rows in memory (events.jsonl has them all);
        # problems are what the results view is for, so they get the larger share
        if len(self.tasks) >= (MAX_TASK_RESULTS if problem else MAX_TASK_RESULTS // 2):
            self.dropped += 1
            return
        self.tasks.append(
            TaskResult(
                host,
                str(data.get("task") or self.task),
                str(data.get("play") or self.play),
                outcome,
                failure_message(res) if problem else "",
            )
        )

    def _apply_stats(self, data: dict[str, Any]) -> None:
        fresh: dict[str, HostCounts] = {}
        for stats_key, ours in _STATS_KEYS.items():
            for host, value in (data.get(stats_key) or {}).items():
                counts = fresh.setdefault(str(host), HostCounts())
                setattr(counts, ours, int(value))
        for host in data.get("processed") or {}:
            fresh.setdefault(str(host), HostCounts())
        for host in self.hosts:  # hosts seen starting but absent from stats keep a row
            fresh.setdefault(host, HostCounts())
        self.hosts = fresh
        self.has_stats = True
        self.task = ""

    def totals(self) -> HostCounts:
        total = HostCounts()
        for counts in self.hosts.values():
            for name in COUNT_NAMES:
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total

    def failed_hosts(self) -> list[str]:
        """Failed or unreachable hosts, by the names shown."""
        return [host for host, counts in self.hosts.items() if counts.needs_retry]

    def failed_hosts_real(self) -> list[str]:
        """The same hosts by the names Ansible knows them by (what a retry must target)."""
        return [self.real_names.get(host, host) for host in self.failed_hosts()]


def failure_message(res: Any) -> str:
    """The part of a result an operator reads first: msg, then stderr, then stdout."""
    if not isinstance(res, dict):
        return ""
    message = ""
    for key in ("msg", "stderr", "stdout", "reason"):
        value = res.get(key)
        if value:
            message = value if isinstance(value, str) else str(value)
            break
    items = res.get("item_msgs")  # a loop's own msg is only a summary: the items say why
    if isinstance(items, list) and items:
        if message == "All items completed":  # what an unreachable loop says: wrong, not a reason
            message = ""
        message = "\n".join([message, *map(str, items)]).strip()
    return message
