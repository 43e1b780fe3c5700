"""The process that runs one attempt: `python -m tui.core.running.supervisor`.

Why a process of its own: ansible-runner's parsing and per-event file writes
cost about 0.9 ms of CPU per event when they share the console's GIL, and a
separate process also owns the kill, so a stalled or crashed console cannot
stop a cancel or a timeout from happening.

It is a child subreaper (ansible-core 2.19 forks call setsid() and would
otherwise escape to PID 1 when ansible-playbook dies) and gets SIGTERM when
its parent dies. It enforces the deadline itself, stops with SIGTERM then
SIGKILL after a grace period, and on any end makes sure no process it started
is left (async tasks and ssh ControlPersist masters included).

Protocol, one JSON object per line.
  stdin:  {"kwargs": {...ansible_runner.run...}, "dir": str, "deadline": float|null, "grace": float, "nice": int,
           "secrets": {"vault"|"become": str}}  (secrets live only in memory and on this pipe)
          then any of {"cmd": "deadline", "at": float|null}, {"cmd": "stop", "reason": str} and
          {"cmd": "input", "text": str} (typed into the playbook's pty when it waits at a prompt; never logged);
          end of input means the parent is gone, which stops the attempt.
  stdout: {"t": "ev", ...event...} for each event,
          {"t": "prompt", "kind": "vars_prompt"|"pause", "text": str, "varname": str|null, "private": bool}
          when the playbook starts waiting for input (see prompts.py),
          and last {"t": "end", "status": str, "rc": int|null, "reason": str|null, "error": str|null, "leftover": [pid]}.
Deadlines are `time.monotonic()` values, which on Linux are the same clock in every process.
`--node` (on an execution node, over ssh) and `--probe`: see node_side.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from tui.core.running import procs
from tui.core.running.prompts import PromptWatch
from tui.core.storage.logstore import AttemptFiles
from tui.core.storage.paths import ensure_private_dir

STDOUT_CAP = 256 * 1024  # per event, on the pipe only; the log on disk keeps everything
FIELD_CAP = 64 * 1024
RES_KEYS = ("changed", "msg", "stderr", "stdout", "rc", "reason", "unreachable", "skip_reason")
DATA_KEYS = ("play", "task", "task_action", "host", "ignore_errors", "name")
STATS_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
RUNNER_RETURN_WAIT = 5.0
BATCH_SECONDS = 0.1  # how long an event may wait for company on the pipe; the console draws at most every 0.25 s
BATCH_BYTES = 64 * 1024
DISK_CHECK = 0.5  # seconds between looks at the log filesystem's free space
MIN_FREE = 64 * 1024  # below this the attempt stops as an error, before Ansible's own writes fail


def _cap(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"\n… [{len(value) - limit} more characters in the log on disk]"
    return value


def trim_event(event: dict[str, Any]) -> dict[str, Any]:
    """What the console needs of an event; the full event is in events.jsonl."""
    data = event.get("event_data") or {}
    slim: dict[str, Any] = {k: _cap(data[k], FIELD_CAP) for k in DATA_KEYS if k in data}
    if event.get("event") == "playbook_on_stats":
        slim.update({k: data[k] for k in STATS_KEYS if k in data})
    res = data.get("res")
    if isinstance(res, dict):
        slim["res"] = {k: _cap(res[k], FIELD_CAP) for k in RES_KEYS if k in res}
        reasons = item_reasons(res.get("results"))
        if reasons:
            slim["res"]["item_msgs"] = reasons
    return {
        "t": "ev",
        "event": event.get("event"),
        "counter": event.get("counter"),
        "pid": event.get("pid"),
        "created": event.get("created"),
        "stdout": _cap(event.get("stdout") or "", STDOUT_CAP),
        "event_data": slim,
    }


def item_reasons(items: Any, limit: int = 5) -> list[str]:
    """Why the items of a loop failed: a looped task's own msg only says "All items completed"
    or "One or more items failed", which is not a reason an operator can act on."""
    if not isinstance(items, list):
        return []
    reasons = []
    for item in items:
        if not isinstance(item, dict) or not (item.get("failed") or item.get("unreachable")):
            continue
        label = item.get("_ansible_item_label", item.get("item"))
        why = next((item[k] for k in ("msg", "stderr", "stdout") if item.get(k)), "failed")
        reasons.append(_cap(f"item {label}: {why}", FIELD_CAP // limit))
        if len(reasons) >= limit:
            break
    return reasons


SECRET_PROMPTS = {  # what ansible asks, answered through the pty: never a file, never a command line
    "vault": ("--ask-vault-pass", r"^Vault password:\s*?$"),
    "become": ("--ask-become-pass", r"^BECOME password.*:\s*?$"),
}


def with_secrets(kwargs: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """Kwargs that make Ansible prompt for each secret given, and ansible-runner answer it."""
    kwargs = dict(kwargs)
    flags, passwords = [], {}
    for name, secret in secrets.items():
        if secret and name in SECRET_PROMPTS:
            flag, prompt = SECRET_PROMPTS[name]
            flags.append(flag)
            passwords[prompt] = secret
    if flags:
        kwargs["cmdline"] = " ".join(filter(None, [kwargs.get("cmdline"), *flags]))
        kwargs["passwords"] = passwords
    return kwargs


class Supervisor:
    def __init__(self, config: dict[str, Any], out: BinaryIO):
        self.config = config
        self.out = out
        self.out_lock = threading.RLock()  # request_stop may run while a flush holds it
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.batching = False
        self.cond = threading.Condition()  # RLock inside: safe to take from the signal handler too
        self.deadline: float | None = config.get("deadline")
        self.grace: float = float(config.get("grace", 1.0))
        self.reason: str | None = None
        self.error: str | None = None
        self.runner_done = threading.Event()
        self.stopped = threading.Event()
        self.files: AttemptFiles | None = None
        self.prompts = PromptWatch(self.emit)

    # -- output -------------------------------------------------------------
    def emit(self, message: dict[str, Any], now: bool = True) -> None:
        """Send one message; events (`now=False`) wait up to BATCH_SECONDS to go with the next ones.

        The console pays an event-loop wake-up per write it reads, whatever its size: a
        chatty job's events, written one by one, cost it more in wake-ups than in parsing.
        """
        data = (json.dumps(message, default=str, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        with self.out_lock:
            self.pending.append(data)
            self.pending_bytes += len(data)
            if now or self.pending_bytes >= BATCH_BYTES:
                self._flush_locked()
            elif not self.batching:
                self.batching = True
                threading.Timer(BATCH_SECONDS, self.flush).start()

    def flush(self) -> None:
        with self.out_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self.batching = False
        if not self.pending:
            return
        data, self.pending, self.pending_bytes = b"".join(self.pending), [], 0
        try:
            self.out.write(data)
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.request_stop("orphaned")

    # -- stopping -----------------------------------------------------------
    def request_stop(self, reason: str, error: str | None = None) -> None:
        with self.cond:
            if self.reason is None:
                self.reason = reason
                self.error = error
            self.cond.notify_all()

    def set_deadline(self, at: float | None) -> None:
        with self.cond:
            self.deadline = at
            self.cond.notify_all()

    def tree(self) -> set[int]:
        return procs.descendants(os.getpid())

    def watch(self) -> None:
        """Wait for a stop request or the deadline, then end every process of the attempt."""
        with self.cond:
            while self.reason is None and not self.runner_done.is_set():
                remaining = None if self.deadline is None else self.deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.reason = "timeout"
                    break
                nice = int(self.config.get("nice") or 0)
                if nice:  # Ansible's processes start sessions of their own: keep them all behind the console
                    for pid in self.tree():
                        procs.nice_session(pid, nice)
                full = self.disk_full()
                if full:
                    self.reason, self.error = "error", full
                    break
                self.cond.wait(DISK_CHECK if remaining is None else min(remaining, DISK_CHECK))
            reason = self.reason
        if reason is None:
            return
        # kill first, talk after: if the console has stopped reading, a write could block us
        procs.terminate(self.tree, self.grace)
        self.stopped.set()
        self.note(f"playdeck: stopped ({reason})")
        if not self.runner_done.wait(RUNNER_RETURN_WAIT):
            # ansible-runner did not return (stuck writing to a console that does not read?):
            # end anyway; the console judges the attempt by the reason it asked to stop for
            procs.terminate(self.tree, 0)
            self.note("playdeck: ansible-runner did not return; supervisor exiting")
            self.exit_now(3)

    def exit_now(self, code: int) -> None:
        os._exit(code)  # a node's supervisor (node_side.py) first removes its work dir

    def disk_full(self) -> str | None:
        """A full log disk makes Ansible's callback stall silently, so we look rather than wait for an error."""
        try:
            stat = os.statvfs(self.config.get("dir") or ".")
        except OSError:
            return None
        free = stat.f_bavail * stat.f_frsize
        if free < MIN_FREE:
            return f"cannot write the log: No space left on device ({free // 1024} KB free for {self.config['dir']})"
        return None

    def read_commands(self, stream: BinaryIO) -> None:
        for raw in stream:
            try:
                cmd = json.loads(raw)
            except ValueError:
                continue
            if cmd.get("cmd") == "deadline":
                self.set_deadline(cmd.get("at"))
            elif cmd.get("cmd") == "stop":
                self.request_stop(str(cmd.get("reason") or "cancel"))
            elif cmd.get("cmd") == "input":
                self.prompts.answer(str(cmd.get("text") or ""))
        self.request_stop("orphaned")

    def note(self, text: str) -> None:
        if self.files is not None:
            try:
                self.files.write_note(text)
            except OSError:
                pass

    # -- running ------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> bool:
        if self.files is not None:
            try:
                self.files.write_event(event)
            except OSError as exc:
                self.request_stop("error", f"cannot write the log: {exc.strerror or exc}")
        self.emit(trim_event(event), now=False)
        self.prompts.on_event(event)
        return False  # we keep events.jsonl ourselves: no per-event files in artifacts

    def run(self) -> None:
        import ansible_runner  # imported here: it is slow to import and only this process needs it

        _patch_spawn(self.prompts.attach)

        status, rc, error = "error", None, None
        # ssh ControlPersist sockets: a private dir of this attempt's own (a shared one would let
        # one job's master serve another), named so the console can find its masters if we die
        control_dir: str | None = None
        try:
            # the per-user base is checked here (ours, 0700, no symlink); a refusal ends the job as error
            control_dir = procs.control_dir(os.environ.get(procs.MARKER_VAR, str(os.getpid())))
            shutil.rmtree(control_dir, ignore_errors=True)
            os.mkdir(control_dir, 0o700)
            self.files = self.open_files()
            ensure_private_dir(Path(self.config["kwargs"]["private_data_dir"]))
            kwargs = with_secrets(self.config["kwargs"], self.config.get("secrets") or {})
            kwargs.setdefault("envvars", {})["ANSIBLE_SSH_CONTROL_PATH_DIR"] = control_dir
            if self.reason is None:
                runner = ansible_runner.interface.init_runner(
                    **kwargs,
                    event_handler=self.on_event,
                    # we own the kill; this only catches a child spawned after our sweep, and
                    # passing any callback keeps ansible-runner off our signal handlers
                    cancel_callback=self.stopped.is_set,
                    settings={"pexpect_timeout": 1},
                    quiet=True,
                )
                keep_host_key_default(runner.config.env, kwargs.get("envvars") or {})
                runner.run()
                status, rc = runner.status, runner.rc
        except procs.UnsafeDirError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot write the attempt's files: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - whatever happened, the job must end visibly
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        self.runner_returned()
        leftover = procs.terminate(self.tree, self.grace)  # async tasks, ssh masters, anything else
        if control_dir is not None:
            shutil.rmtree(control_dir, ignore_errors=True)
        self.finish(status, rc, error, leftover)

    def open_files(self) -> AttemptFiles | None:
        return AttemptFiles(Path(self.config["dir"]))  # on a node: None, the log is kept where the console is

    def runner_returned(self) -> None:
        """Tell the watcher, and if a stop is under way, let it finish its kill before we report."""
        self.runner_done.set()
        with self.cond:
            self.cond.notify_all()
            reason = self.reason
        if reason is not None:
            self.stopped.wait(self.grace + 10)

    def finish(self, status: str, rc: int | None, error: str | None, leftover: set[int]) -> None:
        with self.cond:
            reason, stop_error = self.reason, self.error
        error = stop_error or error
        if error:
            self.note(f"playdeck: {error}")
        if self.files is not None:
            self.files.close()
        _reap()
        self.emit(
            {"t": "end", "status": status, "rc": rc, "reason": reason, "error": error, "leftover": sorted(leftover)}
        )


