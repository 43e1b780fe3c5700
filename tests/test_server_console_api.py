"""What the console, as a thin client, needs from the server: one spec submitted with its secrets,
names that clash only with unfinished jobs, jobs picked by id, task results, history logs over the
event stream, and attach/detach in the audit trail. Real server process, real socket, real Ansible."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, end_leftovers, pids_with_cmdline, pids_with_env, playbook
from tests.test_server import Server, audit, hello, job_file, server, wait_for  # noqa: F401 - server: fixture
from tests.test_trail_and_secrets import SECRET, vaulted_playbook
from tui.client.connection import Connection, ServerError
from tui.core.planning.spec import JobSpec
from tui.core.planning.wirespec import SpecError, spec_from_json, spec_to_json

HELLO = TEST_PLAYBOOKS / "load_one_debug.yml"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One server for the tests that need no fresh state (starting one costs ~1 s)."""
    base = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLAYDECK_STATE_DIR", str(base / "state"))
        patch.setenv("TMPDIR", str(base))
        srv = Server(base)
        yield srv
        srv.stop()
        end_leftovers(lambda: pids_with_env(f"PLAYDECK_STATE_DIR={srv.state}"), wait=5)


def jobs_of(srv: Server) -> list[dict[str, Any]]:
    return srv("GET", "/v1/jobs")[1]["jobs"]


def by_id(srv: Server, number: int) -> dict[str, Any]:
    return next(job for job in jobs_of(srv) if job["id"] == number)


async def status_of(conn: Connection, number: int) -> str:
    return next(job["status"] for job in (await conn.jobs())["jobs"] if job["id"] == number)


def server_output(srv: Server) -> bytes:
    """What the server printed so far (stdout and stderr share the pipe), without blocking."""
    assert srv.proc.stdout is not None
    os.set_blocking(srv.proc.stdout.fileno(), False)
    return srv.proc.stdout.read() or b""


