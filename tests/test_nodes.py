"""Execution nodes (issue 13), planning and visibility: `nodes:` in job files and the config,
checked as written; a spec's node over JSON; the record of where each attempt ran; and,
over a real sshd on loopback as the node, capacity, `playdeck nodes` and a server's jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.conftest import INVENTORY, PLAYBOOKS, _read, run
from tests.sshd import SshServer, sshd  # noqa: F401 - the fixture
from tui.core.config import load_server_config
from tui.core.engine import Engine
from tui.core.job import Job, restored_job
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.nodes import Node, node_from_json, node_to_json, probe_problem
from tui.core.planning.spec import JobSpec, Status
from tui.core.planning.wirespec import SpecError, spec_from_json, spec_to_json
from tui.core.storage.logstore import LogTail

PING = PLAYBOOKS / "health_check.yml"


def write(tmp_path: Path, text: str, name: str = "jobs.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_job_file(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


# --- job files ---------------------------------------------------------------------------------


def test_nodes_and_a_jobs_node_load_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ~ is this test's home
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("key\n")
    (tmp_path / "known").write_text("")
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        nodes:
          dc2:
            ssh: ops@bastion-dc2.example
            port: 2222
            identity: ~/.ssh/id_ed25519
            known_hosts: known
            python: /opt/playdeck/bin/python
            capacity: 4
          lab: {{ssh: lab-host}}
        jobs:
          - {{name: patch-dc2, playbook: {PING}, limit: dc2, node: dc2}}
          - {{name: here, playbook: {PING}}}
          - {{name: lab-job, playbook: {PING}, node: lab}}
        """,
    )
    job_file = load_job_file(path)
    dc2 = Node(
        name="dc2",
        ssh="ops@bastion-dc2.example",
        port=2222,
        identity=tmp_path / ".ssh" / "id_ed25519",
        known_hosts=tmp_path / "known",
        python="/opt/playdeck/bin/python",
        capacity=4,
    )
    assert job_file.nodes == {"dc2": dc2, "lab": Node(name="lab", ssh="lab-host")}
    patch, here, lab = job_file.jobs
    assert patch.node == dc2 and here.node is None
    assert (lab.node.port, lab.node.python, lab.node.capacity, lab.node.identity) == (None, "python3", 1, None)
    assert dc2.describe() == "node dc2 (ops@bastion-dc2.example:2222)"


