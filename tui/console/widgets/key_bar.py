"""The footer: every shown key of the focused widgets and the app, dimmed when it does not apply.

One line of text rather than Textual's Footer: that one mounts a widget per key and
rebuilds them all whenever the bindings change, which is every time the selected
job's status differs from the last one's (measured: about 40 ms of CPU per j/k key).
"""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget


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

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key", partial=True)
        description_style = self.get_component_rich_style("key-bar--description", partial=True)
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        seen: set[str] = set()
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            part = Text()
            part.append(self.app.get_key_display(binding), key_style)
            part.append(f" {binding.description}", description_style)
            if not enabled:
                part.stylize("dim")
            if line:
                line.append(" ")
            line.append_text(part)
        return line
