"""Host locks (`lock: hosts`) and protected targets (`protect:`): the pure lock table, the
preflight's host resolution with Ansible's own inventory manager, real ansible-playbook
through `playdeck run`, and the server's submit path (`playdeck submit`, HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS, ROOT, run
from tests.test_chains import flagged, quick, statuses
from tests.test_server import audit, server, wait_for  # noqa: F401 - `server` is a fixture
from tui.core.engine import Engine, EngineError
from tui.core.planning.preflight import play_patterns, start_check
from tui.core.planning.spec import JobSpec, Status, spec_for_playbook
from tui.core.planning.wirespec import spec_from_json, spec_to_json
from tui.core.scheduling.locks import HostLocks


@dataclass(eq=False)
class J:
    id: int
    spec: JobSpec

    @property
    def name(self) -> str:
        return self.spec.name


def locker(id: int, *hosts: str, lock: str | None = "hosts") -> J:
    spec = JobSpec(name=f"j{id}", inventory=INVENTORY, lock=lock, resolved_hosts=hosts)
    return J(id, spec)


# -- the lock table, pure -------------------------------------------------------------------


def test_all_hosts_or_none_holder_named_and_reserved_for_the_first_waiter():
    locks = HostLocks()
    a, b, c, d = locker(0, "web01", "web02"), locker(1, "web02", "web03"), locker(2, "web03"), locker(3, "db01")
    free = locker(4, "web02", lock=None)
    locks.new_pass()
    assert locks.take(a) is None
    assert locks.take(b) == "waiting for host web02 (locked by j0)"
    assert locks.held_by(b) == [] and locks.is_waiting(b)  # none of its hosts: web03 stays free...
    # ...but reserved for b in this pass: c (later in start order) must not overtake it
    assert locks.take(c) == "waiting for host web03 (j1 waits for it first)"
    assert locks.take(d) is None and locks.take(free) is None  # disjoint, and a job without lock
    assert sorted(locks.holders) == ["db01", "web01", "web02"]
    locks.release(a)
    locks.new_pass()
    assert locks.take(b) is None and not locks.is_waiting(b)
    assert locks.held_by(b) == ["web02", "web03"]
    assert locks.take(c) == "waiting for host web03 (locked by j1)"


def test_a_lock_without_resolved_hosts_is_refused_and_lock_travels_on_the_wire():
    spec = spec_for_playbook(PLAYBOOKS / "slow_task.yml", INVENTORY, name="x", lock="hosts")
    with pytest.raises(EngineError, match="'x': lock: hosts needs the hosts resolved by the preflight"):
        Engine().add(spec)
    data = spec_to_json(replace(spec, resolved_hosts=("web01",)))
    assert data["lock"] == "hosts" and "resolved_hosts" not in data  # a client's hosts are never taken
    assert spec_from_json(data).lock == "hosts"
    with pytest.raises(ValueError, match="resolved_hosts: unknown key"):
        spec_from_json({**data, "resolved_hosts": ["web01"]})
    with pytest.raises(ValueError, match='lock: expected "hosts"'):
        spec_from_json({**data, "lock": "host"})


# -- through the engine, real Ansible (the hosts as the preflight would give them) ------------


def test_a_job_waiting_to_retry_frees_its_hosts_and_a_blocked_one_can_be_canceled(tmp_path):
    """p fails and waits 2 s to retry: its host is free meanwhile, so q (blocked on it) runs; r,
    blocked too, is canceled before it runs. No two attempts on db01 ever overlap."""
    locked = {"lock": "hosts", "resolved_hosts": ("db01",)}

    async def main():
        engine = Engine(max_parallel=4)
        seen = statuses(engine)
        p, q, r = engine.add_all(
            [
                flagged(tmp_path, "p", retries=1, retry_delay=4, **locked),
                quick("q", extra_vars={"slow_seconds": 1}, **locked),
                quick("r", **locked),
            ]
        )
        at_once = [(j.status, j.message) for j in (q, r)]
        engine.cancel(r)
        await engine.wait_idle()
        return p, q, r, at_once, seen

    p, q, r, at_once, seen = run(main())
    assert at_once == [(Status.BLOCKED, "waiting for host db01 (locked by p)")] * 2
    assert r.status is Status.CANCELED and r.attempts == []
    assert p.status is Status.FAILED and len(p.attempts) == 2 and q.status is Status.SUCCESSFUL
    assert p.attempts[0].ended <= q.attempts[0].started  # p's backoff let q run...
    spans = sorted((a.started, a.ended) for j in (p, q) for a in j.attempts)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))  # ...and nothing overlapped
    assert Status.WAITING in [status for status, _ in seen["p"]]


# -- the preflight resolves hosts with Ansible's inventory manager --------------------------


def test_preflight_resolves_hosts_from_limit_plays_and_imports_and_the_protected_ones(tmp_path):
    (tmp_path / "inner.yml").write_text("- hosts: db\n  tasks: []\n")
    (tmp_path / "outer.yml").write_text(
        "- hosts: web\n  tasks: []\n- ansible.builtin.import_playbook: inner.yml\n"
        "- hosts: '{{ target }}'\n  tasks: []\n"
    )
    (tmp_path / "web_only.yml").write_text("- hosts: [web]\n  tasks: []\n")
    assert play_patterns(tmp_path / "outer.yml") == ["web", "db", "all"]  # templated: all (never too little)
    specs = [
        spec_for_playbook(tmp_path / "web_only.yml", INVENTORY, name="web-part", limit="web01,db01"),
        spec_for_playbook(tmp_path / "outer.yml", INVENTORY, name="all-limited", limit="web01:web02:cache01"),
        JobSpec(name="adhoc", inventory=INVENTORY, module="ping", limit="lb"),
    ]
    check = start_check(specs, ["db", "*02", "cache*"])
    assert check() == {}
    assert check.hosts == {
        "web-part": ["web01"],  # the play's `web` within the limit: db01 is not touched
        "all-limited": ["web01", "web02", "cache01"],
        "adhoc": ["lb01"],
    }
    assert check.protected == {"web-part": [], "all-limited": ["web02", "cache01"], "adhoc": []}
    assert [s.resolved_hosts for s in check.resolved()] == [("web01",), ("web01", "web02", "cache01"), ("lb01",)]


# -- through `playdeck run`, real Ansible ----------------------------------------------------


def playdeck_run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "run", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def locks_file(tmp_path: Path) -> Path:
    """a and b share web02 (a: web01+web02, b: web02+web03); c (cache01) shares nothing;
    cache01 is protected (by a glob)."""
    path = tmp_path / "locks.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            inventory: {INVENTORY}
            lock: hosts
            protect: ["cache*", "lb"]
            jobs:
              - name: a
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: web01,web02
                extra_vars: {{slow_seconds: 2}}
              - name: b
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: web02,web03
                extra_vars: {{slow_seconds: 0}}
              - name: c
                playbook: {PLAYBOOKS}/slow_task.yml
                limit: cache01
                extra_vars: {{slow_seconds: 1}}
            """
        )
    )
    return path