def test_a_jobs_node_may_be_the_configs_and_the_files_own_wins(tmp_path):
    config_nodes = {"dc3": Node("dc3", "ops@dc3"), "dc2": Node("dc2", "ops@old")}
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        nodes: {{dc2: {{ssh: ops@new}}}}
        jobs:
          - {{name: a, playbook: {PING}, node: dc3}}
          - {{name: b, playbook: {PING}, node: dc2}}
        """,
    )
    a, b = load_job_file(path, config_nodes).jobs
    assert (a.node.ssh, b.node.ssh) == ("ops@dc3", "ops@new")
    assert problems(path) == [
        f"{path}:4: jobs[0].node: no node named 'dc3' in the file's nodes: or the config's (known: dc2)"
    ]


BAD = [
    ("ssh: '-oProxyCommand=touch /tmp/x'", "nodes.n.ssh", "ssh destination"),
    ("ssh: 'ops@bastion extra'", "nodes.n.ssh", "ssh destination"),
    ("ssh: 'a@b@c'", "nodes.n.ssh", "ssh destination"),
    ("ssh: 'ops@-host'", "nodes.n.ssh", "ssh destination"),
    ("ssh: ''", "nodes.n.ssh", "ssh destination"),
    ("ssh: ops@h\n    port: 0", "nodes.n.port", "1 to 65535"),
    ("ssh: ops@h\n    port: 65536", "nodes.n.port", "1 to 65535"),
    ("ssh: ops@h\n    port: '22'", "nodes.n.port", "1 to 65535"),
    ("ssh: ops@h\n    capacity: 0", "nodes.n.capacity", ">= 1"),
    ("ssh: ops@h\n    capacity: true", "nodes.n.capacity", ">= 1"),
    ("ssh: ops@h\n    python: ''", "nodes.n.python", "non-empty string"),
    ("ssh: ops@h\n    python: [a]", "nodes.n.python", "non-empty string"),
    ("ssh: ops@h\n    identity: ~/no-such-key", "nodes.n.identity", "does not exist"),
    ("ssh: ops@h\n    known_hosts: no-such-file", "nodes.n.known_hosts", "does not exist"),
    ("ssh: ops@h\n    colour: red", "nodes.n.colour", "unknown key"),
    ("port: 22", "nodes.n.ssh", "missing (required)"),
]


@pytest.mark.parametrize(("body", "key", "words"), BAD, ids=[b[1] + ":" + b[0].split("\n")[-1] for b in BAD])
def test_each_bad_node_is_named_by_file_line_and_key(tmp_path, monkeypatch, body, key, words):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write(
        tmp_path,
        f"inventory: {INVENTORY}\nnodes:\n  n:\n    {body}\njobs:\n  - {{name: a, playbook: {PING}, node: n}}\n",
    )
    found = problems(path)
    assert len(found) == 1, found  # the job on the broken node is not told its node is missing
    line = 3 if key == "nodes.n.ssh" and "missing" in words else 4 + (body.count("\n"))
    assert found[0].startswith(f"{path}:{line}: {key}: "), found
    assert words in found[0]


def test_bad_node_names_and_node_values(tmp_path):
    path = write(
        tmp_path,
        f"""\
        inventory: {INVENTORY}
        nodes:
          "bad name": {{ssh: h}}
          ok: [not, a, mapping]
        jobs:
          - {{name: a, playbook: {PING}, node: 3}}
          - {{name: b, playbook: {PING}, node: nowhere}}
        """,
    )
    found = problems(path)
    assert found[0].startswith(f"{path}:3: nodes: a node name is letters, digits")
    assert found[1].startswith(f"{path}:4: nodes.ok: expected a mapping")
    assert found[2] == f"{path}:6: jobs[0].node: expected a node name, got 3 (int)"
    assert found[3].startswith(f"{path}:7: jobs[1].node: no node named 'nowhere'")
    assert len(found) == 4


# --- the config --------------------------------------------------------------------------------


def test_config_nodes_and_their_problems(tmp_path):
    key = tmp_path / "id"
    key.write_text("k")
    config = write(
        tmp_path,
        f"""\
        max_parallel: 3
        nodes:
          dc2: {{ssh: ops@bastion, identity: {key}, capacity: 2}}
        """,
        "config.yml",
    )
    loaded = load_server_config(config)
    assert loaded.nodes == {"dc2": Node("dc2", "ops@bastion", identity=key, capacity=2)}
    assert loaded.max_parallel == 3
    bad = write(tmp_path, "nodes:\n  dc2:\n    ssh: ops@bastion\n    port: 99999\n", "bad.yml")
    with pytest.raises(InputError) as caught:
        load_server_config(bad)
    assert [str(p) for p in caught.value.problems] == [
        f"{bad}:4: nodes.dc2.port: expected a port number from 1 to 65535, got 99999 (int)"
    ]


# --- over JSON ---------------------------------------------------------------------------------


def test_a_specs_node_travels_whole_or_by_a_config_name(tmp_path):
    key = tmp_path / "id"
    key.write_text("k")
    node = Node("dc2", "ops@bastion", port=2200, identity=key, known_hosts=key, python="/opt/py", capacity=3)
    spec = JobSpec(name="a", inventory=INVENTORY, playbook=PING, node=node)
    data = json.loads(json.dumps(spec_to_json(spec)))
    assert data["node"] == node_to_json(node)
    assert spec_from_json(data) == spec
    assert spec_from_json({**data, "node": "dc2"}, {"dc2": node}) == spec
    assert spec_from_json({**data, "node": None}).node is None
    with pytest.raises(SpecError) as caught:
        spec_from_json({**data, "node": "dc9"}, {"dc2": node})
    assert caught.value.problems == ["node: no node named 'dc9' in the config (known: dc2)"]
    bad = {**node_to_json(node), "ssh": "-oX", "port": 0, "identity": "relative", "extra": 1}
    with pytest.raises(SpecError) as caught:
        spec_from_json({**data, "node": bad})
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "node.extra",
        "node.identity",
        "node.port",
        "node.ssh",
    ]
    assert node_from_json({"name": "x"}) == (None, ["node.ssh: missing (required)"])


# --- records and the version check -------------------------------------------------------------


def test_a_recorded_job_keeps_its_node(tmp_path):
    from tui.core.running.attempt import Attempt
    from tui.core.storage.history import job_record
    from tui.core.summary import job_summary

    node = Node("dc2", "ops@bastion", port=22, capacity=2)
    job = Job(id=0, spec=JobSpec(name="a", inventory=INVENTORY, playbook=PING, node=node))
    job.attempts.append(Attempt(number=1, limit=None, directory=tmp_path / "attempt-1", marker="m", node="dc2"))
    record = json.loads(json.dumps(job_record(job, "run-1")))
    assert record["spec"]["node"] == node_to_json(node)
    assert record["attempts"][0]["node"] == "dc2"
    restored = restored_job(record, 0, LogTail(10))
    assert (restored.spec.node, restored.attempts[0].node) == (node, "dc2")
    summary = job_summary(job)
    assert (summary["node"], summary["attempts"][0]["node"]) == ("dc2", "dc2")


def test_probe_problem_names_the_node_once():
    node = Node("dc2", "ops@bastion", port=2222)
    assert probe_problem(node, {"ok": True}) is None
    assert probe_problem(node, {"ok": False, "error": "Connection refused"}) == (
        "node dc2 (ops@bastion:2222): Connection refused"
    )
    said = "node dc2 (ops@bastion:2222): version mismatch: playdeck 0.1.0 here, 0.0.9 on the node"
    assert probe_problem(node, {"ok": False, "error": said}) == said
    assert probe_problem(node, {}) == "node dc2 (ops@bastion:2222): no answer (reason unknown)"


def test_the_grid_says_where_a_job_runs():
    """`playbook @node` in the grid's playbook column (and its filter), for a server's job as the
    console mirrors it and for an engine's job; nothing added for a job that runs here."""
    from tui.client.remote import RemoteJob
    from tui.console.widgets.job_grid import JobGrid, _target

    remote = RemoteJob({"id": 0, "name": "a", "status": "running", "target": "nap.yml", "node": "dc2"})
    assert _target(remote) == "nap.yml @dc2"
    assert "@dc2" in JobGrid._haystack(remote)  # type: ignore[arg-type]
    assert (
        _target(RemoteJob({"id": 1, "name": "b", "status": "queued", "target": "nap.yml", "node": None})) == "nap.yml"
    )
    engine_job = Job(id=2, spec=JobSpec(name="c", inventory=INVENTORY, playbook=PING, node=Node("dc2", "ops@h")))
    assert _target(engine_job) == "health_check.yml @dc2"


