"""Host key checking is what ansible-playbook itself would decide, never ansible-runner's False.

ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False whenever the environment lacks it, which
turned off StrictHostKeyChecking for every SSH job. Each case runs a playbook that prints
what the real ansible-playbook resolved (the env var, the core setting and the ssh
connection plugin's option) and reads it back from the job's events.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, run
from tui.core.engine import Engine, Job
from tui.core.planning.spec import JobSpec, Status

BOOK = TEST_PLAYBOOKS / "host_key_checking.yml"
SSH_OPTION = "lookup('config','host_key_checking',plugin_type='connection',plugin_name='ssh')"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ansible.cfg of this machine's user, and no Ansible variable from the caller's environment."""
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("/etc/ansible/ansible.cfg exists here and would decide the default")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"):
        monkeypatch.delenv(name, raising=False)
    return home


def project(where: Path, cfg: str | None = None, mode: int = 0o700) -> Path:
    """A copy of the playbook in its own directory, with an ansible.cfg beside it if given."""
    where.mkdir(parents=True)
    shutil.copy(BOOK, where / BOOK.name)
    if cfg is not None:
        (where / "ansible.cfg").write_text(cfg)
    where.chmod(mode)
    return where / BOOK.name


def run_jobs(*specs: JobSpec) -> list[Job]:
    async def main() -> list[Job]:
        engine = Engine(max_parallel=3)
        jobs = [engine.add(s) for s in specs]
        await engine.wait_idle()
        return jobs

    return run(main())  # type: ignore[return-value]


def playbook_job(name: str, book: Path) -> JobSpec:
    return JobSpec(name=name, inventory=INVENTORY, playbook=book, limit="web01")


def resolved(job: Job) -> list[str]:
    """The debug messages of the job's successful tasks, from its events on disk."""
    assert job.status is Status.SUCCESSFUL, (job.name, job.message)
    messages = []
    for line in job.last.events_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "runner_on_ok":
            messages.append(str(event["event_data"]["res"]["msg"]))
    return messages


OFF = "[defaults]\nhost_key_checking = False\n"
ON = "[defaults]\nhost_key_checking = True\n"


def test_no_config_means_on_and_a_cfg_beside_the_playbook_decides(tmp_path: Path):
    plain, off, public = run_jobs(
        playbook_job("plain", project(tmp_path / "plain")),
        playbook_job("cfg-off", project(tmp_path / "cfg-off", OFF)),
        # Ansible ignores ./ansible.cfg in a world-writable directory, and so must we
        playbook_job("world-writable", project(tmp_path / "public", OFF, mode=0o777)),
    )
    assert resolved(plain) == ["env= core=True ssh=True"]
    assert resolved(off) == ["env= core=False ssh=False"]
    assert resolved(public) == ["env= core=True ssh=True"]


def test_the_users_environment_is_passed_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    (job,) = run_jobs(playbook_job("env-off", project(tmp_path / "p")))
    assert resolved(job) == ["env=False core=False ssh=False"]


def test_ansible_config_wins_over_the_cfg_beside_the_playbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    chosen = tmp_path / "chosen.cfg"
    chosen.write_text(ON)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(chosen))
    (job,) = run_jobs(playbook_job("ansible-config", project(tmp_path / "p", OFF)))
    assert resolved(job) == ["env= core=True ssh=True"]


def test_home_cfg_ssh_section_and_ad_hoc_jobs(tmp_path: Path, clean_env: Path):
    # [ssh_connection] host_key_checking is read by the ssh plugin only: an environment variable
    # set from [defaults] would have overridden it
    (clean_env / ".ansible.cfg").write_text("[ssh_connection]\nhost_key_checking = False\n")
    book, adhoc_core, adhoc_ssh = run_jobs(
        playbook_job("home-cfg", project(tmp_path / "p")),
        JobSpec(
            name="adhoc-core",
            inventory=INVENTORY,
            module="debug",
            limit="web01",
            module_args="msg={{lookup('config','HOST_KEY_CHECKING')}}",
        ),
        JobSpec(
            name="adhoc-ssh",
            inventory=INVENTORY,
            module="debug",
            limit="web01",
            module_args="msg={{" + SSH_OPTION + "}}",
        ),
    )
    assert resolved(book) == ["env= core=True ssh=False"]
    assert resolved(adhoc_core) == ["True"]
    assert resolved(adhoc_ssh) == ["False"]
