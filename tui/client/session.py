"""Attach to the server in one call: what a console needs (commands, and a mirror kept live).

Two connections on purpose: commands have a total timeout (a hung server must not hang a key
press forever), the event stream has none (it lasts as long as the client is attached).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.client.autostart import ensure_server, socket_path
from tui.client.connection import Connection
from tui.client.mirror import Mirror


class Session:
    """An attached client: `commands` for actions, `mirror` for state, `status` from the attach."""

    def __init__(self, socket: Path, status: dict[str, Any]) -> None:
        self.socket = socket
        self.status = status
        self.commands = Connection(socket)
        self.mirror = Mirror()
        self._events = Connection(socket, timeout=None)
        self.follower: asyncio.Task[None] | None = None

    async def start(self, snapshot_timeout: float = 10.0) -> None:
        """Open the event stream and return once the first snapshot is in the mirror."""
        self.follower = asyncio.create_task(self.mirror.run(self._events), name="playdeck-events")
        got = asyncio.Event()
        self.mirror.listen(lambda kind, jobs: got.set() if kind == "snapshot" else None)
        waiter = asyncio.create_task(got.wait())
        done, _ = await asyncio.wait(
            {waiter, self.follower}, timeout=snapshot_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            return
        waiter.cancel()
        failed = self.follower.exception() if self.follower.done() and not self.follower.cancelled() else None
        await self.close()
        if failed is not None:
            raise failed  # e.g. Unreachable: the server went away before its snapshot
        raise TimeoutError(f"no snapshot from the playdeck server on {self.socket}")

    @property
    def attached(self) -> bool:
        """False once the server closed the stream (it stopped, or went away)."""
        return self.follower is not None and not self.follower.done()

    async def close(self) -> None:
        """Detach: the jobs keep running on the server."""
        if self.follower is not None and not self.follower.done():
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower
        await self._events.close()
        await self.commands.close()


async def attach(socket: Path | None = None, server_args: Sequence[str] = ()) -> Session:
    """Start the server if none answers (with `server_args`), then attach: the mirror holds the
    snapshot on return."""
    path = socket_path() if socket is None else socket
    session = Session(path, await ensure_server(path, args=server_args))
    await session.start()
    return session
