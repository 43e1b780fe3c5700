"""Job files: the contract as written, and every problem named by file, line and key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS
from tui.core.planning.jobfile import InputError, load_job_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_contract_example_loads_with_relative_paths(tmp_path):
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "inv.ini").write_text("web01 ansible_connection=local\n")
    path = write(
        tmp_path,
        """\
        inventory: inv.ini
        max_parallel: 3
        jobs:
          - name: deploy-web
            playbook: pb/site.yml
            limit: web
            extra_vars: {release: "1.2"}
            timeout: 5m
            retries: 2
          - name: second
            playbook: pb/site.yml
            inventory: inv.ini
            limit: [web01, db01]
            timeout: 90
            tags: [a, b]
            check: true
    """,
    )
    job_file = load_job_file(path)
    assert job_file.max_parallel == 3
    first, second = job_file.jobs
    assert first.name == "deploy-web"
    assert first.playbook == (tmp_path / "pb" / "site.yml").resolve()
    assert first.inventory == (tmp_path / "inv.ini").resolve()
    assert (first.limit, first.extra_vars, first.timeout, first.retries) == ("web", {"release": "1.2"}, 300.0, 2)
    assert (second.limit, second.timeout, second.tags, second.check, second.retries) == (
        "web01,db01",
        90.0,
        "a,b",
        True,
        0,
    )


def test_sample_job_file_is_valid():
    job_file = load_job_file(PLAYBOOKS / "jobs.yml")
    assert len(job_file.jobs) >= 8
    assert all(job.inventory == INVENTORY for job in job_file.jobs)


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_job_file(path)
    return [str(p) for p in info.value.problems]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        inventory: inv
        jobs:
          - name: a
            playbook: [unclosed
    """,
    )
    (found,) = problems(path)
    assert found.startswith(f"{path}:5: ") and "YAML syntax error" in found


def test_unknown_key_is_named_with_its_line(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {PLAYBOOKS / "health_check.yml"}
            timout: 30
    """,
    )
    (found,) = problems(path)
    assert found.startswith(f"{path}:5: jobs[0].timout: unknown key")


def test_wrong_types_name_the_field(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        max_parallel: many
        jobs:
          - name: a
            playbook: {PLAYBOOKS / "health_check.yml"}
            retries: two
            timeout: soon
            extra_vars: [1, 2]
            check: "yes"
    """,
    )
    found = problems(path)
    assert any(p.startswith(f"{path}:2: max_parallel: expected a whole number") for p in found)
    assert any(p.startswith(f"{path}:6: jobs[0].retries: expected a whole number") for p in found)
    assert any(p.startswith(f"{path}:7: jobs[0].timeout: 'soon' is not a duration") for p in found)
    assert any(p.startswith(f"{path}:8: jobs[0].extra_vars: expected a mapping") for p in found)
    assert any(p.startswith(f"{path}:9: jobs[0].check: expected true or false") for p in found)


def test_missing_files_duplicates_and_required_keys(tmp_path):
    path = write(
        tmp_path,
        f"""\
        jobs:
          - name: a
            playbook: nowhere.yml
            inventory: {INVENTORY}
          - name: b
            playbook: {PLAYBOOKS / "health_check.yml"}
          - playbook: {PLAYBOOKS / "health_check.yml"}
            inventory: {INVENTORY}
          - name: c
            playbook: {PLAYBOOKS / "health_check.yml"}
            inventory: {INVENTORY}
          - name: c
            playbook: {PLAYBOOKS / "health_check.yml"}
            inventory: {INVENTORY}
    """,
    )
    found = problems(path)
    assert any(p.startswith(f"{path}:3: jobs[0].playbook: ") and "nowhere.yml does not exist" in p for p in found)
    assert any(p.startswith(f"{path}:5: jobs[1].inventory: missing") for p in found)
    assert any(p.startswith(f"{path}:7: jobs[2].name: missing") for p in found)
    assert any(p.startswith(f"{path}:12: jobs[4].name: 'c' is already used by jobs[3]") for p in found)


