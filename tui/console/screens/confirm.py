"""A yes/no question that answers to `y` and `n` (and Esc for no)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.core.sanitize import strip_sgr


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, detail: str = ""):
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # the question may quote a job name: its control characters are shown, never sent
            yield Static(Text(strip_sgr(self.question), style="bold"), classes="title")
            if self.detail:
                yield Static(Text(strip_sgr(self.detail)), classes="hint")
            yield Static(Text("y: yes · n or Esc: no"), classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
