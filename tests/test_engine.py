"""The engine against real ansible-playbook on the sample inventory (local connection).

Each test runs one or a few small playbooks on one or two hosts, so the whole
file stays within a couple of minutes on two cores.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, pids_with_cmdline, pids_with_env, playbook, run, until
from tui.core.engine import Engine, EngineError
from tui.core.planning.spec import Status, spec_for_playbook
from tui.core.running.procs import MARKER_VAR
from tui.core.storage.history import load_history


def spec(name: str, book: str, **options):
    return spec_for_playbook(playbook(book), INVENTORY, name=name, **options)


def slow(name: str, seconds: int, **options):
    """A job whose only task runs `sleep <seconds>`; pick a unique number per test to find it in /proc."""
    extra = {"slow_seconds": seconds, **options.pop("extra_vars", {})}
    return spec(name, "slow_task", limit="db01", extra_vars=extra, **options)


def assert_nothing_left(job, sleep_args: str | None = None) -> None:
    for attempt in job.attempts:
        assert pids_with_env(f"{MARKER_VAR}={attempt.marker}") == [], (
            f"processes of {job.name} attempt {attempt.number} survived"
        )
    if sleep_args:
        assert pids_with_cmdline(sleep_args) == [], f"{sleep_args!r} survived"


def test_success_has_per_host_results_and_complete_logs(isolated_state):
    async def main():
        engine = Engine(max_parallel=2)
        job = engine.add(spec("deploy", "deploy", limit="web01,web02"))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.SUCCESSFUL, job.message
    (attempt,) = job.attempts
    assert attempt.rc == 0 and attempt.status is Status.SUCCESSFUL
    assert set(job.hosts) == {"web01", "web02"}
    for counts in job.hosts.values():
        assert counts.ok >= 3 and counts.changed >= 1 and counts.failed == counts.unreachable == 0
    assert attempt.directory.is_relative_to(isolated_state)
    log = attempt.log.read_text()
    assert "PLAY RECAP" in log and "web01" in log
    events = attempt.events_log.read_text().splitlines()
    assert any('"playbook_on_stats"' in line for line in events)
    assert oct(isolated_state.stat().st_mode & 0o777) == "0o700"
    assert oct(attempt.log.stat().st_mode & 0o777) == "0o600"
    assert any("PLAY RECAP" in line for line in job.tail.lines)
    assert_nothing_left(job)


def test_one_failing_host():
    async def main():
        engine = Engine()
        job = engine.add(spec("fail", "failing_host", limit="web01,web02", extra_vars={"failing_host": "web02"}))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.FAILED
    assert job.last.rc == 2
    assert job.hosts["web02"].failed == 1
    assert job.hosts["web01"].failed == 0 and job.hosts["web01"].ok >= 3
    assert job.results.failed_hosts() == ["web02"]
    failed = [t for t in job.results.tasks if t.outcome == "failed"]
    assert failed and failed[0].host == "web02" and failed[0].message


def test_unreachable_host():
    async def main():
        engine = Engine()
        job = engine.add(spec("health", "health_check", limit="ghost01,cache01"))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.FAILED
    assert job.hosts["ghost01"].unreachable == 1
    assert job.hosts["cache01"].unreachable == 0 and job.hosts["cache01"].ok >= 1
    assert job.results.failed_hosts() == ["ghost01"]


def test_timeout_on_a_sleeping_task_ends_as_timeout_with_nothing_left():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 41, timeout=8))  # room for Ansible to reach the task on a loaded machine
        start = time.monotonic()
        await until(lambda: pids_with_cmdline("sleep 41"), what="the sleep task to start")
        await engine.wait_idle()
        return job, time.monotonic() - start

    job, took = run(main())
    assert job.status is Status.TIMEOUT
    assert job.last.status is Status.TIMEOUT
    assert 8.0 <= took < 30.0  # at its deadline, not at the sleep's natural end (41 s); generous for load
    assert "playdeck: stopped (timeout)" in job.last.log.read_text()
    assert_nothing_left(job, "sleep 41")


def test_cancel_running_task_leaves_no_process():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 42))
        await until(lambda: pids_with_cmdline("sleep 42"), what="the sleep task to start")
        sleepers = pids_with_cmdline("sleep 42")
        tree = pids_with_env(f"{MARKER_VAR}={job.last.marker}")
        assert len(tree) >= 3  # supervisor, ansible-playbook, its fork(s), the module, sleep
        started = time.monotonic()
        engine.cancel(job)
        await engine.wait_idle()
        return job, sleepers, tree, time.monotonic() - started

    job, sleepers, tree, took = run(main())
    assert job.status is Status.CANCELED
    assert took < 15.0  # long before the sleep's natural end (42 s)
    for pid in sleepers + tree:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
    assert_nothing_left(job, "sleep 42")
    assert job.hosts == {"db01": job.hosts["db01"]}  # a host that had started still has its row


def test_timeout_made_longer_while_running():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 43, timeout=3))
        await until(lambda: pids_with_cmdline("sleep 43"), what="the sleep task to start")
        engine.set_timeout(job, 6)
        set_at = time.monotonic()
        assert 5.0 < job.timeout_remaining() <= 6.0
        await asyncio.sleep(4)  # well past the original 3 s
        still_running = job.status is Status.RUNNING
        await engine.wait_idle()
        return job, still_running, time.monotonic() - set_at

    job, still_running, took = run(main())
    assert still_running
    assert job.status is Status.TIMEOUT
    assert 6.0 <= took < 20.0  # the new deadline, not the old (3 s) nor the sleep's end (43 s)
    assert_nothing_left(job, "sleep 43")


def test_timeout_made_shorter_while_running():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 44, timeout=120))
        await until(lambda: pids_with_cmdline("sleep 44"), what="the sleep task to start")
        engine.set_timeout(job, 1)
        set_at = time.monotonic()
        await engine.wait_idle()
        return job, time.monotonic() - set_at

    job, took = run(main())
    assert job.status is Status.TIMEOUT
    assert 1.0 <= took < 15.0  # the new deadline, not the old (120 s)
    assert_nothing_left(job, "sleep 44")


def test_timeout_removed_while_running_lets_the_job_finish():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 5))
        await until(lambda: job.results.task == "Run long database migration", what="the sleep task to start")
        engine.set_timeout(job, 2)  # would stop it 2 s from now, well before the 5 s sleep ends...
        assert job.timeout_remaining() is not None
        engine.set_timeout(job, 0)  # ...but is removed again
        assert job.timeout_remaining() is None
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.SUCCESSFUL, job.message


def test_flaky_job_succeeds_on_automatic_retry(tmp_path):
    async def main():
        engine = Engine()
        statuses = []
        engine.subscribe(lambda j, what: statuses.append(j.status) if what == "status" else None)
        job = engine.add(
            spec(
                "flaky",
                "flaky",
                limit="cache01",
                retries=2,
                retry_delay=0.2,
                extra_vars={"flaky_fail_attempts": 1, "fail_rate": 0, "flaky_state_dir": str(tmp_path / "flaky")},
            )
        )
        await engine.wait_idle()
        return job, statuses

    job, statuses = run(main())
    assert job.status is Status.SUCCESSFUL
    assert [a.status for a in job.attempts] == [Status.FAILED, Status.SUCCESSFUL]
    assert Status.WAITING in statuses
    assert job.attempts[0].log != job.attempts[1].log
    assert "flaky failure" in job.attempts[0].log.read_text()
    assert job.hosts["cache01"].failed == 0  # `hosts` is the last attempt's


def test_retry_of_failed_hosts_only():
    async def main():
        engine = Engine()
        job = engine.add(spec("fail", "failing_host", limit="web01,web02,web03", extra_vars={"failing_host": "web02"}))
        await engine.wait_idle()
        first = job.status
        engine.retry(job, failed_only=True)
        assert job.status is Status.RUNNING  # a slot was free: it started at once
        await engine.wait_idle()
        return job, first

    job, first = run(main())
    assert first is Status.FAILED
    assert [a.limit for a in job.attempts] == ["web01,web02,web03", "web02"]
    assert set(job.hosts) == {"web02"}  # only the failed host ran again (and fails again)
    assert job.status is Status.FAILED


def test_manual_retry_runs_the_same_spec_again_and_cancel_never_auto_retries():
    async def main():
        engine = Engine()
        job = engine.add(slow("slow", 45, retries=3, retry_delay=0.1))
        await until(lambda: pids_with_cmdline("sleep 45"), what="the sleep task to start")
        engine.cancel(job)
        await engine.wait_idle()
        after_cancel = (job.status, len(job.attempts))
        with pytest.raises(EngineError):
            engine.retry(job, failed_only=True)  # nothing failed: says so, changes nothing
        engine.retry(job)
        await until(lambda: len(pids_with_cmdline("sleep 45")) > 0, what="the retried sleep")
        engine.cancel(job)
        await engine.wait_idle()
        return job, after_cancel

    job, after_cancel = run(main())
    assert after_cancel == (Status.CANCELED, 1)
    assert [a.number for a in job.attempts] == [1, 2]
    assert [a.limit for a in job.attempts] == ["db01", "db01"]
    assert job.status is Status.CANCELED
    assert_nothing_left(job, "sleep 45")


def test_max_parallel_is_honoured_and_queue_starts_in_file_order():
    async def main():
        engine = Engine(max_parallel=2)
        peak, starts = [0], []

        def watch(job, what):
            if what == "status":
                running = sum(1 for j in engine.jobs if j.status is Status.RUNNING)
                peak[0] = max(peak[0], running)
                if job.status is Status.RUNNING:
                    starts.append(job.name)

        engine.subscribe(watch)
        jobs = [engine.add(slow(f"j{i}", 2, extra_vars={"playdeck_tag": i})) for i in range(4)]
        assert [j.status for j in jobs] == [Status.RUNNING, Status.RUNNING, Status.QUEUED, Status.QUEUED]
        queued = engine.add(slow("never", 2))
        engine.cancel(queued)  # cancel of a queued job just takes it out of the queue
        await engine.wait_idle()
        return jobs, queued, peak[0], starts

    jobs, queued, peak, starts = run(main())
    assert peak == 2
    assert starts == ["j0", "j1", "j2", "j3"]
    assert all(j.status is Status.SUCCESSFUL for j in jobs)
    assert queued.status is Status.CANCELED and queued.attempts == []


def test_actions_that_do_not_apply_say_why():
    async def main():
        engine = Engine()
        job = engine.add(spec("quick", "health_check", limit="cache01"))
        with pytest.raises(EngineError, match="only a finished job"):
            engine.retry(job)
        await engine.wait_idle()
        with pytest.raises(EngineError, match="only a queued, waiting or running job"):
            engine.cancel(job)
        with pytest.raises(EngineError, match="no timeout"):
            engine.set_timeout(job, 5)
        again = engine.add(spec("quick", "health_check", limit="cache01"))  # finished: the name is free again
        with pytest.raises(EngineError, match="already exists"):
            engine.add(spec("quick", "health_check"))  # ...but not while a job of that name is unfinished
        await engine.wait_idle()
        return job, again

    job, again = run(main())
    assert job.status is Status.SUCCESSFUL and len(job.attempts) == 1
    assert again.status is Status.SUCCESSFUL and again.id != job.id and len(again.attempts) == 1
    assert again.dirname != job.dirname and again.last.directory != job.last.directory  # never an old directory


def test_cancel_while_waiting_to_retry_and_retry_now(tmp_path):
    async def main():
        engine = Engine()
        always_fails = {"fail_rate": 1, "flaky_state_dir": str(tmp_path / "flaky")}
        job = engine.add(spec("flaky", "flaky", limit="cache01", retries=3, retry_delay=60, extra_vars=always_fails))
        await until(lambda: job.status is Status.WAITING, what="the first failure")
        assert job.retry_at is not None and "retry 1 of 3 in" in job.message
        engine.retry(job)  # retry now instead of waiting out the backoff
        assert job.status is Status.RUNNING
        await until(lambda: job.status is Status.WAITING, what="the second failure")
        engine.cancel(job)
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.CANCELED
    assert [a.status for a in job.attempts] == [Status.FAILED, Status.FAILED]


def test_names_that_slug_alike_get_separate_directories(isolated_state):
    """ "a/b" and "a_b" both slug to "a_b": each job still gets a directory, record and log of its own."""

    async def main():
        engine = Engine(max_parallel=3)
        jobs = [
            engine.add(spec_for_playbook(TEST_PLAYBOOKS / "load_one_debug.yml", INVENTORY, name=name, limit=host))
            for name, host in (("a/b", "web01"), ("a_b", "web02"), ("a_b-2", "cache01"))
        ]
        await engine.wait_idle()
        return engine, jobs

    engine, jobs = run(main())
    directories = [job.last.directory for job in jobs]
    assert len(set(directories)) == 3, directories
    assert [d.parent.name for d in directories] == ["a_b", "a_b-2", "a_b-2-2"]
    for job, mine, others in zip(
        jobs, ("web01", "web02", "cache01"), (("web02", "cache01"), ("web01", "cache01"), ("web01", "web02"))
    ):
        assert job.status is Status.SUCCESSFUL, job.message
        log = job.last.log.read_text()
        assert f"[{mine}]" in log and "PLAY RECAP" in log
        assert not any(f"[{other}]" in log for other in others), f"{job.name}'s log has another job's output"
    records = load_history(isolated_state)
    assert sorted(r["name"] for r in records if r["run"] == engine.run_id) == ["a/b", "a_b", "a_b-2"]


def test_retry_failed_targets_hosts_whose_names_hold_control_characters(tmp_path):
    """The grid shows a sanitized host name; the retry must still reach the host Ansible knows."""
    import yaml

    hostile, globby = "bad\x1b]0;PWN\x07host", "b*ad,x"
    hosts = {
        name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        for name in ("good01", hostile, globby)
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, allow_unicode=True), encoding="utf-8")
    book = tmp_path / "fail_some.yml"
    book.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.fail: {msg: boom}\n      when: inventory_hostname != 'good01'\n"
    )

    async def main():
        engine = Engine()
        job = engine.add(spec_for_playbook(book, inventory, name="hostile-retry"))
        await engine.wait_idle()
        first = set(job.hosts)
        engine.retry(job, failed_only=True)
        await engine.wait_idle()
        return job, first

    job, first = run(main())
    shown = "bad\u241b]0;PWN\u2407host"  # what the sanitizer shows: ESC and BEL made visible
    assert first == {"good01", shown, globby}
    second = job.attempts[1]
    # exactly the two failed hosts ran again, by their real names (else: "no hosts matched", rc != 2)
    assert set(second.results.hosts) == {shown, globby}, (second.limit, job.message)
    assert second.results.hosts[shown].failed == 1 and second.results.hosts[globby].failed == 1
    assert second.limit.startswith("@") and "\x1b" not in second.limit
    assert not any("\x1b]" in h or "\x07" in h for h in second.results.hosts)
