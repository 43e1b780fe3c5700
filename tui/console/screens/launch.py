"""Launching from the console: a playbook (`n`) or an ad-hoc module (`a`) on the selected hosts.

Both dialogs check everything before they close, and say what is wrong in a line
under their title (toasts gather at the bottom of the screen: they never cover it);
nothing is launched until the input is valid. Every state is readable without colour
(NO_COLOR, 16 colours): toggles show `[x]`/`[ ]`, the focused field has a `▌` edge.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

from tui.core.durations import DurationError, parse_duration
from tui.core.planning.nodes import Node
from tui.core.planning.spec import JobSpec
from tui.core.sanitize import strip_sgr

FOCUS_CSS = """
    Input, Select, Checkbox { border-left: blank !important; }
    Input:focus, Select:focus-within, Checkbox:focus { border-left: outer $accent !important; }
    Checkbox { margin-right: 1; }
"""
"""Which field has the focus, shown by a character (`▌`), not only by a colour: with NO_COLOR
Textual greys every colour, and a compact Input or Checkbox then looks the same focused or not.
Every field keeps a blank edge of the same width, so focus moves nothing. A screen's `CSS`
(not DEFAULT_CSS, which loses to the compact widgets' `border: none !important`), scoped to it."""

NEEDS_ARGS = {"command", "shell", "raw", "script"}
"""Ad-hoc modules that do nothing useful (or fail on the hosts) without arguments."""


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
    become: bool = False
    become_user: str | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # memory only, never saved
    node: Node | None = None  # an execution node to run it on (None: this machine)

    def spec(self, name: str, inventory: Path) -> JobSpec:
        """The job this request asks for, every field carried over (one place to add a field)."""
        return JobSpec(
            name=name,
            inventory=inventory,
            playbook=self.playbook,
            limit=self.limit,
            extra_vars=self.extra_vars,
            check=self.check,
            timeout=self.timeout,
            retries=self.retries,
            module=self.module,
            module_args=self.module_args,
            become=self.become,
            become_user=self.become_user,
            node=self.node,
        )


class Toggle(Checkbox):
    """A checkbox whose state is a character, `[x]` or `[ ]`: Textual's shows it only by colour."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble(("[", style), ("x" if self.value else " ", style), ("]", style))


def module_needs_args(module: str) -> bool:
    """`shell`, `ansible.builtin.shell`, `ansible.legacy.shell`: the short name decides."""
    return module.strip().rsplit(".", 1)[-1] in NEEDS_ARGS


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
    CSS = FOCUS_CSS
    BINDINGS = [Binding("escape", "abort", "Abort")]

    limit: str | None = None  # the hosts selected in the inventory pane, names as Ansible knows them
    nodes: dict[str, Node] = {}  # execution nodes offered (the job file's and the config's)

    def node_field(self) -> ComposeResult:
        """Where it runs: this machine, or a node (shown only when there are nodes)."""
        if self.nodes:
            options = [(Text("this machine"), "")] + [
                (Text(strip_sgr(node.describe())), name) for name, node in sorted(self.nodes.items())
            ]
            yield Select(options, value="", id="launch-node", allow_blank=False, compact=True)

    def chosen_node(self) -> Node | None:
        for select in self.query("#launch-node").results(Select):
            value = select.value
            return self.nodes.get(value) if isinstance(value, str) and value else None
        return None

    def error(self, message: str) -> None:
        self.query_one("#launch-error", Static).update(Text(strip_sgr(message)))

    def limit_field(self, placeholder: str) -> Input:
        """The selected hosts, shown clean: a host name from an inventory may carry escape sequences
        (an Input draws its value raw). Left as shown, the real names are what Ansible gets."""
        return Input(strip_sgr(self.limit or ""), placeholder=placeholder, id="launch-limit", compact=True)

    def chosen_limit(self) -> str:
        typed = self.value("launch-limit").strip()
        if self.limit and typed == strip_sgr(self.limit).strip():
            return self.limit
        return typed

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

    def become(self) -> tuple[bool, str | None]:
        """The become toggle and user; a user with the toggle off would be silently ignored by Ansible."""
        become = self.query_one("#launch-become", Checkbox).value
        user = self.value("launch-become-user").strip() or None
        if user and not become:
            raise ValueError(f"become user {user!r} given but become (-b) is off: tick it, or clear the user")
        if user and (user.startswith("-") or any(c.isspace() or not c.isprintable() for c in user)):
            raise ValueError(f"become user: {user!r} is not a user name")
        return become, user

    def become_fields(self) -> ComposeResult:
        yield Toggle("become (-b)", id="launch-become", compact=True)
        yield Input(placeholder="become user (root)", id="launch-become-user", compact=True)
        yield Input(placeholder="become password", password=True, id="secret-become", compact=True)

    @on(Input.Changed, "#launch-become-user")
    def _user_typed(self, event: Input.Changed) -> None:
        """Naming a user means becoming them: tick the toggle, visibly (it can be unticked)."""
        if event.value.strip():
            self.query_one("#launch-become", Checkbox).value = True


class NewJobDialog(_Dialog):
    def __init__(self, playbooks: list[Path], limit: str | None, nodes: Mapping[str, Node] | None = None):
        super().__init__()
        self.playbooks = playbooks
        self.limit = limit
        self.nodes = dict(nodes or {})

    def compose(self) -> ComposeResult:
        options = [(Text(p.name), str(p)) for p in self.playbooks]
        with Vertical(classes="dialog wide"):
            yield Static(Text("New job", style="bold"), classes="title")
            yield Static("", id="launch-error", classes="error")
            yield Select(options, prompt="playbook", id="launch-playbook", allow_blank=True, compact=True)
            yield self.limit_field("limit (blank = all hosts)")
            yield from self.node_field()
            yield Input(placeholder="extra vars: k=v k2=v2 or {k: v}", id="launch-vars", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="timeout (5m)", id="launch-timeout", compact=True)
                yield Input(placeholder="retries (0)", id="launch-retries", compact=True)
                yield Input(placeholder="vault password", password=True, id="secret-vault", compact=True)
                yield Toggle("check mode", id="launch-check", compact=True)
            with Horizontal(classes="row"):
                yield from self.become_fields()
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
            become, become_user = self.become()
        except (ValueError, DurationError) as exc:
            self.error(str(exc))
            return
        self.dismiss(
            LaunchRequest(
                limit=self.chosen_limit() or None,
                playbook=Path(playbook),
                extra_vars=extra_vars,
                check=self.query_one("#launch-check", Checkbox).value,
                timeout=timeout,
                retries=retries,
                become=become,
                become_user=become_user,
                secrets=self.secrets(),
                node=self.chosen_node(),
            )
        )


class AdhocDialog(_Dialog):
    def __init__(self, limit: str | None, nodes: Mapping[str, Node] | None = None):
        super().__init__()
        self.limit = limit
        self.nodes = dict(nodes or {})

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(Text("Ad-hoc command", style="bold"), classes="title")
            yield Static("", id="launch-error", classes="error")
            yield self.limit_field("hosts (required): web01,db or a group")
            yield from self.node_field()
            yield Input("ansible.builtin.command", placeholder="module", id="adhoc-module", compact=True)
            yield Input(placeholder="arguments, e.g. systemctl restart nginx", id="adhoc-args", compact=True)
            with Horizontal(classes="row"):
                yield Input(placeholder="timeout (5m)", id="launch-timeout", compact=True)
                yield Input(placeholder="retries (0)", id="launch-retries", compact=True)
            with Horizontal(classes="row"):
                yield from self.become_fields()
            with Horizontal(classes="row"):
                yield Button("Run", id="launch", variant="primary", compact=True)
                yield Button("Cancel", id="abort", compact=True)

    def on_mount(self) -> None:
        self.query_one("#adhoc-args" if self.limit else "#launch-limit", Input).focus()

    def submit(self) -> None:
        limit = self.chosen_limit()
        module = self.value("adhoc-module").strip()
        if not limit:
            self.error("say which hosts: an ad-hoc command never defaults to all")
            return
        if not module:
            self.error("a module is required, e.g. ansible.builtin.command")
            return
        args = self.value("adhoc-args")
        if not args.strip() and module_needs_args(module):
            self.error(f"{module} needs arguments: the command to run")
            self.query_one("#adhoc-args", Input).focus()
            return
        try:
            timeout, retries = self.common()
            become, become_user = self.become()
        except (ValueError, DurationError) as exc:
            self.error(str(exc))
            return
        self.dismiss(
            LaunchRequest(
                limit=limit,
                module=module,
                module_args=args,
                timeout=timeout,
                retries=retries,
                become=become,
                become_user=become_user,
                secrets=self.secrets(),
                node=self.chosen_node(),
            )
        )
