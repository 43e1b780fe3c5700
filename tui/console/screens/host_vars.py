"""A host's variables, as the inventory gives them, shown as plain text."""

from __future__ import annotations

from typing import Any

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.core.sanitize import strip_sgr


class HostVarsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,x", "close", "Close")]

    def __init__(self, host: str, variables: dict[str, Any], groups: list[str]):
        super().__init__()
        self.host = host
        self.variables = variables
        self.groups = groups

    def compose(self) -> ComposeResult:
        body = yaml.safe_dump(self.variables, default_flow_style=False, sort_keys=True, allow_unicode=True) \
            if self.variables else "(no variables)\n"
        with VerticalScroll(classes="dialog wide tall"):
            yield Static(Text(strip_sgr(f"{self.host} · groups: {', '.join(self.groups) or '-'}"), style="bold"))
            yield Static(Text(strip_sgr(body)))
            yield Static(Text("Esc closes"), classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
