"""Answering a playbook that waits for input (`vars_prompt`, `pause`) from the console.

The prompt's text comes from the playbook (and may be templated from host data): it is
shown as plain Text, never markup. A private prompt gets a password-style input. The
answer goes to the job's terminal and nowhere else; Esc closes and leaves the job waiting.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class PromptDialog(ModalScreen[str | None]):
    """Dismisses with the answer (possibly empty: a `pause` continues on Enter), or None on Esc."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, job_name: str, text: str, kind: str, private: bool):
        super().__init__()
        self.job_name = job_name
        self.text = text
        self.kind = kind
        self.private = private

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"{self.job_name} is waiting for input", style="bold"), classes="title")
            yield Static(Text(self.text or "(the playbook gave no prompt text)"), id="prompt-text")
            hint = (
                "Enter continues the pause; type first if it asks for something"
                if self.kind == "pause"
                else "the answer goes only to this job's playbook"
            )
            if self.private:
                hint += "; hidden as you type, never logged"
            yield Static(Text(hint), classes="hint")
            yield Input(password=self.private, id="prompt-answer", compact=True)
            with Horizontal(classes="row"):
                yield Button("Submit", id="prompt-submit", variant="primary", compact=True)
            yield Static(Text("Enter submits · Esc closes (the job keeps waiting; c cancels it)"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#prompt-answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.query_one("#prompt-answer", Input).value)

    def action_close(self) -> None:
        self.dismiss(None)