def keep_host_key_default(env: dict[str, str], envvars: dict[str, Any]) -> None:
    """Undo ansible-runner's ANSIBLE_HOST_KEY_CHECKING=False (config/_base.py, prepare_env).

    ansible-runner sets it whenever the environment lacks it, which turns off
    StrictHostKeyChecking for every SSH job. Taking it out again, unless the user or the
    job set it, leaves the decision to ansible-playbook itself: ANSIBLE_CONFIG, ansible.cfg
    in its working directory (ignored when world-writable), ~/.ansible.cfg,
    /etc/ansible/ansible.cfg, `[defaults]` or `[ssh_connection] host_key_checking`,
    ANSIBLE_SSH_HOST_KEY_CHECKING, inventory vars, default True. Setting the variable to a
    value resolved here instead would override `[ssh_connection]` (env beats ini), and cost
    importing Ansible's config code in every attempt.
    """
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ and "ANSIBLE_HOST_KEY_CHECKING" not in envvars:
        env.pop("ANSIBLE_HOST_KEY_CHECKING", None)


_spawned: list[Any] = []  # what to tell of the ansible-playbook pexpect spawns (one per process)


def _patch_spawn(on_spawn: Any) -> None:
    """Hook pexpect's spawn: see the pty of ansible-playbook, and drop a needless sleep.

    `on_spawn(spawn, master_fd)` is called for each spawn, for the prompt watch.
    ptyprocess sleeps 0.1 s in close() "to let the kernel update the status"; ansible-runner
    closes the pty only after `isalive()` has reaped ansible-playbook, so the status is
    already known and the sleep only delays every attempt's end (measured: 0.1 s of the
    0.2 s between the last event and ansible_runner.run returning).
    """
    import pexpect.pty_spawn

    _spawned[:] = [on_spawn]
    spawn = pexpect.pty_spawn.spawn
    original = spawn._spawnpty
    if getattr(original, "_playdeck", False):
        return

    def spawnpty(self: Any, args: Any, **kwargs: Any) -> Any:
        proc = original(self, args, **kwargs)
        proc.delayafterclose = 0.0
        for hook in _spawned:
            hook(self, proc.fd)
        return proc

    spawnpty._playdeck = True  # type: ignore[attr-defined]
    spawn._spawnpty = spawnpty  # type: ignore[method-assign]


