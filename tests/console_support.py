"""Frozen screens for the console: jobs as the server would describe them, fed to a mirror.

Live jobs never draw the same screen twice (times, the order of events), so the snapshot
and layout tests show a fixed set of jobs. The console renders a mirror of the server's
jobs; here the mirror is fed the JOB objects of the protocol (the same dicts the server's
`tui.server.wire.job_dict` sends) by the test instead of by a server. Nothing else is
faked: the app, its widgets and the client library's RemoteEngine are the real ones.
Requests the console sends are recorded (`FrozenSession.commands.calls`), and refused
with a ServerError when the test asks for it. Behaviour against live jobs is tested with a
real server process elsewhere (the keys, dialogs and 80x24 tests).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tui.client.connection import ServerError
from tui.client.mirror import Mirror
from tui.core.planning.spec import Status
from tui.core.running.results import COUNT_NAMES, HostCounts

T0 = datetime(2026, 11, 22, 9, 30, 0, tzinfo=timezone.utc)
LOG_ROOT = Path("/var/lib/playdeck/runs/20261122-093000-abc123")


class FrozenMirror(Mirror):
    """A mirror whose "server" is the test: watching a job sends its log lines again, as the
    server does when a client starts watching one."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[int, tuple[str, list[str]]] = {}

    async def watch_ids(self, ids: Any) -> None:
        for job_id in ids:
            if job_id in self.logs:
                name, lines = self.logs[job_id]
                self.apply({"t": "log", "id": job_id, "job": name, "lines": lines, "total": len(lines)})


class FrozenCommands:
    """Records what the console asks the server for; `refuse` makes the next request fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.tasks: dict[int, list[dict[str, str]]] = {}
        self.refuse: str | None = None

    def _call(self, what: str, *args: Any) -> None:
        self.calls.append((what, args))
        if self.refuse is not None:
            text, self.refuse = self.refuse, None
            raise ServerError(409, text)

    async def cancel(self, name: str, job_id: int | None = None) -> None:
        self._call("cancel", name, job_id)

    async def retry(self, name: str, failed: bool = False, job_id: int | None = None, yes: bool = False) -> None:
        self._call("retry", name, failed, job_id, *(["yes"] if yes else []))

    async def run_now(self, name: str, job_id: int | None = None, yes: bool = False) -> None:
        self._call("run-now", name, job_id, *(["yes"] if yes else []))

    async def set_timeout(self, name: str, seconds: float | None, job_id: int | None = None) -> None:
        self._call("timeout", name, seconds, job_id)

    async def answer(self, name: str, text: str, job_id: int | None = None) -> None:
        self._call("answer", name, text, job_id)

    async def submit_spec(self, spec: Any, secrets: Any = None, preflight: bool = True) -> list[int]:
        self._call("submit", spec, secrets)
        return [10_000 + len(self.calls)]

    async def results(self, name: str, job_id: int | None = None) -> dict[str, Any]:
        self._call("results", name, job_id)
        return {"tasks": self.tasks.get(job_id if job_id is not None else -1, []), "dropped": 0}

    async def close(self) -> None:
        pass


class FrozenSession:
    """What `tui.client.session.attach` returns, with the test in the server's place."""

    def __init__(self, max_parallel: int = 4) -> None:
        self.socket = Path("/nonexistent/playdeck/server.sock")
        self.status: dict[str, Any] = {"pid": 0, "max_parallel": max_parallel}
        self.mirror = FrozenMirror()
        self.commands = FrozenCommands()
        self.follower = None  # no event stream: nothing to lose
        self.attached = True
        self.seq = 0

    async def close(self) -> None:
        self.attached = False

    def show(self, *jobs: dict[str, Any]) -> None:
        """Send these JOB dicts as the server's next delta (new jobs or newer states of old ones)."""
        self.seq += 1
        self.mirror.apply({"t": "delta", "seq": self.seq, "jobs": [json.loads(json.dumps(j)) for j in jobs]})

    def log(self, job: dict[str, Any], lines: list[str]) -> None:
        """The job's log tail, sent now and again whenever the console starts watching it."""
        self.mirror.logs[job["id"]] = (job["name"], list(lines))
        self.mirror.apply({"t": "log", "id": job["id"], "job": job["name"], "lines": lines, "total": len(lines)})


def frozen_job(
    job_id: int,
    name: str,
    book: str,
    status: Status,
    limit: str | None,
    hosts: dict[str, HostCounts],
    seconds: int,
    message: str = "",
    *,
    history: bool = False,
    prompt: dict[str, Any] | None = None,
    attempts: int = 1,
) -> dict[str, Any]:
    """A JOB dict as the server sends it, for a job whose last attempt started at T0 + id s."""
    running = status is Status.RUNNING
    started = T0 + timedelta(seconds=job_id)
    directory = LOG_ROOT / name / f"attempt-{attempts}"
    totals = {n: sum(getattr(c, n) for c in hosts.values()) for n in COUNT_NAMES}
    return {
        "id": job_id,
        "name": name,
        "status": status.value,
        "message": message,
        "attempt": attempts,
        "number": attempts,
        "limit": limit,
        "last_limit": limit,
        "target": book,
        "totals": totals,
        "hosts": {host: counts.as_dict() for host, counts in hosts.items()},
        "task": "Wait for the migration" if running else "",
        "play": "",
        "elapsed": float(seconds),
        "timeout": 600.0 if running else None,
        "timeout_left": 600.0 - seconds if running else None,
        "retry_in": None,
        "history": history,
        "prompt": prompt,
        "log": str(directory / "output.log"),
        "events": str(directory / "events.jsonl"),
        "dropped": 0,
        "started": started.isoformat(),
        "ended": None if running else (started + timedelta(seconds=seconds)).isoformat(),
    }


