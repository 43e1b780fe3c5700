"""The console's memory after 50 jobs of 100,000 output lines each.

    python -m tests.bench.bench_memory [--quick]

Target: RSS <= 200 MB, with every line still on disk.

The real `PlaydeckApp` (headless `run_test`, 120x40, max_parallel 8) starts with no
jobs; its RSS then is the baseline. Then 50 jobs are launched, each replaying
100,000 synthetic `runner_on_ok` events of one coloured line
(`tests.bench.replay_supervisor`, PLAYDECK_REPLAY_LINES). When all have finished
the same process's VmRSS and VmHWM (peak) are read from /proc/self/status, and
every job's output.log is checked for its 100,000 numbered lines, once each and
in order. Where the memory went is estimated from the engine's own structures.
`--quick` runs 50 jobs of 10,000 lines. The measuring runs in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_ingest import (
    CHATTY,
    INVENTORY,
    REPLAY_MODULE,
    child_rows,
    count_lines,
    loadavg,
    main_for,
    proc_status_kb,
)
from tui.core.running.results import MAX_TASK_RESULTS

TARGET_MB = 200.0
JOBS = 50
PARALLEL = 8
EVENT_BYTES = 1300  # events.jsonl bytes per synthetic event, to check the disk has room first


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def _malloc_trim() -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _deep_size(obj: Any) -> int:
    """An object, its __dict__ and the strings it alone holds (host, task, play of a TaskResult)."""
    size = sys.getsizeof(obj)
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        size += sys.getsizeof(fields)
        size += sum(
            sys.getsizeof(v)
            for v in fields.values()
            if isinstance(v, str)
            and len(v) > 1
            and v not in ("ok", "changed", "failed", "skipped", "ignored", "unreachable")
        )
    return size


async def measure(lines: int, tmp: Path) -> dict[str, Any]:
    from tui.console.app import PlaydeckApp
    from tui.console.widgets.inventory_pane import InventoryPane
    from tui.core.planning.spec import JobSpec

    os.environ["PLAYDECK_SUPERVISOR_MODULE"] = REPLAY_MODULE
    os.environ["PLAYDECK_REPLAY_LINES"] = str(lines)
    os.environ.pop("PLAYDECK_REPLAY_EVENTS", None)
    app = PlaydeckApp(inventory=INVENTORY, max_parallel=PARALLEL, state_dir=tmp / "state")
    samples: list[int] = []
    done = asyncio.Event()

    async def sampler() -> None:
        while not done.is_set():
            samples.append(proc_status_kb("VmRSS"))
            await asyncio.sleep(0.25)

    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while app.query_one(InventoryPane).inventory is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await pilot.pause(1.0)  # a few 4 Hz refreshes: the app as an operator first sees it
        base_rss, base_hwm = proc_status_kb("VmRSS"), proc_status_kb("VmHWM")
        base_load = loadavg()
        task = asyncio.create_task(sampler())
        started = time.perf_counter()
        for i in range(JOBS):
            app.engine.add(JobSpec(name=f"flood-{i:02d}", inventory=INVENTORY, playbook=CHATTY))
        await asyncio.wait_for(app.engine.wait_idle(), 7200)
        seconds = time.perf_counter() - started
        await pilot.pause(1.0)  # the final state rendered
        done.set()
        await task
        rss, hwm = proc_status_kb("VmRSS"), proc_status_kb("VmHWM")
        end_load = loadavg()
        jobs = app.engine.jobs
        attempts = [a for j in jobs for a in j.attempts]
        task_results = [t for a in attempts for t in a.results.tasks]
        kept = len(task_results)
        step = max(1, kept // 2000)
        per_result = (sum(_deep_size(t) for t in task_results[::step]) / len(task_results[::step])) if kept else 0.0
        del task_results
        tail_lines = sum(len(j.tail.lines) for j in jobs)
        tail_bytes = sum(sys.getsizeof(line) for j in jobs for line in j.tail.lines)
        statuses = [j.status.value for j in jobs]
        logs = [(a.log, a.events_log) for j in jobs for a in j.attempts]
        gc.collect()
        rss_gc = proc_status_kb("VmRSS")
        trimmed = _malloc_trim()
        rss_trim = proc_status_kb("VmRSS")
    return {
        "base_rss": base_rss,
        "base_hwm": base_hwm,
        "rss": rss,
        "hwm": hwm,
        "rss_gc": rss_gc,
        "rss_trim": rss_trim,
        "trimmed": trimmed,
        "max_sampled": max(samples, default=rss),
        "seconds": seconds,
        "task_results": kept,
        "per_result": per_result,
        "tail_lines": tail_lines,
        "tail_bytes": tail_bytes,
        "statuses": statuses,
        "logs": logs,
        "base_load": base_load,
        "end_load": end_load,
    }


def verify(logs: list[tuple[Path, Path]], lines: int) -> tuple[int, list[str]]:
    """Jobs whose output.log holds all `lines` numbered lines once each, in order; and what was wrong."""
    from tests.bench.replay_supervisor import count_seq_lines

    good, problems = 0, []
    for log, events in logs:
        found, in_order = count_seq_lines(log)
        if found == lines and in_order:
            good += 1
        else:
            problems.append(f"{log.parent.parent.name}: {found} lines{'' if in_order else ', out of order'}")
    return good, problems


def child(quick: bool) -> list[dict[str, Any]]:
    lines = 10_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="playdeck-bench-memory-"))
    os.environ["PLAYDECK_STATE_DIR"] = str(tmp / "state")
    try:
        need = JOBS * lines * EVENT_BYTES * 1.3
        free = shutil.disk_usage(tmp).free
        if free < need:
            return [
                {
                    "name": "memory RSS after 50 jobs",
                    "value": None,
                    "unit": "MB",
                    "baseline": None,
                    "ratio": None,
                    "target": TARGET_MB,
                    "target_of": "value",
                    "met": None,
                    "notes": f"skipped: {free / 2**30:.1f} GB free under {tmp}, the logs need about "
                    f"{need / 2**30:.1f} GB",
                }
            ]
        load_start = loadavg()
        got = asyncio.run(measure(lines, tmp))
        good, problems = verify(got["logs"], lines)
        sample_log, sample_events = got["logs"][0]
        log_lines, event_lines = count_lines(sample_log), count_lines(sample_events)
        disk = sum(p.stat().st_size for pair in got["logs"] for p in pair)
        rss, base = _mb(got["rss"]), _mb(got["base_rss"])
        all_ok = all(s == "successful" for s in got["statuses"])
        kept_mb = got["task_results"] * got["per_result"] / 2**20
        where = (
            f"engine keeps {got['task_results']:,} TaskResult objects (ResultTracker.tasks, at most "
            f"{MAX_TASK_RESULTS:,} per attempt, failures first), about {got['per_result']:.0f} B each = {kept_mb:.0f} MB; log tails "
            f"{got['tail_lines']:,} lines, {got['tail_bytes'] / 2**20:.1f} MB"
        )
        ok_disk = good == JOBS and all_ok
        return [
            {
                "name": "memory RSS after 50 jobs",
                "value": rss,
                "unit": "MB",
                "baseline": base,
                "ratio": round(rss / base, 2),
                "target": TARGET_MB,
                "target_of": "value",
                "met": rss <= TARGET_MB and ok_disk,
                "notes": (
                    f"{JOBS} jobs x {lines:,} one-line runner_on_ok events, max_parallel {PARALLEL}, in "
                    f"{got['seconds']:.0f}s; baseline = the same process right after start with no jobs; delta "
                    f"{rss - base:+.1f} MB; {where}; after gc.collect {_mb(got['rss_gc'])} MB, after malloc_trim "
                    f"{_mb(got['rss_trim'])} MB; load {load_start} at start, "
                    f"{got['end_load']} at end"
                ),
            },
            {
                "name": "memory peak RSS (VmHWM)",
                "value": _mb(got["hwm"]),
                "unit": "MB",
                "baseline": _mb(got["base_hwm"]),
                "ratio": round(got["hwm"] / got["base_hwm"], 2),
                "target": None,
                "met": None,
                "notes": f"highest RSS sampled every 0.25 s during the run: {_mb(got['max_sampled'])} MB",
            },
            {
                "name": "memory every line on disk",
                "value": ok_disk,
                "unit": "",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": ok_disk,
                "notes": (
                    f"{good}/{JOBS} output.log files hold seq 0..{lines - 1} once each, in order; statuses "
                    f"{sorted(set(got['statuses']))}; one job's output.log has {log_lines:,} lines ({lines:,} plus "
                    f"PLAY/TASK headers and the recap), its events.jsonl {event_lines:,} events; "
                    f"{disk / 2**30:.2f} GB of logs in all" + (f"; problems: {problems[:5]}" if problems else "")
                ),
            },
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[dict[str, Any]]:
    return child_rows("tests.bench.bench_memory", quick)


if __name__ == "__main__":
    raise SystemExit(main_for(run, child, "console memory after 50 jobs of 100,000 lines"))
