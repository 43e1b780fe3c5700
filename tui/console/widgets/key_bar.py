"""The footer: the keys that apply now, most needed first, as many as fit whole; `? Help` always.

One line of text rather than Textual's Footer: that one mounts a widget per key and
rebuilds them all whenever the bindings change, which is every time the selected
job's status differs from the last one's (measured: about 40 ms of CPU per j/k key).

At 80 columns not every key fits with a label that says what it does, so keys are
shown in the priority order of `COMMANDS` (the focused widget's own keys first),
applicable keys before the others; a key is shown whole or not at all. Keys that do
not apply right now come last, after a `not now:` marker, in the dim attribute: the
words tell them apart where neither colour nor dim shows (16 colours, NO_COLOR).
"""

from __future__ import annotations

from typing import Callable

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

from tui.console.commands import BY_ACTION, COMMANDS

HELP_ACTION = "help"
RANK = {command.action: index for index, command in enumerate(COMMANDS)}
NOT_NOW = "│ not now:"


def _action(binding: Binding) -> str:
    return binding.action.removeprefix("app.")


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-bar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        & > .key-bar--description { color: $footer-description-foreground; background: $footer-description-background; }
    }
    """
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description"}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.refresh()

    def keys(self) -> list[tuple[Binding, bool]]:
        """Every shown key of the focused widgets and the app, once each: (binding, applies now),
        in the order the footer wants them."""
        applies: Callable[[str], bool] = getattr(self.app, "applies", lambda _action: True)
        found: list[tuple[int, int, Binding, bool]] = []
        seen: set[str] = set()
        for order, (_node, binding, enabled, _tooltip) in enumerate(self.screen.active_bindings.values()):
            action = _action(binding)
            if not binding.show or action in seen:
                continue
            seen.add(action)
            if action in BY_ACTION:
                found.append((RANK[action], order, binding, enabled and applies(action)))
            else:  # a key of the focused widget (log search, tree selection): what you are doing now
                found.append((-1, order, binding, enabled))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(binding, enabled) for _rank, _order, binding, enabled in found]

    def _piece(self, binding: Binding, key_style: Style, description_style: Style) -> Text:
        label: Callable[[str, str], str] = getattr(self.app, "footer_label", lambda _action, default: default)
        part = Text(no_wrap=True, end="")
        part.append(self.app.get_key_display(binding), key_style)
        part.append(" " + label(_action(binding), binding.description), description_style)
        return part

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key", partial=True)
        description_style = self.get_component_rich_style("key-bar--description", partial=True)
        width = self.size.width or 80
        keys = self.keys()
        help_part = next(
            (self._piece(b, key_style, description_style) for b, _ in keys if _action(b) == HELP_ACTION), None
        )
        room = width - (help_part.cell_len + 1 if help_part is not None else 0)
        line = Text(no_wrap=True, overflow="crop", end="")

        def add(part: Text) -> bool:
            nonlocal room
            need = part.cell_len + (1 if line else 0)
            if need > room:
                return False
            if line:
                line.append(" ")
            line.append_text(part)
            room -= need
            return True

        for binding, enabled in keys:
            if enabled and _action(binding) != HELP_ACTION:
                add(self._piece(binding, key_style, description_style))
        dimmed = [
            self._piece(b, Style(dim=True), Style(dim=True))
            for b, enabled in keys
            if not enabled and _action(b) != HELP_ACTION
        ]
        if dimmed and room >= len(NOT_NOW) + 2 + dimmed[0].cell_len:
            add(Text(NOT_NOW, style=Style(dim=True), end=""))
            for part in dimmed:
                add(part)
        if help_part is not None:
            line.append(" " * max(1, room + 1 - (0 if line else 1)))
            line.append_text(help_part)
        return line
