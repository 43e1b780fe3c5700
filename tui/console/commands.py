"""Every operator command, said once: it feeds the bindings, the footer, the help and the palette.

The palette gets its entries from `PaletteCommands`, which builds every title and help
line as a `Content` object: nothing here (nor a remapped key such as `/`, which Textual's
own provider turned into a `[/]` closing tag) is ever parsed as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.keys import key_to_character

from tui.core.planning.spec import Status

if TYPE_CHECKING:
    from textual.fuzzy import Matcher


@dataclass(frozen=True)
class Command:
    id: str  # the keymap name, e.g. `cancel-job: x` in the config file
    key: str  # default key(s), comma-separated, Textual key names
    action: str  # App action, without the `action_` prefix
    label: str  # short, for the footer: says what the key does
    help: str  # one line, for the help screen and the palette
    applies_to: frozenset[Status] | None = None  # job statuses it applies to; None = no status rule
    footer: bool = True
    needs_job: bool = False  # does something to the selected job (so none selected: does not apply)


RUNNING = frozenset({Status.RUNNING})
UNFINISHED = frozenset({Status.QUEUED, Status.BLOCKED, Status.RUNNING, Status.WAITING})
FINISHED_OR_WAITING = frozenset(
    {Status.SUCCESSFUL, Status.FAILED, Status.TIMEOUT, Status.CANCELED, Status.ERROR, Status.SKIPPED, Status.WAITING}
)
RETRY_FAILED = frozenset({Status.FAILED, Status.TIMEOUT, Status.CANCELED, Status.ERROR})
SCHEDULE_PAUSABLE = UNFINISHED | {Status.SCHEDULED}  # a scheduled job between runs, or during one

COMMANDS: tuple[Command, ...] = (  # footer priority: what an incident needs first
    Command(
        "cancel-job",
        "c",
        "cancel_job",
        "Cancel",
        "Cancel the selected job: SIGTERM, then SIGKILL after a grace",
        UNFINISHED | {Status.SCHEDULED},  # a waiting scheduled job: its schedule ends
        needs_job=True,
    ),
    Command(
        "answer-prompt",
        "p",
        "answer_prompt",
        "Answer",
        "Answer the selected job's prompt (vars_prompt or pause); Esc leaves it waiting",
        needs_job=True,
    ),
    Command(
        "retry-failed",
        "f",
        "retry_failed",
        "Retry failed",
        "Retry only the hosts that failed or were unreachable",
        RETRY_FAILED,
        needs_job=True,
    ),
    Command(
        "retry-job",
        "r",
        "retry_job",
        "Retry",
        "Run the selected job again (or now, if it is waiting to retry)",
        FINISHED_OR_WAITING,
        needs_job=True,
    ),
    Command(
        "set-timeout",
        "t",
        "set_timeout",
        "Timeout",
        "Give the selected job a new timeout, counted from now (0 = none)",
        UNFINISHED,
        needs_job=True,
    ),
    Command(
        "results",
        "v",
        "results",
        "Results",
        "Per-host and per-task results of the selected job; failures first",
        frozenset(Status) - {Status.QUEUED},
        needs_job=True,
    ),
    Command(
        "open-log",
        "o",
        "open_log",
        "Full log",
        "Open the selected job's whole log on disk in $PAGER (default less -R); quit it to come back",
        needs_job=True,
    ),
    Command(
        "pause-schedule",
        "z",
        "pause_schedule",
        "Pause",
        "Pause the selected job's schedule (it fires nothing), or resume a paused one from its next time",
        SCHEDULE_PAUSABLE,
        needs_job=True,
    ),
    Command(
        "run-now",
        "R",
        "run_now",
        "Run now",
        "Run the selected scheduled job once now (its cron times stay as they are)",
        frozenset({Status.SCHEDULED}),
        needs_job=True,
    ),
    Command("wrap-log", "w", "wrap_log", "Wrap", "Wrap long log lines, or not (then Left/Right scroll)"),
    Command(
        "incident-report",
        "I",
        "incident_report",
        "Report",
        "Write an incident report (Markdown: timeline, failed hosts and reasons, who did what) of the last 24 hours",
        footer=False,
    ),
    Command(
        "toggle-inventory",
        "h",
        "toggle_inventory",
        "Hide hosts",
        "Hide the inventory pane so the job grid and log get the full width; again shows it",
    ),
    Command("new-job", "n", "new_job", "New job", "Launch a playbook on the selected hosts"),
    Command("adhoc", "a", "adhoc", "Ad-hoc", "Run an ad-hoc module (e.g. restart a service) on the selected hosts"),
    Command("filter", "slash", "filter", "Filter", "Filter the job grid as you type"),
    Command(
        "inventory",
        "i",
        "focus_inventory",
        "Hosts",
        "Move focus to the inventory, showing it if hidden (Space selects hosts for the next launch)",
    ),
    Command(
        "focus-log",
        "enter",
        "focus_log",
        "Log",
        "Move focus to the selected job's log (or answer its prompt if it waits for input)",
    ),
    Command(
        "quit",
        "q",
        "quit_console",
        "Quit",
        "Quit; with jobs unfinished it asks: y stops them cleanly, d detaches (they keep running), Esc stays",
    ),
    Command(
        "detach",
        "d",
        "detach",
        "Detach",
        "Leave the console now; the jobs keep running under the server (`playdeck` attaches again)",
    ),
    Command("help", "question_mark", "help", "Help", "Show every key (the footer shows what fits)"),
)

BY_ACTION = {command.action: command for command in COMMANDS}
BY_ID = {command.id: command for command in COMMANDS}


def app_bindings() -> list[Binding]:
    """App-level bindings; `focus-log` lives on the job grid, where Enter would otherwise select a row."""
    return [
        Binding(c.key, c.action, c.label, show=c.footer, id=c.id, tooltip=c.help)
        for c in COMMANDS
        if c.id != "focus-log"
    ]


def key_label(key: str) -> str:
    """`slash,left_square_bracket` -> `/, [`: what is printed on the key."""
    names = {"slash": "/", "question_mark": "?", "enter": "Enter", "escape": "Esc", "space": "Space"}
    return ", ".join(names.get(k.strip()) or key_to_character(k.strip()) or k.strip() for k in key.split(","))


PaletteEntry = tuple[str, str, Callable[[], object]]  # title, help, callback: all plain text


def highlight(matcher: Matcher, title: str) -> Content:
    """The title with the matched characters styled, built as Content (never parsed as markup)."""
    content = Content(title)
    score, offsets = matcher.fuzzy_search.match(matcher.query, title)
    if score:
        for offset in offsets:
            if offset < len(title) and not title[offset].isspace():
                content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class PaletteCommands(Provider):
    """The console's commands in the palette (Ctrl+P), from `App.palette_entries()`."""

    def _entries(self) -> Iterable[PaletteEntry]:
        entries = getattr(self.app, "palette_entries", None)
        return entries() if entries is not None else ()

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(Content(title), callback, text=title, help=Content(help_text))  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, highlight(matcher, title), callback, text=title, help=Content(help_text))  # type: ignore[arg-type]


class ThemeCommands(Provider):
    """The theme picker (the palette's Theme command): theme names come from YAML files in the
    user's theme directory, so they are shown as Content too, never parsed as markup."""

    def _entries(self) -> list[tuple[str, Callable[[], object]]]:
        app = self.app

        def choose(name: str) -> Callable[[], object]:
            return lambda: setattr(app, "theme", name)

        return [(name, choose(name)) for name in sorted(app.available_themes)]

    async def discover(self) -> Hits:
        for name, callback in self._entries():
            yield DiscoveryHit(Content(name), callback, text=name)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, highlight(matcher, name), callback, text=name)
