"""Writing to stdout/stderr that may be gone: a closed pipe (`| head`) or a hung-up terminal.

Headless runs and the server verbs must finish their work (cancel jobs, write JSON) whatever
happened to the terminal, so a failed write is never an error here.
"""

from __future__ import annotations

import os
from typing import TextIO


def silence(stream: TextIO) -> None:
    """Point a dead stream's descriptor at /dev/null so later writes, and the flush at exit, cannot fail
    (what the Python docs recommend for SIGPIPE/EPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def say(stream: TextIO, text: str) -> bool:
    """Write one line that may go nowhere; False when it did."""
    try:
        stream.write(text + "\n")
        stream.flush()
        return True
    except (OSError, ValueError):
        silence(stream)
        return False
