"""Type the job's name to launch it on protected hosts: a slip of the limit onto production
must be a deliberate act, not one `y` away. Names and hosts are shown as text, never markup."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.console.screens.launch import FOCUS_CSS
from tui.core.sanitize import strip_sgr

MAX_HOSTS_SHOWN = 12  # the rest are counted: the dialog must fit 80x24


class ConfirmNameDialog(ModalScreen[bool]):
    """Dismisses True once the exact job name is typed, False on Esc."""

    CSS = FOCUS_CSS
    BINDINGS = [Binding("escape", "abort", "Abort")]

    def __init__(self, job_name: str, hosts: list[str]):
        super().__init__()
        self.job_name = job_name
        self.hosts = hosts

    def compose(self) -> ComposeResult:
        name = strip_sgr(self.job_name)
        shown = ", ".join(strip_sgr(h) for h in self.hosts[:MAX_HOSTS_SHOWN]) or "(not resolved)"
        more = len(self.hosts) - MAX_HOSTS_SHOWN
        if more > 0:
            shown += f" and {more} more"
        with Vertical(classes="dialog"):
            yield Static(Text(f"{name} touches protected hosts", style="bold"), classes="title")
            yield Static(Text(f"protected: {shown}"), classes="hint")
            yield Static(Text("Type the job's name to launch it anyway:"), classes="hint")
            yield Static(Text(name, style="bold"), classes="hint")
            yield Static("", id="confirm-name-error", classes="error")
            yield Input(placeholder="job name", id="confirm-name-input", compact=True)
            yield Static(Text("Enter confirms · Esc aborts (nothing is launched)"), classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value == self.job_name:
            self.dismiss(True)
            return
        error = self.query_one("#confirm-name-error", Static)
        error.update(Text(f"that is not {strip_sgr(self.job_name)}: type its name exactly, or Esc"))

    def action_abort(self) -> None:
        self.dismiss(False)
