"""Execution nodes, the transport (issue 13): attempts run by the supervisor on a node over real ssh.

The node is this machine behind a real sshd on 127.0.0.1 (tests/sshd.py) with its own host key in
a test known_hosts (host keys checked, never StrictHostKeyChecking=no) and a fresh client key. The
node's Python is a small wrapper that gives the node its own HOME, XDG_RUNTIME_DIR and TMPDIR under
this module's temp dir, so its work dirs can be watched; it finds playdeck as installed, like a real
node. AttemptProcess is driven directly with runner_kwargs of a sample playbook (connection local:
on the node, "local" is the node). The local side never sweeps by marker for a node attempt, so what
is found gone here was ended by the node side.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Coroutine, Iterator, TypeVar

import pytest

import tui
from tests.conftest import INVENTORY, _live, _read, pids_with_env, playbook, until
from tests.sshd import HOST, SshServer, keygen, sshd  # noqa: F401 - sshd is a fixture
from tui.core.planning.nodes import Node
from tui.core.planning.spec import JobSpec, spec_for_playbook
from tui.core.running import node_link
from tui.core.running.attempt import Attempt, AttemptProcess, runner_kwargs
from tui.core.running.procs import MARKER_VAR
from tui.core.storage.logstore import attempt_dir

SLOW = playbook("slow_task")
VAULT_PW = "Node-Vault-Pw-51d2e0"
BECOME_PW = "Node-Become-Pw-9a7c44"
CANARY = "node-decrypted-canary-3b"
T = TypeVar("T")


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def marked(marker: str) -> list[int]:
    """Live processes whose environment carries the attempt's marker."""
    return pids_with_env(f"{MARKER_VAR}={marker}")


def under_sshd(server: SshServer) -> list[int]:
    """What runs under the node's sshd besides sshd itself (the ControlPersist connection's sshd stays)."""
    return [p for p in server.sessions() if _live(str(p)) and not _read(f"/proc/{p}/cmdline").startswith(b"sshd")]


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")


class NodeHome:
    """The node's side of the file system: where its work dirs and Ansible's files go."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("home", "run", "tmp"):
            (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.python = root / "python"
        self.python.write_text(
            "#!/bin/sh\n"
            f'exec env HOME="{root}/home" XDG_RUNTIME_DIR="{root}/run" TMPDIR="{root}/tmp" "{sys.executable}" "$@"\n'
        )
        self.python.chmod(0o755)

    def older_playdeck(self) -> Path:
        """A Python on which `import tui` finds playdeck 0.0.1 (its modules are this checkout's)."""
        fake = self.root / "old" / "tui"
        fake.mkdir(parents=True, exist_ok=True)
        real = Path(tui.__file__).parent
        (fake / "__init__.py").write_text(f'__version__ = "0.0.1"\n__path__.append("{real}")\n')
        python = self.root / "python-old"
        python.write_text(f'#!/bin/sh\nexec env PYTHONPATH="{fake.parent}" "{self.python}" "$@"\n')
        python.chmod(0o755)
        return python

    def work_dirs(self) -> list[Path]:
        base = self.root / "run" / "playdeck" / "node"
        return sorted(base.iterdir()) if base.is_dir() else []

    def everything(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def node_home(tmp_path_factory: pytest.TempPathFactory) -> NodeHome:
    return NodeHome(tmp_path_factory.mktemp("nodehome"))


@pytest.fixture(scope="module")
def known_hosts(sshd: SshServer) -> Path:  # noqa: F811 - the fixture
    return sshd.known_hosts(sshd.directory / "known_hosts")


@pytest.fixture
def node(sshd: SshServer, known_hosts: Path, node_home: NodeHome) -> Iterator[Node]:  # noqa: F811
    yield Node(
        name="dc2",
        ssh=f"{sshd.user}@{HOST}",
        port=sshd.port,
        identity=sshd.key,
        known_hosts=known_hosts,
        python=str(node_home.python),
    )
    assert marked_any() == [], "a node attempt left processes"


_markers: list[str] = []


def marked_any() -> list[int]:
    return [pid for m in _markers for pid in marked(m)]


class Run:
    """One attempt on a node, driven like the engine drives it."""

    def __init__(self, node: Node, spec: JobSpec, state: Path):
        marker = f"nodetest-{os.getpid()}-{len(_markers)}-{time.monotonic_ns()}"
        _markers.append(marker)
        directory = attempt_dir(state, "run", spec.name, 1)
        self.attempt = Attempt(number=1, limit=spec.limit, directory=directory, marker=marker)
        self.attempt.node = node.name
        self.messages: list[dict[str, Any]] = []
        self.process = AttemptProcess(self.attempt, self.messages.append, node=node)
        self.kwargs = runner_kwargs(spec, directory, spec.limit)
        self.task: asyncio.Task[None] | None = None

    def start(self, deadline: float | None = None, secrets: dict[str, str] | None = None) -> None:
        self.task = asyncio.get_running_loop().create_task(self.process.run(self.kwargs, deadline, 1.0, 0, secrets))

    async def done(self, timeout: float = 60) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout)

    async def running(self, needle: str, timeout: float = 40) -> int:
        """The pid of the attempt's process whose command line has `needle`, once it runs."""
        found: list[int] = []

        def look() -> bool:
            assert self.task is not None
            if self.task.done():
                raise AssertionError(f"the attempt ended early: {self.diagnose()}")
            found[:] = [p for p in marked(self.attempt.marker) if needle in cmdline(p)]
            return bool(found)

        await until(look, timeout, f"{needle!r} on the node")
        return found[0]

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("t") == "ev"]

    def diagnose(self) -> str:
        err = self.attempt.directory / "supervisor.log"
        return f"end={self.process.end} error={self.attempt.error}\n--- supervisor.log ---\n" + (
            err.read_text(errors="replace")[-3000:] if err.exists() else ""
        )


