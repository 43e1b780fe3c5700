"""Event stream clients: a bounded outgoing queue each, written by a task of its own.

The engine's callbacks only mark jobs dirty; a flusher turns dirty jobs into one
delta frame every FLUSH seconds and offers it to each client. A client whose
queue is full (a stalled SSH link, a SIGSTOPped console) loses its queued frames
and gets one fresh snapshot when its writer gets going again: its memory stays
bounded and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable

from aiohttp import web

from tui.core.job import Job
from tui.core.sanitize import sanitize
from tui.server.logs import history_lines
from tui.server.wire import frame, log_frame, notice_frame

log = logging.getLogger(__name__)

FLUSH = 0.1  # seconds between delta frames, at most
MAX_FRAMES = 256
MAX_BYTES = 1 << 20
LOG_FRAME_BYTES = 256 << 10  # one log frame at most: a client is told `total`, so it sees the gap
LOG_TAIL_BYTES = 512 << 10  # a tail sent at once at most: well under MAX_BYTES, or the client resyncs for ever
MAX_LINE_CHARS = 64 << 10  # one huge line (a module's whole output) must not push every line before it out


def _clip(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    more = len(line) - MAX_LINE_CHARS
    return line[:MAX_LINE_CHARS] + f" … [{more} more characters: the whole line is in the log on disk]"


def tail_frames(lines: Iterable[str], count: int, total: int) -> list[tuple[list[str], int]]:
    """The last `count` of a log's lines (`total` ever written) as frames of at most
    LOG_FRAME_BYTES, each with the total at its last line: huge lines are shortened and the
    whole is bounded (LOG_TAIL_BYTES), so what a client is sent always fits its queue."""
    picked: list[tuple[str, int]] = []
    size = 0
    for line in reversed(list(lines)[-count:] if count else []):
        line = _clip(sanitize(line))
        cost = len(json.dumps(line)) + 2
        if picked and size + cost > LOG_TAIL_BYTES:
            break
        picked.append((line, cost))
        size += cost
    picked.reverse()
    frames: list[list[str]] = []
    current: list[str] = []
    frame_size = 0
    for line, cost in picked:
        if current and frame_size + cost > LOG_FRAME_BYTES:
            frames.append(current)
            current, frame_size = [], 0
        current.append(line)
        frame_size += cost
    if current:
        frames.append(current)
    out = []
    at = total - len(picked)
    for chunk in frames:
        at += len(chunk)
        out.append((chunk, at))
    return out


class Client:
    """One websocket: its queue, its watched jobs, and how far it has seen each watched log."""

    def __init__(
        self, ws: web.WebSocketResponse, snapshot: Callable[[], str], number: int, resynced: Callable[[Client], None]
    ):
        self.ws = ws
        self.number = number
        self._snapshot = snapshot
        self._resynced = resynced  # after a snapshot: the watched logs' tails again
        self.queue: deque[str] = deque()
        self.bytes = 0
        self.needs_resync = True  # the first frame is a snapshot
        self.resyncs = 0
        self.dropped = 0
        self.watch: dict[int, int] = {}  # job id -> log lines total already queued (-1: none yet)
        self.names: set[str] = set()  # {"watch": [names]}: every job of these names, later ones too
        self._wake = asyncio.Event()
        self._wake.set()
        self.task: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        """Queue a frame, or give up on the queue (resync later) when it is full; never blocks."""
        if self.needs_resync:
            self.dropped += 1
            return
        if self.queue and (len(self.queue) >= MAX_FRAMES or self.bytes + len(text) > MAX_BYTES):
            self.dropped += len(self.queue) + 1
            self.queue.clear()
            self.bytes = 0
            self.needs_resync = True
            self.resyncs += 1
            self.watch = dict.fromkeys(self.watch, -1)  # logs restart from the tail after the snapshot
        else:
            self.queue.append(text)
            self.bytes += len(text)
        self._wake.set()

    async def writer(self) -> None:
        """Send queued frames in order; after a drop, a snapshot built when it is sent (fresh)."""
        try:
            while not self.ws.closed:
                await self._wake.wait()
                self._wake.clear()
                while not self.ws.closed:
                    if self.queue:
                        text = self.queue.popleft()
                        self.bytes -= len(text)
                    elif self.needs_resync:
                        self.needs_resync = False
                        await self.ws.send_str(self._snapshot())
                        self._resynced(self)
                        continue
                    else:
                        break
                    await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    def info(self) -> dict[str, int]:
        return {
            "id": self.number,
            "queued": len(self.queue),
            "bytes": self.bytes,
            "max_frames": MAX_FRAMES,
            "max_bytes": MAX_BYTES,
            "resyncs": self.resyncs,
            "dropped": self.dropped,
        }


class Hub:
    """Collects what changed and sends it, batched, to every client."""

    def __init__(self, jobs: Callable[[], list[Job]]):
        self._jobs = jobs
        self.clients: set[Client] = set()
        self.seq = 0
        self._dirty: dict[int, Job] = {}
        self._logs: set[int] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._numbers = 0
        self._loaded: set[int] = set()  # history jobs whose log was read from disk (or is being read)
        self._loads: set[asyncio.Task[None]] = set()
        self.standing: dict[str, dict[str, str]] = {}  # notices every snapshot carries

    def on_change(self, job: Job, what: str) -> None:
        """The engine listener: note it, flush soon. Cheap; never touches a socket."""
        self._dirty[job.id] = job
        if what == "event":
            self._logs.add(job.id)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH, self.flush)

    def snapshot(self) -> str:
        return frame("snapshot", self.seq, self._jobs(), list(self.standing.values()))

    def notice(self, text: str, level: str = "warning", standing: str | None = None) -> None:
        """Tell every attached console once. A `standing` notice (keyed, e.g. "config") is also
        given to consoles that attach later, until `clear(key)`."""
        if standing is not None:
            self.standing[standing] = {"text": sanitize(text), "level": level}
        self._broadcast(notice_frame(text, level))

    def clear(self, key: str) -> None:
        self.standing.pop(key, None)

    def config_reloaded(self, path: str) -> None:
        """Tell every console the config file changed and was taken: each re-reads its own keys
        (theme, bell, keys) from it, as the server did its own."""
        self._broadcast(json.dumps({"t": "config", "path": path}))

    def _broadcast(self, text_frame: str) -> None:
        """One frame for every client, in order with its deltas (encoded once for all)."""
        for client in list(self.clients):
            client.offer(text_frame)

    def flush(self) -> None:
        self._flush_handle = None
        if not self._dirty:
            return
        jobs = sorted(self._dirty.values(), key=lambda j: j.id)
        self._dirty.clear()
        logs, self._logs = self._logs, set()
        self.seq += 1
        text = frame("delta", self.seq, jobs)
        for client in list(self.clients):
            client.offer(text)
            for job in jobs:
                if job.id in logs or job.status.finished:
                    self._send_log(client, job)

    def _watched(self, client: Client, job: Job) -> int | None:
        """How far the client has this job's log (-1: nothing yet), or None when it does not watch it."""
        seen = client.watch.get(job.id)
        if seen is None and job.name in client.names:
            seen = client.watch[job.id] = -1
        return seen

    def _send_log(self, client: Client, job: Job) -> None:
        seen = self._watched(client, job)
        if seen is None or client.needs_resync:
            return
        tail = job.tail
        new = tail.total - seen if seen >= 0 else len(tail.lines)
        if new <= 0:
            return
        client.watch[job.id] = tail.total
        for lines, total in tail_frames(tail.lines, min(new, len(tail.lines)), tail.total):
            client.offer(log_frame(job, lines, total))

    def watch(self, client: Client, names: list[str]) -> None:
        """Replace the watched set by names (every job of each name); current tails are sent at once."""
        old = client.watch
        client.names = set(names)
        client.watch = {job.id: old.get(job.id, -1) for job in self._jobs() if job.name in client.names}
        self._watched_changed(client)

    def watch_ids(self, client: Client, ids: list[int]) -> None:
        """Replace the watched set by job ids (history and current jobs may share a name)."""
        old = client.watch
        client.names = set()
        client.watch = {i: old.get(i, -1) for i in ids}
        self._watched_changed(client)

    def _watched_changed(self, client: Client) -> None:
        self.resend_logs(client)
        for job in self._jobs():
            if (
                job.history
                and job.tail.total == 0
                and job.id not in self._loaded
                and self._watched(client, job) is not None
            ):
                self._loaded.add(job.id)  # once per job, whoever asks first
                task = asyncio.get_running_loop().create_task(self._load_history(job))
                self._loads.add(task)
                task.add_done_callback(self._loads.discard)

    async def _load_history(self, job: Job) -> None:
        """A history job's log, read from its attempts' files off the loop, becomes its tail; every
        client watching it gets it as log frames, as for a running job."""
        lines = await asyncio.to_thread(history_lines, job.attempts, job.tail.lines.maxlen or 2000)
        job.tail.extend(lines)
        for client in list(self.clients):
            self._send_log(client, job)

    def resend_logs(self, client: Client) -> None:
        """The tails of watched jobs the client has not had since it (re)started: even a job that
        finished while the client was stalled, which has no new line to carry them."""
        for job in self._jobs():
            seen = self._watched(client, job)
            if seen is not None and seen < 0:
                self._send_log(client, job)

    def add(self, ws: web.WebSocketResponse) -> Client:
        self._numbers += 1
        client = Client(ws, self.snapshot, self._numbers, self.resend_logs)
        client.task = asyncio.get_running_loop().create_task(client.writer())
        self.clients.add(client)
        return client

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        if client.task is not None:
            client.task.cancel()
