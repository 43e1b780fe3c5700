"""Ingest ceiling: a recorded event stream pushed through engine and UI without Ansible.

    python -m tests.bench.bench_ingest [--quick]

Target: >= 20,000 events/s sustained while the UI stays responsive.

1. Record: one real chatty job (`sample_playbooks/chatty.yml`, limit lb01) through the
   Engine; its attempt's events.jsonl is the recording.
2. Baseline: the same recording replayed by the same replay supervisors (same number of
   jobs, same copies, same nice), read by a minimal asyncio reader that only
   `json.loads` each line: no engine, no UI. Measured before and after the flood; the
   mean is the baseline, so load that drifts during the run is shared out.
3. Flood: the real `PlaydeckApp` (headless `run_test`, 120x40) runs the jobs with
   `PLAYDECK_SUPERVISOR_MODULE=tests.bench.replay_supervisor`. Events are counted by an
   engine listener; a ticker on the app's loop measures how late 10 ms sleeps wake up,
   and a `j`/`k` key press every half second is timed until the grid's cursor moves.

Rates are events / (last event - first event), so process start-up is left out.
The measuring part runs in a fresh interpreter (`--child`) so the figures do not
depend on what the calling process did before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "sample_inventory" / "hosts.yml"
CHATTY = ROOT / "sample_playbooks" / "chatty.yml"
REPLAY_MODULE = "tests.bench.replay_supervisor"
ROWS_MARK = "BENCH-ROWS "
TARGET = 20_000.0
JOBS = 8
TICK = 0.010
KEY_EVERY = 0.5
JOB_NICE = 10  # PlaydeckApp's default: the jobs run below the console's priority


# -- shared by the bench modules ----------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def proc_status_kb(field: str) -> int:
    """A `/proc/self/status` field in kB (VmRSS, VmHWM, ...)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child_rows(module: str, quick: bool, extra: list[str] | None = None, timeout: float = 3600) -> list[dict[str, Any]]:
    """Run `python -m module --child` in a fresh interpreter and return the rows it prints."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", module, "--child", *(["--quick"] if quick else []), *(extra or [])]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(ROWS_MARK):
            return json.loads(line[len(ROWS_MARK) :])
    tail = proc.stdout[-2000:]
    raise RuntimeError(f"{module} --child exited {proc.returncode} without rows; stdout tail: {tail!r}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(
            f"{row['name']:<34} {row['value']!s:>12} {row.get('unit') or '':<9} baseline {row.get('baseline')!s:<10} "
            f"ratio {row.get('ratio')!s:<6} target {row.get('target')!s:<10} met {row.get('met')!s:<5} "
            f"{row.get('notes') or ''}"
        )


def main_for(module_run: Any, child: Any, description: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help="measure in this process and print rows as JSON")
    parser.add_argument("--profile", metavar="FILE", help="(with --child) cProfile the measurement into FILE")
    args = parser.parse_args()
    if not args.child:
        print_rows(module_run(args.quick))
        return 0
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        rows = profiler.runcall(child, args.quick)
        profiler.dump_stats(args.profile)
    else:
        rows = child(args.quick)
    print(ROWS_MARK + json.dumps(rows, default=str), flush=True)
    return 0


def supervisor_env(**replay: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name, value in replay.items():
        env[f"PLAYDECK_REPLAY_{name.upper()}"] = value
    return env


# -- recording ----------------------------------------------------------------


def record(tmp: Path) -> Path:
    """A real chatty run through the Engine; returns a copy of its events.jsonl."""
    from tui.core.engine import Engine
    from tui.core.planning.spec import spec_for_playbook

    os.environ.pop("PLAYDECK_SUPERVISOR_MODULE", None)

    async def go() -> Path:
        engine = Engine(tmp / "record-state")
        job = engine.add(spec_for_playbook(CHATTY, INVENTORY, name="chatty-record", limit="lb01"))
        await asyncio.wait_for(engine.wait_idle(), 300)
        if job.status.value != "successful" or job.last is None:
            raise RuntimeError(f"recording run ended {job.status.value}: {job.message}")
        return job.last.events_log

    recording = tmp / "recording.jsonl"
    shutil.copyfile(asyncio.run(go()), recording)
    return recording


def expected_per_job(recording: Path, repeat: int) -> tuple[int, int]:
    """(events, output.log lines) one job of `repeat` copies produces."""
    from tests.bench.replay_supervisor import load_recording, repeated

    events = lines = 0
    for event in repeated(load_recording(recording), repeat):
        events += 1
        text = event.get("stdout")
        if text:
            lines += text.replace("\r\n", "\n").count("\n") + 1
    return events, lines


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


# -- baseline: the same stream, only json.loads --------------------------------


async def baseline(recording: Path | None, repeat: int, jobs: int, tmp: Path) -> dict[str, Any]:
    """`recording` None: each supervisor replays nothing (3 events), which measures its start-up."""
    from tui.core.running.attempt import STREAM_LIMIT

    if recording is None:
        env = supervisor_env(lines="0")
        env.pop("PLAYDECK_REPLAY_EVENTS", None)
    else:
        env = supervisor_env(events=str(recording), repeat=str(repeat))
    count = 0
    first = last = 0.0

    async def one(index: int) -> None:
        nonlocal count, first, last
        directory = tmp / f"baseline-{index}"
        directory.mkdir(parents=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            REPLAY_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            limit=STREAM_LIMIT,
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps({"kwargs": {}, "dir": str(directory), "nice": JOB_NICE}) + "\n").encode())
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if message.get("t") == "ev":
                now = time.perf_counter()
                if not first:
                    first = now
                last = now
                count += 1
        proc.stdin.close()
        await proc.wait()

    cpu = time.process_time()
    children = _children_cpu()
    await asyncio.gather(*(one(i) for i in range(jobs)))
    cpu = time.process_time() - cpu
    children = _children_cpu() - children
    return {
        "events": count,
        "seconds": last - first,
        "rate": count / max(last - first, 1e-9),
        "cpu_us": cpu / count * 1e6,
        "children_cpu": children,
        "load": loadavg(),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the flood through engine and UI ---------------------------------------------


async def flood(
    recording: Path, repeat: int, jobs: int, tmp: Path, autogroup_nice: int | None = None
) -> dict[str, Any]:
    """The jobs through the real app; `autogroup_nice` is the what-if of jobs that lower their session's share."""
    from textual.screen import Screen

    from tui.console.app import PlaydeckApp
    from tui.core.planning.spec import JobSpec

    os.environ["PLAYDECK_SUPERVISOR_MODULE"] = REPLAY_MODULE
    os.environ["PLAYDECK_REPLAY_EVENTS"] = str(recording)
    os.environ["PLAYDECK_REPLAY_REPEAT"] = str(repeat)
    os.environ.pop("PLAYDECK_REPLAY_LINES", None)
    go = tmp / f"go-{autogroup_nice}"
    os.environ["PLAYDECK_REPLAY_GO_FILE"] = str(go)  # the flood starts once the app has settled
    if autogroup_nice is None:
        os.environ.pop("PLAYDECK_REPLAY_AUTOGROUP_NICE", None)
    else:
        os.environ["PLAYDECK_REPLAY_AUTOGROUP_NICE"] = str(autogroup_nice)
    specs = [JobSpec(name=f"replay-{i:02d}", inventory=INVENTORY, playbook=CHATTY, limit="lb01") for i in range(jobs)]
    app = PlaydeckApp(
        specs=specs,
        inventory=INVENTORY,
        max_parallel=jobs,
        state_dir=tmp / f"state-{autogroup_nice}",
        job_nice=JOB_NICE,
    )
    count = 0
    first = last = 0.0
    cpu_first = 0.0

    def on_change(job: Any, what: str) -> None:
        nonlocal count, first, last, cpu_first
        if what == "event":
            now = time.perf_counter()
            if not first:
                first, cpu_first = now, time.process_time()
            last = now
            count += 1

    app.engine.subscribe(on_change)
    refresh = app._tick

    def timed_tick() -> None:
        start = time.perf_counter()
        refresh()
        tick_costs.append((start, time.perf_counter() - start))

    app._tick = timed_tick  # type: ignore[method-assign]
    frames: list[tuple[float, float]] = []  # (when, main-thread CPU)
    screen_update = getattr(Screen, "_on_timer_update", None)  # Textual's frame: compositor refresh

    def timed_frame(self: Screen) -> Any:
        at, start = time.perf_counter(), time.thread_time()
        try:
            return screen_update(self)
        finally:
            frames.append((at, time.thread_time() - start))

    if screen_update is not None:
        Screen._on_timer_update = timed_frame  # type: ignore[method-assign]
    lateness: list[tuple[float, float, float]] = []  # (start, how late, main-thread CPU used meanwhile)
    tick_costs: list[tuple[float, float]] = []  # (when, seconds)
    keys: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(TICK)
            lateness.append((start, time.perf_counter() - start - TICK, time.thread_time() - cpu))

    children_before = _children_cpu()
    try:
        result = await _drive(app, go, jobs, done, ticker, keys, lambda: first)
    finally:
        os.environ.pop("PLAYDECK_REPLAY_AUTOGROUP_NICE", None)
        os.environ.pop("PLAYDECK_REPLAY_GO_FILE", None)
        if screen_update is not None:
            Screen._on_timer_update = screen_update  # type: ignore[method-assign]
    sup_cpu = _children_cpu() - children_before
    during = [late for at, late, _ in lateness if first <= at <= last]
    own = [cpu for at, _, cpu in lateness if first <= at <= last]
    refreshes = [cost for at, cost in tick_costs if first <= at <= last]
    drawn = [cpu for at, cpu in frames if first <= at <= last]
    console_cpu = result["cpu_end"] - cpu_first
    return {
        "events": count,
        "seconds": last - first,
        "rate": count / (last - first) if last > first else 0.0,
        "console_cpu_us": console_cpu / max(count, 1) * 1e6,
        "children_cpu": sup_cpu,
        "late_max": max(during, default=float("nan")),
        "late_p99": percentile(during, 0.99),
        "late_p50": percentile(during, 0.50),
        "ticks": len(during),
        "own_max": max(own, default=float("nan")),
        "own_p99": percentile(own, 0.99),
        "refresh_max": max(refreshes, default=float("nan")),
        "refresh_p50": percentile(refreshes, 0.5),
        "refreshes": len(refreshes),
        "frames": len(drawn),
        "frame_p50": percentile(drawn, 0.5),
        "frame_max": max(drawn, default=float("nan")),
        "frame_cpu": sum(drawn),
        "key_max": max(keys, default=float("nan")),
        "key_p50": percentile(keys, 0.5),
        "keys": len(keys),
        "key_timeouts": result["key_timeouts"],
        "statuses": result["statuses"],
        "logs": result["logs"],
        "load": loadavg(),
    }


