"""Every operator command, said once: it feeds the bindings, the footer, the help and the palette."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from tui.core.spec import Status


@dataclass(frozen=True)
class Command:
    id: str  # the keymap name, e.g. `cancel-job: x` in the config file
    key: str  # default key(s), comma-separated, Textual key names
    action: str  # App action, without the `action_` prefix
    label: str  # short, for the footer
    help: str  # one line, for the help screen and the palette
    applies_to: frozenset[Status] | None = None  # job statuses it applies to; None = always
    footer: bool = True


RUNNING = frozenset({Status.RUNNING})
UNFINISHED = frozenset({Status.QUEUED, Status.RUNNING, Status.WAITING})
FINISHED_OR_WAITING = frozenset({Status.SUCCESSFUL, Status.FAILED, Status.TIMEOUT, Status.CANCELED,
                                 Status.ERROR, Status.WAITING})
RETRY_FAILED = frozenset({Status.FAILED, Status.TIMEOUT, Status.CANCELED, Status.ERROR})

COMMANDS: tuple[Command, ...] = (  # footer order: what an incident needs first
    Command("cancel-job", "c", "cancel_job", "Cancel", "Cancel the selected job: SIGTERM, then SIGKILL after a grace", UNFINISHED),
    Command("retry-job", "r", "retry_job", "Retry", "Run the selected job again (or now, if it is waiting to retry)", FINISHED_OR_WAITING),
    Command("retry-failed", "f", "retry_failed", "Fail", "Retry only the hosts that failed or were unreachable", RETRY_FAILED),
    Command("set-timeout", "t", "set_timeout", "Time", "Give the selected job a new timeout, counted from now (0 = none)", UNFINISHED),
    Command("help", "question_mark", "help", "Help", "Show every key"),
    Command("quit", "q", "quit_console", "Quit", "Quit; asks first when jobs are running and cancels them cleanly"),
    Command("results", "v", "results", "View", "Per-host and per-task results of the selected job; failures first",
            frozenset(Status) - {Status.QUEUED}),
    Command("new-job", "n", "new_job", "New", "Launch a playbook on the selected hosts"),
    Command("adhoc", "a", "adhoc", "Cmd", "Run an ad-hoc module (e.g. restart a service) on the selected hosts"),
    Command("filter", "slash", "filter", "Filter", "Filter the job grid as you type"),
    Command("inventory", "i", "focus_inventory", "Hosts", "Move focus to the inventory (space selects hosts for the next launch)"),
    Command("focus-log", "enter", "focus_log", "Log", "Move focus to the selected job's log"),
)

BY_ACTION = {command.action: command for command in COMMANDS}


def app_bindings() -> list[Binding]:
    """App-level bindings; `focus-log` lives on the job grid, where Enter would otherwise select a row."""
    return [
        Binding(c.key, c.action, c.label, show=c.footer, id=c.id, tooltip=c.help)
        for c in COMMANDS if c.id != "focus-log"
    ]


def key_label(key: str) -> str:
    names = {"slash": "/", "question_mark": "?", "enter": "Enter", "escape": "Esc", "space": "Space"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))
