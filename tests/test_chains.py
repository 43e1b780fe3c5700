"""Chains (`after`), priorities and the circuit breaker: real ansible-playbook through the
engine and through `playdeck run` (local connection, one host, one-task playbooks), plus
the pure planner (tui.core.scheduling) at unit level."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS, pids_with_cmdline, playbook, run, until
from tui.core.engine import Engine, EngineError
from tui.core.planning.spec import JobSpec, Status, spec_for_playbook
from tui.core.scheduling.chains import RUN, SKIP, WAIT, cycle, parents_first, start_order, verdict
from tui.core.summary import job_summary
from tui.server.wire import job_dict

FLAG_BOOK = """\
- name: Succeeds only once the flag file exists
  hosts: all
  gather_facts: false
  tasks:
    - name: Look for the flag
      ansible.builtin.command: "test -e {{ flag }}"
      changed_when: false
"""


def flag_book(tmp_path: Path) -> Path:
    path = tmp_path / "flag.yml"
    path.write_text(FLAG_BOOK)
    return path


def quick(name: str, **options) -> JobSpec:
    """A job that succeeds in one short task on db01."""
    extra = {"slow_seconds": 0, **options.pop("extra_vars", {})}
    return spec_for_playbook(playbook("slow_task"), INVENTORY, name=name, limit="db01", extra_vars=extra, **options)


def flagged(tmp_path: Path, name: str, **options) -> JobSpec:
    """A job that fails until `tmp_path/flag` exists."""
    extra = {"flag": str(tmp_path / "flag")}
    return spec_for_playbook(flag_book(tmp_path), INVENTORY, name=name, limit="db01", extra_vars=extra, **options)


def statuses(engine: Engine) -> dict[str, list[tuple[Status, str]]]:
    """Every (status, message) each job went through, by name."""
    seen: dict[str, list[tuple[Status, str]]] = {}

    def watch(job, what):
        if what == "status":
            seen.setdefault(job.name, []).append((job.status, job.message))

    engine.subscribe(watch)
    return seen


# -- the planner, pure ---------------------------------------------------------------


def test_verdicts_wait_run_and_skip_naming_the_parent():
    assert verdict([("a", "success", Status.RUNNING), ("b", "always", Status.QUEUED)]) == verdict(
        [("a", "success", Status.WAITING), ("b", "always", Status.BLOCKED)]
    )
    waiting = verdict([("a", "success", Status.RUNNING), ("b", "always", Status.FAILED)])
    assert (waiting.action, waiting.message) == (WAIT, "waiting for a")
    assert verdict([("a", "success", Status.SUCCESSFUL), ("b", "always", Status.TIMEOUT)]).action == RUN
    for status in (Status.FAILED, Status.TIMEOUT, Status.ERROR, Status.CANCELED):
        assert verdict([("a", "failure", status)]).action == RUN
        skipped = verdict([("a", "success", status)])
        assert skipped.action == SKIP and "a ended" in skipped.message and "success" in skipped.message
    # one condition that can no longer hold skips at once, even while another parent runs
    assert verdict([("x", "success", Status.RUNNING), ("a", "failure", Status.SUCCESSFUL)]).action == SKIP
    assert verdict([("a", "always", Status.SKIPPED)]).action == SKIP


def test_start_order_cycles_and_parents_first():
    class Q:
        def __init__(self, id, priority):
            self.id, self.priority = id, priority

    jobs = [Q(0, 0), Q(1, 10), Q(2, 5), Q(3, 10), Q(4, -1)]
    assert [j.id for j in start_order(jobs)] == [1, 3, 2, 0, 4]
    assert cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None
    assert parents_first({"v": ["d"], "x": [], "d": [], "r": ["d"]}) == ["x", "d", "v", "r"]
    # 5,000 chained jobs, listed children first: linear, no recursion limit
    n = 5000
    graph = {f"j{i}": [f"j{i + 1}"] if i + 1 < n else [] for i in range(n)}
    started = time.monotonic()
    assert cycle(graph) is None
    assert parents_first(graph) == [f"j{i}" for i in reversed(range(n))]
    assert time.monotonic() - started < 2.0


# -- through the engine, real Ansible -------------------------------------------------------


def test_after_success_failure_and_always(tmp_path):
    """b after a; c skipped because a succeeded; d after e always (e failed)."""

    async def main():
        engine = Engine(max_parallel=4)
        seen = statuses(engine)
        jobs = engine.add_all(
            [
                quick("a"),
                quick("b", after=(("a", "success"),), extra_vars={"tag": "b"}),
                quick("c", after=(("a", "failure"),)),
                flagged(tmp_path, "e"),
                quick("d", after=(("e", "always"),), extra_vars={"tag": "d"}),
            ]
        )
        blocked_at_once = {j.name: (j.status, j.message) for j in jobs if j.status is not Status.RUNNING}
        await engine.wait_idle()
        return {j.name: j for j in jobs}, seen, blocked_at_once

    jobs, seen, blocked = run(main())
    assert blocked == {
        "b": (Status.BLOCKED, "waiting for a"),
        "c": (Status.BLOCKED, "waiting for a"),
        "d": (Status.BLOCKED, "waiting for e"),
    }
    assert {n: j.status for n, j in jobs.items()} == {
        "a": Status.SUCCESSFUL,
        "b": Status.SUCCESSFUL,
        "c": Status.SKIPPED,
        "e": Status.FAILED,
        "d": Status.SUCCESSFUL,
    }
    assert jobs["b"].attempts[0].started >= jobs["a"].attempts[0].ended
    assert jobs["d"].attempts[0].started >= jobs["e"].attempts[0].ended
    assert jobs["c"].attempts == [] and jobs["c"].message == "skipped: a ended successful (runs only on its failure)"
    assert seen["c"] == [(Status.BLOCKED, "waiting for a"), (Status.SKIPPED, jobs["c"].message)]
    assert job_dict(jobs["d"])["after"] == [["e", "always"]]


def test_circuit_opens_then_a_manual_retry_closes_it_and_reevaluates_the_children(tmp_path):
    """p fails twice (circuit 2, though 5 retries are left): the breaker stops it; v (after p)
    is skipped, r (after p fails) runs. With the fault fixed, the operator's retry closes the
    circuit, v waits again at once and runs once p succeeds; r is not run again."""

    async def main():
        engine = Engine(max_parallel=2)
        parent = flagged(tmp_path, "p", retries=5, retry_delay=0.1, circuit=2)
        p, v, r = engine.add_all([parent, quick("v", after=(("p", "success"),)), quick("r", after=(("p", "failure"),))])
        await engine.wait_idle()
        opened = (p.status, p.message, len(p.attempts), p.circuit_open, job_dict(p)["circuit_open"])
        first = (v.status, v.message, r.status)
        (tmp_path / "flag").write_text("fixed\n")
        engine.retry(p)
        closed = (p.circuit_open, v.status, v.message)
        await engine.wait_idle()
        return p, v, r, opened, first, closed

    p, v, r, opened, first, closed = run(main())
    status, message, attempts, circuit_open, wire_open = opened
    assert (status, attempts, circuit_open, wire_open) == (Status.FAILED, 2, True, True)
    assert "circuit opened after 2 consecutive failures" in message and "db01" in message
    assert first == (Status.SKIPPED, "skipped: p ended failed (runs only on its success)", Status.SUCCESSFUL)
    assert closed == (False, Status.BLOCKED, "waiting for p")
    assert p.status is Status.SUCCESSFUL and len(p.attempts) == 3 and not p.circuit_open
    assert job_summary(p)["circuit_open"] is False
    assert v.status is Status.SUCCESSFUL and v.attempts[0].started >= p.attempts[-1].ended
    assert r.status is Status.SUCCESSFUL and len(r.attempts) == 1


def test_a_canceled_parent_counts_as_failure_and_a_blocked_child_can_be_canceled_then_retried():
    async def main():
        engine = Engine()
        parent = spec_for_playbook(
            playbook("slow_task"), INVENTORY, name="slow", limit="db01", extra_vars={"slow_seconds": 41}
        )
        slow, undo, verify = engine.add_all(
            [parent, quick("undo", after=(("slow", "failure"),)), quick("verify", after=(("slow", "success"),))]
        )
        with pytest.raises(EngineError, match="no job named 'nope'"):
            engine.add(quick("orphan", after=(("nope", "success"),)))
        await until(lambda: pids_with_cmdline("sleep 41"), what="the slow task")
        engine.cancel(verify)  # blocked: taken out at once, never runs
        engine.cancel(slow)
        await engine.wait_idle()
        canceled = (verify.status, verify.message, len(verify.attempts))
        engine.retry(verify)  # its parents have ended: the operator's retry runs it, whatever its condition
        retried = verify.status
        await engine.wait_idle()
        return slow, undo, verify, [j.name for j in engine.jobs], canceled, retried

    slow, undo, verify, names, canceled, retried = run(main())
    assert names == ["slow", "undo", "verify"]  # the orphan was refused whole
    assert canceled == (Status.CANCELED, "canceled before it ran", 0)
    assert retried is Status.RUNNING and verify.status is Status.SUCCESSFUL and len(verify.attempts) == 1
    assert slow.status is Status.CANCELED
    assert undo.status is Status.SUCCESSFUL and undo.attempts[0].started >= slow.attempts[0].ended


# -- through `playdeck run` ------------------------------------------------------------------


def playdeck_run(*argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "run", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_priority_order_and_a_chain_with_progress_lines(tmp_path):
    """One job at a time: the urgent job starts first; its child next in file order after `first`;
    the rollback is skipped, which does not fail the run."""
    (tmp_path / "jobs.yml").write_text(
        textwrap.dedent(
            f"""\
            inventory: {INVENTORY}
            max_parallel: 1
            jobs:
              - name: check
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                extra_vars: {{slow_seconds: 0}}
                after: urgent
              - name: first
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                extra_vars: {{slow_seconds: 0}}
              - name: urgent
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                extra_vars: {{slow_seconds: 0}}
                priority: 5
              - name: undo
                playbook: {PLAYBOOKS}/slow_task.yml
                after: {{urgent: failure}}
            """
        )
    )
    out = playdeck_run(str(tmp_path / "jobs.yml"), "--json", str(tmp_path / "out.json"))
    assert out.returncode == 0, out.stderr
    jobs = {j["name"]: j for j in json.loads((tmp_path / "out.json").read_text())["jobs"]}
    assert {n: j["status"] for n, j in jobs.items()} == {
        "first": "successful",
        "urgent": "successful",
        "check": "successful",
        "undo": "skipped",
    }
    assert all(j["circuit_open"] is False for j in jobs.values())
    started = sorted(jobs, key=lambda n: jobs[n]["attempts"][0]["started"] if jobs[n]["attempts"] else "~")
    assert started[:3] == ["urgent", "first", "check"]
    lines = [" ".join(line.split()[1:]) for line in out.stderr.splitlines()]
    assert "check blocked waiting for urgent" in lines
    assert "undo skipped skipped: urgent ended successful (runs only on its failure)" in lines


def test_run_refuses_a_cycle_with_file_line_and_key_and_runs_nothing(tmp_path):
    path = tmp_path / "jobs.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            inventory: {INVENTORY}
            jobs:
              - name: a
                playbook: {PLAYBOOKS}/slow_task.yml
                after: b
              - name: b
                playbook: {PLAYBOOKS}/slow_task.yml
                after: {{a: always}}
            """
        )
    )
    out = playdeck_run(str(path))
    assert out.returncode == 2
    assert f"{path}:5: jobs[0].after: the jobs form a cycle: a -> b -> a" in out.stderr
    assert not (tmp_path / "state" / "runs").exists()


def test_an_interrupted_run_never_starts_a_failure_child(tmp_path):
    """SIGTERM cancels everything: mid (blocked) ends canceled before slow has, and mid's
    `failure` child must be canceled with the rest, not started."""
    path = tmp_path / "jobs.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            inventory: {INVENTORY}
            jobs:
              - name: slow
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                extra_vars: {{slow_seconds: 43}}
              - name: mid
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                after: slow
              - name: undo
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: db01
                extra_vars: {{slow_seconds: 0}}
                after: {{mid: failure}}
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "run", str(path), "--json", str(tmp_path / "out.json")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        asyncio.run(until(lambda: pids_with_cmdline("sleep 43"), what="the slow task"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    jobs = {j["name"]: j for j in json.loads((tmp_path / "out.json").read_text())["jobs"]}
    assert [jobs[n]["status"] for n in ("slow", "mid", "undo")] == ["canceled"] * 3
    assert jobs["mid"]["attempts"] == [] and jobs["undo"]["attempts"] == []
