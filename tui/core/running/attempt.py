"""One attempt of a job: its record, and the supervisor process that runs it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import tui
from tui.core.planning.spec import JobSpec, Status
from tui.core.running import procs
from tui.core.running.results import ResultTracker

if TYPE_CHECKING:
    from tui.core.planning.nodes import Node
    from tui.core.running.node_link import NodeLink

STREAM_LIMIT = 8 * 1024 * 1024  # the supervisor caps what it forwards well below this
TERM_AFTER = 0.3  # seconds before a stop command is backed by SIGTERM
KILL_AFTER = 5.0  # seconds past the supervisor's own grace before we SIGKILL it
NODE_TERM_AFTER = 2.0  # seconds past a node's grace before its ssh is ended


def now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class Attempt:
    """What one run of a job did; kept after it ends, for retries and the summary."""

    number: int
    limit: str | None
    directory: Path
    marker: str
    started: datetime = field(default_factory=now)
    ended: datetime | None = None
    status: Status = Status.RUNNING
    rc: int | None = None
    error: str | None = None
    results: ResultTracker = field(default_factory=ResultTracker)
    stop_reason: str | None = None  # why playdeck stopped it, set by the first stop request
    node: str | None = None  # the execution node it ran on (set by the engine); None: here

    @property
    def log(self) -> Path:
        return self.directory / "output.log"

    @property
    def events_log(self) -> Path:
        return self.directory / "events.jsonl"


def supervisor_module() -> str:
    """The module run per attempt. Benchmarks swap in a replayer of recorded events
    (`PLAYDECK_SUPERVISOR_MODULE`) to push the engine and the console without Ansible."""
    return os.environ.get("PLAYDECK_SUPERVISOR_MODULE") or "tui.core.running.supervisor"


def runner_kwargs(spec: JobSpec, directory: Path, limit: str | None) -> dict[str, Any]:
    """Keyword arguments for `ansible_runner.run`, JSON-safe for the trip to the supervisor."""
    kwargs: dict[str, Any] = {
        "private_data_dir": str(directory / "pdd"),
        "ident": "attempt",
        "inventory": str(spec.inventory),
        "suppress_env_files": True,  # env/ files would be re-read, and may hold secrets
        "suppress_output_file": True,  # we write output.log ourselves
        "rotate_artifacts": 0,
        # facts stay in memory, as with plain ansible-playbook: ansible-runner's default jsonfile
        # cache writes every host's facts to disk on every run, which nothing here reads
        "fact_cache_type": "memory",
        "envvars": {
            # Ansible calls a malformed inventory "no hosts matched" and succeeds; make it an error
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            # and a --limit that matches nothing is a mistake, not a successful run on no hosts
            "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_FORCE_COLOR": "True",
        },
    }
    if spec.playbook is not None:
        kwargs["playbook"] = str(spec.playbook)
        kwargs["project_dir"] = str(spec.playbook.parent)
        if limit:
            kwargs["limit"] = limit
    else:
        kwargs["module"] = spec.module
        kwargs["module_args"] = spec.module_args or ""
        kwargs["host_pattern"] = limit or "all"
    if spec.extra_vars:
        kwargs["extravars"] = spec.extra_vars
    for name in ("tags", "skip_tags", "forks"):
        if getattr(spec, name):
            kwargs[name] = getattr(spec, name)
    if spec.verbosity:
        kwargs["verbosity"] = spec.verbosity
    cmdline = []
    if spec.check:
        cmdline.append("--check")
    if spec.diff:
        cmdline.append("--diff")
    if spec.vault_password_file:
        cmdline += ["--vault-password-file", str(spec.vault_password_file)]
    if spec.become:
        cmdline.append("--become")
    if spec.become_user:  # without --become it only names the user a task's own `become` switches to
        cmdline += ["--become-user", spec.become_user]
    if cmdline:
        kwargs["cmdline"] = " ".join(_quote(a) for a in cmdline)
    return kwargs


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


class PipedProcess:
    """The part of asyncio.subprocess.Process that AttemptProcess uses, over a plain Popen.

    Why not asyncio.create_subprocess_exec: on Python 3.11, a task cancelled while that call
    connects the pipes waits forever in its own cleanup (BaseSubprocessTransport._wait needs
    every pipe connected and then lost), so asyncio.run() never returns at shutdown.
    """

    def __init__(self, popen: subprocess.Popen[bytes], stdin: asyncio.WriteTransport, stdout: asyncio.StreamReader):
        self.popen = popen
        self.pid = popen.pid
        self.stdin = stdin
        self.stdout = stdout

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)  # a no-op once the process has been reaped

    async def wait(self) -> int:
        while self.popen.poll() is None:  # reaped here only: nothing else in the console waits for children
            await asyncio.sleep(0.02)
        self.stdin.close()
        return self.popen.returncode


async def spawn(*args: str, stderr: Any, env: dict[str, str]) -> PipedProcess:
    """Start the supervisor with its stdin and stdout as pipes read and written on the loop."""
    loop = asyncio.get_running_loop()
    popen = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, start_new_session=True
    )  # a Ctrl-C in the terminal is ours to handle, not the jobs'
    limit = STREAM_LIMIT
    try:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), popen.stdout)
        writer, _proto = await loop.connect_write_pipe(asyncio.BaseProtocol, popen.stdin)
    except BaseException:
        popen.kill()  # it has not been told what to run yet: nothing of it to clean up but itself
        popen.wait()
        raise
    return PipedProcess(popen, writer, reader)  # type: ignore[arg-type]


class AttemptProcess:
    """Drives the supervisor of one attempt and turns its messages into calls back to the engine."""

    def __init__(self, attempt: Attempt, on_message: Callable[[dict[str, Any]], None], node: Node | None = None):
        self.attempt = attempt
        self.on_message = on_message
        self.node = node  # run there over ssh (node_link.py), not here
        self._link: NodeLink | None = None
        self.proc: PipedProcess | None = None
        self.end: dict[str, Any] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.deadline: float | None = None  # kept here too: a change while spawning must not be lost

    async def run(
        self,
        kwargs: dict[str, Any],
        deadline: float | None,
        grace: float,
        nice: int,
        secrets: dict[str, str] | None = None,
    ) -> None:
        if self.node is not None:
            from tui.core.running.node_link import NodeLink

            self._link = NodeLink(self.node, self.attempt)
            await self._link.run(self, kwargs, deadline, grace, nice, secrets)
            return
        self.deadline = deadline
        env = dict(os.environ)
        env[procs.MARKER_VAR] = self.attempt.marker
        package_root = str(Path(tui.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        errlog_fd = os.open(self.attempt.directory / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(errlog_fd, "ab") as errlog:
            self.proc = await spawn(sys.executable, "-m", supervisor_module(), stderr=errlog, env=env)
        config = {
            "kwargs": kwargs,
            "dir": str(self.attempt.directory),
            "deadline": self.deadline,
            "grace": grace,
            "nice": nice,
            "secrets": secrets or {},
        }
        self.send(config)
        if self.attempt.stop_reason:  # stopped while starting
            self.stop(self.attempt.stop_reason, grace)
        try:
            await self._read()
        except asyncio.CancelledError:
            # the engine itself is being torn down: end the whole tree now, synchronously,
            # rather than leave it running with nobody reading its output
            procs.terminate(lambda: procs.of_attempt(self.attempt.marker), grace)
            raise
        finally:
            for timer in self._timers:
                timer.cancel()
        await self.proc.wait()
        # the last word: nothing carrying this attempt's marker outlives it
        leftover = await asyncio.to_thread(procs.terminate, lambda: procs.of_attempt(self.attempt.marker), 0.2)
        try:
            shutil.rmtree(procs.control_dir(self.attempt.marker), ignore_errors=True)
        except OSError:  # an unsafe control base: the supervisor has already said so in the job's error
            pass
        if leftover:
            self.attempt.error = self.attempt.error or f"processes {sorted(leftover)} could not be ended"

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except ValueError:  # a line over STREAM_LIMIT: skip it, the log on disk has it
                continue
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if self._link is not None and not self._link.keep(message, line):
                continue  # the local log of a node attempt
            if message.get("t") == "end":
                self.end = message
            self.on_message(message)

    def send(self, message: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            return
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass

    def set_deadline(self, deadline: float | None) -> None:
        self.deadline = deadline  # read when the config is sent, if the process is still being started
        if self.node is not None:  # another host's monotonic clock: seconds from now
            self.send({"cmd": "deadline", "in": None if deadline is None else deadline - time.monotonic()})
        else:
            self.send({"cmd": "deadline", "at": deadline})

    def stop(self, reason: str, grace: float) -> None:
        """Ask the supervisor to stop; SIGKILL it if it has not ended well after its grace."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.send({"cmd": "stop", "reason": reason})
        if not self._timers:
            loop = asyncio.get_running_loop()
            # the command carries the reason into the log; the signals are for a supervisor that cannot read it
            # (for a node, ssh: ending it is EOF there, so the node gets its grace and the link's latency first)
            term_after = TERM_AFTER if self.node is None else grace + NODE_TERM_AFTER
            self._timers = [
                loop.call_later(term_after, self._signal, signal.SIGTERM),
                loop.call_later(grace + KILL_AFTER, self._signal, signal.SIGKILL),
            ]

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)  # after SIGKILL, the marker sweep in run() ends its descendants
            except ProcessLookupError:
                pass
