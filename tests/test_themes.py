"""Theme files: they load, bad ones are reported not fatal, and they stay readable on a bastion."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich._palettes import EIGHT_BIT_PALETTE
from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.color_triplet import ColorTriplet
from rich.style import Style
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widgets import Static

from tests.conftest import INVENTORY, until
from tests.console_support import live_app
from tui.console import themes
from tui.console.themes import (
    DEFAULT_THEME,
    FALLBACK_THEME,
    STATUS_KEYS,
    ThemeError,
    load_theme_file,
    load_themes,
    theme_dirs,
)
from tui.console.widgets.job_grid import JobGrid
from tui.console.widgets.log_view import LogView
from tui.core.planning.spec import JobSpec, Status

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "themes"
NAMES = {"playdeck-dark", "playdeck-light", "playdeck-high-contrast"}
GOOD = 'name: good\nprimary: "#5fafff"\nvariables:\n  status-failed: "#ff5f5f"\n'


@pytest.fixture(autouse=True)
def no_user_themes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ~/.config/playdeck/themes must not leak into the tests."""
    monkeypatch.delenv("PLAYDECK_THEMES_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def shipped() -> dict[str, themes.Theme]:
    loaded, problems = load_themes([SHIPPED])
    assert problems == []
    return {t.name: t for t in loaded}


# --- loading ----------------------------------------------------------------


def test_shipped_themes_load_cleanly_with_distinct_names_and_all_status_colours():
    files = sorted(SHIPPED.glob("*.yml"))
    assert len(files) == 3
    names = [load_theme_file(f).name for f in files]
    assert sorted(names) == sorted(NAMES)  # distinct, and the file name matches the theme name
    assert [f.stem for f in files] == sorted(names)
    for theme in shipped().values():
        assert set(STATUS_KEYS) <= set(theme.variables), theme.name
    assert shipped()["playdeck-light"].dark is False
    assert shipped()["playdeck-high-contrast"].dark is True


def test_builtin_fallback_matches_the_shipped_default():
    assert DEFAULT_THEME == "playdeck-dark"
    assert load_theme_file(SHIPPED / "playdeck-dark.yml") == FALLBACK_THEME


def test_default_dirs_find_the_repository_themes(tmp_path, monkeypatch):
    loaded, problems = load_themes()
    assert problems == [] and NAMES <= {t.name for t in loaded}
    monkeypatch.setenv("PLAYDECK_THEMES_DIR", str(tmp_path / "mine"))
    assert theme_dirs() == [SHIPPED, tmp_path / "xdg" / "playdeck" / "themes", tmp_path / "mine"]
    monkeypatch.delenv("PLAYDECK_THEMES_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")  # the XDG spec: ignore relative paths
    assert theme_dirs() == [SHIPPED, Path.home() / ".config" / "playdeck" / "themes"]


@pytest.mark.parametrize(
    "filename, text, expected",
    [
        ("broken.yml", 'name: broken\nprimary: "#fff\n', "cannot read"),
        ("unknown.yml", 'name: unknown\nprimary: "#ffffff"\nforegroud: "#000000"\n', "'foregroud'"),
        ("badcolour.yaml", 'name: badcolour\nprimary: "#ff00zz"\n', "primary: '#ff00zz'"),
        (
            "badstatus.yml",
            'name: bs\nprimary: "#fff"\nvariables:\n  status-failed: reddish\n',
            "variables.status-failed: 'reddish'",
        ),
        (
            "badalpha.yml",
            'name: ba\nprimary: "#fff"\nvariables:\n  input-selection-background: "#fff 4x%"\n',
            "variables.input-selection-background",
        ),
        (
            "badstyle.yml",
            'name: st\nprimary: "#fff"\nvariables:\n  block-cursor-text-style: blod\n',
            "variables.block-cursor-text-style: 'blod'",
        ),
        ("unquoted.yml", "name: unquoted\nprimary: #5fafff\n", "primary: no value (quote colours"),
        ("noprimary.yml", "name: noprimary\n", "primary: missing"),
        ("noname.yml", 'primary: "#fff"\n', "name: missing"),
        ("dark.yml", 'name: d\nprimary: "#fff"\ndark: "yes"\n', "dark: expected true or false"),
        ("list.yml", "- a\n- b\n", "expected a mapping"),
    ],
)
def test_a_bad_file_is_reported_by_file_and_key_and_the_rest_still_load(tmp_path, filename, text, expected):
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / filename).write_text(text)
    (tmp_path / "notes.txt").write_text("not a theme")  # ignored: wrong extension
    loaded, problems = load_themes([SHIPPED, tmp_path])
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / filename}: ") and expected in problems[0], problems[0]
    assert {t.name for t in loaded} == NAMES | {"good"}
    with pytest.raises(ThemeError, match=str(tmp_path / filename)):
        load_theme_file(tmp_path / filename)


