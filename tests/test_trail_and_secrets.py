"""History, the audit trail, and secrets that never reach disk, logs or a command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import INVENTORY, PLAYBOOKS, run, until
from tui.core.engine import Engine
from tui.core.planning.spec import Status, spec_for_playbook
from tui.core.storage.history import load_history, prune

SECRET = "Vault-Pw-7f3c91"  # the vault password
VALUE = "decrypted-canary-22"  # what the vault protects


def vaulted_playbook(tmp_path: Path) -> Path:
    pwfile = tmp_path / "pw.txt"
    pwfile.write_text(SECRET + "\n")
    encrypted = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(pwfile),
            VALUE,
            "--name",
            "canary",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pwfile.unlink()  # the only copy of the password is now in this test
    book = tmp_path / "vaulted.yml"
    tasks = textwrap.indent(
        textwrap.dedent("""\
        tasks:
          - name: use the secret
            ansible.builtin.assert: {that: ["canary | length > 0"], quiet: true}
          - name: hold on a moment so the process table can be read
            ansible.builtin.command: sleep 2
        """),
        "  ",
    )
    book.write_text("- hosts: all\n  gather_facts: false\n  vars:\n" + textwrap.indent(encrypted, "    ") + tasks)
    return book


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


def process_tables() -> bytes:
    seen = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{name}", "rb") as fh:
                        seen.append(fh.read())
                except OSError:
                    pass
    return b"\n".join(seen)


def test_vault_password_typed_in_reaches_ansible_and_nothing_else(tmp_path, isolated_state):
    book = vaulted_playbook(tmp_path)

    async def main():
        engine = Engine()
        job = engine.add(
            spec_for_playbook(book, INVENTORY, limit="cache01", extra_vars={"api_token": "tok-123"}),
            secrets={"vault": SECRET},
        )
        await until(
            lambda: job.results.task.startswith("hold on") or job.status.finished, what="the job to be past decryption"
        )
        table = process_tables()
        await engine.wait_idle()
        return job, table

    job, table = run(main())
    assert job.status is Status.SUCCESSFUL, job.message  # the vault was opened with the password
    assert SECRET.encode() not in table  # not on any command line or in any environment
    on_disk = everything_under(isolated_state)
    assert SECRET.encode() not in on_disk  # not in logs, events, artifacts, records, the audit trail
    assert b"tok-123" not in (isolated_state / "audit.jsonl").read_bytes()  # secret-looking vars redacted
    assert b"tok-123" not in b"".join(p.read_bytes() for p in isolated_state.rglob("job.json"))
    launch = json.loads((isolated_state / "audit.jsonl").read_text().splitlines()[0])
    assert launch["args"]["prompts"] == ["vault"] and launch["args"]["extra_vars"]["api_token"] == "<redacted>"


def test_vault_password_file_from_a_job_file_stays_out_of_the_state_dir(tmp_path, isolated_state):
    book = vaulted_playbook(tmp_path)
    secret_file = tmp_path / "vault-pass"
    secret_file.write_text(SECRET + "\n")
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(
        f"inventory: {INVENTORY}\njobs:\n  - name: vaulted\n    playbook: {book}\n    limit: cache01\n"
        f"    vault_password_file: {secret_file}\n"
    )
    out = subprocess.run([sys.executable, "-m", "tui", "run", str(jobs)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert SECRET.encode() not in everything_under(isolated_state)


def test_audit_trail_records_every_operator_action_with_who_and_from_where(monkeypatch, isolated_state):
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setenv("SSH_CLIENT", "127.0.0.7 50022 22")

    async def main():
        engine = Engine()
        job = engine.add(
            spec_for_playbook(
                PLAYBOOKS / "slow_task.yml",
                INVENTORY,
                limit="db01",
                extra_vars={"slow_seconds": 81, "db_password": "hunter2"},
            )
        )
        await until(lambda: job.status is Status.RUNNING and job.results.task != "", what="the job to run")
        engine.set_timeout(job, 300)
        engine.cancel(job)
        await engine.wait_idle()
        engine.retry(job)
        engine.cancel(job)
        await engine.wait_idle()
        engine.record("quit", running=[])
        return job

    run(main())
    path = isolated_state / "audit.jsonl"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["launch", "timeout", "cancel", "retry", "cancel", "quit"]
    for entry in entries:
        assert entry["sudo_user"] == "alice" and entry["ssh_client"] == "127.0.0.7" and entry["user"]
        assert entry["time"] and entry["pid"] == os.getpid()
    assert entries[0]["job"] == "slow_task" and entries[0]["args"]["extra_vars"]["db_password"] == "<redacted>"
    assert entries[1]["args"]["seconds"] == 300
    # extra vars are not a secret channel (Ansible gets them on its command line, so its artifacts
    # have them); what playdeck itself writes about an action redacts secret-looking ones
    assert b"hunter2" not in path.read_bytes()
    assert b"hunter2" not in b"".join(p.read_bytes() for p in isolated_state.rglob("job.json"))


def test_history_keeps_finished_jobs_and_retention_prunes_old_runs(isolated_state):
    async def main():
        engine = Engine()
        engine.add(spec_for_playbook(PLAYBOOKS / "failing_host.yml", INVENTORY, limit="web01,web02"))
        await engine.wait_idle()
        return engine

    first = run(main())
    (record,) = load_history(isolated_state, current_run="another-run")
    assert record["name"] == "failing_host" and record["status"] == "failed"
    assert record["attempts"][0]["hosts"]["web02"]["failed"] == 1
    restored = Engine().restore(record)
    assert restored.history and restored.status is Status.FAILED
    assert restored.last.log.read_text().count("PLAY RECAP") == 1  # its log is still there to read

    runs = isolated_state / "runs"
    for index in range(5):
        old = runs / f"2020010{index}-000000-000000"
        (old / "job").mkdir(parents=True)
        (old / "owner.json").write_text(json.dumps({"pid": 1, "start": "0", "host": "elsewhere"}))
        os.utime(old, (time.time() - 90 * 86400,) * 2)
    removed = prune(isolated_state, keep_runs=50, keep_days=30)
    assert len(removed) == 5 and (runs / first.run_id).is_dir()
    assert prune(isolated_state, keep_runs=0, keep_days=30, current_run=first.run_id) == []