# --- a real node: sshd on loopback -------------------------------------------------------------
# A fresh host key (in a known_hosts the node points at: host keys are checked) and a fresh client
# key; the node's Python is ours, so playdeck and ansible-core match unless a test says otherwise.

NAP = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: nap\n      ansible.builtin.command: sleep {seconds}\n"


@pytest.fixture(scope="module")
def node(sshd: SshServer, tmp_path_factory: pytest.TempPathFactory) -> Node:  # noqa: F811
    directory = tmp_path_factory.mktemp("node")
    known = sshd.known_hosts(directory / "known_hosts")
    return Node(
        name="lo",
        ssh=f"{sshd.user}@{sshd.host}",
        port=sshd.port,
        identity=sshd.key,
        known_hosts=known,
        python=sys.executable,
        capacity=1,
    )


def nap_files(tmp_path: Path, seconds: float) -> tuple[Path, Path]:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    playbook = project / "nap.yml"
    playbook.write_text(NAP.format(seconds=seconds))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    box:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    return playbook, inventory


def supervisors_under(server: SshServer) -> list[int]:
    """The attempts' supervisors running under the node's sshd (not ours: ours are not below it)."""
    return [pid for pid in server.sessions() if b"tui.core.running.supervisor" in _read(f"/proc/{pid}/cmdline")]


