"""Where playdeck keeps its state, in one place so tests can redirect it."""

from __future__ import annotations

import os
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
