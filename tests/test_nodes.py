"""Execution nodes (issue 13), planning and visibility: `nodes:` in job files and the config,
checked as written; a spec's node over JSON; the record of where each attempt ran; and,
over a real sshd on loopback as the node, capacity, `playdeck nodes` and a server's jobs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS
from tui.core.config import load_server_config
from tui.core.job import restored_job
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.nodes import Node, node_from_json, node_to_json, probe_problem
from tui.core.planning.spec import JobSpec
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
    from tui.core.job import Job
    from tui.core.storage.history import job_record
    from tui.core.summary import job_summary

    node = Node("dc2", "ops@bastion", port=22, capacity=2)
    job = Job(id=0, spec=JobSpec(name="a", inventory=INVENTORY, playbook=PING, node=node))
    record = json.loads(json.dumps(job_record(job, "run-1")))
    assert record["spec"]["node"] == node_to_json(node)
    assert restored_job(record, 0, LogTail(10)).spec.node == node
    assert job_summary(job)["node"] == "dc2"


def test_probe_problem_names_the_node_and_the_versions():
    node = Node("dc2", "ops@bastion", port=2222)
    local = {"playdeck": "0.1.0", "ansible_core": "2.19.0"}
    assert probe_problem(node, {"ok": True, **local}, local) is None
    assert probe_problem(node, {"ok": False, "error": "Connection refused"}, local) == (
        "node dc2 (ops@bastion:2222): not usable: Connection refused"
    )
    assert probe_problem(node, {"ok": True, "playdeck": "0.0.9", "ansible_core": "2.19.0"}, local) == (
        "node dc2 (ops@bastion:2222): version mismatch: playdeck 0.0.9 there, 0.1.0 here"
    )