def test_cli_rejects_invalid_job_file_with_exit_2_and_runs_nothing(tmp_path):
    state = tmp_path / "never"
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {PLAYBOOKS / "slow_task.yml"}
            retries: -1
    """,
    )
    out = subprocess.run(
        [sys.executable, "-m", "tui", "run", str(path), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"{path}:5: jobs[0].retries" in out.stderr
    assert "nothing was run" in out.stderr
    assert not state.exists()


def test_cli_rejects_missing_playbook_and_bad_flags(tmp_path):
    cases = [
        (["run", str(tmp_path / "missing.yml"), "-i", str(INVENTORY)], "missing.yml: does not exist"),
        (["run", str(PLAYBOOKS / "health_check.yml")], "needs an inventory"),
        (["run", str(PLAYBOOKS / "health_check.yml"), "-i", str(INVENTORY), "--timeout", "soon"], "--timeout"),
        (["run", str(PLAYBOOKS / "jobs.yml"), "--limit", "web"], "put it in the job file"),
    ]
    for argv, expected in cases:
        out = subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, argv
        assert expected in out.stderr, (argv, out.stderr)


BOOK = PLAYBOOKS / "health_check.yml"


def test_after_priority_and_circuit_as_written_with_parents_ordered_first(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: verify
            playbook: {BOOK}
            after: deploy
          - name: deploy
            playbook: {BOOK}
            priority: 10
            circuit: 3
          - name: both
            playbook: {BOOK}
            after: [deploy, verify]
            priority: -2
          - name: rollback
            playbook: {BOOK}
            after: {{deploy: failure, verify: always}}
          - name: plain
            playbook: {BOOK}
    """,
    )
    jobs = {job.name: job for job in load_job_file(path).jobs}
    # a parent comes before its children; otherwise file order stands
    assert list(jobs) == ["deploy", "verify", "both", "rollback", "plain"]
    assert jobs["verify"].after == (("deploy", "success"),)
    assert jobs["both"].after == (("deploy", "success"), ("verify", "success"))
    assert jobs["rollback"].after == (("deploy", "failure"), ("verify", "always"))
    assert (jobs["deploy"].priority, jobs["deploy"].circuit, jobs["both"].priority) == (10, 3, -2)
    assert (jobs["plain"].after, jobs["plain"].priority, jobs["plain"].circuit) == ((), 0, None)
    hash(jobs["rollback"].after)  # immutable, hashable


def test_bad_after_priority_and_circuit_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {BOOK}
            after: 5
            priority: high
            circuit: 0
          - name: b
            playbook: {BOOK}
            after: {{a: sometimes}}
            priority: true
          - name: c
            playbook: {BOOK}
            after: [a, a]
          - name: d
            playbook: {BOOK}
            after: []
    """,
    )
    found = problems(path)
    assert f"{path}:5: jobs[0].after: expected a job name, a list of job names" in "\n".join(found)
    assert any(p.startswith(f"{path}:6: jobs[0].priority: expected a whole number") for p in found)
    assert any(p.startswith(f"{path}:7: jobs[0].circuit: expected a whole number >= 1") for p in found)
    assert any(p.startswith(f"{path}:10: jobs[1].after: expected") for p in found)
    assert any(p.startswith(f"{path}:11: jobs[1].priority: expected a whole number") for p in found)
    assert any(p.startswith(f"{path}:14: jobs[2].after: expected") for p in found)
    assert any(p.startswith(f"{path}:17: jobs[3].after: expected") for p in found)
    assert len(found) == 7


def test_unknown_parents_itself_and_cycles_are_invalid(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {BOOK}
            after: ghost
          - name: b
            playbook: {BOOK}
            after: {{b: always}}
          - name: broken
            playbook: {BOOK}
            retries: lots
          - name: c
            playbook: {BOOK}
            after: broken
    """,
    )
    found = problems(path)
    assert f"{path}:5: jobs[0].after: no job named 'ghost' in this file" in found
    assert f"{path}:8: jobs[1].after: 'b': a job cannot run after itself" in found
    # c's parent exists, though it has a problem of its own: only that problem is reported
    assert not any("jobs[3]" in p for p in found) and any("jobs[2].retries" in p for p in found)
    cycle = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: x
            playbook: {BOOK}
          - name: a
            playbook: {BOOK}
            after: [x, c]
          - name: b
            playbook: {BOOK}
            after: a
          - name: c
            playbook: {BOOK}
            after: {{b: failure}}
    """,
    )
    assert problems(cycle) == [f"{cycle}:7: jobs[1].after: the jobs form a cycle: a -> c -> b -> a"]


def test_sample_chain_file_is_valid():
    jobs = {job.name: job for job in load_job_file(PLAYBOOKS / "chain.yml").jobs}
    assert jobs["verify"].after == (("deploy", "success"),)
    assert jobs["rollback"].after == (("deploy", "failure"),)
    assert jobs["deploy"].circuit == 2


def test_lock_and_protect_as_written(tmp_path):
    """A file-wide lock is every job's default; a job may say hosts or none; protect is one
    pattern or a list."""
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        lock: hosts
        protect: [prod, "db*"]
        jobs:
          - name: a
            playbook: {BOOK}
          - name: b
            playbook: {BOOK}
            lock: none
        """,
    )
    loaded = load_job_file(path)
    assert [job.lock for job in loaded.jobs] == ["hosts", None]
    assert loaded.protect == ("prod", "db*")
    assert all(job.resolved_hosts is None for job in loaded.jobs)  # only the preflight resolves them
    single = write(
        tmp_path, f"inventory: {INVENTORY}\nprotect: db\njobs:\n  - {{name: a, playbook: {BOOK}, lock: hosts}}\n"
    )
    loaded = load_job_file(single)
    assert loaded.protect == ("db",) and loaded.jobs[0].lock == "hosts"
    assert load_job_file(PLAYBOOKS / "chain.yml").protect == ()


