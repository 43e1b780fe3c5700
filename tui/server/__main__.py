"""`python -m tui.server [--foreground] [--idle-exit S]`: the per-user engine server.

Without --foreground it detaches (new session, stdio to /dev/null) once its socket
is ready, so the client that started it can return; a systemd unit uses --foreground.
SIGTERM/SIGINT cancel every unfinished job, audit it, remove the socket and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import socket as socketlib
import sys
import time
from pathlib import Path

from aiohttp import web

from tui.core.config import ServerConfig, load_server_config
from tui.core.planning.jobfile import InputError
from tui.core.storage.paths import check_writable
from tui.core.storage.paths import state_dir as default_state_dir
from tui.server import jsonlog
from tui.server.app import make_app
from tui.server.paths import UnsafeSocketDir, ensure_socket_dir, knock, socket_path
from tui.server.reload import Files, load_files
from tui.server.state import Server

log = logging.getLogger("tui.server")
OWNER_WAIT = 60.0  # seconds a new server waits for a stopping one to finish


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tui.server", description="The playdeck engine server.")
    parser.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached to the terminal (systemd, tests)",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="exit after this long with no unfinished job and no client (0 = never; default 600)",
    )
    parser.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="jobs running at once (default: the config's max_parallel, else 4)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="the config file (default $PLAYDECK_CONFIG, else $XDG_CONFIG_HOME/playdeck/config.yml)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where logs and history go (default $PLAYDECK_STATE_DIR, ...)",
    )
    return parser


def _live(path: Path) -> bool:
    """Whether a server answers on `path` (a leftover socket of a dead one does not)."""
    return knock(path, 1.0) is None


def _bind(path: Path) -> socketlib.socket:
    """Bind the socket 0600 from the start (umask), replacing a stale one; refuse if one is live."""
    if os.path.lexists(path):
        if _live(path):
            raise SystemExit(f"playdeck server: already running on {path}")
        os.unlink(path)
    sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return sock


def _detach() -> None:
    """Leave the starting client's session and terminal: its hangup must not reach the jobs.
    Output that goes to a file (the client's server.log) stays there; a terminal is let go."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd == 0 or os.isatty(fd):
            os.dup2(null, fd)
    os.close(null)


def _own(path: Path, wait: float = OWNER_WAIT) -> int:
    """Hold `<socket>.owner` locked for the server's life: a second server (two --foreground
    starts at once) is refused here instead of stealing the first one's socket. A server that
    is stopping (its socket already gone, its jobs being canceled) is waited for, so
    `server stop` followed at once by a start gets a new server, not an error."""
    fd = os.open(f"{path}.owner", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if _live(path) or time.monotonic() > deadline:
                os.close(fd)
                raise SystemExit(f"playdeck server: already running on {path}") from None
            time.sleep(0.1)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


async def serve(server: Server, sock: socketlib.socket, files: Files) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop, signal.Signals(sig).name)
    reloads: set[asyncio.Task[bool]] = set()

    def hangup() -> None:  # SIGHUP reloads the config, as for most daemons
        task = loop.create_task(server.keeper.reload("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    interrupted = await asyncio.to_thread(server.restore_history)
    runner = web.AppRunner(server_app := make_app(server), handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    server.engine.subscribe(jsonlog.job_listener(log))
    jsonlog.event(log, "server-start", pid=os.getpid(), socket=str(server.socket), interrupted=interrupted)
    server.engine.record(
        "server-start",
        None,
        pid=os.getpid(),
        socket=str(server.socket),
        interrupted=interrupted,
    )
    idle = loop.create_task(server.idle_watch())
    clock = loop.create_task(server.schedules.run())
    watch = loop.create_task(server.keeper.watch())
    server.keeper.apply_schedules(files)
    await server.stopping.wait()
    idle.cancel()
    watch.cancel()
    server.schedules.stop()  # no fire while the engine cancels everything
    clock.cancel()
    unfinished = [job.name for job in server.unfinished()]
    server.engine.record("server-stop", None, reason=server.stop_reason, canceled=unfinished)
    jsonlog.event(log, "server-stop", reason=server.stop_reason, canceled=unfinished)
    try:
        os.unlink(server.socket)  # no new client finds a server that is going away
    except OSError:
        pass
    await server.engine.close()
    await server.alerts.close()
    await server.metrics.close()
    server.spares.close()
    server.hub.flush()
    await asyncio.sleep(0.2)  # let writers send the last delta
    for client in list(server.hub.clients):
        await client.ws.close()
    await runner.cleanup()
    del server_app
    return 0


async def start(server: Server, sock: socketlib.socket, config: ServerConfig, files: Files) -> int:
    """A metrics address that is taken stops the server here, before it serves anyone (a
    running server would keep its last good config)."""
    try:
        await server.apply_config(config)
    except OSError as exc:
        print(f"playdeck server: metrics_listen: {exc}", file=sys.stderr)
        sock.close()
        try:
            os.unlink(server.socket)
        except OSError:
            pass
        return 2
    try:
        return await serve(server, sock, files)
    finally:
        await server.metrics.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="playdeck server: %(message)s")
    if args.max_parallel is not None and args.max_parallel < 1:
        print("playdeck server: --max-parallel must be at least 1", file=sys.stderr)
        return 2
    state = (args.state_dir.expanduser() if args.state_dir else default_state_dir()).absolute()
    why = check_writable(state)
    if why is not None:
        print(f"playdeck server: state dir {state} {why}", file=sys.stderr)
        return 2
    path = socket_path().absolute()
    try:
        ensure_socket_dir(path)
    except UnsafeSocketDir as exc:
        print(f"playdeck server: {exc}", file=sys.stderr)
        return 2
    try:  # checked before anything is bound or detached: the one who started it reads why
        config = load_server_config(args.config)
        files = load_files(config.schedules, config.nodes)
    except InputError as exc:
        print(f"playdeck server: config refused:\n{exc}", file=sys.stderr)
        return 2
    try:
        jsonlog.setup(state)  # JSON lines in the state dir; warnings still go to stderr too
    except OSError as exc:
        log.warning("no server log file: %s", exc)
    if not args.foreground:
        _detach()  # the parent returns at once; clients wait for the socket to answer
    owner = _own(path)
    sock = _bind(path)
    sock.listen(128)
    server = Server(path, state, args.max_parallel or 4, args.idle_exit, args.config)
    server.max_parallel_given = args.max_parallel is not None  # the command line beats the config
    try:
        return asyncio.run(start(server, sock, config, files))
    finally:
        os.close(owner)


if __name__ == "__main__":
    code = main()
    # everything is stopped and written; don't let interpreter shutdown wait for a library's
    # worker thread (Apprise's sender, blocked on a target that never answers: up to its timeout)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
