"""Cancel and timeout: from the API call (or the deadline) to every process gone.

Targets: cancel p99 <= 1 s; a timeout ends everything within 1 s of its deadline.

playdeck, through the Engine API on real Ansible (`slow_task.yml`, limit db01, a
`sleep` of a unique length per repetition):
- cancel: start, wait until the `sleep` runs (read from /proc), `engine.cancel(job)`,
  then poll /proc every 5 ms until no process carries `PLAYDECK_ATTEMPT=<marker>`
  and no such `sleep` remains;
- timeout: a 2 s timeout; from `job.deadline` (a monotonic time) to every process gone.

Baseline, measured the same way in the same run: ansible-runner's own cancel
(`run_async` with `cancel_callback`, default pexpect_timeout) and its own
`job_timeout`. Its processes carry a marker variable we give it, so we can count
what it leaves behind (with ansible-core 2.19 the forks `setsid()` and escape its
killpg); when something is left, "every process gone" never happens, so its
figure is the time until `run_async` reports the cancel (a lower bound). What
it leaves is killed by pid afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tests.bench.bench_overhead import INVENTORY, PLAYBOOKS, isolated, loadavg, percentile, row
from tests.conftest import _live, _read  # one /proc reader for every test and bench

SLOW = PLAYBOOKS / "slow_task.yml"
TARGET = 1.0  # seconds, absolute
POLL = 0.005
TIMEOUT = 2.0
START_WAIT = 120.0  # for the sleep to start, on a loaded machine
GONE_WAIT = 30.0
BENCH_VAR = "PLAYDECK_BENCH_MARK"


# -- the process table, read directly (independent of tui.core.running.procs) ---------


def scan(env_needle: str, sleep_seconds: int) -> tuple[set[int], set[int]]:
    """(live pids whose environment holds exactly `env_needle`, live `sleep <sleep_seconds>` pids)."""
    want = b"\0" + env_needle.encode() + b"\0"
    sleep_cmd = b"sleep\0" + str(sleep_seconds).encode() + b"\0"
    me = str(os.getpid())
    marked, sleeps = set(), set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        env = _read(f"/proc/{pid}/environ")
        is_marked = want in b"\0" + env
        is_sleep = _read(f"/proc/{pid}/cmdline") == sleep_cmd
        if (is_marked or is_sleep) and _live(pid):
            if is_marked:
                marked.add(int(pid))
            if is_sleep:
                sleeps.add(int(pid))
    return marked, sleeps


def kill_leftovers(pids: set[int]) -> None:
    """SIGKILL processes the baseline left (ours: started by this benchmark), by pid."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- playdeck -------------------------------------------------------------------


