"""The audit trail: one JSON line per operator action, appended, never rewritten.

Who did what, from where: the login user, `SUDO_USER` and the SSH client address
when present. Arguments that look like secrets are redacted before they are
written; the secrets themselves never reach this module.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.storage.paths import ensure_private_dir

log = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"pass|secret|token|key|vault|credential|private|auth", re.I)
REDACTED = "<redacted>"


def redact(value: Any, name: str = "") -> Any:
    """Values under secret-looking names become `<redacted>`, at any depth."""
    if name and SECRET_NAME.search(name) and not name.endswith("_file"):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def who() -> dict[str, str]:
    """The operator as the OS sees them; an SSH session adds where they came from."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    found = {"user": user}
    if os.environ.get("SUDO_USER"):
        found["sudo_user"] = os.environ["SUDO_USER"]
    ssh = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT")
    if ssh:
        found["ssh_client"] = ssh.split()[0]
    return found


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._who = who()

    def record(self, action: str, job: str | None = None, **args: Any) -> bool:
        """Append one entry; False (and a log line) if the disk refused: actions are never blocked by it."""
        entry = {
            "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "action": action,
            **self._who,
            "pid": os.getpid(),
            "job": job,
            "args": redact(args),
        }
        line = json.dumps(entry, default=str, ensure_ascii=False) + "\n"
        try:
            ensure_private_dir(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("audit trail not written: %s", exc)
            return False
        return True