def test_textual_style_variables_are_accepted(tmp_path):
    (tmp_path / "t.yml").write_text(
        'name: t\nprimary: "#fff"\nvariables:\n  text: "auto 87%"\n  link-background: initial\n'
        '  input-selection-background: "#81a1c1 35%"\n  button-focus-text-style: "b reverse"\n'
        "  my-custom: ansi_bright_red\n"
    )
    assert load_theme_file(tmp_path / "t.yml").variables["text"] == "auto 87%"


def test_fallback_when_no_theme_files_or_the_default_is_broken(tmp_path):
    for dirs in ([], [tmp_path / "missing"], [tmp_path]):
        loaded, problems = load_themes(dirs)
        assert [t.name for t in loaded] == [DEFAULT_THEME] and problems == []
        assert loaded[0] is FALLBACK_THEME
    (tmp_path / "playdeck-dark.yml").write_text("name: playdeck-dark\nprimary: [\n")
    loaded, problems = load_themes([tmp_path])
    assert loaded == [FALLBACK_THEME] and len(problems) == 1


def test_later_dirs_override_earlier_by_name(tmp_path):
    (tmp_path / "mine.yml").write_text('name: playdeck-light\nprimary: "#ff0000"\n')
    loaded, problems = load_themes([SHIPPED, tmp_path])
    assert problems == []
    assert {t.name: t for t in loaded}["playdeck-light"].primary == "#ff0000"
    (tmp_path / "mine2.yml").write_text('name: playdeck-light\nprimary: "#00ff00"\n')
    loaded, problems = load_themes([SHIPPED, tmp_path])  # same dir, same name: a copy-paste slip
    assert {t.name: t for t in loaded}["playdeck-light"].primary == "#00ff00"
    assert len(problems) == 1 and "mine2.yml" in problems[0] and "mine.yml" in problems[0]


# --- in a Textual app ---------------------------------------------------------


class StatusApp(App):
    CSS = "#failed { color: $status-failed; } #running { background: $status-running; }"

    def compose(self) -> ComposeResult:
        yield Static("failed", id="failed")
        yield Static("running", id="running")


class StatusAppWithDefaults(StatusApp):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {key: FALLBACK_THEME.variables[key] for key in STATUS_KEYS}


def test_custom_status_variables_are_usable_in_css():
    async def scenario() -> None:
        app = StatusApp()
        loaded = shipped()
        for theme in loaded.values():
            app.register_theme(theme)
        app.theme = DEFAULT_THEME
        async with app.run_test(size=(40, 5)) as pilot:
            for name in ("playdeck-dark", "playdeck-light", "playdeck-high-contrast"):
                app.theme = name
                await pilot.pause()
                variables = loaded[name].variables
                assert app.query_one("#failed").styles.color == Color.parse(variables["status-failed"])
                assert app.query_one("#running").styles.background == Color.parse(variables["status-running"])

    asyncio.run(scenario())


def test_builtin_textual_themes_need_status_defaults_from_the_app():
    """Textual's own themes (offered by the command palette) have no status-* variables;
    CSS that names one fails unless App.get_theme_variable_defaults provides it."""

    async def scenario() -> None:
        app = StatusAppWithDefaults()
        async with app.run_test(size=(40, 5)) as pilot:
            app.theme = "nord"
            await pilot.pause()
            expected = Color.parse(FALLBACK_THEME.variables["status-failed"])
            assert app.query_one("#failed").styles.color == expected

    asyncio.run(scenario())


# --- readable on 256 colours, 16 colours and for everyone ---------------------


def luminance(colour: str | Color) -> float:
    """WCAG 2 relative luminance."""
    c = Color.parse(colour) if isinstance(colour, str) else colour

    def linear(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b)


def contrast(a: str | Color, b: str | Color) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def as_256(colour: str) -> Color:
    """What the terminal shows when Rich downgrades to 256 colours (TERM=*-256color)."""
    triplet = RichColor.parse(colour).downgrade(ColorSystem.EIGHT_BIT).get_truecolor()
    return Color(*triplet)


