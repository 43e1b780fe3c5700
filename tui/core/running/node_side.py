"""The node side of an attempt on an execution node: `python -m tui.core.running.supervisor --node`.

The console's node_link.py starts it over ssh. It is the usual supervisor (same protocol, same kill
guarantees: EOF on stdin stops everything now) with these differences, because nothing local to
the console exists here and the two hosts share no clock:
- the config brings a "bundle" (base64 tar.gz of the playbook's directory and the inventory) with
  "paths" relative to it; it is unpacked (tarfile's "data" filter: no absolute paths, no links out,
  no devices) into a private work dir, 0700, under $XDG_RUNTIME_DIR/playdeck/node or
  ~/.cache/playdeck/node, and the work dir is removed when the attempt ends, however it ends;
- "deadline_in" and {"cmd": "deadline", "in": s} are seconds from now, not monotonic instants;
- "marker" tags the processes here (node_link also sets it in the command's environment);
- no log is written here: each "ev" carries the full event as "full" (without "stdout" when the
  trimmed one has it all) and playdeck's notes come as {"t": "note", "text": str}; the console
  keeps the log;
- "silence": a console that has said nothing (not even its {"cmd": "alive"} heartbeat) for that many
  seconds is taken as gone, as EOF would be: a link cut without a close (a partition) leaves sshd
  waiting for TCP keepalives for hours, and the job must not run on unwatched;
- it says {"t": "ready"} first, so the console can tell a node never reached from a link lost;
- "versions" are the console's playdeck and ansible-core: a mismatch ends the attempt as an error.
Secrets stay in memory, as in the local supervisor: never on this host's disk or a command line.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterable, Iterator

import tui
from tui.core.running import procs
from tui.core.running.supervisor import Supervisor, trim_event
from tui.core.storage.logstore import AttemptFiles
from tui.core.storage.paths import make_private_dir

BUNDLE_KEYS = ("project_dir", "playbook", "inventory")  # kwargs that name files of the bundle
UNPACKED_MAX = 2 * 1024**3  # a bundle that unpacks bigger than this is refused
WORK_NAME = re.compile(r"attempt-(\d+)-")


class NodeSideError(Exception):
    """Why this node cannot run the attempt it was sent; becomes the attempt's error."""


def versions() -> dict[str, str | None]:
    """What must match the console's, and what helps to tell why not."""
    try:
        from ansible.release import __version__ as ansible_core
    except ImportError:
        ansible_core = None
    try:
        from importlib.metadata import version

        runner: str | None = version("ansible-runner")
    except Exception:  # noqa: BLE001 - not installed, or no metadata: reported as unknown
        runner = None
    playbook = shutil.which("ansible-playbook", path=_path_with_our_bin())
    return {
        "playdeck": tui.__version__,
        "ansible_core": ansible_core,
        "ansible_runner": runner,
        "python": platform.python_version(),
        "ansible_playbook": playbook,
    }


def probe() -> int:
    """`--probe`: print this node's versions as one JSON line."""
    print(json.dumps(versions()))
    return 0


def _path_with_our_bin() -> str:
    """PATH with this Python's bin dir first: ansible-runner runs `ansible-playbook` by name, and on a
    node it lives beside the configured Python (a venv's bin), which sshd's default PATH lacks."""
    ours = os.path.dirname(sys.executable)
    rest = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and p != ours]
    return os.pathsep.join([ours, *rest])


def version_problem(want: dict[str, Any] | None) -> str | None:
    """Why this node cannot run the console's jobs, or None (the same playdeck and ansible-core)."""
    have = versions()
    for key, label in (("playdeck", "playdeck"), ("ansible_core", "ansible-core")):
        wanted = (want or {}).get(key)
        if wanted and have.get(key) != wanted:
            return f"version mismatch: {label} {wanted} on the console, {have.get(key) or 'none'} on the node"
    return None


def work_base() -> Path:
    """The private per-user dir holding the attempts' work dirs (made here, checked: ours, 0700, no symlink)."""
    runtime = procs._runtime_base()
    base = Path(runtime) / "node" if runtime else Path.home() / ".cache" / "playdeck" / "node"
    base.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    why = make_private_dir(base)
    if why is not None:
        raise NodeSideError(f"refusing the work directory {base}: it {why}")
    return base


def sweep_stale(base: Path) -> None:
    """Remove work dirs whose supervisor is gone (killed before it could clean up: SIGKILL, power loss)."""
    for entry in base.iterdir():
        found = WORK_NAME.match(entry.name)
        if found and int(found.group(1)) != os.getpid() and not procs.alive([int(found.group(1))]):
            shutil.rmtree(entry, ignore_errors=True)


