"""The engine under load and under racing operator actions, against real ansible-playbook.

- Load: 132 one-host jobs with 32 allowed at once; every job succeeds with exactly
  its own host's recap, never more than 32 run together, the queue starts in file
  order, and no process of any attempt is left afterwards.
- Races: Hypothesis drives random sequences of cancel / retry / retry(failed_only)
  / set_timeout with small waits between them, so actions land while a job is
  queued, starting, running, stopping, waiting to retry and finished; afterwards
  the engine is idle in bounded time, every status is explained by what was done
  to the job, and nothing of any attempt is still alive.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, pids_with_cmdline, pids_with_env, playbook, run, until
from tui.core.engine import Engine, EngineError, Job
from tui.core.planning.spec import FINISHED, Status, spec_for_playbook
from tui.core.running.procs import MARKER_VAR
from tui.core.running.results import HostCounts

# ---------------------------------------------------------------------------
# 1. Load
# ---------------------------------------------------------------------------

LOAD_JOBS = 132
LOAD_PARALLEL = 32
LOCAL_HOSTS = ("web01", "web02", "web03", "db01", "db02", "cache01", "lb01")  # never ghost01 (unreachable)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2 :].split()[1])


def _run_markers(run_id: str) -> list[int]:
    """Live processes carrying the marker of any attempt of this engine run."""
    return pids_with_env(f"{MARKER_VAR}={run_id}.")


@pytest.mark.timeout(600)
def test_32_concurrent_jobs_with_100_queued_complete_with_correct_per_host_results():
    book = TEST_PLAYBOOKS / "load_one_debug.yml"

    async def main():
        engine = Engine(max_parallel=LOAD_PARALLEL)
        running_now, peak, starts, bad_status = [0], [0], [], []

        def watch(job: Job, what: str) -> None:
            if what != "status":
                return
            running = sum(1 for j in engine.jobs if j.status is Status.RUNNING)
            running_now[0] = running
            peak[0] = max(peak[0], running)
            if job.status is Status.RUNNING:
                starts.append(job.name)
            elif job.status not in (Status.QUEUED, Status.SUCCESSFUL):
                bad_status.append((job.name, job.status, job.message))

        engine.subscribe(watch)
        # an independent look at the process table: live supervisors of this run, sampled
        proc_peak = [0]
        stop_sampling = asyncio.Event()

        async def sample() -> None:
            while not stop_sampling.is_set():
                # direct children only: a supervisor's fork that has not exec'd yet has the same command line
                ours = set(_run_markers(engine.run_id))
                supervisors = [
                    p for p in pids_with_cmdline("-m tui.core.running.supervisor") if p in ours and _ppid(p) == me
                ]
                proc_peak[0] = max(proc_peak[0], len(supervisors))
                await asyncio.sleep(1.0)

        me = os.getpid()
        started = time.monotonic()
        jobs = [
            engine.add(spec_for_playbook(book, INVENTORY, name=f"load{i:03d}", limit=LOCAL_HOSTS[i % len(LOCAL_HOSTS)]))
            for i in range(LOAD_JOBS)
        ]
        assert [j.status for j in jobs] == [Status.RUNNING] * LOAD_PARALLEL + [Status.QUEUED] * (
            LOAD_JOBS - LOAD_PARALLEL
        )
        sampler = asyncio.get_running_loop().create_task(sample())
        await asyncio.wait_for(engine.wait_idle(), 540)
        took = time.monotonic() - started
        stop_sampling.set()
        await sampler
        await engine.close()
        return engine, jobs, peak[0], proc_peak[0], starts, bad_status, took

    engine, jobs, peak, proc_peak, starts, bad_status, took = run(main())
    per_attempt = [(j.last.ended - j.last.started).total_seconds() for j in jobs]
    print(
        f"\nload: {LOAD_JOBS} jobs, max_parallel {LOAD_PARALLEL}: {took:.1f}s wall, "
        f"{took / LOAD_JOBS:.2f}s per job; attempt durations min {min(per_attempt):.1f}s "
        f"median {sorted(per_attempt)[len(per_attempt) // 2]:.1f}s max {max(per_attempt):.1f}s; "
        f"peak running {peak}, peak live supervisors sampled {proc_peak}"
    )
    assert bad_status == []
    for i, job in enumerate(jobs):
        host = LOCAL_HOSTS[i % len(LOCAL_HOSTS)]
        assert job.status is Status.SUCCESSFUL, (job.name, job.status, job.message)
        assert len(job.attempts) == 1 and job.last.rc == 0 and job.last.limit == host
        assert job.hosts == {host: HostCounts(ok=1)}, (job.name, job.hosts)
        assert job.results.has_stats  # counts came from Ansible's own recap
    assert peak == LOAD_PARALLEL  # the cap is reached and never passed
    assert proc_peak <= LOAD_PARALLEL
    assert starts == [j.name for j in jobs]  # each started once, the queue in file order
    assert _run_markers(engine.run_id) == []
    for job in jobs:
        assert pids_with_env(f"{MARKER_VAR}={job.last.marker}") == []
    assert took < 400, f"132 trivial jobs took {took:.0f}s"


# ---------------------------------------------------------------------------
# 2. Races between operator actions and the job lifecycle
# ---------------------------------------------------------------------------

RACE_LIMITS = ("db01", "db02", "cache01")
SLEEP_SUFFIX = ".0731"  # `sleep 2.0731`: durations no other test uses, to find them in /proc
WAIT_IDLE_BOUND = 60.0
TOL = 0.1  # seconds of clock slack when comparing deadlines with what we observed

# where actions landed ("cancel@running", "retry@queued:refused"), over all examples of each test
coverage: dict[str, Counter[str]] = {"property": Counter(), "pinned": Counter()}


def _sleep_arg(seconds: int) -> str:
    return f"{seconds}{SLEEP_SUFFIX}"


@dataclass
class AttemptLog:
    """What the test saw of one attempt, from the engine's notifications."""

    started_at: float
    deadlines: list[tuple[float, float | None]]  # (monotonic time, deadline in effect from then on)
    ended_at: float | None = None
    stop_reason_at_end: str | None = None


