"""A client-side mirror of the server's jobs, kept from the /v1/events stream.

The console owns no job state: it renders this mirror. The server sends a snapshot first (and
again whenever it had to drop messages for a slow client), then batched deltas of changed jobs,
and log lines for the jobs this client watches. Applying them is plain dict work, kept apart
from any UI so it can be tested and reused by any client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from tui.client.connection import Connection

Job = dict[str, Any]
# listener(kind, jobs): kind is "snapshot" or "delta"; jobs are the ones that came in that message
JobsListener = Callable[[str, list[Job]], None]
# log listener(job name, lines not heard before, total, job id): the lines are the last ones of
# `total` (a gap, when total - len(lines) > the previous total, means lines were dropped on the
# way); the id is None from a server that does not send it (names alone may be shared by an
# earlier run's job and this one's)
LogListener = Callable[[str, list[str], int, "int | None"], None]
# notice listener(text, level): a one-line message from the server for people (a config it
# refused, an alert it could not send); already sanitized by the server, still untrusted text
NoticeListener = Callable[[str, str], None]


class Mirror:
    """Job states by id, as the server last described them; listeners hear of every change."""

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        self.seq: int | None = None
        self.snapshots = 0  # how many snapshots were applied (more than one: the server resynced us)
        # per watched job, how many of its log lines we have heard; drop an entry to hear its tail again
        self.log_seen: dict[str | int, int] = {}
        self._listeners: list[JobsListener] = []
        self._log_listeners: list[LogListener] = []
        self._notice_listeners: list[NoticeListener] = []
        self._config_listeners: list[Callable[[], None]] = []
        self.notices: list[tuple[str, str]] = []  # the standing ones of the last snapshot
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def listen(self, listener: JobsListener) -> None:
        self._listeners.append(listener)

    def listen_logs(self, listener: LogListener) -> None:
        self._log_listeners.append(listener)

    def listen_notices(self, listener: NoticeListener) -> None:
        self._notice_listeners.append(listener)

    def listen_config(self, listener: Callable[[], None]) -> None:
        """`listener()` when the server took a changed config file: a client re-reads its own keys."""
        self._config_listeners.append(listener)

    def _notice(self, raw: Any) -> None:
        if isinstance(raw, dict) and isinstance(raw.get("text"), str):
            level = raw.get("level") if raw.get("level") in ("information", "warning", "error") else "warning"
            for listener in list(self._notice_listeners):
                listener(raw["text"], str(level))

    def by_name(self, name: str) -> Job | None:
        """The job that name means to the server: its own newest of that name, else an earlier
        server's (history) one; the two may share a name."""
        found = [job for job in self.jobs.values() if job.get("name") == name]
        return max(found, key=lambda job: (not job.get("history"), int(job.get("id", 0)))) if found else None

    def apply(self, message: dict[str, Any]) -> None:
        """Apply one server message; unknown kinds are ignored (a newer server may send more)."""
        kind = message.get("t")
        if kind == "snapshot":
            self.jobs = {int(job["id"]): job for job in message.get("jobs", [])}
            self.seq = message.get("seq")
            self.snapshots += 1
            self._tell(kind, list(self.jobs.values()))
            standing = [n for n in message.get("notices") or [] if isinstance(n, dict)]
            fresh = [n for n in standing if (str(n.get("text")), str(n.get("level"))) not in self.notices]
            self.notices = [(str(n.get("text")), str(n.get("level"))) for n in standing]
            for notice in fresh:  # once per console, not again at every resync
                self._notice(notice)
        elif kind == "delta":
            seq = message.get("seq")
            if seq is not None and self.seq is not None and seq <= self.seq:
                return  # older than the snapshot we hold: applying it would step back in time
            changed = list(message.get("jobs", []))
            for job in changed:
                self.jobs[int(job["id"])] = job
            self.seq = seq
            self._tell(kind, changed)
        elif kind == "notice":
            self._notice(message)
        elif kind == "config":
            for config_listener in list(self._config_listeners):
                config_listener()
        elif kind == "log":
            job_id = message.get("id")
            job_id = job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None
            lines = [str(x) for x in message.get("lines", [])]
            self._log(str(message.get("job", "")), lines, message.get("total"), job_id)

    def _log(self, name: str, lines: list[str], total: Any, job_id: int | None) -> None:
        """Pass on only unheard lines: after a resync the server resends a watched job's whole tail."""
        key: str | int = name if job_id is None else job_id
        total = int(total) if isinstance(total, int) else self.log_seen.get(key, 0) + len(lines)
        seen = self.log_seen.get(key, 0)
        fresh = lines[max(0, seen - (total - len(lines))) :]
        self.log_seen[key] = max(seen, total)
        if fresh:
            for log_listener in list(self._log_listeners):
                log_listener(name, fresh, total, job_id)

    def _tell(self, kind: str, jobs: list[Job]) -> None:
        for listener in list(self._listeners):
            listener(kind, jobs)

    async def watch(self, names: Iterable[str]) -> None:
        """Ask for the log lines of these jobs (replaces the watched set)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps({"watch": list(names)}))

    async def watch_ids(self, ids: Iterable[int]) -> None:
        """Ask for the log lines of these jobs by id (replaces the watched set): an earlier run's
        job and this one's may share a name."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps({"watch_ids": list(ids)}))

    async def run(self, conn: Connection) -> None:
        """Follow the event stream until the server closes it (or the task is cancelled).
        `conn` should have no total timeout: the stream lasts as long as the client."""
        ws = await conn.events()
        self._ws = ws
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.apply(json.loads(msg.data))
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
        finally:
            self._ws = None
            await ws.close()