def _reap() -> None:
    """Collect orphans that re-parented to us and died, so none lingers as a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> int:
    if "--probe" in sys.argv[1:]:  # an execution node's versions, for the console's check (node_link.probe)
        from tui.core.running import node_side

        return node_side.probe()
    parent = os.getppid()
    procs.become_subreaper()
    procs.die_with_parent(signal.SIGTERM)
    # keep the protocol on a private descriptor; anything else printing to stdout goes to our stderr log
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    config = json.loads(sys.stdin.buffer.readline() or b"{}")
    nice = int(config.get("nice") or 0)
    if nice:
        os.nice(nice)
        procs.nice_session(os.getpid(), nice)
    if "--node" in sys.argv[1:]:  # run on an execution node, over ssh (node_side.py)
        from tui.core.running.node_side import NodeSupervisor

        sup: Supervisor = NodeSupervisor(config, out)
    else:
        sup = Supervisor(config, out)
    signal.signal(signal.SIGTERM, lambda *_: sup.request_stop("terminated"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if os.getppid() != parent:  # the parent died before PDEATHSIG was armed
        sup.request_stop("orphaned")
    threading.Thread(target=sup.watch, name="watch", daemon=True).start()
    threading.Thread(target=sup.read_commands, args=(sys.stdin.buffer,), name="commands", daemon=True).start()
    sup.run()
    # exit now: the command-reader thread is still blocked reading stdin, and interpreter
    # shutdown with a thread inside a buffered read aborts (SIGABRT, "_enter_buffered_busy")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.modules.setdefault("tui.core.running.supervisor", sys.modules[__name__])  # node_side subclasses this one
    raise SystemExit(main())