def test_spec_json_round_trip_and_every_problem_named(tmp_path):
    spec = JobSpec(
        name="deploy web",
        inventory=INVENTORY,
        playbook=HELLO,
        limit="web01",
        extra_vars={"a": [1, 2]},
        timeout=90.0,
        retries=2,
        check=True,
        forks=3,
        become=True,
    )
    data = json.loads(json.dumps(spec_to_json(spec)))
    assert data["inventory"] == str(INVENTORY) and data["playbook"] == str(HELLO)
    assert spec_from_json(data) == spec
    adhoc = JobSpec(name="up", inventory=INVENTORY, module="ansible.builtin.ping", limit="all")
    assert spec_from_json(json.loads(json.dumps(spec_to_json(adhoc)))) == adhoc

    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks: [\n")
    with pytest.raises(SpecError) as caught:
        spec_from_json(
            {
                "name": "",
                "inventory": "relative/hosts.yml",
                "playbook": str(broken),
                "retries": "3",
                "check": "yes",
                "timeout": -1,
                "bogus": 1,
            }
        )
    keys = sorted(problem.split(":")[0] for problem in caught.value.problems)
    assert keys == ["bogus", "check", "inventory", "name", "playbook", "retries", "timeout"], caught.value.problems
    assert any("syntax error" in p for p in caught.value.problems)
    with pytest.raises(SpecError, match="not both"):
        spec_from_json({**data, "module": "ping"})
    with pytest.raises(SpecError, match="missing"):
        spec_from_json({"name": "x", "inventory": str(INVENTORY)})


def test_submit_one_spec_with_secrets_that_never_come_back(shared, tmp_path):
    srv = shared
    before = len(jobs_of(srv))
    # invalid: 400 with one problem per key, nothing submitted
    code, body = srv("POST", "/v1/jobs", {"spec": {"name": "bad", "inventory": str(INVENTORY), "forks": 0}})
    assert code == 400 and body["problems"] == [
        "forks: expected a whole number >= 1, got 0 (int)",
        "playbook: missing: give a playbook, or a module for an ad-hoc command",
    ]
    wrong = {"spec": spec_to_json(JobSpec("w", INVENTORY, HELLO)), "secrets": {"vault": 12345678}}
    code, body = srv("POST", "/v1/jobs", wrong)
    assert code == 400 and "12345678" not in json.dumps(body)
    # the preflight (Ansible's inventory) refuses a limit that matches no host
    code, body = srv("POST", "/v1/jobs", {"spec": spec_to_json(JobSpec("z", INVENTORY, HELLO, limit="nosuchhost"))})
    assert code == 400 and body["problems"][0].startswith("job 'z': "), body
    assert len(jobs_of(srv)) == before

    book = vaulted_playbook(tmp_path)
    spec = JobSpec(name="vaulted", inventory=INVENTORY, playbook=book, limit="cache01")

    async def submit() -> list[int]:
        async with Connection(srv.socket) as conn:
            return await conn.submit_spec(spec, secrets={"vault": SECRET})

    [number] = asyncio.run(submit())
    job = wait_for(lambda: (j := by_id(srv, number))["status"] not in ("queued", "running") and j, what="vaulted")
    assert job["name"] == "vaulted" and job["status"] == "successful", job  # the vault opened with the secret
    assert SECRET not in json.dumps(jobs_of(srv))
    launch = next(e for e in audit(srv.state) if e["action"] == "launch" and e["job"] == "vaulted")
    submit_entry = next(
        e
        for e in audit(srv.state)
        if e["action"] == "client" and e["job"] is None and e["args"].get("jobs") == ["vaulted"]
    )
    assert launch["args"]["prompts"] == ["vault"] and submit_entry["args"]["client_pid"] == os.getpid()
    assert SECRET.encode() not in (srv.state / "audit.jsonl").read_bytes()
    assert SECRET.encode() not in server_output(srv)


def test_names_clash_only_with_unfinished_jobs_and_ids_pick_the_job(shared, tmp_path):
    srv = shared
    busy = JobSpec(
        name="busy", inventory=INVENTORY, playbook=playbook("slow_task"), limit="db01", extra_vars={"slow_seconds": 63}
    )

    async def main() -> tuple[int, int, ServerError, ServerError, list[str]]:
        async with Connection(srv.socket) as conn:
            [first] = await conn.submit_spec(busy, preflight=False)
            with pytest.raises(ServerError) as as_spec:
                await conn.submit_spec(busy, preflight=False)
            with pytest.raises(ServerError) as as_file:
                await conn.submit(job_file(tmp_path, {"name": "busy", "playbook": str(HELLO)}), preflight=False)
            while not pids_with_cmdline("sleep 63"):  # its task runs: the log has its heading
                await asyncio.sleep(0.1)
            await conn.cancel("busy", job_id=first)
            while await status_of(conn, first) != "canceled":
                await asyncio.sleep(0.1)
            [second] = await conn.submit_spec(busy, preflight=False)  # finished: the name is free
            with pytest.raises(ServerError) as done:
                await conn.cancel("busy", job_id=first)  # the old one, by id: finished, nothing to cancel
            assert done.value.status == 409
            await conn.set_timeout("busy", 0.5, job_id=second)
            while await status_of(conn, second) != "timeout":
                await asyncio.sleep(0.1)
            old_log = [line async for line in conn.log_lines("busy", job_id=first)]
            return first, second, as_spec.value, as_file.value, old_log

    first, second, as_spec, as_file, old_log = asyncio.run(main())
    assert as_spec.status == 409 and as_spec.problems == ["'busy' is running on the server"]
    assert as_file.status == 409 and as_file.problems == ["'busy' is running on the server"]
    assert second != first and by_id(srv, first)["status"] == "canceled"
    assert any("Run long database migration" in line for line in old_log)
    assert pids_with_cmdline("sleep 63") == []
    assert srv("POST", f"/v1/jobs/busy/cancel?id={first}")[0] == 409
    assert srv("POST", f"/v1/jobs/other/cancel?id={first}")[0] == 404  # the id's job has another name
    assert srv("POST", "/v1/jobs/busy/cancel?id=9999")[0] == 404
    assert srv("POST", "/v1/jobs/busy/cancel?id=first")[0] == 400
    cancels = [e for e in audit(srv.state) if e["action"] == "cancel" and e["job"] == "busy"]
    assert len(cancels) == 1  # only the first job's cancel applied; the refused ones changed nothing
    attempts = [j["attempts"] for j in jobs_of(srv) if j["name"] == "busy"]
    assert len(attempts) == 2 and attempts[0][0]["log"] != attempts[1][0]["log"]  # each its own directory


def test_results_and_the_new_job_keys(shared):
    srv = shared
    spec = JobSpec(name="mix", inventory=INVENTORY, playbook=TEST_PLAYBOOKS / "recap_mix.yml", limit="web01")

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Connection(srv.socket) as conn:
            [number] = await conn.submit_spec(spec, preflight=False)
            while await status_of(conn, number) in ("queued", "running"):
                await asyncio.sleep(0.1)
            results = await conn.results("mix", job_id=number)
            ws = await conn.events()
            try:
                snapshot = json.loads((await ws.receive(timeout=10)).data)
            finally:
                await ws.close()
            return results, next(j for j in snapshot["jobs"] if j["id"] == number)

    results, job = asyncio.run(main())
    outcomes = {(t["task"], t["outcome"]) for t in results["tasks"]}
    assert {("ok", "ok"), ("changed", "changed"), ("ignored failure", "ignored"), ("skipped", "skipped")} <= outcomes
    ignored = next(t for t in results["tasks"] if t["outcome"] == "ignored")
    assert ignored["host"] == "web01" and ignored["message"] and ignored["play"] is not None
    assert results["dropped"] == 0 and Path(results["events"]).is_file()
    assert job["events"] == results["events"] and job["dropped"] == 0 and job["number"] == 1
    assert job["last_limit"] == "web01" and job["ended"] and job["ended"] >= job["started"]
    assert srv("GET", "/v1/jobs/nosuch/results")[0] == 404


def test_history_log_by_id_over_the_event_stream_and_attach_audited(server, tmp_path):  # noqa: F811
    first = server()
    names = job_file(tmp_path, hello("old"), {**hello("gone"), "limit": "web02"})
    assert first("POST", "/v1/jobs", {"jobfile": str(names), "preflight": False})[0] == 201
    wait_for(lambda: {j["status"] for j in jobs_of(first)} == {"successful"}, what="both jobs")
    assert first("POST", "/v1/jobs/old/retry", {"failed": False})[0] == 200  # a second attempt
    wait_for(lambda: [a["status"] for a in jobs_of(first)[0]["attempts"]] == ["successful"] * 2, what="the retry")
    gone_log = Path(jobs_of(first)[1]["attempts"][0]["log"])
    first.stop()
    gone_log.unlink()

    second = server()
    history = {j["name"]: j["id"] for j in jobs_of(second) if j["history"]}
    assert (
        second(
            "POST", "/v1/jobs", {"jobfile": str(job_file(tmp_path, hello("old"), name="again.yml")), "preflight": False}
        )[0]
        == 201
    )

    async def main() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with Connection(second.socket) as conn:
            ws = await conn.events()
            try:
                await ws.receive(timeout=10)  # the snapshot
                await ws.send_json({"watch_ids": [history["old"], history["gone"]]})
                while {f["id"] for f in frames if f["t"] == "log"} != {history["old"], history["gone"]}:
                    frames.append(json.loads((await ws.receive(timeout=10)).data))
                await ws.send_json({"watch_ids": []})
                await ws.send_json({"watch_ids": [history["old"]]})  # again: read once, now sent from memory
                while len([f for f in frames if f["t"] == "log" and f["id"] == history["old"]]) < 2:
                    frames.append(json.loads((await ws.receive(timeout=10)).data))
            finally:
                await ws.close()
        return frames

    frames = asyncio.run(main())
    logs = [f for f in frames if f["t"] == "log"]
    old = [f for f in logs if f["id"] == history["old"]]
    assert all(f["job"] == "old" for f in old) and old[0]["lines"] == old[1]["lines"]
    assert old[0]["total"] == old[1]["total"]  # not read (and added) twice
    assert all(f["id"] in history.values() for f in logs)  # the current job named "old" is not watched
    lines = old[0]["lines"]
    assert lines[0] == "── attempt 1 (limit web01) ──" and "── attempt 2 (limit web01) ──" in lines
    assert sum("TASK [say hello]" in line for line in lines) == 2 and old[0]["total"] == len(lines)
    gone = next(f for f in logs if f["id"] == history["gone"])
    assert gone["job"] == "gone" and gone["lines"] == [
        "── attempt 1 (limit web02) ──",
        "(log not readable: No such file or directory)",
    ]
    wait_for(
        lambda: (
            [
                e["args"]["request"]
                for e in audit(second.state)
                if e["action"] == "client" and e["args"]["request"] in ("attach", "detach")
            ]
            == ["attach", "detach"]
        ),
        what="attach and detach in the audit",
    )
    entries = [
        e for e in audit(second.state) if e["action"] == "client" and e["args"]["request"] in ("attach", "detach")
    ]
    for entry in entries:
        assert entry["args"]["client_user"] == getpass.getuser() and entry["args"]["client_pid"] == os.getpid()


def test_a_tail_with_a_huge_line_is_sent_whole_in_frames_that_fit():
    """A module that prints megabytes on one line must not push the lines before it out of what a
    watching client is sent: the line is shortened (it is whole on disk), the rest all arrive, in
    frames that each fit a client's queue, each with the total at its last line."""
    from tui.server.clients import LOG_FRAME_BYTES, MAX_BYTES, tail_frames

    lines = [f"before {n}" for n in range(86)] + ["x" * 262_000] + [f"after {n}" for n in range(50)]
    frames = tail_frames(lines, len(lines), total=1000 + len(lines))
    sent = [line for chunk, _ in frames for line in chunk]
    assert sent[:86] == lines[:86] and sent[-50:] == lines[-50:]
    assert len(sent) == len(lines) and "more characters: the whole line is in the log on disk" in sent[86]
    assert frames[-1][1] == 1000 + len(lines)  # the last frame ends at the log's total
    assert [total for _, total in frames] == sorted(total for _, total in frames)
    assert all(len(json.dumps(chunk)) <= LOG_FRAME_BYTES + 1024 for chunk, _ in frames)
    assert sum(len(json.dumps(chunk)) for chunk, _ in frames) < MAX_BYTES // 2

    flood = ["y" * 60_000 for _ in range(100)]  # 6 MB of tail: bounded, newest kept
    frames = tail_frames(flood, len(flood), total=100)
    kept = [line for chunk, _ in frames for line in chunk]
    assert 0 < len(kept) < 100 and frames[-1][1] == 100
    assert sum(len(json.dumps(chunk)) for chunk, _ in frames) < MAX_BYTES // 2
