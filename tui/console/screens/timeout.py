"""The new-timeout dialog: seconds or 90s / 5m / 1h, 0 for none; bad input says why and changes nothing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.console.screens.launch import FOCUS_CSS
from tui.core.durations import DurationError, parse_duration
from tui.core.sanitize import strip_sgr


class TimeoutDialog(ModalScreen[float | None]):
    """Dismisses with seconds (0.0 = remove the timeout), or None when aborted."""

    CSS = FOCUS_CSS
    BINDINGS = [Binding("escape", "abort", "Abort")]

    def __init__(self, job_name: str, current: str):
        super().__init__()
        self.job_name = job_name
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # a job name comes from a job file: its control characters are shown, never sent
            yield Static(Text(f"New timeout for {strip_sgr(self.job_name)}", style="bold"), classes="title")
            yield Static(Text(f"now: {self.current}. Counts from now: 300, 90s, 5m, 1h; 0 removes it."), classes="hint")
            yield Static("", id="timeout-error", classes="error")  # above the input: toasts gather below
            yield Input(placeholder="e.g. 5m", id="timeout-input", compact=True)
            yield Static(Text("Enter confirms · Esc aborts"), classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            seconds = parse_duration(event.value)
        except DurationError as exc:
            # the message quotes what was typed (or pasted)
            self.query_one("#timeout-error", Static).update(Text(strip_sgr(str(exc))))
            return
        if not event.value.strip():
            self.query_one("#timeout-error", Static).update(Text("type a duration, or 0 to remove the timeout"))
            return
        self.dismiss(seconds or 0.0)

    def action_abort(self) -> None:
        self.dismiss(None)
