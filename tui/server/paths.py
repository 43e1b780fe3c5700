"""Where the server's socket lives, and the checks that keep it private.

The socket is the only door to the engine, so its directory must be ours alone:
created 0700, and refused when it is a symlink, owned by someone else, or has
any group/other permission bit (someone else could swap the socket).
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from tui.core.storage.paths import private_dir_problem


class UnsafeSocketDir(Exception):
    """The socket's directory cannot be trusted; the message says why, in one line."""


def socket_path() -> Path:
    """`$PLAYDECK_SOCKET`, else `$XDG_RUNTIME_DIR/playdeck/server.sock`, else a per-uid temp dir."""
    override = os.environ.get("PLAYDECK_SOCKET")
    if override:
        return Path(override).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "playdeck" / "server.sock"
    return Path(tempfile.gettempdir()) / f"playdeck-{os.getuid()}" / "server.sock"


def check_private_dir(directory: Path) -> None:
    """Raise UnsafeSocketDir unless `directory` is a real directory, ours, mode 0700 or tighter."""
    why = private_dir_problem(directory, exact_mode=False)
    if why is not None:
        raise UnsafeSocketDir(f"socket directory {directory} {why}: refused")


def ensure_socket_dir(socket: Path) -> Path:
    """Create the socket's directory 0700 if missing (never loosening or adopting one), then check it."""
    directory = socket.parent
    if not os.path.lexists(directory):
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    check_private_dir(directory)
    return directory


def knock(path: Path, timeout: float) -> OSError | None:
    """Connect to the socket at `path` and hang up: None when something listens there, else why
    not (ConnectionRefusedError: a dead server's leftover socket, safe to replace)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(timeout)
        probe.connect(str(path))
        return None
    except OSError as exc:
        return exc
    finally:
        probe.close()
