"""sample_playbooks/orchestration.yml: a deploy -> verify chain with a rollback on failure, host
locks, a protected group and a schedule, all on this machine. It loads as written, refuses to
run without --yes, and `playdeck run --yes` runs it to the end (real Ansible, ~10-30 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import INVENTORY, PLAYBOOKS, ROOT
from tui.core.planning.jobfile import load_job_file

SAMPLE = PLAYBOOKS / "orchestration.yml"


def test_the_orchestration_sample_loads_with_every_feature_it_shows():
    loaded = load_job_file(SAMPLE)
    jobs = {job.name: job for job in loaded.jobs}
    assert list(jobs) == ["deploy", "verify", "rollback", "db-backup", "db-report", "cache-check"]
    assert jobs["verify"].after == (("deploy", "success"),)
    assert jobs["rollback"].after == (("deploy", "failure"),)
    deploy = jobs["deploy"]
    assert (deploy.priority, deploy.circuit, deploy.retries) == (10, 2, 2)
    assert all(job.lock == "hosts" for job in loaded.jobs)
    assert loaded.protect == ("db",)
    check = jobs["cache-check"]
    assert (check.schedule, check.timezone, check.overlap) == ("*/15 * * * *", "Europe/Berlin", "skip")
    # harmless on one laptop: the sample playbooks and inventory, no host of the unreachable dc2
    inventory = yaml.safe_load(INVENTORY.read_text())
    assert inventory["all"]["vars"]["ansible_connection"] == "local"
    assert "db" in inventory["all"]["children"]
    for job in loaded.jobs:
        assert job.inventory == INVENTORY.resolve() and job.playbook is not None
        assert job.playbook.parent == PLAYBOOKS.resolve(), job.playbook
        assert job.limit and "ghost" not in job.limit and "dc2" not in job.limit


def test_playdeck_run_runs_the_orchestration_sample_to_the_end(tmp_path: Path):
    """Without --yes: exit 2 naming the protected job, nothing run. With it: deploy and verify
    succeed, rollback is skipped naming deploy, db-report waited for db-backup's lock, and the
    scheduled job ran once, saying so."""
    command = [sys.executable, "-m", "tui", "run", str(SAMPLE)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert refused.returncode == 2, refused.stderr
    assert "job 'db-backup' would touch protected hosts: db01 (protect: db)" in refused.stderr
    assert not (tmp_path / "playdeck-demo").exists()  # nothing ran

    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [*command, "--yes", "--json", str(summary)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {job["name"]: job["status"] for job in json.loads(summary.read_text())["jobs"]}
    assert statuses == {
        "deploy": "successful",
        "verify": "successful",
        "rollback": "skipped",
        "db-backup": "successful",
        "db-report": "successful",
        "cache-check": "successful",
    }, statuses
    assert "skipped: deploy ended successful (runs only on its failure)" in done.stdout
    assert "waiting for host db01 (locked by db-backup)" in done.stderr, done.stderr  # the progress lines
    assert "running cache-check once, now" in done.stderr
    assert (tmp_path / "playdeck-demo" / "web01" / "releases" / "1.4.3" / "app.conf").exists()