def test_capacity_one_node_jobs_never_overlap_while_a_local_job_runs_beside_them(tmp_path, node, sshd):  # noqa: F811
    playbook, inventory = nap_files(tmp_path, 2)
    seen: dict[str, set[str]] = {"n1": set(), "n2": set(), "here": set()}
    on_node: list[int] = []

    async def main() -> list[Job]:
        engine = Engine(state_dir=tmp_path / "state", max_parallel=4)

        def listen(job: Job, what: str) -> None:
            seen[job.name].add(f"{job.status.value}: {job.message}")
            if what == "event" and job.spec.node is not None:
                on_node.append(len(supervisors_under(sshd)))

        engine.subscribe(listen)
        jobs = engine.add_all(
            [
                JobSpec(name="n1", inventory=inventory, playbook=playbook, node=node),
                JobSpec(name="n2", inventory=inventory, playbook=playbook, node=node),
                JobSpec(name="here", inventory=inventory, playbook=playbook),
            ]
        )
        await asyncio.wait_for(engine.wait_idle(), 90)
        return jobs

    n1, n2, here = run(main())
    assert [j.status for j in (n1, n2, here)] == [Status.SUCCESSFUL] * 3, [j.message for j in (n1, n2, here)]
    (a,), (b,), (c,) = n1.attempts, n2.attempts, here.attempts
    assert a.ended <= b.started, "two jobs ran at once on a node of capacity 1"
    assert c.started < a.ended and a.started < c.ended, "the local job did not run beside the node's first"
    assert "queued: waiting for node lo: 1 of 1 running there" in seen["n2"]
    assert (a.node, b.node, c.node) == ("lo", "lo", None)
    assert on_node and max(on_node) == 1, "the node jobs' supervisors did not run under the node's sshd"


def other_playdeck(tmp_path: Path, version: str = "0.0.1") -> Path:
    """A Python on the node whose playdeck is another version: the real package, but its own
    `tui/__init__.py` first on the path (every other module of it the real one)."""
    import tui

    package = tmp_path / "other" / "tui"
    package.mkdir(parents=True)
    real = Path(tui.__file__).parent
    for entry in real.iterdir():
        if entry.name not in ("__init__.py", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n')
    python = tmp_path / "other-python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={package.parent} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return python


def nodes_yaml(*nodes: Node) -> str:
    """A `nodes:` mapping as a job file or the config writes it."""
    return yaml.safe_dump(
        {"nodes": {n.name: {k: v for k, v in node_to_json(n).items() if k != "name" and v is not None} for n in nodes}}
    )


def playdeck(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=120)


def test_playdeck_nodes_checks_reach_and_versions(tmp_path, node):
    import tui

    other = replace(node, name="other", python=str(other_playdeck(tmp_path)))
    gone = replace(node, name="gone", python="/nonexistent/python")
    config = tmp_path / "config.yml"
    config.write_text(nodes_yaml(node, other, gone))
    done = playdeck("nodes", "--json", "--config", str(config))
    assert done.returncode == 1, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["nodes"]}
    lo = rows["lo"]
    assert (lo["ok"], lo["reachable"], lo["problem"], lo["capacity"]) == (True, True, None, 1)
    assert (lo["playdeck"], lo["ansible_core"]) == (tui.__version__, lo["local"]["ansible_core"])
    assert lo["running"] is None  # no server runs, and none was started
    assert rows["other"]["ok"] is False and rows["other"]["playdeck"] == "0.0.1"
    assert "node other" in rows["other"]["problem"] and "version mismatch" in rows["other"]["problem"]
    assert rows["gone"]["ok"] is False and "/nonexistent/python" in rows["gone"]["problem"]
    config.write_text(nodes_yaml(node))
    done = playdeck("nodes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lo" in done.stdout and "OK" in done.stdout and tui.__version__ in done.stdout


def test_a_server_runs_a_config_node_job_there_and_refuses_another_version(tmp_path, node, sshd, monkeypatch):  # noqa: F811
    config = tmp_path / "config.yml"
    config.write_text(nodes_yaml(node))
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))  # the server playdeck submit starts reads it
    playbook, inventory = nap_files(tmp_path, 3)
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(yaml.safe_dump({"inventory": str(inventory), "jobs": [
        {"name": "on-node", "playbook": str(playbook), "node": "lo"},  # the config's node
        {"name": "here", "playbook": str(playbook)},
    ]}))  # fmt: skip
    done = playdeck("submit", str(jobs))
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 60
    while True:
        listed = {job["name"]: job for job in json.loads(playdeck("ls", "--json").stdout)["jobs"]}
        if listed["on-node"]["status"] == "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert listed["on-node"]["status"] == "running", listed["on-node"]
    checked = playdeck("nodes", "--json")
    (row,) = json.loads(checked.stdout)["nodes"]
    assert (checked.returncode, row["running"], row["jobs"]) == (0, 1, ["on-node"])
    assert supervisors_under(sshd), "the node job's supervisor is not under the node's sshd"

    other = replace(node, name="other", python=str(other_playdeck(tmp_path)))
    bad = tmp_path / "bad.yml"
    bad.write_text(nodes_yaml(other) + yaml.safe_dump({"inventory": str(inventory), "jobs": [
        {"name": "misplaced", "playbook": str(playbook), "node": "other"},
    ]}))  # fmt: skip
    refused = playdeck("submit", str(bad))
    assert refused.returncode == 2, refused.stderr
    assert "nothing was submitted" in refused.stderr and "'misplaced'" in refused.stderr
    assert "node other" in refused.stderr and "version mismatch" in refused.stderr

    while time.monotonic() < deadline + 30:
        listed = {job["name"]: job for job in json.loads(playdeck("ls", "--json").stdout)["jobs"]}
        if all(job["status"] == "successful" for job in listed.values()):
            break
        time.sleep(0.3)
    assert set(listed) == {"on-node", "here"}  # nothing of the refused file was placed
    assert [listed[n]["status"] for n in ("on-node", "here")] == ["successful"] * 2, listed
    assert (listed["on-node"]["node"], listed["here"]["node"]) == ("lo", None)
    assert [a["node"] for a in listed["on-node"]["attempts"]] == ["lo"]
    assert Path(listed["on-node"]["attempts"][0]["log"]).read_text().count("nap") >= 1  # the log is kept here
    table = playdeck("ls").stdout
    header = next(line for line in table.splitlines() if line.lstrip().startswith("job"))
    assert header.rstrip().endswith("node"), table
    row_line = next(line for line in table.splitlines() if line.lstrip().startswith("on-node"))
    assert row_line.rstrip().endswith("lo")


