"""Find the per-user server's socket and start the server when none answers (tmux's model).

Two clients that find no server at the same moment must start one server, not two: the start is
done under an exclusive flock on `<socket>.lock`, and whoever gets the lock second finds the
first one's server answering. A socket left by a server that died (connect refused) is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import tui
from tui.client.connection import ClientError, Connection, NoAnswer, Unreachable
from tui.core.storage.paths import ensure_private_dir, state_dir
from tui.server.paths import knock

START_TIMEOUT = 90.0  # a cold start takes seconds on a busy machine; a server still stopping (its jobs
# being canceled) holds a new one back for up to 60 s
PROBE_TIMEOUT = 5.0


class SocketPathError(ClientError):
    """The socket's directory is unsafe (someone else's, a symlink, open to others): refused."""


def socket_path() -> Path:
    """The socket every client and the server agree on (the server's rules), its directory ready."""
    from tui.server.paths import socket_path as server_socket_path

    return private_socket(server_socket_path().absolute())


def private_socket(path: Path) -> Path:
    """`path`, once its directory exists 0700 and is checked: SocketPathError when it is a
    symlink, someone else's, or open to others (they could swap the socket)."""
    from tui.server.paths import UnsafeSocketDir, ensure_socket_dir

    try:
        ensure_socket_dir(path)
    except UnsafeSocketDir as exc:
        raise SocketPathError(str(exc)) from exc
    except OSError as exc:
        raise SocketPathError(f"socket directory {path.parent}: {exc.strerror or exc}") from exc
    return path


async def probe(path: Path, timeout: float = PROBE_TIMEOUT) -> dict[str, Any] | None:
    """The server's status, or None when nobody is there; NoAnswer when a server is there but
    does not answer: it must not be taken for a dead one and replaced."""
    async with Connection(path, timeout=timeout) as conn:
        try:
            return await conn.status()
        except NoAnswer:
            raise
        except Unreachable:
            return None


def _refused(path: Path) -> bool:
    """True when `path` is a socket nobody listens on (a dead server's leftover)."""
    return isinstance(knock(path, 2), ConnectionRefusedError)


def _remove_stale(path: Path) -> None:
    """Remove a dead server's socket; never remove anything that is not a socket."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket: refused to remove it")
    if _refused(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def log_path(path: Path) -> Path:
    """Where a detached server's stdout/stderr go: server.log in the state dir; next to the socket
    (a private dir we just checked) when the state dir is unusable, which is what it will say."""
    try:
        return ensure_private_dir(state_dir()) / "server.log"
    except OSError:
        return path.parent / "server.log"


def _last_line(log: Path) -> str:
    """The server's last word (why it did not start), or empty."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
            lines = [line for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def spawn_server(path: Path, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start `python -m tui.server` in its own session, detached from our terminal, so a hangup
    of this client never reaches it; it is told the socket we agreed on."""
    env = dict(os.environ, PLAYDECK_SOCKET=str(path))
    log: IO[bytes] | int
    try:
        # private from its first byte: a server's output may quote a job file
        log = os.fdopen(os.open(log_path(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    except OSError:
        log = subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.server", *args],
            env=env,
            start_new_session=True,
            close_fds=True,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(Path(tui.__file__).resolve().parent.parent),  # the same tui package as ours
        )
    finally:
        if not isinstance(log, int):
            log.close()
    # reap it when it exits (idle exit, stop) so a long-lived client keeps no zombie
    threading.Thread(target=proc.wait, name="playdeck-server-reaper", daemon=True).start()
    return proc


def _lock(path: Path) -> int:
    """Block until we hold `<socket>.lock` exclusively; closing the returned fd releases it."""
    fd = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


async def _answer(path: Path) -> dict[str, Any] | None:
    try:
        return await probe(path)
    except NoAnswer as exc:
        raise NoAnswer(f"a playdeck server holds {path} but does not answer") from exc


async def ensure_server(
    path: Path | None = None, timeout: float = START_TIMEOUT, args: Sequence[str] = ()
) -> dict[str, Any]:
    """The status of the server on `path` (default: socket_path()), starting it first if needed
    (with `args` for `python -m tui.server`, e.g. --state-dir; a running server keeps its own)."""
    path = socket_path() if path is None else private_socket(path)
    status = await _answer(path)
    if status is not None:
        return status
    # another client may hold the lock for seconds while it starts one: wait off the event loop
    lock = await asyncio.get_running_loop().run_in_executor(None, _lock, path)
    try:
        status = await _answer(path)
        if status is not None:
            return status
        if path.exists() and not _refused(path):
            raise NoAnswer(f"a playdeck server holds {path} but does not answer")
        _remove_stale(path)
        proc = spawn_server(path, args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(NoAnswer):  # one that is still starting may be slow to answer
                status = await probe(path, timeout=2.0)
                if status is not None:
                    return status
            if proc.returncode not in (None, 0):
                why = _last_line(log_path(path)) or f"see {log_path(path)}"
                raise Unreachable(f"the playdeck server exited with status {proc.returncode} while starting: {why}")
            await asyncio.sleep(0.05)
        raise Unreachable(f"the playdeck server did not answer on {path} within {timeout:.0f}s")
    finally:
        os.close(lock)


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its parent to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat_line = fh.read()
    except OSError:
        return False
    return stat_line[stat_line.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


async def wait_gone(path: Path, pid: int | None = None, timeout: float = 30.0) -> bool:
    """True once the socket is gone (the server removes it first on its way out) and the server
    process `pid` has ended (after its jobs were canceled); False at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.lexists(path) and (pid is None or not _alive(pid)):
            return True
        await asyncio.sleep(0.05)
    return False