async def _wait(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def _is_supervisor(pid: int) -> bool:
    return b"tui.core.running.supervisor" in _read(f"/proc/{pid}/cmdline")


async def _gone(needle: str, seconds: int, limit: float = GONE_WAIT) -> tuple[dict[str, float], set[int]]:
    """Poll every 5 ms until nothing of the attempt is left.

    Returns the monotonic times at which the `sleep` was gone ("sleep"), everything but the
    supervisor was gone ("ansible"), and everything was gone ("all", missing if never within
    `limit`), and what was still alive at the end.
    """
    end = time.monotonic() + limit
    times: dict[str, float] = {}
    while True:
        marked, sleeps = scan(needle, seconds)
        now = time.monotonic()
        if not sleeps:
            times.setdefault("sleep", now)
        if not sleeps and not any(not _is_supervisor(pid) for pid in marked):
            times.setdefault("ansible", now)
        if not marked and not sleeps:
            times["all"] = now
            return times, set()
        if now > end:
            return times, marked | sleeps
        await asyncio.sleep(POLL)


async def playdeck_runs(
    state: Path, reps: int, first_seconds: int, kinds: tuple[str, ...] = ("cancel", "timeout", "retimed")
) -> dict[str, Any]:
    """Per repetition: a cancel, a timeout set at launch, and a timeout re-set while the sleep runs."""
    from tui.core.engine import Engine
    from tui.core.planning.spec import spec_for_playbook
    from tui.core.running.procs import MARKER_VAR

    engine = Engine(state, max_parallel=1)
    out: dict[str, Any] = {"problems": [], "leftover": 0, "sleep_before_deadline": 0, "statuses": {}}
    for kind in ("cancel", "timeout", "retimed"):
        out[kind] = {"all": [], "ansible": [], "sleep": [], "status": []}

    def record(kind: str, i: int, t0: float, times: dict[str, float], left: set[int]) -> None:
        if "all" not in times:
            out["leftover"] += len(left)
            out["problems"].append(f"{kind} {i}: {sorted(left)} still alive after {GONE_WAIT}s")
        for key, at in times.items():
            out[kind][key].append(at - t0)

    async def finished(kind: str, i: int, job: Any, t0: float, expect: str) -> None:
        await _wait(lambda: job.status.finished, GONE_WAIT, interval=POLL)
        out[kind]["status"].append(time.monotonic() - t0)
        out["statuses"].setdefault(kind, []).append(job.status.value)
        if job.status.value != expect:
            out["problems"].append(f"{kind} {i}: ended {job.status.value} ({job.message})")

    async def sleeping(kind: str, i: int, job: Any, needle: str, seconds: int) -> bool:
        if await _wait(lambda: bool(scan(needle, seconds)[1]), START_WAIT):
            return True
        out["problems"].append(f"{kind} {i}: sleep never started ({job.status.value}: {job.message})")
        if not job.status.finished:
            engine.cancel(job)
        await _wait(lambda: job.status.finished, GONE_WAIT)
        return False

    try:
        for i in range(reps):
            # cancel: the sleep is running, then the API call
            seconds = first_seconds + i
            job = None
            if "cancel" in kinds:
                job = engine.add(
                    spec_for_playbook(
                        SLOW, INVENTORY, name=f"cancel-{i}", limit="db01", extra_vars={"slow_seconds": seconds}
                    )
                )
            needle = f"{MARKER_VAR}={job.last.marker}" if job is not None and job.last is not None else ""
            if job is not None and await sleeping("cancel", i, job, needle, seconds):
                t0 = time.monotonic()
                engine.cancel(job)
                record("cancel", i, t0, *await _gone(needle, seconds))
                await finished("cancel", i, job, t0, "canceled")

            if "timeout" not in kinds:
                continue
            # timeout: 2 s from the attempt's start, measured from job.deadline
            seconds = first_seconds + 500 + i
            job = engine.add(
                spec_for_playbook(
                    SLOW,
                    INVENTORY,
                    name=f"timeout-{i}",
                    limit="db01",
                    extra_vars={"slow_seconds": seconds},
                    timeout=TIMEOUT,
                )
            )
            assert job.last is not None and job.deadline is not None
            deadline = job.deadline
            needle = f"{MARKER_VAR}={job.last.marker}"
            seen = False
            while time.monotonic() < deadline:
                seen = seen or bool(scan(needle, seconds)[1])
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            out["sleep_before_deadline"] += seen
            record("timeout", i, deadline, *await _gone(needle, seconds))
            await finished("timeout", i, job, deadline, "timeout")

            # re-timed: once the sleep runs, set_timeout(2 s) (the operator's `t`); from the new deadline
            seconds = first_seconds + 1000 + i
            job = engine.add(
                spec_for_playbook(
                    SLOW, INVENTORY, name=f"retimed-{i}", limit="db01", extra_vars={"slow_seconds": seconds}
                )
            )
            assert job.last is not None
            needle = f"{MARKER_VAR}={job.last.marker}"
            if await sleeping("retimed", i, job, needle, seconds):
                engine.set_timeout(job, TIMEOUT)
                assert job.deadline is not None
                deadline = job.deadline
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                record("retimed", i, deadline, *await _gone(needle, seconds))
                await finished("retimed", i, job, deadline, "timeout")
    finally:
        await engine.close()
    return out


# -- ansible-runner, the baseline -------------------------------------------------


def runner_runs(tmp: Path, reps: int, first_seconds: int, mode: str) -> dict[str, Any]:
    """mode "cancel": cancel_callback once the sleep runs; mode "timeout": job_timeout=2 s."""
    import ansible_runner

    out: dict[str, Any] = {"reported": [], "gone": [], "left": [], "problems": [], "statuses": []}
    for i in range(reps):
        seconds = first_seconds + i
        mark = f"{mode}-{os.getpid()}-{i}-{time.monotonic_ns()}"
        needle = f"{BENCH_VAR}={mark}"
        flag = threading.Event()
        started: dict[str, float] = {}
        finished: dict[str, float] = {}

        def on_status(data: dict[str, Any], runner_config: Any = None) -> None:
            # never raise here: an exception in a callback silently kills ansible-runner's thread
            status = data.get("status") if isinstance(data, dict) else None
            if status == "running":
                started["at"] = time.monotonic()
            elif status in ("canceled", "timeout", "successful", "failed", "error"):
                finished["at"] = time.monotonic()

        pdd = tmp / f"runner-{mode}-{i}"
        pdd.mkdir(parents=True)
        kwargs: dict[str, Any] = dict(
            private_data_dir=str(pdd),
            ident="a",
            playbook=str(SLOW),
            project_dir=str(PLAYBOOKS),
            inventory=str(INVENTORY),
            limit="db01",
            extravars={"slow_seconds": seconds},
            envvars={BENCH_VAR: mark},
            quiet=True,
            status_handler=on_status,
            cancel_callback=flag.is_set,  # default pexpect_timeout (5 s)
        )
        if mode == "timeout":
            kwargs["timeout"] = TIMEOUT
        thread, runner = ansible_runner.run_async(**kwargs)
        t0 = None
        if mode == "cancel":
            end = time.monotonic() + START_WAIT
            while not scan(needle, seconds)[1] and time.monotonic() < end and thread.is_alive():
                time.sleep(0.05)
            if not scan(needle, seconds)[1]:
                out["problems"].append(f"{mode} {i}: sleep never started ({runner.status})")
                flag.set()
                thread.join(60)
                kill_leftovers(set().union(*scan(needle, seconds)))
                continue
            t0 = time.monotonic()
            flag.set()
        # poll every 5 ms until everything is gone, or until 1 s after run_async returned
        gone_at = None
        hard_end = time.monotonic() + START_WAIT + GONE_WAIT
        while time.monotonic() < hard_end:
            marked, sleeps = scan(needle, seconds)
            now = time.monotonic()
            armed = t0 is not None or ("at" in started and now >= started["at"] + TIMEOUT)
            if armed and not marked and not sleeps:
                gone_at = now
                break
            if not thread.is_alive():
                finished.setdefault("at", now)  # the thread died without a final status
                if now - finished["at"] > 1.0:
                    break
            if t0 is None and "at" in started and now > started["at"] + TIMEOUT + 60:
                break
            time.sleep(POLL)
        thread.join(30)
        left = set().union(*scan(needle, seconds))
        if thread.is_alive() or runner.status not in ("canceled", "timeout"):
            out["problems"].append(
                f"runner {mode} {i}: ended {runner.status}{' (thread still running)' if thread.is_alive() else ''}"
            )
        out["statuses"].append(runner.status)
        if mode == "timeout":
            if "at" not in started:
                out["problems"].append(f"runner {mode} {i}: never reported 'running'")
                kill_leftovers(left)
                continue
            t0 = started["at"] + TIMEOUT  # job_start is taken just after 'running'
        assert t0 is not None
        out["reported"].append(finished.get("at", time.monotonic()) - t0)
        if gone_at is not None:
            out["gone"].append(gone_at - t0)
        out["left"].append(len(left))
        kill_leftovers(left)
    return out


# -- the report -------------------------------------------------------------------


def _stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    return percentile(values, 50), percentile(values, 99), (max(values) if values else None)


def run(quick: bool) -> list[dict[str, Any]]:
    reps = 5 if quick else 20
    rows: list[dict[str, Any]] = []
    with isolated("cancel") as (tmp, _env):
        load_before = loadavg()
        base = 3000 + (os.getpid() % 1000) * 20  # unique sleep lengths, also against other runs of this bench
        pd = asyncio.run(playdeck_runs(tmp / "state", reps, base))
        rc = runner_runs(tmp, reps, base + 2000, "cancel")
        rt = runner_runs(tmp, reps, base + 4000, "timeout")
        load_after = loadavg()

    def samples(values: list[float]) -> list[float]:
        return [round(x, 3) for x in values]

    def stages(kind: str) -> str:
        return stages_of(pd, kind)

    def stages_of(result: dict[str, Any], kind: str) -> str:
        parts = []
        for key, label in (
            ("sleep", "sleep gone"),
            ("ansible", "all but the supervisor gone"),
            ("status", "job status final"),
        ):
            p50, p99, _ = _stats(result[kind][key])
            if p50 is not None:
                parts.append(f"{label} p50 {p50:.3f} / p99 {p99:.3f} s")
        return "; ".join(parts)

    problems = pd["problems"] + rc["problems"] + rt["problems"]
    r50, r99, rmax = _stats(rc["reported"])
    q50, q99, qmax = _stats(rt["reported"])
    context = f"loadavg {load_before} -> {load_after}"

    c50, c99, cmax = _stats(pd["cancel"]["all"])
    rows.append(
        row(
            "cancel.playdeck.p50",
            c50,
            "s",
            baseline=r50,
            notes=f"engine.cancel() -> no process with the marker and no sleep left, "
            f"n={len(pd['cancel']['all'])}; {context}",
        )
    )
    rows.append(
        row(
            "cancel.playdeck.p99",
            c99,
            "s",
            baseline=r99,
            target=TARGET,
            target_of="value",
            notes=f"max {cmax or 0:.3f} s; {stages('cancel')}; samples {samples(pd['cancel']['all'])}",
        )
    )
    rows.append(
        row(
            "cancel.runner.p99",
            r99,
            "s",
            notes=f"baseline: ansible-runner run_async + cancel_callback (pexpect_timeout 5 s), cancel -> "
            f"status reported (processes never all gone: see leftover); p50 {r50 or 0:.3f}, max "
            f"{rmax or 0:.3f} s",
            samples=samples(rc["reported"]),
        )
    )
    left_c = rc["left"]
    rows.append(
        row(
            "cancel.runner.leftover_per_cancel",
            (sum(left_c) / len(left_c)) if left_c else None,
            "procs",
            notes=f"processes with the run's marker alive 1 s after run_async returned: {left_c} "
            f"(forks + modules + sleep; killed by pid afterwards); all gone in "
            f"{len(rc['gone'])}/{len(left_c)}",
        )
    )

    t50, t99, tmax = _stats(pd["timeout"]["all"])
    rows.append(
        row(
            "timeout.playdeck.p50",
            t50,
            "s",
            baseline=q50,
            notes=f"job.deadline -> every process gone; timeout {TIMEOUT:.0f} s set at launch; the sleep "
            f"was already running at the deadline in {pd['sleep_before_deadline']}/{reps} "
            f"(else Ansible was still starting); statuses "
            f"{sorted(set(pd['statuses'].get('timeout', [])))}",
        )
    )
    rows.append(
        row(
            "timeout.playdeck.p99",
            t99,
            "s",
            baseline=q99,
            target=TARGET,
            target_of="value",
            notes=f"max {tmax or 0:.3f} s; {stages('timeout')}; samples {samples(pd['timeout']['all'])}",
        )
    )
    m50, m99, mmax = _stats(pd["retimed"]["all"])
    rows.append(
        row(
            "timeout.playdeck.retimed_p99",
            m99,
            "s",
            baseline=q99,
            target=TARGET,
            target_of="value",
            notes=f"set_timeout(2 s) while the sleep runs -> new deadline -> every process gone; p50 "
            f"{m50 or 0:.3f}, max {mmax or 0:.3f} s; {stages('retimed')}",
        )
    )
    left_t = rt["left"]
    rows.append(
        row(
            "timeout.runner.p99",
            q99,
            "s",
            notes=f"baseline: ansible-runner job_timeout={TIMEOUT:.0f} s, ('running' status + {TIMEOUT:.0f} s) "
            f"-> status reported; p50 {q50 or 0:.3f}, max {qmax or 0:.3f} s; left {left_t} processes "
            f"per timeout; statuses {sorted(set(rt['statuses']))}",
            samples=samples(rt["reported"]),
        )
    )
    rows.append(
        row(
            "cancel+timeout.playdeck.leftover",
            pd["leftover"],
            "procs",
            target=0,
            target_of="value",
            notes="; ".join(problems) or "nothing left after any cancel or timeout",
        )
    )
    return rows
