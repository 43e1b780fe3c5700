"""The console's settings: its theme (a theme file, the config's, or the operator's pick from the
palette, which is remembered), its keys and bell from the config file, applied at start and again
when the server took a changed config; and the config's execution nodes for the launch dialogs.
Mixed into `PlaydeckApp`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.command import CommandPalette
from textual.theme import Theme

from tui.console.commands import ThemeCommands
from tui.console.config import load_config, remember, remembered
from tui.console.themes import DEFAULT_THEME, FALLBACK_THEME, STATUS_KEYS, load_themes

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp


class Settings:
    """For `PlaydeckApp`: theme, keys and bell, at start and on a config reload."""

    def get_theme_variable_defaults(self: PlaydeckApp) -> dict[str, str]:
        """Our CSS uses `$status-*`; Textual's own themes lack them and would otherwise crash the app."""
        return {key: FALLBACK_THEME.variables[key] for key in STATUS_KEYS}

    def _apply_settings(self: PlaydeckApp) -> None:
        """At start: the themes (the one asked for, else remembered, else the config's), the
        config's keys, and every problem with either said once."""
        themes, problems = load_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self._requested_theme or remembered("theme") or self.config.theme or DEFAULT_THEME
        names = {t.name for t in themes} | set(self.available_themes)
        if wanted not in names:
            problems.append(f"theme {wanted!r} not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self._theme_set_by_us = wanted
        self.theme = wanted
        if self._requested_theme:
            remember("theme", wanted)
        self.theme_changed_signal.subscribe(self, self._theme_chosen)
        if self.config.keys:
            self.set_keymap(self.config.keys)
        for problem in [*self.config.problems, *problems]:
            self.say(problem, severity="warning", timeout=8)

    def _theme_chosen(self: PlaydeckApp, theme: Theme) -> None:
        """An operator's choice (the palette) is remembered; a theme the config file set is not
        (so the next change of the file still applies)."""
        if theme.name != self._theme_set_by_us:
            remember("theme", theme.name)

    def reload_config(self: PlaydeckApp) -> None:
        """The server took a changed config file: the console's own keys apply too, without a
        restart (theme, unless one was chosen by hand; bell; keys). A file that does not check
        keeps what is in force and says why, as at start."""
        config = load_config()
        if config.problems:
            for problem in config.problems:
                self.say(problem, severity="warning", timeout=8)
            return
        self.config = config
        if config.keys:
            self.set_keymap(config.keys)
            self._bindings_key = None
        wanted = config.theme
        if wanted and not (self._requested_theme or remembered("theme")) and wanted != self.theme:
            if wanted in self.available_themes:
                self._theme_set_by_us = wanted
                self.theme = wanted
            else:
                self.say(f"theme {wanted!r} not found; keeping {self.theme}", severity="warning", timeout=8)

    def search_themes(self: PlaydeckApp) -> None:
        """The palette's Theme command: Textual's picker parses theme names (from files) as markup."""
        self.push_screen(CommandPalette(providers=[ThemeCommands], placeholder="Search for themes…"))
