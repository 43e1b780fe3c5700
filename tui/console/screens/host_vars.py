"""A host's variables, as the inventory gives them, shown as plain text.

Names, keys and values come from the inventory (anyone who can write it): the YAML is
built first and then passed whole through `strip_sgr`, inside `Text`, never markup.
Sized for 80x24: the variables scroll (arrows, PgUp/PgDn) between a fixed title and hint.
"""

from __future__ import annotations

from typing import Any

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.core.sanitize import strip_sgr


class HostVarsScreen(ModalScreen[None]):
    # ids of its own: the console's stylesheet sizes `.dialog`s for short forms
    DEFAULT_CSS = """
    HostVarsScreen { align: center middle; }
    HostVarsScreen > #host-vars-box {
        width: 100%; max-width: 100;
        height: 100%; max-height: 40;
        padding: 0 1;
        border: thick $primary;
        background: $surface;
    }
    #host-vars-box > #host-vars-title { height: auto; max-height: 3; }
    #host-vars-box > #host-vars-body { height: 1fr; scrollbar-size-vertical: 1; }
    #host-vars-box > #host-vars-hint { height: 1; color: $foreground-muted; }
    """

    BINDINGS = [Binding("escape,q,x", "close", "Close")]

    def __init__(self, host: str, variables: dict[str, Any], groups: list[str]):
        super().__init__()
        self.host = host
        self.variables = variables
        self.groups = groups

    @property
    def shown_text(self) -> str:
        """Everything the screen shows (title and variables), as drawn."""
        return self.title_text.plain + "\n" + self.body_text.plain

    @property
    def title_text(self) -> Text:
        return Text(strip_sgr(f"{self.host} · groups: {', '.join(self.groups) or '-'}"), style="bold")

    @property
    def body_text(self) -> Text:
        body = (
            yaml.safe_dump(self.variables, default_flow_style=False, sort_keys=True, allow_unicode=True)
            if self.variables
            else "(no variables)\n"
        )
        return Text(strip_sgr(body))

    def compose(self) -> ComposeResult:
        with Vertical(id="host-vars-box"):
            yield Static(self.title_text, id="host-vars-title")
            with VerticalScroll(id="host-vars-body"):
                yield Static(self.body_text)
            yield Static(Text("↑↓ PgUp/PgDn scroll · Esc closes"), id="host-vars-hint")

    def on_mount(self) -> None:
        self.query_one("#host-vars-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
