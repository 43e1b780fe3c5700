"""Finding and ending every process an attempt started, straight from /proc.

Two ways to find them, because either alone misses some:
- descent from a process (the supervisor is a child subreaper, so forks that
  `setsid()` and are orphaned re-parent to it rather than to PID 1);
- an environment marker (`PLAYDECK_ATTEMPT=<id>`) that every descendant
  inherits, which still finds them after the supervisor itself is gone.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import stat
import tempfile
import time
from typing import Callable, Iterable

from tui.core.storage.paths import make_private_dir

MARKER_VAR = "PLAYDECK_ATTEMPT"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: fall back to the marker scan alone
        return False


def become_subreaper() -> bool:
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    return _prctl(PR_SET_PDEATHSIG, int(sig))


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, state) of a live process, or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    state = fields[0].decode()
    if state in ("Z", "X"):
        return None
    return int(fields[1]), state


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> set[int]:
    """Live (non-zombie) descendants of `root`, not including it."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        info = _stat(pid)
        if info is not None:
            children.setdefault(info[0], []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _where(name: str, test: Callable[[bytes], bool]) -> set[int]:
    """Live processes (not this one) whose /proc/<pid>/<name> passes `test`."""
    me = os.getpid()
    found: set[int] = set()
    for pid in _pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/{name}", "rb") as fh:
                content = fh.read()
        except OSError:
            continue
        if test(content) and _stat(pid) is not None:
            found.add(pid)
    return found


def in_session(sid: int) -> set[int]:
    """Live processes whose session id is `sid` (a process that left the session is not counted)."""

    def ours(stat: bytes) -> bool:
        fields = stat[stat.rfind(b")") + 2 :].split()  # state, ppid, pgrp, session, ...
        return len(fields) > 3 and int(fields[3]) == sid

    return _where("stat", ours)


def marked(marker: str) -> set[int]:
    """Live processes whose environment carries `PLAYDECK_ATTEMPT=marker`."""
    needle = b"\0" + f"{MARKER_VAR}={marker}".encode() + b"\0"
    return _where("environ", lambda env: needle in b"\0" + env)


# AF_UNIX socket paths hold 107 bytes. Below the control dir, ssh's socket is Ansible's 10-hex
# name (or up to 40 for a `%C`-style control_path), plus ".<16 random>" while the master binds it.
SOCKET_PATH_MAX = 107
SOCKET_NAME_ROOM = 1 + 40 + 17
CONTROL_PREFIX = "pd-cp-"


class UnsafeDirError(OSError):
    """A directory for private sockets that someone else could control: refused, never used."""


def _runtime_base() -> str | None:
    """`$XDG_RUNTIME_DIR/playdeck`, when that runtime dir is a real directory of ours."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime or not os.path.isabs(runtime):
        return None
    try:
        st = os.lstat(runtime)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return None
    return os.path.join(runtime, "playdeck")


def control_base() -> str:
    """The per-user private directory that holds every attempt's control dir (not created here).

    `$XDG_RUNTIME_DIR/playdeck` if usable, else `<tempdir>/playdeck-<uid>`, else `/tmp/playdeck-<uid>`:
    the first short enough for ssh's socket paths below it. Derived only from the environment, so
    the console computes the same path as a supervisor that has died.
    """
    uid = os.getuid()
    for base in (_runtime_base(), os.path.join(tempfile.gettempdir(), f"playdeck-{uid}")):
        if base and len(base) + 1 + len(CONTROL_PREFIX) + 12 + SOCKET_NAME_ROOM <= SOCKET_PATH_MAX:
            return base
    return f"/tmp/playdeck-{uid}"


def private_control_base() -> str:
    """`control_base()`, created 0700 and verified: a real directory (not a symlink), ours, 0700.

    Its name is predictable, so another local user may have made it first (to read our sockets,
    or to point it elsewhere): then it is refused, with the reason, and nothing is put in it.
    """
    base = control_base()
    why = make_private_dir(base)
    if why is not None:
        raise UnsafeDirError(
            f"refusing the ssh control socket directory {base}: it {why}; "
            "remove it, or set XDG_RUNTIME_DIR or TMPDIR to a private directory"
        )
    return base


def _control_name(marker: str) -> str:
    return CONTROL_PREFIX + hashlib.sha1(marker.encode()).hexdigest()[:12]


def control_dir(marker: str) -> str:
    """The attempt's ssh ControlPath directory, in the private per-user base (made and checked here;
    raises UnsafeDirError if the base is not safe). Short (socket paths are limited to ~107 bytes)
    and derived from the marker, because an ssh master rewrites its environment with its process
    title and can then only be found by the socket path on its command line. The caller creates
    (and removes) the directory itself."""
    return os.path.join(private_control_base(), _control_name(marker))


def with_cmdline(needle: str) -> set[int]:
    """Live processes whose command line contains `needle`."""
    want = needle.encode()
    return _where("cmdline", lambda cmdline: want in cmdline)


def of_attempt(marker: str) -> set[int]:
    """Everything an attempt left, found from outside it: by marker, or by its ssh control dir."""
    # only a name to look for: never creates or refuses anything, so ending processes cannot fail
    return marked(marker) | with_cmdline(os.path.join(control_base(), _control_name(marker)))


def nice_session(pid: int, nice: int) -> None:
    """Lower the CPU weight of `pid`'s session. With kernel autogroup (the default on most
    distributions) each session is scheduled as one unit and a process's own nice only ranks it
    inside its session, so a job must be niced per session to leave the console its share."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as fh:
            fh.write(str(nice))
    except OSError:  # no autogroup here, or not ours: the plain nice value still applies
        pass


def alive(pids: Iterable[int]) -> set[int]:
    return {pid for pid in pids if _stat(pid) is not None}


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def terminate(find: Callable[[], set[int]], grace: float, deadline: float = 5.0, poll: float = 0.02) -> set[int]:
    """SIGTERM what `find()` returns, wait up to `grace`, then SIGKILL until none is left.

    `find` is called again on every round, so processes started while we were
    stopping the others are caught too. Returns what is still alive after
    `deadline` seconds (normally nothing).
    """
    start = time.monotonic()
    pids = find()
    if not pids:
        return set()
    signal_all(pids, signal.SIGTERM)
    while time.monotonic() - start < grace:
        time.sleep(poll)
        pids = find()
        if not pids:
            return set()
    while time.monotonic() - start < grace + deadline:
        signal_all(pids, signal.SIGSTOP)  # freeze first so nobody forks while we kill
        signal_all(pids, signal.SIGKILL)
        time.sleep(poll)
        pids = find()
        if not pids:
            return set()
    return pids