def unpack(bundle: str, dest: Path) -> None:
    """Unpack the console's bundle; tarfile's "data" filter refuses anything that would land outside."""
    if not hasattr(tarfile, "data_filter"):
        raise NodeSideError(f"Python {platform.python_version()} here lacks tarfile filters (3.11.4 or later needed)")
    data = base64.b64decode(bundle, validate=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        if sum(m.size for m in members) > UNPACKED_MAX:
            raise NodeSideError("the bundle unpacks to more than 2 GiB")
        tar.extractall(dest, members=members, filter="data")


def node_kwargs(config: dict[str, Any], work: Path) -> dict[str, Any]:
    """The runner kwargs with the bundle's relative paths made absolute in this attempt's work dir."""
    kwargs = dict(config["kwargs"])
    kwargs["private_data_dir"] = str(work / "pdd")
    for key, rel in (config.get("paths") or {}).items():
        path = PurePosixPath(str(rel))
        if key not in BUNDLE_KEYS or path.is_absolute() or ".." in path.parts:
            raise NodeSideError(f"refusing the bundle path {key}={rel!r}")
        kwargs[key] = str(work / "bundle" / path)
    envvars = dict(kwargs.get("envvars") or {})
    if "ANSIBLE_LOCAL_TEMP" not in os.environ and "ANSIBLE_LOCAL_TEMP" not in envvars:
        envvars["ANSIBLE_LOCAL_TEMP"] = str(work / "tmp")  # removed with the work dir, even after a kill
    kwargs["envvars"] = envvars
    return kwargs


def seconds_from_now(value: Any) -> float | None:
    return None if value is None else time.monotonic() + float(value)


class NodeSupervisor(Supervisor):
    """The supervisor, run on a node: unpacks its work dir first and removes it whatever the end."""

    def __init__(self, config: dict[str, Any], out: BinaryIO):
        config = dict(config)
        config["deadline"] = seconds_from_now(config.get("deadline_in"))  # this host's clock
        config["dir"] = None  # until the work dir exists
        marker = config.get("marker")
        if marker:  # children inherit it: the process tagging the local supervisor gets from its parent
            os.environ[procs.MARKER_VAR] = str(marker)
        os.environ["PATH"] = _path_with_our_bin()
        self.work: Path | None = None
        self.heard_at = time.monotonic()  # the console's last word on stdin
        super().__init__(config, out)

    def open_files(self) -> AttemptFiles | None:
        return None

    def note(self, text: str) -> None:
        self.emit({"t": "note", "text": text}, now=False)  # in order with the events, into the console's log

    def on_event(self, event: dict[str, Any]) -> bool:
        message = trim_event(event)
        full = dict(event)
        if full.get("stdout", "") == message["stdout"]:
            full.pop("stdout", None)  # the console puts it back: sent once, not twice
        message["full"] = full
        self.emit(message, now=False)
        self.prompts.on_event(event)
        return False

    def read_commands(self, stream: BinaryIO) -> None:
        super().read_commands(self._on_this_clock(stream))  # type: ignore[arg-type]

    def _on_this_clock(self, stream: Iterable[bytes]) -> Iterator[bytes]:
        for raw in stream:
            self.heard_at = time.monotonic()
            try:
                cmd = json.loads(raw)
            except ValueError:
                continue
            if isinstance(cmd, dict) and cmd.get("cmd") == "deadline":
                raw = json.dumps({"cmd": "deadline", "at": seconds_from_now(cmd.get("in"))}).encode()
            yield raw

    def run(self) -> None:
        self.emit({"t": "ready"})  # the console now knows the link was up: a failure from here on is a lost link
        silence = self.config.get("silence")
        if silence:
            threading.Thread(target=self._listen, args=(float(silence),), name="silence", daemon=True).start()
        try:
            self.prepare()
        except (NodeSideError, OSError, tarfile.TarError, ValueError, KeyError) as exc:
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.finish("error", None, f"cannot prepare the attempt on the node: {what}", set())
            return
        super().run()

    def _listen(self, silence: float) -> None:
        """Stop the attempt when the console has been silent for `silence` seconds."""
        while not self.runner_done.wait(min(1.0, silence / 4)):
            if time.monotonic() - self.heard_at > silence:
                self.request_stop("orphaned", f"no word from the console for {silence:g}s: the link to it is lost")
                return

    def prepare(self) -> None:
        why = version_problem(self.config.get("versions"))
        if why:
            raise NodeSideError(why)
        base = work_base()
        sweep_stale(base)
        self.work = Path(tempfile.mkdtemp(prefix=f"attempt-{os.getpid()}-", dir=base))
        self.config["dir"] = str(self.work)
        unpack(str(self.config.get("bundle") or ""), self.work / "bundle")
        self.config["kwargs"] = node_kwargs(self.config, self.work)
        self.config.pop("bundle", None)

    def finish(self, status: str, rc: int | None, error: str | None, leftover: set[int]) -> None:
        self.cleanup()  # every process is ended by now; the console hears "end" only once it is gone
        super().finish(status, rc, error, leftover)

    def exit_now(self, code: int) -> None:
        self.cleanup()
        super().exit_now(code)

    def cleanup(self) -> None:
        work, self.work = self.work, None
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
