"""The console's side of execution nodes: the ssh command, the bundle, the probe, and an attempt there.

An attempt on a node runs the same supervisor there (node_side.py), through the user's own OpenSSH
client: BatchMode (never a prompt), host keys always checked (the user's config, or the node's
known_hosts; never StrictHostKeyChecking=no), one ControlMaster per node for reuse. Nothing secret is
on any command line: the config with the secrets is the first line on ssh's stdin, in memory at both
ends. Killing ssh, or losing the link, is EOF for the node's supervisor, which then stops everything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tui
from tui.core.planning.nodes import Node
from tui.core.running import procs
from tui.core.running.node_bundle import NodeError, build_bundle, vault_file_to_secret
from tui.core.sanitize import sanitize
from tui.core.storage.logstore import AttemptFiles
from tui.core.storage.paths import make_private_dir

if TYPE_CHECKING:
    from tui.core.running.attempt import Attempt, AttemptProcess

SUPERVISOR = "tui.core.running.supervisor"
CONTROL_SUBDIR = "pd-nodes"  # below procs.private_control_base(): short, ssh's socket paths are limited
CONNECT_TIMEOUT = 15
STOP_WAIT = 2.0  # past the grace, how long a stopping node may take to answer before ssh itself is ended
DRAIN = 2.0  # after ssh exited, how long its ControlMaster may still hold our pipe
HEARTBEAT = 5.0  # seconds between our {"cmd": "alive"} to a node
SILENCE = 60.0  # a node stops an attempt whose console said nothing for this long (a cut, not closed, link)
# the node's encoding of its messages (supervisor.emit); reused, and no cycle check: parsed JSON has none
ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str)


# -- ssh ----------------------------------------------------------------------


def control_dir() -> Path:
    """The private dir of the nodes' ControlMaster sockets (made and checked: ours, 0700, not a symlink)."""
    path = os.path.join(procs.private_control_base(), CONTROL_SUBDIR)
    why = make_private_dir(path)
    if why is not None:
        raise procs.UnsafeDirError(f"refusing the ssh control socket directory {path}: it {why}")
    return Path(path)


def _ssh_path(path: Path | str) -> str:
    """A path as an ssh_config value: `%` escaped (ssh expands tokens there), quoted if it has blanks."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def _remote_word(word: str) -> str:
    """One word for the remote shell; a leading `~/` still means the node user's home."""
    if word.startswith("~/"):
        return "~/" + shlex.quote(word[2:])
    return shlex.quote(word)


