"""Jobs outlive the console that ran them: records on disk, read back on the next start.

Each run directory holds `owner.json` (which process ran it) and, per job,
`job.json`, rewritten atomically on every status change. A record that says
a job was still queued, running or waiting, in a run whose owner is gone, is
a job the console was killed under: it is shown, and saved, as `interrupted`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.planning.nodes import node_to_json
from tui.core.storage.audit import redact

if TYPE_CHECKING:
    from tui.core.job import Job
    from tui.core.running.attempt import Attempt

UNFINISHED = ("queued", "blocked", "scheduled", "running", "waiting")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()[19].decode()


def owner() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "start": _start_time(os.getpid()),
        "host": socket.gethostname(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def owner_alive(info: dict[str, Any]) -> bool:
    if info.get("host") != socket.gethostname():
        return False
    pid = info.get("pid")
    return isinstance(pid, int) and _start_time(pid) is not None and _start_time(pid) == info.get("start")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic and private: a reader sees the old record or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=str)
    os.replace(tmp, path)


def job_record(job: Job, run_id: str) -> dict[str, Any]:
    spec = job.spec
    return {
        "version": 1,
        "run": run_id,
        "name": job.name,
        "status": job.status.value,
        "message": job.message,
        "spec": {
            "target": spec.target,
            "playbook": str(spec.playbook) if spec.playbook else None,
            "inventory": str(spec.inventory),
            "limit": spec.limit,
            "module": spec.module,
            "module_args": spec.module_args,
            "extra_vars": redact(spec.extra_vars),
            "timeout": spec.timeout,
            "retries": spec.retries,
            "node": node_to_json(spec.node) if spec.node is not None else None,
        },
        "attempts": [
            {
                "number": a.number,
                "status": a.status.value,
                "rc": a.rc,
                "limit": a.limit,
                "error": a.error,
                "started": a.started.isoformat(),
                "ended": a.ended.isoformat() if a.ended else None,
                "directory": str(a.directory),
                "node": attempt_node(a),
                "play": a.results.play,
                "task": a.results.task,
                "hosts": {h: c.as_dict() for h, c in a.results.hosts.items()},
            }
            for a in job.attempts
        ],
    }


def attempt_node(attempt: Attempt) -> str | None:
    """The node an attempt ran on (its name), None for here."""
    return attempt.node


def record_path(state: Path, run_id: str, slug: str) -> Path:
    return state / "runs" / run_id / slug / "job.json"


def load_history(state: Path, current_run: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Records of earlier runs, newest first; unfinished ones of dead runs come back `interrupted`."""
    runs_dir = state / "runs"
    if not runs_dir.is_dir():
        return []
    records: list[dict[str, Any]] = []
    for run in sorted(runs_dir.iterdir(), reverse=True):
        if run.name == current_run or not run.is_dir():
            continue
        try:
            info = json.loads((run / "owner.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        alive = owner_alive(info)
        for path in sorted(run.glob("*/job.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("status") in UNFINISHED:
                if alive:
                    continue  # another console is running it right now: not ours to show as dead
                _mark_interrupted(record, path)
            records.append(record)
            if len(records) >= limit:
                return records
    return records


def _mark_interrupted(record: dict[str, Any], path: Path) -> None:
    was = record["status"]
    record["status"] = "interrupted"
    record["message"] = f"playdeck stopped while this job was {was}; its output up to then is in the log"
    if record["attempts"]:
        last = record["attempts"][-1]
        if last.get("ended") is None:
            last["status"] = "interrupted"
            log = Path(last["directory"]) / "output.log"
            when = log.stat().st_mtime if log.exists() else time.time()
            last["ended"] = datetime.fromtimestamp(when).astimezone().isoformat()
    try:
        write_json(path, record)
    except OSError:
        pass


def prune(state: Path, keep_runs: int, keep_days: float, current_run: str | None = None) -> list[Path]:
    """Remove runs beyond the newest `keep_runs` or older than `keep_days`; never a live one."""
    runs_dir = state / "runs"
    if not runs_dir.is_dir():
        return []
    runs = sorted((r for r in runs_dir.iterdir() if r.is_dir() and r.name != current_run), reverse=True)
    cutoff = time.time() - keep_days * 86400
    removed = []
    for index, run in enumerate(runs):
        try:
            info = json.loads((run / "owner.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if owner_alive(info):
            continue
        if index >= keep_runs or run.stat().st_mtime < cutoff:
            shutil.rmtree(run, ignore_errors=True)
            removed.append(run)
    return removed