async def gone(server: SshServer, marker: str, timeout: float) -> float:
    """Seconds until nothing of the attempt runs on the node (by marker and under the sshd)."""
    start = time.monotonic()
    await until(lambda: not marked(marker) and not under_sshd(server), timeout, "the node to be clean")
    return time.monotonic() - start


def slow(name: str, secs: int, **options: Any) -> JobSpec:
    return spec_for_playbook(SLOW, INVENTORY, name=name, limit="db01", extra_vars={"slow_seconds": secs}, **options)


# -- 1. a job on the node --------------------------------------------------------


def test_a_job_runs_under_the_nodes_sshd_streams_back_and_leaves_nothing(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("on-node", 2), isolated_state)

    async def main() -> None:
        job.start()
        pid = await job.running("ansible-playbook")
        assert pid in sshd.sessions(), "ansible-playbook is not below the node's sshd"
        assert any(cmdline(p).startswith("sshd") for p in sshd.session_sshds())
        assert len(node_home.work_dirs()) == 1 and (node_home.work_dirs()[0].stat().st_mode & 0o777) == 0o700
        await job.done()

    arun(main())
    end = job.process.end
    assert end is not None and end["status"] == "successful" and end["rc"] == 0, job.diagnose()
    assert job.attempt.error is None
    names = {m.get("event") for m in job.events()}
    assert {"playbook_on_start", "runner_on_ok", "playbook_on_stats"} <= names
    assert all("full" not in m for m in job.messages), "the full event is for the local log only"
    output = job.attempt.log.read_text()
    assert "Run long database migration" in output and "PLAY RECAP" in output and "db01" in output
    events = [json.loads(line) for line in job.attempt.events_log.read_text().splitlines()]
    # written here in batches, and complete (flushed and closed) once the attempt has ended
    assert [e["counter"] for e in events] == [m["counter"] for m in job.events()]
    ok = [e for e in events if e.get("event") == "runner_on_ok"]
    # the full event, not the trimmed one the console gets: `cmd` is not among the trimmed keys
    assert ok and ok[0]["event_data"]["res"]["cmd"] == ["sleep", "2"]
    assert node_home.work_dirs() == [], "the node's work dir outlived the attempt"
    assert under_sshd(sshd) == [] and marked(job.attempt.marker) == []
    assert "Accepted publickey" in sshd.log_text()