def control_name(node: Node) -> str:
    """One master per way of reaching the node: a master set up with one known_hosts or identity must
    never serve a node configured with another (it would skip that node's host key check)."""
    key = json.dumps([node.ssh, node.port, str(node.identity or ""), str(node.known_hosts or "")])
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def ssh_command(node: Node, remote: list[str], control_dir: Path) -> list[str]:
    """The ssh argv running `remote` (an argv, each word quoted for the remote shell) on `node`."""
    cmd = ["ssh", "-T", "-x", "-a", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
    if node.port:
        cmd += ["-p", str(node.port)]
    if node.identity:
        cmd += ["-i", str(Path(node.identity).expanduser()), "-o", "IdentitiesOnly=yes"]
    if node.known_hosts:
        cmd += ["-o", f"UserKnownHostsFile={_ssh_path(Path(node.known_hosts).expanduser())}"]
    cmd += [
        "-o", "ControlMaster=auto",
        "-o", f"ControlPath={_ssh_path(Path(control_dir) / control_name(node))}",
        "-o", "ControlPersist=60",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=3",
        "-o", "ClearAllForwardings=yes",
        "--", node.ssh, " ".join(_remote_word(w) for w in remote),
    ]  # fmt: skip
    return cmd


def supervisor_command(node: Node, *args: str, marker: str | None = None) -> list[str]:
    """`<python> -m tui.core.running.supervisor <args>` on the node, its env tagged with the marker
    (ssh passes no environment; the marker is no secret)."""
    tag = ["env", f"{procs.MARKER_VAR}={marker}"] if marker else []
    return [*tag, node.python, "-m", SUPERVISOR, *args]


def ssh_env() -> dict[str, str]:
    """Our environment without the attempt marker: a ControlPersist master started by one attempt
    serves others, and must not be swept with the attempt that happened to start it."""
    return {k: v for k, v in os.environ.items() if k != procs.MARKER_VAR}


# -- versions -------------------------------------------------------------------


def local_versions() -> dict[str, str | None]:
    try:
        from ansible.release import __version__ as ansible_core  # a tiny module: not Ansible itself
    except ImportError:
        ansible_core = None
    return {"playdeck": tui.__version__, "ansible_core": ansible_core}


def version_problem(report: dict[str, Any]) -> str | None:
    """Why a node's versions (from --probe) do not match ours, or None."""
    mine = local_versions()
    for key, label in (("playdeck", "playdeck"), ("ansible_core", "ansible-core")):
        if report.get(key) != mine[key]:
            return f"version mismatch: {label} {mine[key]} here, {report.get(key) or 'none'} on the node"
    if not report.get("ansible_playbook"):
        return "no ansible-playbook beside the node's python"
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return sanitize(lines[-1][:300]) if lines else ""


def explain_exit(node: Node, rc: int | None, stderr: str, connected: bool = False) -> str:
    """What an ssh to `node` that gave no (last) answer means, naming the node. `connected`: the
    node's supervisor had spoken, so a failure of ssh is a link lost, not a node never reached."""
    last = _last_line(stderr)
    if rc is not None and rc < 0:
        return f"lost the link to {node.describe()}: ssh was ended by {signal.Signals(-rc).name}"
    if rc == 255:  # ssh's own failures: cannot connect, host key, auth, the link dropped
        what = "lost the link to" if connected else "cannot reach"
        return f"{what} {node.describe()}: {last or 'the ssh connection closed (ssh exited with 255)'}"
    if rc == 127 or "not found" in last or "No such file" in last:
        return f"{node.describe()}: cannot run {node.python} there: {last}"
    if "No module named" in last or "Error while finding module" in last:
        return f"{node.describe()}: playdeck is not installed for {node.python} there: {last}"
    return f"the supervisor on {node.describe()} ended without a result (exit {rc}): {last}"


async def probe(node: Node, timeout: float = 10) -> dict[str, Any]:
    """Reach `node` and ask its supervisor's versions: {"ok", "reachable", "playdeck", "ansible_core",
    "ansible_runner", "python", "error"}; ok means reachable, same playdeck and ansible-core, and an
    ansible-playbook there. Never raises for what the node says: the reason is in "error"."""
    report: dict[str, Any] = {"ok": False, "reachable": False, "playdeck": None, "ansible_core": None, "error": None}
    try:
        command = ssh_command(node, supervisor_command(node, "--probe"), control_dir())
        done = await asyncio.to_thread(
            subprocess.run, command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=ssh_env()
        )
    except subprocess.TimeoutExpired:
        report["error"] = f"{node.describe()}: no answer within {timeout:g}s"
        return report
    except OSError as exc:
        report["error"] = f"{node.describe()}: cannot run ssh: {exc.strerror or exc}"
        return report
    stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    answer: Any = None
    for line in reversed(stdout.splitlines()):
        try:
            answer = json.loads(line)
            break
        except ValueError:
            continue
    if done.returncode != 0 or not isinstance(answer, dict):
        report["reachable"] = done.returncode != 255
        report["error"] = explain_exit(node, done.returncode, stderr or stdout)
        return report
    report.update(answer, reachable=True)
    why = version_problem(answer)
    report["ok"], report["error"] = why is None, why and f"{node.describe()}: {why}"
    return report


def node_config(
    kwargs: dict[str, Any], attempt: Attempt, grace: float, nice: int, secrets: dict[str, str] | None
) -> dict[str, Any]:
    """The first stdin line for node_side (less "deadline_in", added just before it is sent)."""
    kwargs, secrets = vault_file_to_secret(dict(kwargs), dict(secrets or {}))
    bundle, paths = build_bundle(kwargs)
    for key in (*paths, "private_data_dir"):
        kwargs.pop(key, None)  # local paths: the node puts its own
    return {
        "kwargs": kwargs,
        "bundle": bundle,
        "paths": paths,
        "marker": attempt.marker,
        "grace": grace,
        "nice": nice,
        "secrets": secrets,
        "versions": local_versions(),
        "silence": SILENCE,
    }


def seconds_left(deadline: float | None) -> float | None:
    """A local monotonic deadline as seconds from now: the node's clock is another."""
    return None if deadline is None else deadline - time.monotonic()


# -- one attempt ------------------------------------------------------------------


class NodeLog(AttemptFiles):
    """A node attempt's local log, written by the engine's own process (a local attempt's supervisor
    writes its own): buffered and flushed by NodeLink once per batch of messages read (the node sends
    its events in batches), not twice per event; each event as the node encoded it when it can be."""

    def write_event(self, event: dict[str, Any], raw: str | None = None) -> None:
        """`raw`: the event's JSON as the node sent it, if known (see NodeLink.raw_event)."""
        self.events.write((ENCODER.encode(event) if raw is None else raw) + "\n")
        text = event.get("stdout")
        if text:
            self.output.write(text.replace("\r\n", "\n") + "\n")

    def write_note(self, text: str) -> None:
        self.output.write(text + "\n")

    def flush(self) -> None:
        """Raise OSError when the disk refuses what was buffered."""
        self.events.flush()
        self.output.flush()


class NodeLink:
    """The local side of one attempt on a node, driven by AttemptProcess: keeps the log here."""

    def __init__(self, node: Node, attempt: Attempt):
        self.node = node
        self.attempt = attempt
        self.files: NodeLog | None = None
        self.flushing: asyncio.Handle | None = None  # the flush after the batch being read
        self.errlog = attempt.directory / "supervisor.log"  # ssh's stderr and the node supervisor's
        self.err_from = 0
        self.heard = False  # a message came from the node: a failure of ssh from then on is a lost link
        self.process: AttemptProcess | None = None
        self.grace = 1.0

    def keep(self, message: dict[str, Any], line: bytes = b"") -> bool:
        """Write what the log needs of a message (`line`: as it was read, whose full event the log
        can take as it is); False for messages only the log wants."""
        kind = message.get("t")
        self.heard = True
        if kind == "ev":
            full = message.pop("full", None)
            if isinstance(full, dict):
                raw = self.raw_event(message, full, line)
                full.setdefault("stdout", message.get("stdout") or "")
                self._write(lambda files: files.write_event(full, raw))
        elif kind == "ready":
            return False
        elif kind == "note":
            self._write(lambda files: files.write_note(str(message.get("text") or "")))
            return False
        elif kind == "end":
            if message.get("error"):
                message["error"] = f"on {self.node.describe()}: {message['error']}"
            if message.get("leftover"):  # what the local sweep by marker tells of a local attempt
                left = f"processes {message['leftover']} on {self.node.describe()} could not be ended"
                self.attempt.error = self.attempt.error or left
        return True

    def raw_event(self, message: dict[str, Any], full: dict[str, Any], line: bytes) -> str | None:
        """The full event's JSON cut from the line just read, rather than encoded again (the most
        of what the log costs this process), or None: the node sends it as the message's last key,
        and the rest of the line must be exactly the message without it, or nothing is cut."""
        if not line or not full:
            return None
        head = ENCODER.encode(message)[:-1] + ', "full": '
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not (text.startswith(head) and text.endswith("}")):
            return None
        raw = text[len(head) : -1]
        if "stdout" not in full:  # the node sends it once, in the message: the log's event has it
            raw = f'{raw[:-1]}, "stdout": {ENCODER.encode(message.get("stdout") or "")}}}'
        return raw

    def _write(self, what: Any) -> None:
        if self.files is None:
            return
        try:
            what(self.files)
        except OSError as exc:
            self._failed(exc)
            return
        if self.flushing is None:  # runs once the reader has taken every line already received
            self.flushing = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flushing = None
        if self.files is not None:
            try:
                self.files.flush()
            except OSError as exc:
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        """As in a local attempt: a job whose log cannot be kept is stopped, and ends as error."""
        self.attempt.error = self.attempt.error or f"cannot write the log: {exc.strerror or exc}"
        self._close()
        if self.process is not None:
            self.process.stop("error", self.grace)

    def _close(self) -> None:
        """Flush and close: the log is complete on disk before the attempt's end is reported."""
        if self.flushing is not None:
            self.flushing.cancel()
            self.flushing = None
        files, self.files = self.files, None
        if files is None:
            return
        try:
            files.flush()
        except OSError as exc:
            self.attempt.error = self.attempt.error or f"cannot write the log: {exc.strerror or exc}"
        files.close()

    def note(self, text: str) -> None:
        self._write(lambda files: files.write_note(f"playdeck: {text}"))

    async def run(
        self,
        process: AttemptProcess,
        kwargs: dict[str, Any],
        deadline: float | None,
        grace: float,
        nice: int,
        secrets: dict[str, str] | None,
    ) -> None:
        from tui.core.running.attempt import spawn

        attempt = self.attempt
        process.deadline = deadline
        self.process, self.grace = process, grace
        self.files = NodeLog(attempt.directory)
        try:
            try:
                config = await asyncio.to_thread(node_config, kwargs, attempt, grace, nice, secrets)
                command = ssh_command(
                    self.node, supervisor_command(self.node, "--node", marker=attempt.marker), control_dir()
                )
            except (NodeError, OSError, ValueError, tarfile.TarError) as exc:
                attempt.error = f"cannot send the attempt to {self.node.describe()}: {exc}"
                self.note(attempt.error)
                return
            if attempt.stop_reason:  # stopped while the bundle was made: nothing was started
                return
            fd = os.open(self.errlog, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with open(fd, "ab") as errlog:
                self.err_from = errlog.seek(0, os.SEEK_END)
                process.proc = await spawn(*command, stderr=errlog, env=ssh_env())
            config["deadline_in"] = seconds_left(process.deadline)
            process.send(config)
            del config
            heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(process))
            if attempt.stop_reason:
                process.stop(attempt.stop_reason, grace)
            try:
                await self._read(process)
            except asyncio.CancelledError:
                self.sever(process)  # EOF for the node: it stops everything there
                raise
            finally:
                heartbeat.cancel()
                for timer in process._timers:
                    timer.cancel()
            rc = await self._wait(process)
            if process.end is None:
                error = explain_exit(self.node, rc, self._stderr(), self.heard)
                attempt.error = attempt.error or error
                self.note(error)
        finally:
            self._close()

    async def _heartbeat(self, process: AttemptProcess) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            process.send({"cmd": "alive"})

    async def _read(self, process: AttemptProcess) -> None:
        """Read until EOF, or until ssh has been gone for DRAIN seconds (its master may keep our pipe)."""
        assert process.proc is not None
        reader = asyncio.ensure_future(process._read())
        try:
            while not reader.done():
                await asyncio.wait({reader}, timeout=0.2)
                if not reader.done() and process.proc.returncode is not None:
                    await asyncio.wait({reader}, timeout=DRAIN)
                    break
            if reader.done():
                reader.result()
        finally:
            if not reader.done():
                reader.cancel()

    async def _wait(self, process: AttemptProcess) -> int | None:
        """ssh's exit status, ending it if it lingers once the node has said its last word."""
        proc = process.proc
        assert proc is not None
        for sig, wait in ((None, STOP_WAIT), (signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            if sig is not None and proc.returncode is None:
                proc.send_signal(sig)
            try:
                return await asyncio.wait_for(proc.wait(), wait)
            except asyncio.TimeoutError:
                continue
        return proc.returncode

    def sever(self, process: AttemptProcess) -> None:
        proc = process.proc
        if proc is not None and proc.returncode is None:
            proc.stdin.close()
            proc.send_signal(signal.SIGTERM)

    def _stderr(self) -> str:
        try:
            with open(self.errlog, "rb") as fh:
                fh.seek(max(self.err_from, os.path.getsize(self.errlog) - 4096))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""