def test_run_protected_refused_then_locked_jobs_never_overlap_while_a_disjoint_one_runs(tmp_path):
    path = locks_file(tmp_path)
    state = Path(os.environ["PLAYDECK_STATE_DIR"])
    refused = playdeck_run(str(path))
    assert refused.returncode == 2, refused.stderr
    assert "job 'c' would touch protected hosts: cache01 (protect: cache*, lb)" in refused.stderr
    assert "job 'a'" not in refused.stderr and not (state / "runs").exists()
    unchecked = playdeck_run(str(path), "--no-preflight")  # a lock needs resolved hosts
    assert unchecked.returncode == 2 and "lock: 'a', 'b', 'c': lock: hosts needs the hosts" in unchecked.stderr

    out = playdeck_run(str(path), "--yes", "--json", str(tmp_path / "out.json"))
    assert out.returncode == 0, out.stderr
    jobs = {j["name"]: j for j in json.loads((tmp_path / "out.json").read_text())["jobs"]}
    assert {n: j["status"] for n, j in jobs.items()} == {"a": "successful", "b": "successful", "c": "successful"}
    a, b, c = (jobs[n]["attempts"][0] for n in "abc")
    assert b["started"] >= a["ended"]  # b waited for a's hosts...
    assert c["started"] < a["ended"] and a["started"] < c["ended"]  # ...while c ran beside a
    lines = [" ".join(line.split()[1:]) for line in out.stderr.splitlines()]
    assert "b blocked waiting for host web02 (locked by a)" in lines
    entries = [(e["action"], e["job"], e["args"].get("hosts")) for e in audit(state) if "protect" in e["action"]]
    assert entries == [("protect-refused", "c", ["cache01"]), ("protect-confirmed", "c", ["cache01"])]
    launch = next(e for e in audit(state) if e["action"] == "launch" and e["job"] == "b")
    assert launch["args"]["lock"] == "hosts" and launch["args"]["hosts"] == ["web02", "web03"]


# -- the server's submit path --------------------------------------------------------------


def test_submit_refused_without_yes_then_locks_on_the_server(server, tmp_path):  # noqa: F811
    srv = server()
    path = locks_file(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(srv.socket))

    def submit(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tui", "submit", str(path), *argv]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    refused = submit()
    assert refused.returncode == 2, refused.stderr
    assert "job 'c' would touch protected hosts: cache01" in refused.stderr
    assert srv("GET", "/v1/jobs")[1]["jobs"] == []
    status, answer = srv("POST", "/v1/jobs", {"jobfile": str(path), "preflight": False, "yes": True})
    assert status == 400 and "lock: hosts needs the hosts resolved" in answer["problems"][0]
    status, answer = srv("POST", "/v1/jobs", {"jobfile": str(path), "yes": "y"})
    assert status == 400 and answer["error"] == '"yes" must be true or false'
    status, answer = srv("POST", "/v1/jobs", {"jobfile": str(path)})
    assert status == 409 and answer["protected"] == {"c": ["cache01"]}

    accepted = submit("--yes")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split() == ["a", "b", "c"]

    def jobs() -> dict[str, dict]:
        return {job["name"]: job for job in srv("GET", "/v1/jobs")[1]["jobs"]}

    blocked = wait_for(lambda: jobs()["b"]["status"] == "blocked" and jobs(), what="b blocked")
    assert blocked["b"]["message"] == "waiting for host web02 (locked by a)"
    wait_for(lambda: all(j["status"] == "successful" for j in jobs().values()), timeout=90, what="all done")
    done = jobs()
    assert done["b"]["attempts"][0]["started"] >= done["a"]["attempts"][0]["ended"]
    requests = [e["args"].get("request") for e in audit(srv.state) if e["action"] == "client"]
    assert requests.count("protect-refused") == 2  # the verb's and the bare request's
    submitted = next(e for e in audit(srv.state) if e["args"].get("request") == "submit")
    assert submitted["args"]["yes"] is True and submitted["args"]["protected"] == {"c": ["cache01"]}
