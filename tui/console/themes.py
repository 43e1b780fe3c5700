"""Colour themes: YAML files turned into Textual `Theme` objects.

Themes are data so operators can add or tweak one on a bastion without touching
code. A bad theme file must never stop the console: it is skipped and described,
and the default theme has a built-in copy so there is always something to start with.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable

import yaml
from textual.color import Color, ColorParseError
from textual.css.constants import VALID_STYLE_FLAGS
from textual.theme import Theme

import tui

DEFAULT_THEME = "playdeck-dark"

STATUS_KEYS = tuple(
    f"status-{s}" for s in ("queued", "running", "waiting", "successful", "failed", "timeout", "canceled", "error")
)
"""Variables the console's CSS uses as `$status-…`; Textual refuses CSS naming a missing one."""

COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_KNOWN_KEYS = {f.name for f in dataclasses.fields(Theme)}  # follows Textual if it adds fields

FALLBACK_THEME = Theme(  # keep in step with themes/playdeck-dark.yml (a test compares them)
    name=DEFAULT_THEME,
    dark=True,
    primary="#5fafff",
    secondary="#5f87af",
    accent="#ffaf5f",
    warning="#ffd75f",
    error="#ff5f5f",
    success="#5fd75f",
    foreground="#d0d0d0",
    background="#1c1c1c",
    surface="#262626",
    panel="#303030",
    variables={
        "block-cursor-foreground": "#1c1c1c",
        "block-cursor-background": "#5fafff",
        "block-cursor-text-style": "bold",
        "block-cursor-blurred-foreground": "#d0d0d0",
        "block-cursor-blurred-background": "#3a3a3a",
        "block-cursor-blurred-text-style": "bold",
        "footer-key-foreground": "#ffaf5f",
        "input-selection-foreground": "#ffffff",
        "input-selection-background": "#005f87",
        "border-blurred": "#6c6c6c",
        "status-queued": "#5f87ff",
        "status-running": "#5fd7ff",
        "status-waiting": "#ffd75f",
        "status-successful": "#5fd75f",
        "status-failed": "#ff5f5f",
        "status-timeout": "#d78700",
        "status-canceled": "#a8a8a8",
        "status-error": "#ff87ff",
    },
)
"""Used when no readable playdeck-dark.yml is found, e.g. a wheel install has no `themes/`."""


class ThemeError(ValueError):
    """A theme file that cannot be used; the message starts with the file's path."""


def theme_dirs() -> list[Path]:
    """Theme directories, lowest precedence first (see `load_themes`).

    The shipped themes come first: the repository's `themes/` for source and
    editable installs, else the copy bundled in the package. A user's own themes
    in the XDG config dir override them, and `$PLAYDECK_THEMES_DIR` overrides all.
    """
    package = Path(tui.__file__).resolve().parent
    shipped = package.parent / "themes"
    dirs: list[Path] = [shipped if shipped.is_dir() else package / "bundled" / "themes"]
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if not xdg or not os.path.isabs(xdg):  # the XDG spec says to ignore relative paths
        xdg = os.path.join(Path.home(), ".config")
    dirs.append(Path(xdg) / "playdeck" / "themes")
    override = os.environ.get("PLAYDECK_THEMES_DIR")
    if override:
        dirs.append(Path(override).expanduser())
    return dirs


def _check_colour(path: Path, key: str, value: Any) -> None:
    if value is None:  # `primary: #fff` unquoted: YAML reads the colour as a comment
        raise ThemeError(f"{path}: {key}: no value (quote colours: an unquoted '#' starts a YAML comment)")
    if not isinstance(value, str):
        raise ThemeError(f"{path}: {key}: expected a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{path}: {key}: {value!r} is not a colour") from None


def _check_variable(path: Path, key: str, value: Any) -> None:
    """Catch typos now rather than as a stylesheet error when the theme is applied."""
    label = f"variables.{key}"
    if key in STATUS_KEYS:  # plain colours: they are shown as text and checked for contrast
        _check_colour(path, label, value)
        return
    if not isinstance(value, str) or not value.strip():
        raise ThemeError(f"{path}: {label}: expected a string, got {value!r}")
    words = value.split()
    if key.endswith("-style"):  # text styles, e.g. "bold", "b reverse", "none"
        bad = [w for w in words if w not in VALID_STYLE_FLAGS]
        if bad:
            raise ThemeError(f"{path}: {label}: {bad[0]!r} is not a text style")
        return
    # Textual also accepts "<colour> <alpha>%", "auto [<alpha>%]" and "initial" here.
    if len(words) == 2 and words[1].endswith("%") and words[1][:-1].replace(".", "", 1).isdigit():
        words = words[:1]
    if len(words) != 1:
        raise ThemeError(f"{path}: {label}: {value!r} is not a colour")
    if words[0] not in ("auto", "initial"):
        _check_colour(path, label, words[0])


def load_theme_file(path: Path) -> Theme:
    """Read and validate one theme file, naming the offending key in any error."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:  # YAML errors carry line and column
        raise ThemeError(f"{path}: cannot read: {error}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: expected a mapping of theme keys, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _KNOWN_KEYS)
    if unknown:
        raise ThemeError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{path}: name: missing or not a string")
    if "primary" not in data:
        raise ThemeError(f"{path}: primary: missing (Textual derives the other colours from it)")
    for key in COLOUR_KEYS:
        if key in data:
            _check_colour(path, key, data[key])
    for key in ("dark", "ansi"):
        if not isinstance(data.get(key, False), bool):
            raise ThemeError(f"{path}: {key}: expected true or false, got {data[key]!r}")
    for key in ("luminosity_spread", "text_alpha"):
        if type(data.get(key, 0.0)) not in (int, float):  # `type`, so a YAML `yes` (a bool) is refused
            raise ThemeError(f"{path}: {key}: expected a number, got {data[key]!r}")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: variables: expected a mapping, got {type(variables).__name__}")
    for key, value in variables.items():
        _check_variable(path, str(key), value)
    return Theme(**{**data, "name": name.strip(), "variables": {str(k): v for k, v in variables.items()}})


def load_themes(dirs: Iterable[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Load every `*.yml`/`*.yaml` in `dirs` (default `theme_dirs()`); return (themes, problems).

    Never raises, so a typo in one file cannot keep the console from starting.
    A theme in a later directory replaces one of the same name from an earlier one.
    Missing directories are normal (most users have no config dir) and not reported.
    """
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    origin: dict[str, Path] = {}
    for directory in theme_dirs() if dirs is None else dirs:
        try:
            files = sorted(p for p in Path(directory).iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
        except OSError:
            continue
        for file in files:
            try:
                theme = load_theme_file(file)
            except ThemeError as error:
                problems.append(str(error))
                continue
            except Exception as error:  # a loader bug must not cost the user their console
                problems.append(f"{file}: {type(error).__name__}: {error}")
                continue
            if theme.name in origin and origin[theme.name].parent == file.parent:
                problems.append(
                    f"{file}: name {theme.name!r} is also used by {origin[theme.name].name}; using {file.name}"
                )  # a copied file whose name was not changed
            themes[theme.name], origin[theme.name] = theme, file
    if DEFAULT_THEME not in themes:
        themes[DEFAULT_THEME] = FALLBACK_THEME
    return list(themes.values()), problems