async def _drive(
    app: Any, go: Path, jobs: int, done: asyncio.Event, ticker: Any, keys: list[float], first: Any
) -> dict[str, Any]:
    """Run the app headless: start the flood once it has settled, press keys during it, wait for the end."""
    from tui.console.widgets.inventory_pane import InventoryPane
    from tui.console.widgets.job_grid import JobGrid

    key_timeouts = 0
    async with app.run_test(size=(120, 40)) as pilot:
        grid = app.query_one(JobGrid)
        deadline = time.monotonic() + 60
        while app.query_one(InventoryPane).inventory is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        go.touch()

        async def presser() -> None:
            nonlocal key_timeouts
            while not done.is_set():
                await asyncio.sleep(KEY_EVERY)
                if done.is_set() or not first():
                    continue
                before = grid.cursor
                key = "j" if before < grid.row_count - 1 else "k"
                start = time.perf_counter()
                press = asyncio.create_task(pilot.press(key))
                while grid.cursor == before and time.perf_counter() - start < 10:
                    await asyncio.sleep(0.002)
                if grid.cursor == before:
                    key_timeouts += 1
                else:
                    keys.append(time.perf_counter() - start)
                await press

        tasks = [asyncio.create_task(ticker()), asyncio.create_task(presser())]
        while len(app.engine.jobs) < jobs:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(app.engine.wait_idle(), 1800)
        done.set()
        await asyncio.gather(*tasks)
        cpu_end = time.process_time()
        await pilot.pause(0.3)  # one more render of the final state
        statuses = [j.status.value for j in app.engine.jobs]
        logs = [(j.last.events_log, j.last.log) for j in app.engine.jobs if j.last is not None]
    return {"cpu_end": cpu_end, "key_timeouts": key_timeouts, "statuses": statuses, "logs": logs}