def test_contrast_of_text_on_background():
    for theme in shipped().values():
        need = 7 if "high-contrast" in theme.name else 4.5
        assert contrast(theme.foreground, theme.background) >= need, theme.name
        assert contrast(as_256(theme.foreground), as_256(theme.background)) >= need, theme.name
        v = theme.variables
        assert contrast(v["block-cursor-foreground"], v["block-cursor-background"]) >= 4.5, theme.name
        assert contrast(v["footer-key-foreground"], theme.panel) >= 4.5, theme.name


def test_status_colours_are_readable_and_distinct_in_256_colours():
    for theme in shipped().values():
        need = 7 if "high-contrast" in theme.name else 4.5
        for key in STATUS_KEYS:
            colour = theme.variables[key]
            for ground in (theme.background, theme.surface):
                assert contrast(colour, ground) >= need, (theme.name, key, ground)
                assert contrast(as_256(colour), as_256(ground)) >= need, (theme.name, key, ground)
        in_256 = {RichColor.parse(theme.variables[k]).downgrade(ColorSystem.EIGHT_BIT).number for k in STATUS_KEYS}
        assert len(in_256) == len(STATUS_KEYS), theme.name


def test_main_statuses_stay_apart_in_16_colours():
    """TERM=screen or tmux without -256color makes Rich use the 16 ANSI colours."""
    for theme in shipped().values():
        keys = ("status-running", "status-waiting", "status-successful", "status-failed")
        ansi = {RichColor.parse(theme.variables[k]).downgrade(ColorSystem.STANDARD).number for k in keys}
        assert len(ansi) == len(keys), theme.name


def test_shipped_colours_are_xterm_256_entries():
    palette = {ColorTriplet(*EIGHT_BIT_PALETTE[n]).hex for n in range(16, 256)}
    for theme in shipped().values():
        values = [getattr(theme, k) for k in themes.COLOUR_KEYS if getattr(theme, k)]
        values += [v for k, v in theme.variables.items() if not k.endswith("-style")]
        for value in values:
            assert value.lower() in palette, (theme.name, value)


# --- what the grid really draws: Textual's derived variables, at 256 colours ---

THEME_NAMES = ("playdeck-dark", "playdeck-light", "playdeck-high-contrast")
CURSOR_PAIRS = {  # (foreground, background) variables of the grid's selected row, as JobGrid's CSS uses them
    "focused": ("block-cursor-foreground", "block-cursor-background"),
    "blurred": ("block-cursor-blurred-foreground", "block-cursor-blurred-background"),
}
NO_COLOUR_ATTRIBUTES = {"bold", "reverse", "b", "underline", "u"}


def textual_variables() -> dict[str, dict[str, str]]:
    """Each shipped theme's CSS variables as Textual derives them in a running app."""

    async def scenario() -> dict[str, dict[str, str]]:
        app = StatusAppWithDefaults()
        for theme in shipped().values():
            app.register_theme(theme)
        app.theme = DEFAULT_THEME
        found = {}
        async with app.run_test(size=(40, 5)) as pilot:
            for name in THEME_NAMES:
                app.theme = name
                await pilot.pause()
                found[name] = dict(app.get_css_variables())
        return found

    return asyncio.run(scenario())


def solid(colour: str, under: Color) -> Color:
    """A variable's colour as the terminal shows it: any alpha blended over what is beneath."""
    return under + Color.parse(colour)


def at_256(colour: Color) -> Color:
    return as_256(colour.hex)


def test_selected_row_normal_rows_and_status_words_are_readable_at_256_colours():
    """JobGrid's rows are drawn on $surface; the selected row in the block-cursor colours, its
    status word in the cursor's foreground. Every pair, after Rich reduces it to 256 colours."""
    problems = []
    for name, v in textual_variables().items():
        grid = Color.parse(v["surface"])
        for state, (fg_key, bg_key) in CURSOR_PAIRS.items():
            ground = solid(v[bg_key], grid)
            ratio = contrast(at_256(solid(v[fg_key], ground)), at_256(ground))
            if ratio < 4.5:
                problems.append(f"{name}: selected row ({state}) {v[fg_key]} on {v[bg_key]}: {ratio:.2f}")
        ratio = contrast(at_256(solid(v["foreground"], grid)), at_256(grid))
        if ratio < 4.5:
            problems.append(f"{name}: row text {v['foreground']} on {v['surface']}: {ratio:.2f}")
        for key in STATUS_KEYS:
            ratio = contrast(at_256(solid(v[key], grid)), at_256(grid))
            if ratio < 3:  # bold status words: 3:1 is the floor for large/bold text
                problems.append(f"{name}: {key} {v[key]} on {v['surface']}: {ratio:.2f}")
    assert not problems, "\n".join(problems)


