"""Where each attempt's output lives on disk, and the bounded tail kept in memory.

On disk, per attempt: `output.log` (what ansible-playbook would have printed,
colours kept, never truncated), `events.jsonl` (every event, as ansible-runner
produced it) and `pdd/`, the fresh private data dir ansible-runner works in.
The supervisor process writes these files, so the console only reads events.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from tui.core.storage.paths import ensure_private_dir

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_id() -> str:
    """Sortable and unique even for two consoles started in the same second."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def slug(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "job"


def attempt_dir(state: Path, run_id: str, job_name: str, number: int) -> Path:
    ensure_private_dir(state)  # private at the top keeps everything below it private too
    path = state / "runs" / run_id / slug(job_name) / f"attempt-{number}"
    return ensure_private_dir(path)


class AttemptFiles:
    """The writer side, used inside the supervisor process."""

    def __init__(self, directory: Path):
        self.directory = directory
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self.output = open(os.open(directory / "output.log", flags, 0o600), "w", encoding="utf-8", errors="replace")
        self.events = open(os.open(directory / "events.jsonl", flags, 0o600), "w", encoding="utf-8", errors="replace")

    def write_event(self, event: dict[str, Any]) -> None:
        """Raise OSError when the disk refuses; the caller decides what that means for the job."""
        self.events.write(json.dumps(event, default=str, ensure_ascii=False) + "\n")
        text = event.get("stdout")
        if text:
            self.output.write(text.replace("\r\n", "\n") + "\n")
        self.events.flush()
        self.output.flush()

    def write_note(self, text: str) -> None:
        """A line of playdeck's own (why a job was stopped) so the log tells the whole story."""
        self.output.write(text + "\n")
        self.output.flush()

    def close(self) -> None:
        for fh in (self.output, self.events):
            try:
                fh.close()
            except OSError:
                pass


class LogTail:
    """The last `limit` lines of a job's output across its attempts; the rest stays on disk."""

    def __init__(self, limit: int = 2000):
        self.lines: deque[str] = deque(maxlen=limit)
        self.total = 0  # lines ever added, so a viewer can tell what it has not seen

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.lines.append(line)
            self.total += 1

    def add_text(self, text: str) -> None:
        if text:
            self.extend(text.replace("\r\n", "\n").split("\n"))