# -- where the console's time per event goes (no processes, no UI) --------------------


def stage_costs(recording: Path, events: int = 20_000) -> dict[str, float]:
    """CPU microseconds per event for each step the engine takes on a message, best of 3."""
    from tests.bench.replay_supervisor import load_recording, repeated
    from tui.core.engine import Engine, Job
    from tui.core.planning.spec import JobSpec
    from tui.core.running.attempt import Attempt
    from tui.core.running.supervisor import trim_event
    from tui.core.sanitize import sanitized

    recorded = load_recording(recording)
    stream = list(repeated(recorded, max(1, events // len(recorded))))
    lines = [(json.dumps(trim_event(e), default=str, ensure_ascii=False) + "\n").encode() for e in stream]
    tmp = Path(tempfile.mkdtemp(prefix="playdeck-bench-stages-"))
    try:

        def best(step: Any, items: list[Any]) -> float:
            times = []
            for _ in range(3):
                start = time.process_time()
                for item in items:
                    step(item)
                times.append(time.process_time() - start)
            return min(times) / len(items) * 1e6

        messages = [json.loads(line) for line in lines]
        engine = Engine(tmp)
        engine.subscribe(lambda job, what: None)

        def on_message(message: dict[str, Any]) -> None:  # a fresh attempt per round: results stay small
            engine._on_message(job, attempt, message)

        job = Job(id=0, spec=JobSpec(name="stages", inventory=INVENTORY))
        attempt = Attempt(number=1, limit=None, directory=tmp, marker="stages")
        return {
            "bytes": sum(map(len, lines)) / len(lines),
            "json.loads": best(json.loads, lines),
            "sanitized": best(sanitized, messages),
            "_on_message": best(on_message, messages),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the measurement, in a fresh interpreter -------------------------------------------


def _autogroup_enabled() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "?"


def ceiling(console_us: float, supervisor_us: float, cores: int) -> float:
    """Events/s the CPU allows on `cores` idle cores: the console is one thread, the supervisors share the rest."""
    return min(1e6 / console_us, cores * 1e6 / (console_us + supervisor_us))


def child(quick: bool) -> list[dict[str, Any]]:
    total = 20_000 if quick else 200_000
    tmp = Path(tempfile.mkdtemp(prefix="playdeck-bench-ingest-"))
    os.environ["PLAYDECK_STATE_DIR"] = str(tmp / "state")
    cores = len(os.sched_getaffinity(0))
    try:
        load_start = loadavg()
        reuse = os.environ.get("PLAYDECK_BENCH_RECORDING")  # to iterate on the bench without Ansible
        recording = Path(reuse) if reuse else record(tmp)
        recorded = sum(1 for _ in open(recording, encoding="utf-8"))
        repeat = max(1, round(total / JOBS / (recorded - 2)))
        per_job, lines_per_job = expected_per_job(recording, repeat)
        startup = asyncio.run(baseline(None, 1, JOBS, tmp / "b0"))["children_cpu"] / JOBS  # per process
        base1 = asyncio.run(baseline(recording, repeat, JOBS, tmp / "b1"))
        got = asyncio.run(flood(recording, repeat, JOBS, tmp))
        base2 = asyncio.run(baseline(recording, repeat, JOBS, tmp / "b2"))
        what_if = asyncio.run(flood(recording, repeat, JOBS, tmp, autogroup_nice=JOB_NICE))
        stages = stage_costs(recording, 4_000 if quick else 20_000)
        base = (base1["rate"] + base2["rate"]) / 2
        reader_us = (base1["cpu_us"] + base2["cpu_us"]) / 2
        sup_us = sum(max(0.0, b["children_cpu"] - startup * JOBS) / b["events"] * 1e6 for b in (base1, base2)) / 2
        on_disk = [(count_lines(events), count_lines(log)) for events, log in got["logs"] + what_if["logs"]]
        statuses = got["statuses"] + what_if["statuses"]
        complete = (
            got["events"] == per_job * JOBS
            and what_if["events"] == per_job * JOBS
            and all(s == "successful" for s in statuses)
            and all(e == per_job and o == lines_per_job for e, o in on_disk)
        )
        rate = got["rate"]
        cap, cap_base = ceiling(got["console_cpu_us"], sup_us, cores), ceiling(reader_us, sup_us, cores)
        setup = (
            f"{JOBS} jobs x {repeat} copies of a {recorded}-event chatty recording = {per_job * JOBS} events "
            f"({stages['bytes']:.0f} B a line on the pipe); load {load_start} at start"
        )
        ms = 1000.0
        return [
            {
                "name": "ingest events/s",
                "value": round(rate, 1),
                "unit": "events/s",
                "baseline": round(base, 1),
                "ratio": round(rate / base, 3) if base else None,
                "target": f">= {TARGET:.0f}",
                "met": rate >= TARGET,
                "notes": (
                    f"{setup}; engine+UI: {got['events']} events in {got['seconds']:.2f}s (load {got['load']}); "
                    f"baseline, a reader that only json.loads the same supervisors' lines: {base1['rate']:.0f}/s "
                    f"before (load {base1['load']}) and {base2['rate']:.0f}/s after (load {base2['load']})"
                ),
            },
            {
                "name": "ingest console CPU per event",
                "value": round(got["console_cpu_us"], 1),
                "unit": "us",
                "baseline": round(reader_us, 1),
                "ratio": round(got["console_cpu_us"] / reader_us, 2),
                "target": None,
                "met": None,
                "notes": (
                    f"console process CPU during the flood (engine + UI + asyncio) vs the json.loads-only "
                    f"reader; engine steps alone, no I/O: json.loads {stages['json.loads']:.1f} us, "
                    f"Engine._on_message {stages['_on_message']:.1f} us (of which sanitized() "
                    f"{stages['sanitized']:.1f} us); the 4 Hz refresh took p50 {got['refresh_p50'] * ms:.1f} ms, "
                    f"max {got['refresh_max'] * ms:.1f} ms ({got['refreshes']} runs); Textual drew "
                    f"{got['frames']} frames, CPU p50 {got['frame_p50'] * ms:.1f} ms, max "
                    f"{got['frame_max'] * ms:.1f} ms, {got['frame_cpu'] / max(got['events'], 1) * 1e6:.1f} us "
                    f"per event in all; each replay supervisor "
                    f"spends {sup_us:.1f} us/event past its {startup * 1000:.0f} ms start-up (the real one adds "
                    f"ansible-runner's own work)"
                ),
            },
            {
                "name": "ingest CPU ceiling on idle cores",
                "value": round(cap, 1),
                "unit": "events/s",
                "baseline": round(cap_base, 1),
                "ratio": round(cap / cap_base, 3),
                "target": f">= {TARGET:.0f}",
                "met": cap >= TARGET,
                "notes": (
                    f"load-independent: min(1 core / console CPU per event, {cores} cores / (console + "
                    f"supervisor CPU per event)) = min(1e6/{got['console_cpu_us']:.1f}, "
                    f"{cores}e6/({got['console_cpu_us']:.1f}+{sup_us:.1f})); baseline the same with the "
                    f"bare reader"
                ),
            },
            {
                "name": "ingest tick lateness max",
                "value": round(got["late_max"] * ms, 2),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": None,
                "notes": (
                    f"10 ms sleeps on the app's loop during the flood: {got['ticks']} ticks, p50 "
                    f"{got['late_p50'] * ms:.2f} ms, p99 {got['late_p99'] * ms:.2f} ms (load {got['load']}); "
                    f"the loop's own CPU within a tick: max {got['own_max'] * ms:.1f} ms, p99 "
                    f"{got['own_p99'] * ms:.1f} ms (the rest of the lateness is waiting for a CPU)"
                ),
            },
            {
                "name": "ingest tick lateness p99",
                "value": round(got["late_p99"] * ms, 2),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": None,
                "notes": f"load {got['load']}",
            },
            {
                "name": "ingest loop CPU within one tick max",
                "value": round(got["own_max"] * ms, 1),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": None,
                "notes": (
                    f"main-thread CPU between a 10 ms sleep and its wake-up (everything the loop ran "
                    f"meanwhile), p99 {got['own_p99'] * ms:.1f} ms; of it, one Textual frame: up to "
                    f"{got['frame_max'] * ms:.1f} ms"
                ),
            },
            {
                "name": "ingest key press to cursor move max",
                "value": round(got["key_max"] * ms, 1),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": None,
                "notes": (
                    f"pilot j/k every {KEY_EVERY}s during the flood: {got['keys']} presses, p50 "
                    f"{got['key_p50'] * ms:.1f} ms, {got['key_timeouts']} took over 10 s; 2 ms polling "
                    f"(load {got['load']})"
                ),
            },
            {
                "name": "ingest what-if: jobs' autogroup niced, key p50",
                "value": round(what_if["key_p50"] * ms, 1),
                "unit": "ms",
                "baseline": round(got["key_p50"] * ms, 1),
                "ratio": round(what_if["key_p50"] / got["key_p50"], 3) if got["key_p50"] else None,
                "target": None,
                "met": None,
                "notes": (
                    f"the same flood with each supervisor's session (kernel autogroup, "
                    f"sched_autogroup_enabled={_autogroup_enabled()}) given nice {JOB_NICE} like its process: "
                    f"{what_if['rate']:.0f} events/s, tick lateness p50 {what_if['late_p50'] * ms:.1f} / p99 "
                    f"{what_if['late_p99'] * ms:.1f} ms (as run: {got['late_p50'] * ms:.1f} / "
                    f"{got['late_p99'] * ms:.1f}), key press p50 {what_if['key_p50'] * ms:.1f} / max "
                    f"{what_if['key_max'] * ms:.1f} ms (as run: {got['key_p50'] * ms:.1f} / "
                    f"{got['key_max'] * ms:.1f}); baseline = as run (load {what_if['load']})"
                ),
            },
            {
                "name": "ingest every event on disk",
                "value": complete,
                "unit": "",
                "baseline": None,
                "ratio": None,
                "target": None,
                "met": complete,
                "notes": (
                    f"two floods: engine counted {got['events']} and {what_if['events']} of {per_job * JOBS}; "
                    f"statuses {sorted(set(statuses))}; "
                    f"events.jsonl lines per job {sorted({e for e, _ in on_disk})} (want {per_job}), output.log "
                    f"lines {sorted({o for _, o in on_disk})} (want {lines_per_job})"
                ),
            },
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[dict[str, Any]]:
    return child_rows(__name__ if __name__ != "__main__" else "tests.bench.bench_ingest", quick)


if __name__ == "__main__":
    raise SystemExit(main_for(run, child, "ingest ceiling through engine and UI"))
