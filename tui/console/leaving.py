"""Leaving the console: `q` quits (asking first when jobs are unfinished: stop them, or detach),
`d` detaches, and a hangup (SIGHUP, or the terminal read gone) detaches at once and exits 129.
The jobs never have to stop: they run under the server. Mixed into `PlaydeckApp`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import termios
import threading
from typing import TYPE_CHECKING

from rich.console import RenderableType
from textual import work

from tui.console.screens.quit import QuitDialog

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp

HANGUP_EXIT = 128 + signal.SIGHUP  # the shell's convention for "ended by SIGHUP"
HANGUP_DEADLINE = 5.0  # seconds: after a hangup the console ends by then, whatever is stuck
STOP_WAIT = 15.0  # seconds `y` at the quit question waits for the stopped jobs to end


class Leaving:
    """For `PlaydeckApp`: quitting, detaching and hanging up."""

    def action_quit_console(self: PlaydeckApp) -> None:
        """No unfinished job: quit. Else ask: y stops them and quits, d detaches, Esc stays."""
        running = self.engine.unfinished() if self.engine is not None else []
        if not running:
            self.action_detach()
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self._stop_all_and_exit()
            elif choice == "detach":
                self.action_detach()

        self.push_screen(QuitDialog(len(running)), answer)

    def action_detach(self: PlaydeckApp) -> None:
        """Leave: the jobs go on under the server; any console (or `playdeck ls`) finds them."""
        self._detached = True
        self.run_worker(self._leave, group="quit", exclusive=True, exit_on_error=False)

    async def _leave(self: PlaydeckApp) -> None:
        """Close the connection first, so the server hears (and audits) the detach at once."""
        try:
            if self.session is not None:
                await asyncio.wait_for(self.session.close(), 2.0)
        except (TimeoutError, OSError):
            pass
        finally:
            self.exit(0)

    @work(exclusive=True, group="quit")
    async def _stop_all_and_exit(self: PlaydeckApp) -> None:
        """Cancel every unfinished job, wait (a while) until the server says they ended, then go."""
        self._quitting = True
        engine = self.engine
        if engine is None:
            self.exit(0)
            return
        jobs = engine.unfinished()
        self.say(f"stopping {len(jobs)} job(s)…", timeout=10)
        for job in reversed(jobs):  # children before parents: a canceled parent must not start a child
            await self.remote_call(lambda engine, job=job: engine.cancel(job))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT
        while engine.unfinished() and loop.time() < deadline and (self.session is None or self.session.attached):
            await asyncio.sleep(0.1)
        self._detached = True
        await self._leave()

    async def action_quit(self: PlaydeckApp) -> None:
        self.action_quit_console()

    def _watch_hangup(self: PlaydeckApp) -> None:
        if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
            return  # started under nohup: the user asked for hangups to be ignored
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no signals
            pass

    def _hangup(self: PlaydeckApp) -> None:
        """The terminal is gone: detach (the jobs go on under the server) and exit non-zero.

        Nothing may wait on the terminal now: drawing stops at once (a write to a dead
        terminal fails, and the writer's queue would then block the loop), and a watchdog
        ends the process if closing the connection gets stuck anyway.
        """
        if self._hung_up:
            return
        self._hung_up = self._quitting = self._detached = True
        self.batch_update().__enter__()  # Textual draws nothing while a batch is open: this one stays open
        watchdog = threading.Timer(HANGUP_DEADLINE, os._exit, (HANGUP_EXIT,))
        watchdog.daemon = True
        watchdog.start()
        self.run_worker(self._close_after_hangup(), group="hangup", exclusive=True, exit_on_error=False)

    def panic(self, *renderables: RenderableType) -> None:
        """The input thread panics when the terminal it reads is hung up: that is a hangup too
        (whichever of it and SIGHUP comes first), never a reason to leave the jobs behind."""
        if self._hung_up:
            return
        if not self.is_headless and _terminal_gone():
            self._hangup()
            return
        super().panic(*renderables)

    async def _close_after_hangup(self: PlaydeckApp) -> None:
        """Detach cleanly (the server audits it), then out at once: Textual's own shutdown restores
        the terminal, and with no terminal left its writer's queue blocks it (seen: forever)."""
        try:
            if self.session is not None:
                await asyncio.wait_for(self.session.close(), 2.0)
        finally:
            os._exit(HANGUP_EXIT)


def _terminal_gone() -> bool:
    try:
        termios.tcgetattr(sys.__stdin__.fileno())
    except (termios.error, OSError, ValueError, AttributeError):
        return True
    return False