def test_a_killed_server_leaves_nothing_running_on_the_node(tmp_path, node, sshd, monkeypatch):  # noqa: F811
    """SIGKILL of the server mid-job: its ssh to the node ends with it, the node's supervisor sees
    the end of its input and stops everything there; the node's work dir goes too."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from tests.conftest import pids_with_env  # noqa: PLC0415

    config = tmp_path / "config.yml"
    config.write_text(nodes_yaml(node))
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))
    playbook, inventory = nap_files(tmp_path, 60)
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(yaml.safe_dump({"inventory": str(inventory), "jobs": [
        {"name": "long-on-node", "playbook": str(playbook), "node": "lo"},
    ]}))  # fmt: skip
    assert playdeck("submit", str(jobs)).returncode == 0
    deadline = time.monotonic() + 60
    naps: list[int] = []
    while time.monotonic() < deadline and not naps:
        naps = [p for p in sshd.sessions() if _read(f"/proc/{p}/cmdline").startswith(b"sleep\x0060")]
        time.sleep(0.2)
    assert naps, "the job's sleep never ran under the node's sshd"
    marker = next(
        part.split(b"=", 1)[1].decode()
        for part in _read(f"/proc/{naps[0]}/environ").split(b"\0")
        if part.startswith(b"PLAYDECK_ATTEMPT=")
    )
    status = json.loads(playdeck("server", "status", "--json").stdout)
    os.kill(status["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pids_with_env(f"PLAYDECK_ATTEMPT={marker}"):
        time.sleep(0.1)
    left = pids_with_env(f"PLAYDECK_ATTEMPT={marker}")
    assert not left, [(p, _read(f"/proc/{p}/cmdline")) for p in left]
    assert not supervisors_under(sshd)
