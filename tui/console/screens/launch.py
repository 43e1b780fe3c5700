"""Launching from the console: a playbook (`n`) or an ad-hoc module (`a`) on the selected hosts.

Both dialogs check everything before they close, and say what is wrong next
to the field; nothing is launched until the input is valid.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

from tui.core.durations import DurationError, parse_duration


@dataclass
class LaunchRequest:
    limit: str | None
    playbook: Path | None = None
    module: str | None = None
    module_args: str | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
    check: bool = False
    timeout: float | None = None
    retries: int = 0
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # memory only, never saved


def parse_extra_vars(text: str) -> dict[str, Any]:
    """`k=v k2=v2` like ansible -e, or a YAML/JSON mapping; ValueError says what is wrong."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not a valid mapping: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise ValueError("expected a mapping like {release: 1.2}")
        return data
    result: dict[str, Any] = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not key=value")
        result[key.strip()] = value
    return result


class _Dialog(ModalScreen[LaunchRequest | None]):
    BINDINGS = [Binding("escape", "abort", "Abort")]

    def error(self, message: str) -> None:
        self.query_one("#launch-error", Static).update(Text(message))

    def action_abort(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        raise NotImplementedError

    def value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def secrets(self) -> dict[str, str]:
        """Typed into masked fields; they go to Ansible's prompts, never to a file or a command line."""
        found = {}
        for name in ("vault", "become"):
            for box in self.query(f"#secret-{name}").results(Input):
                if box.value:
                    found[name] = box.value
        return found

    def common(self) -> tuple[float | None, int]:
        timeout = parse_duration(self.value("launch-timeout"))
        retries_text = self.value("launch-retries").strip() or "0"
        if not retries_text.isdigit():
            raise ValueError(f"retries: {retries_text!r} is not a whole number >= 0")
        return timeout, int(retries_text)


class NewJobDialog(_Dialog):
    def __init__(self, playbooks: list[Path], limit: str | None):
        super().__init__()
        self.playbooks = playbooks
        self.limit = limit

    def compose(self) -> ComposeResult:
        options = [(Text(p.name), str(p)) for p in self.playbooks]
        with Vertical(classes="dialog wide"):
            yield Static(Text("New job", style="bold"), classes="title")
            yield Select(options, prompt="playbook", id="launch-playbook", allow_blank=True, compact=True)
            yield Input(self.limit or "", placeholder="limit (blank = all hosts)", id="launch-limit", compact=True)
            yield Input(placeholder="extra vars: k=v k2=v2 or {k: v}", id="launch-vars", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="timeout (5m)", id="launch-timeout", compact=True)
                yield Input(placeholder="retries (0)", id="launch-retries", compact=True)
                yield Checkbox("check mode", id="launch-check", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="vault password (optional)", password=True, id="secret-vault", compact=True)
                yield Input(placeholder="become password (optional)", password=True, id="secret-become", compact=True)
            yield Static("", id="launch-error", classes="error")
            with Horizontal(classes="row"):
                yield Button("Launch", id="launch", variant="primary", compact=True)
                yield Button("Cancel", id="abort", compact=True)

    def submit(self) -> None:
        playbook = self.query_one("#launch-playbook", Select).value
        if not isinstance(playbook, str):
            self.error("choose a playbook")
            return
        try:
            extra_vars = parse_extra_vars(self.value("launch-vars"))
            timeout, retries = self.common()
        except (ValueError, DurationError) as exc:
            self.error(str(exc))
            return
        self.dismiss(LaunchRequest(limit=self.value("launch-limit").strip() or None, playbook=Path(playbook),
                                   extra_vars=extra_vars, check=self.query_one("#launch-check", Checkbox).value,
                                   timeout=timeout, retries=retries, secrets=self.secrets()))


class AdhocDialog(_Dialog):
    def __init__(self, limit: str | None):
        super().__init__()
        self.limit = limit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(Text("Ad-hoc command", style="bold"), classes="title")
            yield Input(self.limit or "", placeholder="hosts (required): web01,db or a group", id="launch-limit", compact=True)
            yield Input("ansible.builtin.command", placeholder="module", id="adhoc-module", compact=True)
            yield Input(placeholder="arguments, e.g. systemctl restart nginx", id="adhoc-args", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="timeout (5m)", id="launch-timeout", compact=True)
                yield Input(placeholder="retries (0)", id="launch-retries", compact=True)
                yield Input(placeholder="become password", password=True, id="secret-become", compact=True)
            yield Static("", id="launch-error", classes="error")
            with Horizontal(classes="row"):
                yield Button("Run", id="launch", variant="primary", compact=True)
                yield Button("Cancel", id="abort", compact=True)

    def on_mount(self) -> None:
        self.query_one("#adhoc-args" if self.limit else "#launch-limit", Input).focus()

    def submit(self) -> None:
        limit = self.value("launch-limit").strip()
        module = self.value("adhoc-module").strip()
        if not limit:
            self.error("say which hosts: an ad-hoc command never defaults to all")
            return
        if not module:
            self.error("a module is required, e.g. ansible.builtin.command")
            return
        try:
            timeout, retries = self.common()
        except (ValueError, DurationError) as exc:
            self.error(str(exc))
            return
        self.dismiss(LaunchRequest(limit=limit, module=module, module_args=self.value("adhoc-args"),
                                   timeout=timeout, retries=retries, secrets=self.secrets()))
