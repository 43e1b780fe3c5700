"""The job engine: queue, concurrency cap, attempts, timeouts, cancels and retries.

Everything runs on one asyncio loop and never blocks it: each attempt is a
supervisor process (see `supervisor.py`) whose JSON lines are read here. State
lives on `Job` objects; listeners are told what changed and read it from there.
A running attempt's deadline, prompt and stop are in attempt_control.py (a mixin).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from pathlib import Path
from typing import Any, Callable

from tui.core.attempt_control import AttemptControl, EngineError
from tui.core.job import Job, failure_summary, restored_job
from tui.core.job import Prompt as Prompt  # re-exported: callers import it from here
from tui.core.planning.spec import RETRYABLE, JobSpec, Status, launch_args
from tui.core.running.attempt import Attempt, AttemptProcess, now, runner_kwargs
from tui.core.sanitize import remember_real_names, sanitized
from tui.core.scheduling import circuit
from tui.core.scheduling.chains import start_order
from tui.core.scheduling.links import ChainError, Releaser, bind, check_batch, first_status, retry_status
from tui.core.scheduling.locks import HostLocks, UnresolvedLock, check_resolved
from tui.core.storage.audit import AuditLog
from tui.core.storage.history import job_record, owner, write_json
from tui.core.storage.logstore import LogTail, attempt_dir, new_run_id, slug
from tui.core.storage.paths import ensure_private_dir
from tui.core.storage.paths import state_dir as default_state_dir

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
BUSY = frozenset({Status.QUEUED, Status.BLOCKED, Status.RUNNING, Status.WAITING})  # the engine is not idle
CANCELABLE = BUSY | {Status.SCHEDULED}
Listener = Callable[["Job", str], None]


PROMPT_POLICIES = ("fail", "ask")


class Engine(AttemptControl):
    """Runs jobs; every public method is called from the loop's thread."""

    def __init__(
        self,
        state_dir: Path | None = None,
        max_parallel: int = 4,
        *,
        grace: float = 1.0,
        job_nice: int = 0,
        tail_lines: int = 2000,
        prompts: str = "fail",
    ):
        """`prompts`: what a playbook waiting for input does to its job. "fail" (unattended runs)
        stops it at once and ends it failed, saying how to pass the answer; "ask" (the console)
        keeps it running with `job.prompt` set until `answer_prompt`, a cancel or its timeout."""
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if prompts not in PROMPT_POLICIES:
            raise ValueError(f"prompts must be one of {PROMPT_POLICIES}")
        self.prompts = prompts
        self.state_dir = state_dir or default_state_dir()
        self.run_id = new_run_id()
        self.audit = AuditLog(self.state_dir / "audit.jsonl")
        self._run_dir: Path | None = None
        self.max_parallel = max_parallel
        self.grace = grace
        self.job_nice = job_nice
        self.tail_lines = tail_lines
        self.jobs: list[Job] = []
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._releaser = Releaser(self._set_status)
        self._locks = HostLocks()  # `lock: hosts`: who holds which host, who waits
        self._draining = False  # closing: nothing starts or unblocks any more
        # kept by _set_status so no status change or scheduling pass scans every job (a 1,000-job
        # chain or schedule set would make each of them cost O(jobs), the whole O(jobs²))
        self._busy: set[int] = set()
        self._running: set[int] = set()
        self._queued: set[int] = set()
        self._on_node: dict[str, set[int]] = {}  # node name -> ids of its running jobs (its capacity)
        self._by_name: dict[str, Job] = {}  # this run's newest job of each name
        self._dirnames: set[str] = set()

    # -- observing ----------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """`listener(job, what)` with what in {"status", "event", "timeout", "prompt"}; it must not block.

        "prompt": `job.prompt` was set (the job waits for input) or cleared (answered)."""
        self._listeners.append(listener)

    def _notify(self, job: Job, what: str) -> None:
        for listener in self._listeners:
            try:
                listener(job, what)
            except Exception:  # a broken listener must not stop jobs
                log.exception("listener failed")

    def _set_status(self, job: Job, status: Status, message: str = "") -> None:
        if job.status is Status.RUNNING and status is not Status.RUNNING:
            self._locks.release(job)  # the caller schedules again: a job waiting for its hosts may start
        if status is not Status.BLOCKED:
            self._locks.forget(job)
        job.status = status
        job.message = message
        for ids, member in (
            (self._busy, status in BUSY),
            (self._running, status is Status.RUNNING),
            (self._queued, status is Status.QUEUED),
        ):
            if member:
                ids.add(job.id)
            else:
                ids.discard(job.id)
        node = job.spec.node
        if node is not None:
            on_node = self._on_node.setdefault(node.name, set())
            if status is Status.RUNNING:
                on_node.add(job.id)
            else:
                on_node.discard(job.id)
        self._save(job)
        self._notify(job, "status")
        if self._busy:
            self._idle.clear()
        else:
            self._idle.set()
        if status.finished and job.children and not self._draining:
            self._releaser.parent_ended(job)  # its blocked children run, wait on, or are skipped

    # -- history ------------------------------------------------------------
    def _save(self, job: Job) -> None:
        """Keep the job's record on disk current, so a crash leaves it findable (and `interrupted`)."""
        if job.history:
            return
        try:
            if self._run_dir is None:
                self._run_dir = ensure_private_dir(self.state_dir / "runs" / self.run_id)
                write_json(self._run_dir / "owner.json", owner())
            directory = ensure_private_dir(self._run_dir / job.dirname)
            write_json(directory / "job.json", job_record(job, self.run_id))
        except OSError as exc:
            log.warning("job record not saved: %s", exc)

    def restore(self, record: dict[str, Any]) -> Job:
        """A job of an earlier run, read-only: its status, results and logs as they were."""
        job = restored_job(record, len(self.jobs), LogTail(self.tail_lines))
        self.jobs.append(job)
        self._dirnames.add(job.dirname)
        return job

    def record(self, action: str, job: Job | None = None, **args: Any) -> None:
        """An operator action for the audit trail, for actions the engine does not see (quitting)."""
        self.audit.record(action, job.name if job else None, **args)

    # -- operator actions ---------------------------------------------------
    def add(self, spec: JobSpec, secrets: dict[str, str] | None = None) -> Job:
        """Queue a new job. A name is taken only while its job is unfinished: a finished job's
        name may be launched again, as a new job (new id, own directory) beside the old one.

        Its `after` names the newest job of each name: it waits (blocked) for them."""
        return self.add_all([spec], secrets)[0]

    def add_all(self, specs: list[JobSpec], secrets: dict[str, str] | None = None) -> list[Job]:
        """Queue a batch (a job file): all or none. `after` names a job of the batch, else the
        newest of that name; the queue starts once all are in, so priorities apply among them."""
        names = [spec.name for spec in specs]
        for spec in specs:
            newest = self._by_name.get(spec.name)  # only a name's newest job can be unfinished
            if newest is not None and not newest.status.finished:
                raise EngineError(f"a job named {spec.name!r} already exists and has not finished")
            if names.count(spec.name) > 1:
                raise EngineError(f"the name {spec.name!r} is given to more than one job")
        try:
            check_batch({spec.name: spec.after for spec in specs}, lambda name: self._newest(name) is not None)
            check_resolved(specs)
        except (ChainError, UnresolvedLock) as exc:
            raise EngineError(str(exc)) from None
        jobs = [self._new_job(spec, secrets) for spec in specs]
        bind(jobs, self._newest)
        for job in jobs:
            self.record(
                "adhoc" if job.spec.module else "launch",
                job,
                **launch_args(job.spec),
                prompts=sorted(k for k, v in job.secrets.items() if v),
            )  # which, never what
        for job in jobs:  # a scheduled one waits for its schedule (tui/server/schedules.py) to `fire` it
            self._set_status(job, *(first_status(job) if job.spec.schedule is None else (Status.SCHEDULED, "")))
        self._schedule()
        return jobs

    def _new_job(self, spec: JobSpec, secrets: dict[str, str] | None) -> Job:
        job = Job(
            id=len(self.jobs),
            spec=spec,
            timeout=spec.timeout,
            retries_left=spec.retries,
            next_limit=spec.limit,
            tail=LogTail(self.tail_lines),
            secrets=dict(secrets or {}),
            dirname=self._dirname(spec.name),
            run=self.run_id,
        )
        self.jobs.append(job)
        self._by_name[spec.name] = job
        self._dirnames.add(job.dirname)
        return job

    def _newest(self, name: str) -> Job | None:
        """The job an `after` of a new job names: the newest of this run with that name."""
        return self._by_name.get(name)

    def _dirname(self, name: str) -> str:
        """`slug(name)`, or `slug-2`, `slug-3`...: "a/b" and "a_b" must not share a directory, nor a
        job launched again under a finished one's name (every job counts, finished or not)."""
        taken = self._dirnames
        base = slug(name)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def get(self, name: str) -> Job:
        """The newest job of that name (a finished name may have been launched again)."""
        own = self._by_name.get(name)
        if own is not None:
            return own
        for job in reversed(self.jobs):
            if job.name == name:
                return job
        raise EngineError(f"no job named {name!r}")

    def _writable(self, job: Job) -> None:
        if job.history:
            raise EngineError(f"{job.name} is from an earlier run and is read-only: launch it again instead")

    def cancel(self, job: Job) -> None:
        """Stop a running job, or take a queued, blocked or waiting one out of the queue."""
        self._writable(job)
        if job.status in CANCELABLE:
            self.record("cancel", job, status=job.status.value)
        if job.status is Status.RUNNING:
            self._stop(job, "cancel")
        elif job.status in CANCELABLE:
            self._clear_timer(job)
            job.retry_at = None
            if job.status is Status.SCHEDULED:
                message = "canceled: its schedule ends"
            elif job.status is Status.WAITING:
                message = "canceled while waiting to retry"
            else:
                message = "canceled before it ran" if not job.attempts else "canceled before it ran again"
            self._set_status(job, Status.CANCELED, message)
            self._schedule()
        else:
            raise EngineError(
                f"{job.name} is {job.status}: only a queued, waiting or running job, or a blocked one, can be canceled"
            )

    def retry(self, job: Job, failed_only: bool = False) -> None:
        """Run a finished job again: all of it, or only its failed and unreachable hosts.

        A job waiting for an automatic retry is queued at once instead.
        """
        self._writable(job)
        if job.status is Status.WAITING and not failed_only:
            self.record("retry", job, now=True)
            self._clear_timer(job)
            job.retry_at = None
            self._set_status(job, Status.QUEUED)
            self._schedule()
            return
        if not job.status.finished:
            raise EngineError(f"{job.name} is {job.status}: only a finished job can be retried")
        if failed_only:
            last = job.last
            hosts = last.results.failed_hosts_real() if last is not None else []
            if not hosts:
                raise EngineError(
                    f"{job.name} has no failed or unreachable hosts in its last attempt: retry all instead"
                )
            job.next_limit = self._limit_for(job, hosts)
            self.record("retry-failed", job, limit=job.next_limit)
        else:
            job.next_limit = job.spec.limit
            self.record("retry", job)
        job.retries_left = job.spec.retries
        job.timeout = job.spec.timeout
        job.failures, job.circuit_open = 0, False  # the operator's retry closes the circuit
        self._set_status(job, *retry_status(job))
        self._releaser.parent_restarted(job)  # children it skipped wait for it again
        self._schedule()

    def fire(self, job: Job, schedule: bool = True) -> None:
        """A scheduled run (tui/server/schedules.py): the job runs again with its spec's limit, retries
        and timeout; unlike an operator's retry it keeps the circuit, and an open one refuses.
        `schedule=False`: the caller fires many at once and then calls `start_queued` once."""
        self._writable(job)
        if job.circuit_open or not (job.status is Status.SCHEDULED or job.status.finished):
            raise EngineError(f"{job.name} is {job.status}{', its circuit open' if job.circuit_open else ''}")
        job.next_limit, job.retries_left, job.timeout = job.spec.limit, job.spec.retries, job.spec.timeout
        self._set_status(job, Status.QUEUED)
        if schedule:
            self._schedule()

    def start_queued(self) -> None:
        """One scheduling pass (after `fire(..., schedule=False)` of a batch)."""
        self._schedule()

    def rest(self, job: Job, message: str) -> None:
        """A scheduled job between runs: `scheduled`, its message the next run."""
        self._set_status(job, Status.SCHEDULED, message)

    def _limit_for(self, job: Job, hosts: list[str]) -> str:
        """A --limit naming exactly `hosts`. Plain names go on the command line; a name Ansible
        would read as a pattern (or one holding control characters) goes in a file, `@FILE`,
        whose lines Ansible takes one host each."""
        if all(_PLAIN_HOST.fullmatch(host) for host in hosts):
            return ",".join(hosts)
        directory = ensure_private_dir(self.state_dir / "runs" / self.run_id / job.dirname)
        path = directory / f"retry-{len(job.attempts) + 1}.hosts"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("".join(f"{host}\n" for host in hosts))
        return f"@{path}"

    def set_max_parallel(self, value: int) -> None:
        if value < 1:
            raise EngineError("max_parallel must be at least 1")
        self.max_parallel = value
        self._schedule()

    async def wait_idle(self) -> None:
        """Until no job is queued, running or waiting to retry."""
        await self._idle.wait()

    def drain(self) -> None:
        """From now on nothing starts and no child is released (a canceled parent must not start
        its `failure` children while everything is being stopped); cancel what is left."""
        self._draining = True

    async def close(self) -> None:
        """Cancel everything unfinished and wait until every process is gone."""
        self.drain()
        for job in self.jobs:
            if not job.status.finished:
                self.cancel(job)
        await self.wait_idle()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- scheduling ---------------------------------------------------------
    def _schedule(self) -> None:
        if self._draining:
            return
        running = len(self._running)
        self._locks.new_pass()
        ready = [self.jobs[i] for i in self._queued | self._locks.waiting]
        for job in start_order(ready):  # priority, then file order
            if running >= self.max_parallel:
                if job.status is Status.BLOCKED:  # waited for a lock: now, like any queued job, for a slot
                    self._set_status(job, Status.QUEUED)
                continue
            node = job.spec.node
            if node is not None and len(self._on_node.get(node.name, ())) >= node.capacity:
                # its node is full: it waits queued, and takes no slot of max_parallel
                full = f"waiting for node {node.name}: {node.capacity} of {node.capacity} running there"
                if (job.status, job.message) != (Status.QUEUED, full):
                    self._set_status(job, Status.QUEUED, full)
                continue
            why = self._locks.take(job)  # all its hosts or none (`lock: hosts` jobs only)
            if why is not None:
                if (job.status, job.message) != (Status.BLOCKED, why):
                    self._set_status(job, Status.BLOCKED, why)
                continue
            running += 1
            self._start(job)

    def _start(self, job: Job) -> None:
        number = len(job.attempts) + 1
        directory = attempt_dir(self.state_dir, self.run_id, job.dirname, number)
        attempt = Attempt(
            number=number,
            limit=job.next_limit,
            directory=directory,
            marker=f"{self.run_id}.{job.id}.{number}",
            node=job.spec.node.name if job.spec.node is not None else None,  # where it runs: the summary says
        )
        job.attempts.append(attempt)
        job.deadline = None if job.timeout is None else time.monotonic() + job.timeout
        self._arm_deadline(job)
        job.tail.add_text(f"── attempt {number}{f' (limit {attempt.limit})' if attempt.limit else ''} ──")
        self._set_status(job, Status.RUNNING)
        task = asyncio.get_running_loop().create_task(self._run(job, attempt), name=f"job-{job.name}-{number}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job, attempt: Attempt) -> None:
        process = AttemptProcess(attempt, lambda message: self._on_message(job, attempt, message), node=job.spec.node)
        job._process = process
        try:
            kwargs = runner_kwargs(job.spec, attempt.directory, attempt.limit)
            await process.run(kwargs, job.deadline, self.grace, self.job_nice, job.secrets)
        except Exception as exc:  # noqa: BLE001 - could not even start: the job ends as error
            log.exception("attempt failed to run")
            attempt.error = f"could not run the attempt: {type(exc).__name__}: {exc}"
        finally:
            job._process = None
            self._clear_timer(job)
        if job.prompt is not None:
            job.prompt = None
            self._notify(job, "prompt")
        self._finish(job, attempt, process.end)

    def _on_message(self, job: Job, attempt: Attempt, message: dict[str, Any]) -> None:
        if message.get("t") == "ev":
            remember_real_names(attempt.results.real_names, message)
            message = sanitized(message)  # host text enters here, and only clean text goes further
            attempt.results.feed(message)
            job.tail.add_text(message.get("stdout") or "")
            self._notify(job, "event")
        elif message.get("t") == "prompt":
            self._on_prompt(job, attempt, message)

    def _finish(self, job: Job, attempt: Attempt, end: dict[str, Any] | None) -> None:
        attempt.ended = now()
        job.deadline = None
        reason = attempt.stop_reason or (end or {}).get("reason")
        error = attempt.error or (end or {}).get("error")
        if end is not None:
            attempt.rc = end.get("rc")
        if reason == "cancel":
            status, message = Status.CANCELED, "canceled by the operator"
        elif reason == "timeout":
            status, message = Status.TIMEOUT, "stopped at its timeout"
        elif reason == "prompt" and job._failed_prompt is not None:
            status, message = Status.FAILED, job._failed_prompt.how_to_answer()
        elif error:
            status, message = Status.ERROR, error
        elif end is None:
            status, message = Status.ERROR, "the attempt's supervisor ended without a result"
        elif reason is not None:
            status, message = Status.ERROR, f"stopped ({reason})"
        elif end.get("status") == "successful" and attempt.rc == 0:
            status, message = Status.SUCCESSFUL, ""
        elif end.get("status") == "failed":
            status, message = Status.FAILED, failure_summary(attempt, job.tail.lines)
        else:
            status, message = Status.ERROR, f"ansible-runner ended as {end.get('status')} (rc {attempt.rc})"
        attempt.status = status
        attempt.error = error
        job._failed_prompt = None
        job.failures = circuit.failures_after(job.failures, status)
        if status in RETRYABLE and circuit.opens(job.spec.circuit, job.failures):
            job.circuit_open = True
            self._set_status(job, Status.FAILED, circuit.open_message(message, job.failures))
        # a playbook that asked for input will ask again: retrying it would only fail again
        elif status in RETRYABLE and job.retries_left > 0 and reason != "prompt":
            job.retries_left -= 1
            done = job.spec.retries - job.retries_left
            delay = min(MAX_BACKOFF, job.spec.retry_delay * 2 ** (done - 1)) * random.uniform(0.5, 1.0)
            job.next_limit = attempt.limit
            job.timeout = job.spec.timeout
            job.retry_at = time.monotonic() + delay
            job._timer = asyncio.get_running_loop().call_later(delay, self._requeue, job)
            self._set_status(job, Status.WAITING, f"{message}; retry {done} of {job.spec.retries} in {delay:.1f}s")
        else:
            self._set_status(job, status, message)
        self._schedule()

    def _requeue(self, job: Job) -> None:
        job._timer = None
        job.retry_at = None
        if job.status is Status.WAITING:
            self._set_status(job, Status.QUEUED)
            self._schedule()


_PLAIN_HOST = re.compile(r"[A-Za-z0-9_.-]+")  # never a pattern, never split: safe in a comma list
