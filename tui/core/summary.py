"""The JSON summary of a run: the contract scripts and CI read."""

from __future__ import annotations

from typing import Any

from tui.core.job import Job
from tui.core.storage.history import attempt_node


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "status": job.status.value,
        "message": job.message,
        "circuit_open": job.circuit_open,
        "node": job.spec.node.name if job.spec.node is not None else None,
        "hosts": {host: counts.as_dict() for host, counts in job.hosts.items()},
        "attempts": [
            {
                "number": a.number,
                "status": a.status.value,
                "rc": a.rc,
                "started": a.started.isoformat(),
                "ended": a.ended.isoformat() if a.ended else None,
                "limit": a.limit,
                "log": str(a.log.resolve()),
                "events": str(a.events_log.resolve()),
                "error": a.error,
                "node": attempt_node(a),
            }
            for a in job.attempts
        ],
    }


def run_summary(jobs: list[Job]) -> dict[str, Any]:
    return {"jobs": [job_summary(job) for job in jobs]}
