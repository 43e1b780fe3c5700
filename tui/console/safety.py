"""What stands between the operator and a mistake, or helps after one: a job that touched
protected hosts runs again only once its name is typed, and the incident report (the last 24
hours, as `playdeck report` writes them) is one key away. Mixed into `PlaydeckApp`."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from textual import work

from tui.client.remote import RemoteJob as Job
from tui.console.actions import clean
from tui.console.screens.confirm_name import ConfirmNameDialog
from tui.core.storage.paths import ensure_private_dir

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp


class Safeguards:
    """For `PlaydeckApp`: the protected-hosts confirmation and the incident report."""

    def _confirm_protected(self: PlaydeckApp, job: Job, what: str, send: Callable[[bool], None]) -> None:
        """A job whose submission touched protected hosts asks again before it runs again: the
        operator types its name (the server refuses without that, and audits either way)."""
        if job.protected is None:
            send(False)
            return

        def confirmed(typed: bool | None) -> None:
            if typed:
                send(True)
            else:
                self.say(f"{clean(job.name)} was not {what} (protected hosts)", severity="warning")

        self.push_screen(ConfirmNameDialog(job.name, list(job.protected) or ["(not resolved)"]), confirmed)

    def action_incident_report(self: PlaydeckApp) -> None:
        """The last 24 hours as `playdeck report` writes them, into the server's state dir
        (reports/, 0600); the toast gives the path to paste from."""
        status = getattr(self.session, "status", None) or {}
        state = status.get("state_dir")
        if not isinstance(state, str) or not state:
            self.say("no report: not attached to a server", severity="warning")
            return
        self._write_report(Path(state))

    @work(group="report", exit_on_error=False, thread=True)
    def _write_report(self: PlaydeckApp, state: Path) -> None:
        from tui.core.reporting import build_report, render  # noqa: PLC0415 - only when asked
        from tui.report_cli import write_atomic  # noqa: PLC0415

        try:
            report = build_report(state, datetime.now().astimezone() - timedelta(hours=24), None)
            path = state / "reports" / f"incident-{datetime.now():%Y%m%d-%H%M%S}.md"
            ensure_private_dir(path.parent)
            write_atomic(path, render(report, "md"))
        except (OSError, ValueError) as exc:
            self.call_from_thread(self.say, f"the report was not written: {exc}", severity="error")
            return
        self.call_from_thread(self.say, f"incident report written: {path}", title="report", timeout=15)