@dataclass
class Applied:
    action: str
    state: str  # the job's state when the action landed
    attempt: int  # number of attempts when it landed
    after: Status


@dataclass
class JobLog:
    attempts: dict[int, AttemptLog] = field(default_factory=dict)
    applied: list[Applied] = field(default_factory=list)
    prev_status: Status = Status.QUEUED


def _state(job: Job) -> str:
    if job.status is Status.RUNNING:
        last = job.last
        if last is not None and last.stop_reason is not None:
            return "stopping"
        if job._process is not None and job._process.proc is None:
            return "spawning"  # the attempt's supervisor is being started
        if last is None or not last.results.task:
            return "starting"
        return "running"
    if job.status.finished:
        return "finished"
    return job.status.value  # queued, waiting


def _snapshot(job: Job) -> tuple[Any, ...]:
    last = job.last
    return (
        job.status,
        len(job.attempts),
        job.timeout,
        job.deadline,
        job.next_limit,
        job.retries_left,
        job.retry_at,
        job.message,
        job._timer,
        last.stop_reason if last else None,
        last.status if last else None,
    )


def _timeout_justified(log: AttemptLog) -> bool:
    """Some deadline in effect for this attempt really passed while it was in effect."""
    assert log.ended_at is not None
    segments = log.deadlines + [(log.ended_at, None)]
    for (since, deadline), (until_, _) in zip(segments, segments[1:]):
        if deadline is not None and deadline <= until_ + TOL:
            return True
    return False


def _overdue(log: AttemptLog, slack: float) -> float | None:
    """A deadline that stayed in effect for more than `slack` seconds past it, if any."""
    assert log.ended_at is not None
    segments = log.deadlines + [(log.ended_at, None)]
    for (since, deadline), (until_, _) in zip(segments, segments[1:]):
        if deadline is not None and until_ - max(deadline, since) > slack:
            return deadline
    return None


