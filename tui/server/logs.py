"""GET /v1/jobs/{name}/log: a job's output.log files, every attempt in order, as on disk.

Read in chunks off the loop's thread so a big log never stalls the engine; each
line is sanitized (the log keeps whatever a host printed). With follow, new lines
keep coming until the job has finished and its last file is read to the end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from tui.core.job import Job
from tui.core.running.attempt import Attempt
from tui.core.sanitize import decode, sanitize

CHUNK = 1 << 16
POLL = 0.2
TAIL_BYTES = 8 << 20  # a history log's tail is read from at most this far before its end


def _read(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(CHUNK)
    except OSError:
        return b""


class _Follower:
    """Position in a job's attempts' files; yields whole lines only (a partial line waits)."""

    def __init__(self, job: Job):
        self.job = job
        self.index = 0
        self.offset = 0
        self.partial = b""

    async def next_lines(self) -> tuple[str, bool]:
        """Text of whole lines read now, and whether every file is read to its current end."""
        attempts = self.job.attempts
        if self.index >= len(attempts):
            return "", True
        path = attempts[self.index].log
        data = await asyncio.to_thread(_read, path, self.offset)
        if data:
            self.offset += len(data)
            data = self.partial + data
            cut = data.rfind(b"\n") + 1
            self.partial = data[cut:]
            return sanitize(decode(data[:cut])), False
        if self.index + 1 < len(attempts) or attempts[self.index].ended is not None:
            tail, self.partial = self.partial, b""
            if self.index + 1 < len(attempts):
                self.index, self.offset = self.index + 1, 0
                return (sanitize(decode(tail)) + "\n" if tail else ""), False
            return (sanitize(decode(tail)) + "\n" if tail else ""), True
        return "", True


async def stream_log(request: web.Request, job: Job, follow: bool, stopping: asyncio.Event) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    reader = _Follower(job)
    while True:
        text, at_end = await reader.next_lines()
        if text:
            await response.write(text.encode("utf-8", "replace"))
        if not at_end:
            continue
        if not follow or stopping.is_set():
            break
        if (
            job.status.finished
            and reader.index >= len(job.attempts) - 1
            and (not job.attempts or job.attempts[-1].ended is not None)
        ):
            text, _ = await reader.next_lines()  # what was written just before it ended
            if text:
                await response.write(text.encode("utf-8", "replace"))
            break
        await asyncio.sleep(POLL)
    await response.write_eof()
    return response


def _last_lines_of(path: Path, count: int) -> list[str]:
    """The file's last `count` lines, reading backwards from its end (a log may be gigabytes)."""
    with open(path, "rb") as fh:
        end = fh.seek(0, 2)
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= count and end - position < TAIL_BYTES:
            step = min(CHUNK, position)
            position -= step
            fh.seek(position)
            data = fh.read(step) + data
    lines = decode(data).splitlines()
    if position > 0 and lines:
        lines = lines[1:]  # the first line read is cut short
    return lines[-count:] if count else []


def history_lines(attempts: list[Attempt], count: int) -> list[str]:
    """What the console showed for a job of an earlier run: per attempt a heading, then the last
    `count` lines of its output.log, sanitized; an unreadable file says why in one line."""
    lines: list[str] = []
    for attempt in attempts:
        lines.append(f"── attempt {attempt.number}{f' (limit {attempt.limit})' if attempt.limit else ''} ──")
        try:
            lines.extend(sanitize(line) for line in _last_lines_of(attempt.log, count))
        except OSError as exc:
            lines.append(f"(log not readable: {exc.strerror or exc})")
    return lines
