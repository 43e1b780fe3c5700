"""The console's link to the server: attaching (and starting it), following it, noticing it go
away and attaching again, and sending requests. The console renders what comes back; it owns
no job state (tui/client/remote.py is its view of the server's jobs)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import work
from textual.notifications import SeverityLevel

from tui.client.autostart import private_socket, probe, socket_path
from tui.client.connection import ClientError
from tui.client.remote import RemoteEngine
from tui.client.remote import RemoteJob as Job
from tui.client.session import Session, attach
from tui.console.actions import clean
from tui.core.planning.spec import JobSpec

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp


class ServerLink:
    """For `PlaydeckApp`: attach, follow, re-attach, and one place where requests are made."""

    @work(exclusive=True, group="attach", exit_on_error=False)
    async def _attach(self: PlaydeckApp, start: bool = True) -> None:
        """Attach (starting the server if none answers, unless `start` is False: after a server
        went away, a new one is the operator's decision, as with tmux); while it cannot, say why
        and try again."""
        delay = 0.5
        while not self._quitting:
            try:
                if not start and await probe(private_socket(self.socket or socket_path())) is None:
                    await asyncio.sleep(1.0)
                    continue
                session = await attach(self.socket, self.server_args)
            except (ClientError, OSError, TimeoutError) as exc:
                problem = clean(exc) or type(exc).__name__
                if problem != self._attach_problem:
                    self.say(f"no playdeck server: {problem}", title="server", severity="error", timeout=10)
                self._attach_problem = problem
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
                continue
            self._attached(session)
            return

    def _attached(self: PlaydeckApp, session: Session) -> None:
        self.session = session
        self.socket = session.socket
        self._attach_problem = ""
        self.engine = RemoteEngine(session)
        self.engine.subscribe(self._on_engine_change)
        for text, level in session.mirror.notices:  # standing ones (a refused config), from the snapshot
            self._on_notice(text, level)
        session.mirror.listen_notices(self._on_notice)
        session.mirror.listen_config(self.reload_config)
        self._added = True
        self._bindings_key = None
        self._warn_interrupted()
        if self.initial_specs:
            specs, self.initial_specs = self.initial_specs, []
            self._submit(specs)
        self.run_worker(self._follow(session), group="follow", exclusive=True, exit_on_error=False)

    def _on_notice(self: PlaydeckApp, text: str, level: str) -> None:
        """The server's word for people (a refused config, an alert it could not send): once."""
        severity: SeverityLevel = "error" if level == "error" else "warning" if level == "warning" else "information"
        self.say(text, title="server", severity=severity, timeout=12)

    async def _follow(self: PlaydeckApp, session: Session) -> None:
        """Notice the server going away (stopped, killed): say so, then attach again."""
        if session.follower is None:
            return  # no event stream to lose
        await asyncio.wait({session.follower})
        if self._quitting or self._detached:
            return
        await session.close()
        self._attach_problem = "the server went away; `playdeck server start` starts one (this console then attaches)"
        self.say(
            "the playdeck server went away: what the grid shows is its last word",
            title="server",
            severity="error",
            timeout=10,
        )
        self._bindings_key = None
        self._attach(start=False)

    @work(group="watch", exclusive=True, exit_on_error=False)
    async def _watch(self: PlaydeckApp, job: Job | None) -> None:
        """Only the selected job's log lines come over the socket."""
        if self.engine is not None:
            await self.remote_call(lambda engine: engine.watch(job))

    @work(group="submit", exit_on_error=False)
    async def _submit(self: PlaydeckApp, specs: list[JobSpec]) -> None:
        for spec in specs:
            await self.remote_call(lambda engine, spec=spec: engine.add(spec))

    async def remote_call(self: PlaydeckApp, call, *, severity: SeverityLevel = "warning") -> object:
        """Run one request to the server; a refusal or a lost server is said in one line."""
        if self.engine is None:
            self.say(f"not attached to a server: {self._attach_problem or 'attaching…'}", severity="error")
            return None
        try:
            return await call(self.engine)
        except ClientError as exc:
            problems = getattr(exc, "problems", [])
            self.say(" · ".join([str(exc), *problems]), severity=severity, timeout=8)
            return None