actions_st = st.lists(
    st.tuples(
        st.integers(0, 2),  # which job (modulo the number of jobs)
        st.sampled_from(["cancel", "retry", "retry_failed", "timeout"]),
        st.sampled_from([None, 0.5, 1.0, 5.0]),  # set_timeout's value (None means 0)
        st.one_of(  # what to wait for before it: seconds, or (bounded) until some job reaches a state
            st.sampled_from([0.0, 0.01, 0.05]),
            st.floats(0.0, 1.5),
            st.tuples(st.integers(0, 2), st.sampled_from(["spawning", "running", "stopping", "waiting", "finished"])),
        ),
    ),
    min_size=3,
    max_size=8,
)

jobs_st = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 1), st.sampled_from([None, None, 1.5])),  # seconds, retries, timeout
    min_size=2,
    max_size=3,
)


@pytest.mark.timeout(280)
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(jobs=jobs_st, actions=actions_st, max_parallel=st.integers(1, 2))
def test_random_operator_actions_never_deadlock_and_end_consistently(jobs, actions, max_parallel):
    asyncio.run(_race(jobs, actions, max_parallel, coverage["property"]))


# The moments random waits rarely hit, pinned: each is one sequence checked by the same properties.
PINNED = {
    "actions-while-waiting-to-retry": (
        [(1, 1, 1.5), (2, 1, 1.5)],
        2,
        [
            (0, "timeout", 5.0, (0, "waiting")),
            (1, "cancel", None, (1, "waiting")),
            (1, "retry", None, 0.0),
            (1, "retry", None, (1, "waiting")),
            (0, "timeout", None, (0, "running")),
        ],
    ),
    # the attempt is already stopping at its timeout when the operator cancels: the cancel is accepted
    "cancel-while-stopping-at-timeout": ([(3, 1, 1.5), (1, 0, None)], 1, [(0, "cancel", None, (0, "stopping"))]),
    # the timeout is removed / made longer while the attempt's supervisor is being started
    # (a 3 s sleep outlives the first 2.5 s timeout, so only the new one decides)
    "timeout-removed-while-spawning": ([(3, 0, 2.5)], 1, [(0, "timeout", None, (0, "spawning"))]),
    "timeout-longer-while-spawning": ([(3, 0, 2.5)], 1, [(0, "timeout", 20.0, (0, "spawning"))]),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(PINNED))
def test_pinned_operator_action_races(case):
    jobs, max_parallel, actions = PINNED[case]
    asyncio.run(_race(jobs, actions, max_parallel, coverage["pinned"]))


