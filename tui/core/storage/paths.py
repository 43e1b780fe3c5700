"""Where playdeck keeps its state, in one place so tests can redirect it."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def state_dir() -> Path:
    """The state directory: `$PLAYDECK_STATE_DIR`, else `$XDG_STATE_HOME/playdeck`.

    It is not created here; `ensure_private_dir` does that when something is
    first written, so merely importing or validating never touches the disk.
    """
    override = os.environ.get("PLAYDECK_STATE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(xdg).expanduser() / "playdeck"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only.

    Logs can hold anything a playbook printed, so nobody else gets to read them.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def check_writable(path: Path) -> str | None:
    """Why playdeck cannot keep its state in `path`, or None when it can.

    Checked before anything runs so an unusable state dir is one clear line, not a
    traceback from deep inside a job: the dir is created (private) and a file is made
    and removed in it. Tests run as root, which ignores permission bits, so they use a
    regular file where the directory should be, which fails for root too.
    """
    try:
        for part in (path, *path.parents):
            if part.exists() or part.is_symlink():
                if not part.is_dir():
                    return "is not a directory" if part == path else f"{part} is not a directory"
                break
        ensure_private_dir(path)
        fd, probe = tempfile.mkstemp(prefix=".playdeck-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot be written: {exc.strerror or exc}"
    return None


def make_private_dir(path: str | Path) -> str | None:
    """Make the directory `path` (0700) unless it exists, then say why it is not ours alone
    (`private_dir_problem`), or None: a predictable name may have been made first by someone else."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return private_dir_problem(path)


def private_dir_problem(path: str | Path, *, exact_mode: bool = True) -> str | None:
    """Why `path` is not a directory that only we control, or None when it is.

    For the private sockets (the server's, ssh's control masters) under a predictable name that
    another local user could have made first: lstat, so a symlink is refused, never followed.
    `exact_mode` wants 0700; otherwise any mode without group/other bits will do.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}"
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}, not to us (uid {os.getuid()})"
    if (mode != 0o700) if exact_mode else (mode & 0o077):
        return f"has mode {mode:o}, not 0700"
    return None
