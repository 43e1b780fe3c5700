"""What a job is (its spec) and the words for where it stands (its status)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.core.planning.nodes import Node


class Status(str, enum.Enum):
    """The engine's status words; the console and the JSON summary show them as is."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # waiting to retry, after a backoff delay
    BLOCKED = "blocked"  # waiting for the jobs it runs `after` (its message names them)
    SUCCESSFUL = "successful"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # the console died under it; read back from history
    SKIPPED = "skipped"  # a condition of its `after` can no longer hold (its message names the parent)
    SCHEDULED = "scheduled"  # a cron job between its runs (server only; its message names the next run)

    @property
    def finished(self) -> bool:
        return self in FINISHED

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset(
    {
        Status.SUCCESSFUL,
        Status.FAILED,
        Status.TIMEOUT,
        Status.CANCELED,
        Status.ERROR,
        Status.INTERRUPTED,
        Status.SKIPPED,
    }
)

#: The conditions of `after`: a child runs when its parent ended successful, unsuccessful, or either way.
CONDITIONS = ("success", "failure", "always")

#: Outcomes after which automatic retries are allowed (never after cancel or error).
RETRYABLE = frozenset({Status.FAILED, Status.TIMEOUT})

#: `overlap`: what a schedule's fire does while its previous run is still going (default skip).
OVERLAPS = ("skip", "queue", "cancel")
#: `catch_up`: runs a schedule missed while no server ran: none, or one at once (default skip).
CATCH_UPS = ("skip", "once")

#: The values of `lock`: only "hosts" (the job's resolved target hosts); no lock is the default.
LOCKS = ("hosts",)


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to start one attempt of a job; immutable so retries repeat it exactly.

    Either `playbook` is set, or `module` (an ad-hoc command against `limit`).
    """

    name: str
    inventory: Path
    playbook: Path | None = None
    limit: str | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 2.0
    tags: str | None = None
    skip_tags: str | None = None
    check: bool = False
    diff: bool = False
    forks: int | None = None
    verbosity: int = 0
    vault_password_file: Path | None = None
    module: str | None = None
    module_args: str | None = None
    become: bool = False  # `--become`, as `ansible -b`
    become_user: str | None = None  # `--become-user`; None leaves Ansible's default (root)
    priority: int = 0  # higher starts first among queued jobs; ties in the order jobs were added
    # the jobs it runs after, as (name, condition) pairs; condition in CONDITIONS
    after: tuple[tuple[str, str], ...] = ()
    circuit: int | None = None  # after this many failed/timeout attempts in a row: no more automatic retries
    lock: str | None = None  # "hosts": holds its resolved hosts while it runs (tui.core.scheduling.locks)
    # the hosts it targets (inventory + limit + the plays' `hosts:`), as the preflight resolved them
    # with Ansible's inventory manager; None when not resolved (no preflight). Never read from a client.
    resolved_hosts: tuple[str, ...] | None = None
    schedule: str | None = None  # 5-field cron (tui.core.scheduling.cron); runs only in the server
    timezone: str | None = None  # IANA zone of `schedule`; None: the server's local zone
    overlap: str = "skip"  # OVERLAPS
    catch_up: str = "skip"  # CATCH_UPS
    node: Node | None = None  # the execution node it runs on (over ssh); None: here

    @property
    def target(self) -> str:
        """What the job runs, for tables: the playbook's file name or `module: args`."""
        if self.playbook is not None:
            return self.playbook.name
        return f"{self.module}: {self.module_args or ''}".strip()


def spec_for_playbook(playbook: Path, inventory: Path, name: str | None = None, **options: Any) -> JobSpec:
    """A spec from command-line flags, named after the playbook unless given a name."""
    spec = JobSpec(name=name or playbook.stem, inventory=inventory, playbook=playbook)
    return replace(spec, **{k: v for k, v in options.items() if v is not None})


def launch_args(spec: JobSpec) -> dict[str, Any]:
    """What the audit trail records of a launch: the spec's settings (its secrets never reach it)."""
    return {
        "target": spec.target,
        "inventory": str(spec.inventory),
        "limit": spec.limit,
        "extra_vars": spec.extra_vars,
        "timeout": spec.timeout,
        "retries": spec.retries,
        "check": spec.check or None,
        "tags": spec.tags,
        "lock": spec.lock,
        "hosts": list(spec.resolved_hosts) if spec.lock and spec.resolved_hosts is not None else None,
        "node": spec.node.name if spec.node is not None else None,
    }
