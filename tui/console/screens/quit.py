"""The question `q` asks while jobs are unfinished: stop them, leave them running, or stay."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class QuitDialog(ModalScreen[str | None]):
    """Dismissed with "stop" (y), "detach" (d) or None (Esc, n: stay)."""

    BINDINGS = [
        Binding("y", "answer('stop')", "Stop them and quit"),
        Binding("d", "answer('detach')", "Detach"),
        Binding("escape,n", "answer(None)", "Stay", show=False),
    ]

    def __init__(self, unfinished: int):
        super().__init__()
        self.unfinished = unfinished

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"{self.unfinished} job(s) still queued or running.", style="bold"), classes="title")
            yield Static(Text("y: stop them cleanly and quit (logs stay on disk)"), classes="hint")
            yield Static(Text("d: detach, they keep running (playdeck attaches again)"), classes="hint")
            yield Static(Text("Esc: stay"), classes="hint")

    def action_answer(self, choice: str | None) -> None:
        self.dismiss(choice)
