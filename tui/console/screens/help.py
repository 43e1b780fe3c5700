"""Every key, read from the same command list that makes the bindings."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.console.commands import COMMANDS, key_label

EXTRA = (
    ("↑ ↓ j k", "move in the grid, the log or the tree"),
    ("Tab", "next pane"),
    ("s", "sort the job grid (file order, name, status, most failed, longest running)"),
    ("Space / x", "inventory: select host or group for the next launch / show a host's variables"),
    ("G / g", "log: follow the end again / go to the top"),
    ("Ctrl+P", "command palette (every command, and themes)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, keymap: dict[str, str]):
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("key", no_wrap=True)
        table.add_column("does")
        table.add_column("id (config keys:)", style="dim", no_wrap=True)
        # Text cells: a str cell is parsed as markup, and a key label like `[` or a help text
        # with brackets would be eaten or end the app (MarkupError)
        for command in COMMANDS:
            table.add_row(
                Text(key_label(self.keymap.get(command.id, command.key))), Text(command.help), Text(command.id)
            )
        for keys, does in EXTRA:
            table.add_row(Text(keys), Text(does), Text(""))
        with VerticalScroll(classes="dialog wide"):
            yield Static(Text("playdeck keys", style="bold"))
            yield Static(table)
            yield Static(Text("Esc closes. Keys can be changed in the config file (see README)."), classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
