"""Snapshots pin the whole screen at 80x24 and 160x48, in the dark and the light theme.

Live jobs never draw the same screen twice (times, ordering of events), so these
show a fixed set of finished and running jobs built from the core's own types,
on the real sample inventory; the keys tests cover the live behaviour.
Update after an intended change with `python -m pytest tests/test_console_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS
from tui.console.app import PlaydeckApp
from tui.console.widgets.inventory_pane import InventoryPane
from tui.core.engine import Job
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.attempt import Attempt
from tui.core.running.results import HostCounts, ResultTracker, TaskResult

T0 = datetime(2026, 11, 22, 9, 30, 0, tzinfo=timezone.utc)
LOG_ROOT = Path("/var/lib/playdeck/runs/20261122-093000-abc123")


def frozen_job(
    job_id: int,
    name: str,
    book: str,
    status: Status,
    limit: str | None,
    hosts: dict[str, HostCounts],
    seconds: int,
    message: str = "",
    lines: tuple[str, ...] = (),
) -> Job:
    spec = JobSpec(name=name, inventory=INVENTORY, playbook=PLAYBOOKS / book, limit=limit)
    job = Job(id=job_id, spec=spec, status=status, next_limit=limit, message=message)
    results = ResultTracker(hosts=hosts)
    for host, counts in hosts.items():
        if counts.failed:
            results.tasks.append(
                TaskResult(host, "Validate config", "Rollout", "failed", "config check failed on " + host)
            )
    job.attempts.append(
        Attempt(
            number=1,
            limit=limit,
            directory=LOG_ROOT / name / "attempt-1",
            marker="x",
            started=T0 + timedelta(seconds=job_id),
            ended=T0 + timedelta(seconds=job_id + seconds),
            status=status,
            rc=0 if status is Status.SUCCESSFUL else 2,
            results=results,
        )
    )
    job.tail.extend(lines)
    return job


def jobs() -> list[Job]:
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
            (
                "PLAY [Fleet health check] ****",
                "TASK [Ping host] ****",
                "\x1b[0;32mok: [web01]\x1b[0m",
                "\x1b[0;32mok: [web02]\x1b[0m",
                '\x1b[1;31mfatal: [ghost01]: UNREACHABLE! => {"msg": "Connection refused"}\x1b[0m',
                "PLAY RECAP ****",
                "ghost01 : ok=0 changed=0 unreachable=1 failed=0",
            ),
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


async def show_frozen_jobs(pilot) -> None:
    app: PlaydeckApp = pilot.app
    pane = app.query_one(InventoryPane)
    while pane.inventory is None:
        await pilot.pause(0.05)
    app.engine.jobs.extend(jobs())
    app._dirty.update(job.id for job in app.engine.jobs)
    app._added = True
    app._tick()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("theme", ["playdeck-dark", "playdeck-light"])
def test_console_screen(snap_compare, size, theme):
    app = PlaydeckApp(inventory=INVENTORY, playbook_dirs=[PLAYBOOKS], theme=theme)
    assert snap_compare(app, terminal_size=size, run_before=show_frozen_jobs)