HEALTH_LOG = [
    "PLAY [Fleet health check] ****",
    "TASK [Ping host] ****",
    "\x1b[0;32mok: [web01]\x1b[0m",
    "\x1b[0;32mok: [web02]\x1b[0m",
    '\x1b[1;31mfatal: [ghost01]: UNREACHABLE! => {"msg": "Connection refused"}\x1b[0m',
    "PLAY RECAP ****",
    "ghost01 : ok=0 changed=0 unreachable=1 failed=0",
]


def jobs() -> list[dict[str, Any]]:
    """Five finished jobs: failed with an unreachable host, successful, timeout, failed, canceled."""
    ok = HostCounts(ok=4, changed=1)
    return [
        frozen_job(
            0,
            "health-check",
            "health_check.yml",
            Status.FAILED,
            None,
            {"web01": HostCounts(ok=3), "web02": HostCounts(ok=3), "ghost01": HostCounts(unreachable=1)},
            7,
            "1 unreachable (ghost01)",
        ),
        frozen_job(
            1, "deploy-web", "deploy.yml", Status.SUCCESSFUL, "web", {"web01": ok, "web02": ok, "web03": ok}, 15
        ),
        frozen_job(
            2,
            "slow-migration",
            "slow_task.yml",
            Status.TIMEOUT,
            "db01",
            {"db01": HostCounts()},
            20,
            "stopped at its timeout",
        ),
        frozen_job(
            3,
            "failing-host",
            "failing_host.yml",
            Status.FAILED,
            "web01,web02",
            {"web01": HostCounts(ok=4), "web02": HostCounts(ok=2, failed=1)},
            6,
            "1 host failed (web02)",
        ),
        frozen_job(
            4, "disk-cleanup", "disk_cleanup.yml", Status.CANCELED, "all:!ghost01", {}, 3, "canceled by the operator"
        ),
    ]


def failed_tasks(job: dict[str, Any]) -> list[dict[str, str]]:
    """The results view's rows for a frozen job: a failed task per failed host."""
    return [
        {
            "host": host,
            "task": "Validate config",
            "play": "Rollout",
            "outcome": "failed",
            "message": "config check failed on " + host,
        }
        for host, counts in job["hosts"].items()
        if counts["failed"]
    ]


async def show_frozen_jobs(pilot: Any) -> None:
    """The five frozen jobs on screen, once the inventory pane has loaded (as a snapshot needs)."""
    from tui.console.widgets.inventory_pane import InventoryPane

    app = pilot.app
    pane = app.query_one(InventoryPane)
    while pane.inventory is None:
        await pilot.pause(0.05)
    session: FrozenSession = app.session
    frozen = jobs()
    for job in frozen:
        session.commands.tasks[job["id"]] = failed_tasks(job)
    session.show(*frozen)
    session.log(frozen[0], HEALTH_LOG)
    app._tick()
    await pilot.pause(0.2)


# --- a console on a real server ---------------------------------------------------------


def live_app(specs: Any = (), max_parallel: int = 2, **kwargs: Any) -> Any:
    """The console as `playdeck` starts it: it attaches to (and so starts) a real server under the
    test's TMPDIR (see conftest's isolated_state; conftest's no_server_left stops it after the test),
    then submits `specs` (JobSpecs, or a job file's path) to it."""
    from tests.conftest import INVENTORY, PLAYBOOKS
    from tui.console.app import PlaydeckApp
    from tui.core.planning.jobfile import load_job_file

    if isinstance(specs, Path):
        specs = load_job_file(specs).jobs
    kwargs.setdefault("inventory", INVENTORY)
    kwargs.setdefault("playbook_dirs", [PLAYBOOKS])
    return PlaydeckApp(specs=list(specs), server_args=["--max-parallel", str(max_parallel)], **kwargs)


async def job_named(pilot: Any, name: str, timeout: float = 30.0) -> Any:
    """The console's RemoteJob of that name, once the server has reported it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        engine = pilot.app.engine
        job = engine.get(name) if engine is not None else None
        if job is not None:
            return job
        assert time.monotonic() < deadline, f"the server never reported a job named {name!r}"
        await pilot.pause(0.05)


def job_processes(term: Any) -> list[int]:
    """A tmux Terminal's processes other than the server it started and that server's warm
    preflight worker (both idle once the jobs end): the console, and whatever ran a job."""
    from tests.conftest import pids_with_cmdline

    server = set(pids_with_cmdline("-m tui.server")) | set(pids_with_cmdline("-m tui.server.warm"))
    return [pid for pid in term.ours() if pid not in server]


async def job_reported(pilot: Any, name: str, timeout: float = 60.0) -> Any:
    """`job_named`, but a failure says what the console said meanwhile (a refused submission or a
    server that did not start is a toast), and a loaded machine's preflight is given a minute."""
    try:
        return await job_named(pilot, name, timeout)
    except AssertionError as exc:
        toasts = [n.message for n in pilot.app._notifications]
        raise AssertionError(f"{exc}; the console said: {toasts}") from None


def client_requests(state: Path) -> list[str]:
    """What clients asked the server, in order, from the audit trail under the state dir
    (protocol-changes 9 and 16: attach, submit, cancel, ..., detach)."""
    path = state / "audit.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [entry["args"]["request"] for entry in entries if entry["action"] == "client"]