def test_bad_lock_and_protect_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        lock: none
        protect: []
        jobs:
          - name: a
            playbook: {BOOK}
            lock: host
          - name: b
            playbook: {BOOK}
            lock: true
        """,
    )
    found = problems(path)
    assert found[0] == f"{path}:2: lock: expected hosts (the only lock; leave it out for none), got 'none' (str)"
    assert found[1] == f"{path}:3: protect: expected a host pattern or a list of them, got a list"
    assert found[2].startswith(f"{path}:7: jobs[0].lock: expected hosts, or none")
    assert found[3].startswith(f"{path}:10: jobs[1].lock: expected hosts, or none")
    assert len(found) == 4


def test_sample_locks_file_is_valid():
    loaded = load_job_file(PLAYBOOKS / "locks.yml")
    jobs = {job.name: job for job in loaded.jobs}
    assert jobs["deploy-web1"].lock == "hosts" and jobs["report"].lock is None
    assert loaded.protect == ("db*",)


def test_schedule_keys_as_written_with_defaults(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {BOOK}
            schedule: "30 3 * * 1-5"
            timezone: Europe/Berlin
            overlap: cancel
            catch_up: once
          - name: b
            playbook: {BOOK}
            schedule: "*/5 * * * *"
          - name: c
            playbook: {BOOK}
        """,
    )
    jobs = {job.name: job for job in load_job_file(path).jobs}
    assert (jobs["a"].schedule, jobs["a"].timezone, jobs["a"].overlap, jobs["a"].catch_up) == (
        "30 3 * * 1-5",
        "Europe/Berlin",
        "cancel",
        "once",
    )
    assert (jobs["b"].timezone, jobs["b"].overlap, jobs["b"].catch_up) == (None, "skip", "skip")
    assert jobs["c"].schedule is None


def test_bad_schedule_keys_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        jobs:
          - name: a
            playbook: {BOOK}
            schedule: "* * * *"
          - name: b
            playbook: {BOOK}
            schedule: "0 25 * * *"
            timezone: Europe/Nowhere
            overlap: later
            catch_up: all
          - name: c
            playbook: {BOOK}
            timezone: UTC
          - name: d
            playbook: {BOOK}
            schedule: 5
          - name: e
            playbook: {BOOK}
            schedule: "@daily"
            after: a
        """,
    )
    found = problems(path)
    assert f"{path}:5: jobs[0].schedule: a cron expression has 5 fields" in "\n".join(found)
    expected = [
        (8, "jobs[1].schedule", "hour"),
        (9, "jobs[1].timezone", "unknown time zone 'Europe/Nowhere'"),
        (10, "jobs[1].overlap", "expected skip | queue | cancel"),
        (11, "jobs[1].catch_up", "expected skip | once"),
        (14, "jobs[2].timezone", "only with a schedule"),
        (17, "jobs[3].schedule", "expected a 5-field cron expression"),
        (20, "jobs[4].schedule", "5 fields"),
        (21, "jobs[4].after", "not with a schedule"),
    ]
    for line, key, text in expected:
        assert any(p.startswith(f"{path}:{line}: {key}: ") and text in p for p in found), (line, key, found)


def test_sample_schedules_file_is_valid():
    jobs = {job.name: job for job in load_job_file(PLAYBOOKS / "schedules.yml").jobs}
    assert jobs["nightly-clean"].schedule == "30 3 * * *" and jobs["nightly-clean"].catch_up == "once"
    assert jobs["quarter-hourly-check"].overlap == "queue"