async def _race(job_params, actions, max_parallel, landed: Counter[str]) -> None:
    engine = Engine(max_parallel=max_parallel)
    logs: dict[int, JobLog] = {}

    def watch(job: Job, what: str) -> None:
        log = logs.setdefault(job.id, JobLog())
        t = time.monotonic()
        if what == "status":
            if job.status is Status.RUNNING and log.prev_status is not Status.RUNNING:
                log.attempts[len(job.attempts)] = AttemptLog(started_at=t, deadlines=[(t, job.deadline)])
            elif log.prev_status is Status.RUNNING and job.status is not Status.RUNNING:
                attempt_log = log.attempts[len(job.attempts)]
                attempt_log.ended_at = t
                attempt_log.stop_reason_at_end = job.last.stop_reason
            log.prev_status = job.status
        elif what == "timeout" and job.status is Status.RUNNING and job.last.stop_reason is None:
            log.attempts[len(job.attempts)].deadlines.append((t, job.deadline))

    engine.subscribe(watch)
    sleeps = []
    jobs: list[Job] = []
    try:
        for i, (seconds, retries, timeout) in enumerate(job_params):
            sleeps.append(_sleep_arg(seconds))
            jobs.append(
                engine.add(
                    spec_for_playbook(
                        playbook("slow_task"),
                        INVENTORY,
                        name=f"race{i}",
                        limit=RACE_LIMITS[i],
                        extra_vars={"slow_seconds": float(_sleep_arg(seconds))},
                        retries=retries,
                        retry_delay=0.1,
                        timeout=timeout,
                    )
                )
            )

        for index, action, seconds, wait in actions:
            if isinstance(wait, tuple):  # land on a state that lasts only a moment (waiting: ~0.1 s)
                other, target = jobs[wait[0] % len(jobs)], wait[1]
                give_up = time.monotonic() + 6
                while (
                    _state(other) != target
                    and not (target != "finished" and other.status.finished)
                    and time.monotonic() < give_up
                ):
                    await asyncio.sleep(0 if target == "spawning" else 0.002)  # spawning lasts a few ms
            else:
                await asyncio.sleep(wait)
            job = jobs[index % len(jobs)]
            log = logs[job.id]
            state, before = _state(job), _snapshot(job)
            status = job.status
            try:
                if action == "cancel":
                    engine.cancel(job)
                elif action == "retry":
                    engine.retry(job)
                elif action == "retry_failed":
                    engine.retry(job, failed_only=True)
                else:
                    engine.set_timeout(job, seconds)
            except EngineError:
                landed[f"{action}@{state}:refused"] += 1
                assert _snapshot(job) == before, f"{action} raised EngineError but changed {job.name}"
                # refusing is right only where the action does not apply
                if action == "cancel":
                    assert status.finished, f"cancel of a {state} job refused"
                elif action == "retry":
                    assert not status.finished and status is not Status.WAITING, f"retry of a {state} job refused"
                elif action == "retry_failed":
                    assert not status.finished or job.last is None or not job.last.results.failed_hosts(), (
                        f"retry of failed hosts {job.last.results.failed_hosts()} refused"
                    )
                else:
                    assert status.finished, f"set_timeout on a {state} job refused"
                continue
            landed[f"{action}@{state}"] += 1
            log.applied.append(Applied(action, state, before[1], job.status))
            # immediate effects of an action that applied
            if action == "cancel":
                assert status in (Status.QUEUED, Status.RUNNING, Status.WAITING), state
                if status is Status.RUNNING:
                    assert job.status is Status.RUNNING and job.last.stop_reason in ("cancel", "timeout")
                else:
                    assert job.status is Status.CANCELED
            elif action in ("retry", "retry_failed"):
                assert status.finished or (action == "retry" and status is Status.WAITING), state
                assert job.status in (Status.QUEUED, Status.RUNNING)
                assert job.retry_at is None
            else:
                assert not status.finished
                if status is Status.RUNNING:
                    expected = None if not seconds else time.monotonic() + seconds
                    assert (job.deadline is None) == (expected is None)
                    if expected is not None:
                        assert abs(job.deadline - expected) < TOL
                else:
                    assert job.timeout == (seconds or None)

        # (a) never deadlocks: idle within a bound
        try:
            await asyncio.wait_for(engine.wait_idle(), WAIT_IDLE_BOUND)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"not idle after {WAIT_IDLE_BOUND}s: {[(j.name, j.status, j.message, len(j.attempts)) for j in jobs]}"
            ) from None
    finally:
        # whatever happened above, end every process of this example before the next one
        try:
            await asyncio.wait_for(engine.close(), 30)
        except asyncio.TimeoutError:
            pass

    for job in jobs:
        _check_job(job, logs[job.id])
    # (d) nothing carrying any attempt's marker, (e) no sleep of ours
    await until(lambda: not _run_markers(engine.run_id), timeout=5, what="marked processes to be gone")
    for job in jobs:
        for attempt in job.attempts:
            assert pids_with_env(f"{MARKER_VAR}={attempt.marker}") == [], (
                f"{job.name} attempt {attempt.number} left processes"
            )
    for arg in set(sleeps):
        assert pids_with_cmdline(f"sleep {arg}") == [], f"'sleep {arg}' survived"