def test_a_role_linked_from_outside_the_playbooks_directory_reaches_the_node(
    node: Node,
    node_home: NodeHome,
    isolated_state: Path,
    tmp_path: Path,
) -> None:
    role = tmp_path / "shared" / "greeter"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text('- ansible.builtin.debug: {msg: "hello from a linked role"}\n')
    project = tmp_path / "project"
    (project / "roles").mkdir(parents=True)
    (project / "roles" / "greeter").symlink_to(role)  # absolute, out of the project: sent as its content
    (project / "itself").symlink_to(project)  # a loop: not followed
    (project / ".git").mkdir()
    (project / ".git" / "big").write_bytes(os.urandom(1 << 20))  # never sent
    (project / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [greeter]\n")
    job = Run(node, spec_for_playbook(project / "site.yml", INVENTORY, name="linked", limit="db01"), isolated_state)
    bundle, paths = node_link.build_bundle(job.kwargs)
    assert len(bundle) < 64 * 1024 and paths == {
        "project_dir": "project",
        "playbook": "project/site.yml",
        "inventory": "inventory/hosts.yml",
    }

    async def main() -> None:
        job.start()
        await job.done()

    arun(main())
    end = job.process.end
    assert end is not None and end["status"] == "successful", job.diagnose()
    assert "hello from a linked role" in job.attempt.log.read_text()


# -- 2. cancel and timeout ----------------------------------------------------------


def test_cancel_ends_everything_on_the_node_within_a_second(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("cancel-on-node", 37), isolated_state)

    async def main() -> float:
        job.start()
        await job.running("sleep 37")
        job.attempt.stop_reason = "cancel"
        job.process.stop("cancel", 1.0)
        took = await gone(sshd, job.attempt.marker, 10)
        await job.done(15)
        return took

    took = arun(main())
    assert took < 1.5, f"the node took {took:.2f}s to end the attempt"
    assert job.process.end is not None and job.process.end["reason"] == "cancel", job.diagnose()
    assert node_home.work_dirs() == []
    assert "playdeck: stopped (cancel)" in job.attempt.log.read_text()  # the node's note, in the local log


def test_a_local_log_the_disk_refuses_stops_the_node_attempt_as_an_error(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("log-refused", 33), isolated_state)
    job.attempt.events_log.symlink_to("/dev/full")  # every write there: ENOSPC

    async def main() -> None:
        job.start()
        await job.done(30)
        await gone(sshd, job.attempt.marker, 10)

    start = time.monotonic()
    arun(main())
    assert time.monotonic() - start < 25, "the attempt ran on although its log could not be written"
    assert job.attempt.error == "cannot write the log: No space left on device", job.diagnose()
    assert job.process.end is not None and job.process.end["reason"] == "error", job.diagnose()
    assert node_home.work_dirs() == []


def test_timeout_is_kept_on_the_nodes_clock_and_ends_everything_there(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("timeout-on-node", 38), isolated_state)

    async def main() -> float:
        job.start(deadline=time.monotonic() + 60)
        await job.running("sleep 38")
        deadline = time.monotonic() + 0.5
        job.process.set_deadline(deadline)  # moved while it runs, as the console's "extend" does
        await until(lambda: not marked(job.attempt.marker) and not under_sshd(sshd), 10, "the node to be clean")
        late = time.monotonic() - deadline
        await job.done(15)
        return late

    late = arun(main())
    assert job.process.end is not None and job.process.end["reason"] == "timeout", job.diagnose()
    assert late < 1.5, f"everything ended {late:.2f}s after the deadline"
    assert node_home.work_dirs() == []


def test_a_prompt_on_the_node_is_answered_over_the_link(
    node: Node,
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    book = Path(__file__).parent / "playbooks" / "prompt_vars.yml"
    job = Run(node, spec_for_playbook(book, INVENTORY, name="prompt", limit="db01"), isolated_state)

    async def main() -> None:
        job.start()
        await until(lambda: any(m.get("t") == "prompt" for m in job.messages), 40, "the prompt")
        job.process.send({"cmd": "input", "text": "v7.3-node"})
        await job.done()

    arun(main())
    prompt = next(m for m in job.messages if m.get("t") == "prompt")
    assert prompt["kind"] == "vars_prompt" and prompt["varname"] == "release"
    assert job.process.end is not None and job.process.end["status"] == "successful", job.diagnose()
    assert "release is v7.3-node" in job.attempt.log.read_text()
    assert node_home.work_dirs() == []


# -- 3. the link lost ---------------------------------------------------------------


def test_killing_the_local_ssh_client_ends_everything_on_the_node(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("kill-ssh", 39), isolated_state)

    async def main() -> float:
        job.start()
        await job.running("sleep 39")
        assert job.process.proc is not None and "ssh" in cmdline(job.process.proc.pid)
        os.kill(job.process.proc.pid, signal.SIGKILL)
        took = await gone(sshd, job.attempt.marker, 10)
        await job.done(15)
        return took

    took = arun(main())
    assert took < 4, f"the node took {took:.2f}s to notice"
    assert job.process.end is None
    error = job.attempt.error or ""
    assert error.startswith(f"lost the link to node dc2 ({node.ssh}:{sshd.port})"), error
    assert "SIGKILL" in error
    assert error in job.attempt.log.read_text()
    assert node_home.work_dirs() == []


def test_a_console_torn_down_mid_job_leaves_nothing_on_the_node(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("teardown", 44), isolated_state)

    async def main() -> float:
        job.start()
        await job.running("sleep 44")
        assert job.task is not None
        job.task.cancel()  # what asyncio.run does to the engine's tasks at shutdown
        with pytest.raises(asyncio.CancelledError):
            await job.task
        return await gone(sshd, job.attempt.marker, 10)

    took = arun(main())
    assert took < 4, f"the node took {took:.2f}s to notice"
    assert node_home.work_dirs() == []


def test_the_link_cut_at_the_node_ends_the_attempt_and_the_node_cleans_up(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    """The node's sshd dies (the connection is gone there) but the node itself lives on: its
    supervisor must end everything and remove its work dir by itself."""
    job = Run(node, slow("cut-link", 40), isolated_state)

    async def main() -> float:
        job.start()
        await job.running("sleep 40")
        for pid in sshd.session_sshds():
            os.kill(pid, signal.SIGKILL)
        took = await gone(sshd, job.attempt.marker, 10)
        await job.done(30)
        return took

    took = arun(main())
    assert took < 4, f"the node took {took:.2f}s to notice"
    assert job.process.end is None
    error = job.attempt.error or ""
    assert error.startswith(f"lost the link to node dc2 ({node.ssh}:{sshd.port}): "), error
    assert node_home.work_dirs() == []


def test_sessions_dropped_by_the_node_end_the_attempt_and_the_next_one_sweeps(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
) -> None:
    job = Run(node, slow("drop-link", 41), isolated_state)

    async def main() -> None:
        job.start()
        await job.running("sleep 41")
        sshd.drop_sessions()  # the node's whole side dies at once (SIGKILL: no cleanup there)
        await job.done(30)

    arun(main())
    assert job.process.end is None
    error = job.attempt.error or ""
    assert error.startswith(f"lost the link to node dc2 ({node.ssh}:{sshd.port}): "), error
    # drop_sessions kills the process tree it saw, as a dying host would; a process forked while it
    # did so can escape it (seen: the task's sleep): end those here, as the host's death would have
    for pid in marked(job.attempt.marker):
        os.kill(pid, signal.SIGKILL)
    # the killed supervisor could not remove its work dir: the next attempt there does
    assert len(node_home.work_dirs()) == 1
    ping = Run(
        node, JobSpec(name="ping", inventory=INVENTORY, module="ansible.builtin.ping", limit="db01"), isolated_state
    )

    async def again() -> None:
        ping.start()
        await ping.done()

    arun(again())
    assert ping.process.end is not None and ping.process.end["status"] == "successful", ping.diagnose()
    assert node_home.work_dirs() == []


def test_a_silent_console_is_taken_as_gone_by_the_node(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link cut without a close (a partition: the ssh master frozen here) gives the node no EOF;
    without a word from the console for `silence` seconds, the node stops the attempt by itself."""
    monkeypatch.setattr(node_link, "HEARTBEAT", 0.3)
    monkeypatch.setattr(node_link, "SILENCE", 2.0)
    job = Run(node, slow("partition", 43), isolated_state)
    name = node_link.control_name(node)

    async def main() -> float:
        job.start()
        await job.running("sleep 43")
        masters = [p for p in _pids_with(name) if "[mux]" in cmdline(p)]
        assert len(masters) == 1, [cmdline(p) for p in _pids_with(name)]
        os.kill(masters[0], signal.SIGSTOP)
        try:
            took = await gone(sshd, job.attempt.marker, 15)
        finally:
            os.kill(masters[0], signal.SIGCONT)
        await job.done(20)
        return took

    took = arun(main())
    assert took < 2.0 + 3, f"the node took {took:.2f}s"
    end = job.process.end
    assert end is not None and end["reason"] == "orphaned", job.diagnose()
    assert "no word from the console for 2s: the link to it is lost" in end["error"]
    assert end["error"].startswith(f"on node dc2 ({node.ssh}:{sshd.port}): ")
    assert node_home.work_dirs() == []


def _pids_with(needle: str) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and needle in cmdline(int(p)) and _live(p)]


# -- 4. secrets ----------------------------------------------------------------------


def vaulted_playbook(where: Path) -> Path:
    where.mkdir()
    pwfile = where.parent / "pw.txt"
    pwfile.write_text(VAULT_PW + "\n")
    encrypted = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file", str(pwfile)]
        + [CANARY, "--name", "canary"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pwfile.unlink()
    tasks = textwrap.dedent("""\
      tasks:
        - name: use the secret
          ansible.builtin.assert: {that: ["canary | length > 0"], quiet: true}
        - name: hold on so the node can be read
          ansible.builtin.command: sleep 2.42
          changed_when: false
          when: hold | default(true) | bool
        """)
    book = where / "vaulted.yml"
    book.write_text(
        "- hosts: all\n  gather_facts: false\n  vars:\n"
        + textwrap.indent(encrypted, "    ")
        + textwrap.indent(tasks, "  ")
    )
    return book


def test_secrets_never_reach_the_nodes_disk_or_process_table(
    node: Node,
    sshd: SshServer,  # noqa: F811
    node_home: NodeHome,
    isolated_state: Path,
    tmp_path: Path,
) -> None:
    book = vaulted_playbook(tmp_path / "project")
    spec = spec_for_playbook(book, INVENTORY, name="secrets", limit="db01")
    job = Run(node, spec, isolated_state)
    secrets = {"vault": VAULT_PW, "become": BECOME_PW}
    needles = [s.encode() for s in secrets.values()]

    async def main() -> None:
        job.start(secrets=secrets)
        await job.running("sleep 2.42")
        work = node_home.work_dirs()
        assert len(work) == 1
        on_disk = b"".join(p.read_bytes() for p in work[0].rglob("*") if p.is_file())
        assert not any(n in on_disk for n in needles), "a secret is in the node's work dir"
        assert (work[0] / "bundle" / "project" / "vaulted.yml").is_file()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                for name in ("cmdline", "environ"):
                    seen = _read(f"/proc/{pid}/{name}")
                    assert not any(n in seen for n in needles), (
                        f"a secret is in /proc/{pid}/{name}: {cmdline(int(pid))}"
                    )
        await job.done()

    arun(main())
    end = job.process.end
    assert end is not None and end["status"] == "successful", job.diagnose()  # the vault opened: the secret arrived
    assert node_home.work_dirs() == []
    everything = node_home.everything() + b"".join(
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert everything and not any(n in everything for n in needles), "a secret was written to disk"


def test_a_vault_password_file_goes_as_a_secret_never_as_a_file_on_the_node(
    node: Node,
    node_home: NodeHome,
    isolated_state: Path,
    tmp_path: Path,
) -> None:
    book = vaulted_playbook(tmp_path / "project")
    secret_file = tmp_path / "vault-pass"  # outside the playbook's directory: not in the bundle
    secret_file.write_text(VAULT_PW + "\n")
    spec = spec_for_playbook(
        book, INVENTORY, name="vault-file", limit="db01", vault_password_file=secret_file, extra_vars={"hold": False}
    )
    job = Run(node, spec, isolated_state)
    config = node_link.node_config(job.kwargs, job.attempt, 1.0, 0, None)
    assert config["secrets"] == {"vault": VAULT_PW} and "vault-pass" not in json.dumps(config["kwargs"])

    async def main() -> None:
        job.start()
        await job.done()

    arun(main())
    end = job.process.end
    assert end is not None and end["status"] == "successful", job.diagnose()  # opened with the file's password
    assert VAULT_PW.encode() not in node_home.everything()
    assert str(secret_file) not in job.attempt.directory.joinpath("supervisor.log").read_text()


# -- 5. probe -------------------------------------------------------------------------


def test_probe_reports_versions_and_refuses_what_it_must(
    node: Node,
    sshd: SshServer,  # noqa: F811
    known_hosts: Path,
    node_home: NodeHome,
    isolated_state: Path,
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    other_key = keygen(tmp_path / "other_host_key")
    wrong_hosts = tmp_path / "wrong_known_hosts"
    algo, key = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    wrong_hosts.write_text(f"[{HOST}]:{sshd.port} {algo} {key}\n")
    assert other_key.exists()

    async def main() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                node_link.probe(node),
                node_link.probe(replace(node, python="/nonexistent/bin/python3")),
                node_link.probe(replace(node, python="/usr/bin/python3")),
                node_link.probe(replace(node, known_hosts=wrong_hosts)),
                node_link.probe(replace(node, python=str(node_home.older_playdeck()))),
            )
        )

    good, missing, bare, wrong, old = arun(main())
    from ansible.release import __version__ as ansible_core

    assert good["ok"] and good["error"] is None, good
    assert (good["playdeck"], good["ansible_core"]) == (tui.__version__, ansible_core)
    assert good["python"] == ".".join(map(str, sys.version_info[:3]))

    where = f"node dc2 ({node.ssh}:{sshd.port})"
    assert not missing["ok"] and missing["error"].startswith(f"{where}: cannot run /nonexistent/bin/python3"), missing
    assert not bare["ok"] and bare["error"].startswith(f"{where}: playdeck is not installed for /usr/bin/python3"), bare
    assert not wrong["ok"] and not wrong["reachable"], wrong
    assert wrong["error"] == f"cannot reach {where}: Host key verification failed.", wrong
    assert not old["ok"] and old["reachable"] and old["playdeck"] == "0.0.1", old
    assert old["error"] == f"{where}: version mismatch: playdeck {tui.__version__} here, 0.0.1 on the node", old

    # an attempt to a node whose host key is not the known one: never started, the node named
    refused = Run(replace(node, known_hosts=wrong_hosts), slow("wrong-key", 1), isolated_state)

    async def wrong_key() -> None:
        refused.start()
        await refused.done()

    arun(wrong_key())
    assert refused.process.end is None
    assert refused.attempt.error == f"cannot reach {where}: Host key verification failed.", refused.attempt.error

    # an attempt sent there anyway is refused by the node itself, before anything runs or is unpacked
    job = Run(replace(node, python=str(node_home.older_playdeck())), slow("old-node", 1), isolated_state)

    async def attempt() -> None:
        job.start()
        await job.done()

    arun(attempt())
    assert job.process.end is not None and job.process.end["status"] == "error"
    assert job.process.end["error"] == (
        f"on {where}: cannot prepare the attempt on the node: "
        f"version mismatch: playdeck {tui.__version__} on the console, 0.0.1 on the node"
    ), job.process.end
    assert node_home.work_dirs() == []