def test_selected_row_keeps_an_attribute_without_colour():
    """Under NO_COLOR Textual turns every colour to grey: the selected row must also be bold or
    reversed, focused and blurred, or it is lost among the others."""
    for name, v in textual_variables().items():
        for state in ("", "blurred-"):
            style = set(v.get(f"block-cursor-{state}text-style", "none").split())
            assert style & NO_COLOUR_ATTRIBUTES, (name, state or "focused", style)


def row_segments(app, widget, row: int) -> list[tuple[str, Style]]:
    """What the terminal gets for line `row` of `widget` (the composed screen, after the app's line
    filters), blank cells dropped; Rich reduces the colours to the terminal's palette after this."""
    strips = app.screen._compositor.render_strips()
    region = widget.region
    segments = list(strips[region.y + row].crop(region.x, region.right))
    return [(s.text, s.style or Style()) for s in segments if s.text.strip()]


def test_the_grid_as_drawn_is_readable_at_256_colours_in_every_theme():
    """Two real jobs (one successful, one failed); for each theme, with the grid focused and not:
    every character of the selected row >= 4.5:1, the other row's text >= 4.5:1 and its status
    word >= 3:1, measured on the colours the console sends, reduced to 256 colours."""
    specs = [
        JobSpec(name="pinged", inventory=INVENTORY, module="ansible.builtin.ping", limit="web01"),
        JobSpec(
            name="broken", inventory=INVENTORY, module="ansible.builtin.command", module_args="false", limit="web01"
        ),
    ]

    async def scenario() -> list[str]:
        app = live_app(specs)  # two real jobs, run by a real server
        problems: list[str] = []
        async with app.run_test(size=(100, 24)) as pilot:
            await until(lambda: len(app.jobs) == 2 and all(j.status.finished for j in app.jobs), 90, "both jobs to end")
            assert [j.status for j in app.jobs] == [Status.SUCCESSFUL, Status.FAILED]
            grid = app.query_one(JobGrid)
            app._tick()
            for name in THEME_NAMES:
                app.theme = name
                for state in ("focused", "blurred"):
                    (grid if state == "focused" else app.query_one(LogView)).focus()
                    await pilot.pause(0.2)
                    assert grid.has_focus is (state == "focused")
                    for index, job in enumerate(app.jobs):
                        selected = index == grid.cursor
                        for text, style in row_segments(app, grid, 1 + index):
                            fg, bg = style.color, style.bgcolor
                            assert fg is not None and bg is not None, (name, text, style)
                            ratio = contrast(
                                Color(*fg.downgrade(ColorSystem.EIGHT_BIT).get_truecolor()),
                                Color(*bg.downgrade(ColorSystem.EIGHT_BIT).get_truecolor()),
                            )
                            status_word = text.strip() in {s.value for s in Status}
                            need = 4.5 if selected or not status_word else 3.0
                            if ratio < need:
                                where = "selected row" if selected else "row"
                                problems.append(
                                    f"{name} ({state}), {where} of {job.name}: {text.strip()!r} "
                                    f"{fg.triplet.hex} on {bg.triplet.hex}: {ratio:.2f} < {need}"
                                )
            await pilot.press("q")
        return problems

    problems = asyncio.run(scenario())
    assert not problems, "\n".join(problems)


def test_pairs_stay_two_colours_at_16_colours():
    """TERM=screen: Rich maps every colour to one of 16. A pair that lands on the same one is
    invisible text; the selected row, row text and status words must each stay two colours."""

    def ansi(colour: str) -> int:
        return RichColor.parse(colour).downgrade(ColorSystem.STANDARD).number

    for theme in shipped().values():
        v = theme.variables
        pairs = {state: (v[fg], v[bg]) for state, (fg, bg) in CURSOR_PAIRS.items()}
        pairs["row text"] = (theme.foreground, theme.surface)
        pairs.update({key: (v[key], theme.surface) for key in STATUS_KEYS})
        for what, (fg, bg) in pairs.items():
            assert ansi(fg) != ansi(bg), (theme.name, what, fg, bg)
