"""Where playdeck keeps its state, in one place so tests can redirect it."""

from __future__ import annotations

import os
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