def _check_job(job: Job, log: JobLog) -> None:
    where = (
        f"{job.name}: {job.status} ({job.message!r}); actions {[(a.action, a.state, a.attempt) for a in log.applied]}; "
        f"attempts {[(a.number, a.status.value, a.stop_reason) for a in job.attempts]}"
    )
    # (b) finished
    assert job.status in FINISHED, where
    assert job.deadline is None and job._timer is None and job._process is None, where
    # (c) attempts 1..n, each finished with ended >= started
    assert [a.number for a in job.attempts] == list(range(1, len(job.attempts) + 1)), where
    for attempt in job.attempts:
        assert attempt.ended is not None and attempt.ended >= attempt.started, where
        assert attempt.status in FINISHED, where
        if attempt.stop_reason == "cancel":
            assert attempt.status is Status.CANCELED, where
        elif attempt.stop_reason == "timeout":
            assert attempt.status is Status.TIMEOUT, where
        else:  # nothing stopped it, and the play cannot fail on its own
            assert attempt.status in (Status.SUCCESSFUL, Status.TIMEOUT), where
        if attempt.status is Status.TIMEOUT:
            attempt_log = log.attempts[attempt.number]
            assert _timeout_justified(attempt_log), (
                f"attempt {attempt.number} ended as timeout though no deadline in effect had passed: "
                f"started {attempt_log.started_at:.3f}, deadlines {attempt_log.deadlines}, ended {attempt_log.ended_at:.3f}; {where}"
            )
        if attempt.status is Status.SUCCESSFUL:
            overdue = _overdue(log.attempts[attempt.number], slack=4.0)
            assert overdue is None, (
                f"attempt {attempt.number} ran 4s past its deadline {overdue} and succeeded; {where}"
            )
    # which statuses the last actions explain
    lifecycle = [a for a in log.applied if a.action != "timeout"]
    last = lifecycle[-1] if lifecycle else None
    if last is not None and last.action == "cancel":
        # an applied cancel is the operator's last word: the job ends canceled, and is never retried after it
        assert len(job.attempts) == last.attempt, f"a new attempt started after the operator's cancel; {where}"
        assert job.status is Status.CANCELED, f"last applied action was cancel ({last.state}); {where}"
    for applied in log.applied:
        if applied.action == "cancel" and applied.state != "queued" and applied.attempt:
            canceled = job.attempts[applied.attempt - 1]
            assert canceled.status is not Status.SUCCESSFUL, (
                f"attempt {applied.attempt} succeeded after a cancel; {where}"
            )
    if not job.attempts:
        assert job.status is Status.CANCELED and last is not None and last.action == "cancel", where
        return
    final = job.last
    if job.status is not Status.CANCELED or final.status is Status.CANCELED:
        assert job.status is final.status, where  # the job says what its last attempt did
    else:  # canceled while queued or waiting after its last attempt
        assert last is not None and last.action == "cancel" and last.state in ("queued", "waiting"), where
    if final.stop_reason == "timeout" or final.status is Status.TIMEOUT:
        assert job.status in (Status.TIMEOUT, Status.CANCELED), where
    if job.status in (Status.TIMEOUT, Status.FAILED):
        assert job.retries_left == 0, f"ended {job.status} with {job.retries_left} automatic retries left; {where}"
    # attempts come only from the first run, manual retries and automatic retries within budget
    manual = sum(1 for a in log.applied if a.action in ("retry", "retry_failed") and a.state == "finished")
    assert len(job.attempts) <= (1 + manual) * (1 + job.spec.retries), where


ACTIONS = ("cancel", "retry", "retry_failed", "timeout")
LIVE = ("spawning", "starting", "running", "stopping")  # an attempt exists and has not ended
# Floors for one run of the property test (10 examples of 3-8 actions). Hypothesis drew, over 300
# simulated runs of these strategies, at least 3 of each action (median 11-17); three real runs
# landed 6-20 of each, in 6-7 distinct job states, with 9-13 cancels of a live attempt.
MIN_PER_ACTION = 2
MIN_STATES = 4
MIN_LIVE_CANCELS = 1


def test_zz_race_coverage_report():
    """Where the random actions landed (runs after the property test): printed, and held to a floor,
    so a change that makes the actions miss the moments they are meant to race fails here."""
    for name, landed in coverage.items():
        print(f"\nrace actions landed ({name}): " + ", ".join(f"{k}={v}" for k, v in sorted(landed.items())))
    landed = coverage["property"]
    if not landed:
        pytest.skip("the property test did not run in this session")
    per_action = Counter(key.split("@")[0] for key in landed.elements())
    states = {key.split("@")[1].split(":")[0] for key in landed}
    live_cancels = sum(landed[f"cancel@{state}"] for state in LIVE)
    assert all(per_action[a] >= MIN_PER_ACTION for a in ACTIONS), per_action
    assert len(states) >= MIN_STATES, states
    assert live_cancels >= MIN_LIVE_CANCELS, landed
