"""Execution nodes: hosts reached over plain OpenSSH where a job's supervisor runs instead of here.

A job file (or the config) names them:

    nodes:
      dc2:
        ssh: ops@bastion-dc2.example   # user@host
        port: 22                       # optional
        identity: ~/.ssh/id_ed25519    # optional
        known_hosts: ~/.ssh/known_hosts  # optional; host keys are always checked
        python: /opt/playdeck/bin/python # a Python with the same playdeck version on the node
        capacity: 4                    # jobs at once on that node

and a job's `node: dc2` runs it there. The transport is tui/core/running/node_link.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # jobfile imports this module: the walker's type only, no import cycle
    from tui.core.planning.jobfile import _Walker

NODE_KEYS = ("ssh", "port", "identity", "known_hosts", "python", "capacity")
#: A node's name shows in grids, messages and file names: plain words only.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: `[user@]host`: what ssh takes as a destination. No spaces or control characters, never an
#: option (a leading "-"), one "@" at most; the host may be an alias of the user's ssh config.
_DESTINATION = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.+-]*@)?[A-Za-z0-9_\[][A-Za-z0-9_.:%\[\]-]*")


@dataclass(frozen=True)
class Node:
    name: str
    ssh: str  # user@host (or host): passed to ssh as the destination, never through a shell
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None  # None: the user's ssh config decides (host keys still checked)
    python: str = "python3"
    capacity: int = 1

    def describe(self) -> str:
        """For messages: the node's name and where it is (no secrets in either)."""
        return f"node {self.name} ({self.ssh}{f':{self.port}' if self.port else ''})"


def check_name(raw: Any) -> str:
    """A node's name: letters, digits, `_ . -` (it shows in grids, messages and file names)."""
    if not isinstance(raw, str):
        raise TypeError
    if not _NAME.fullmatch(raw):
        raise ValueError
    return raw


def check_destination(raw: Any) -> str:
    """`ssh:` as ssh's destination `[user@]host`: ValueError for anything else (spaces, a leading
    "-" that ssh would read as an option, two "@", a URI, control characters)."""
    if not isinstance(raw, str):
        raise TypeError
    if not _DESTINATION.fullmatch(raw) or len(raw) > 255:
        raise ValueError
    return raw


def check_port(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
        raise ValueError
    return raw


def check_capacity(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ValueError
    return raw


def check_python(raw: Any) -> str:
    """The node's Python: a path or a command name ssh's remote shell finds; one word."""
    if not isinstance(raw, str) or not raw.strip():
        raise TypeError
    if any(c.isspace() or ord(c) < 32 for c in raw) or raw.startswith("-"):
        raise ValueError
    return raw


CHECKS = {
    "ssh": (check_destination, "an ssh destination [user@]host (no spaces, not starting with -)"),
    "port": (check_port, "a port number from 1 to 65535"),
    "python": (check_python, "a non-empty string: the node's Python (a path or a command, one word)"),
    "capacity": (check_capacity, "a whole number >= 1 (jobs at once on that node)"),
}
PATH_KEYS = ("identity", "known_hosts")


def walk_nodes(w: _Walker, node: yaml.Node, key: str) -> dict[str, Node]:
    """A `nodes:` mapping (job file or config), every problem named with its line and key;
    a node with a problem is left out (the caller refuses the whole file anyway)."""
    if not isinstance(node, yaml.MappingNode):
        w.problem(node, key, "expected a mapping of node names to {ssh, port, identity, known_hosts, python, capacity}")
        return {}
    found: dict[str, Node] = {}
    for name_node, body in node.value:
        raw_name = w.value(name_node)
        try:
            name = check_name(raw_name)
        except (TypeError, ValueError):
            w.problem(name_node, key, f"a node name is letters, digits, _ . - (at most 64), got {raw_name!r}")
            continue
        full = f"{key}.{name}"
        if name in found:
            w.problem(name_node, full, "node given twice")
            continue
        before = len(w.problems)
        fields = w.mapping(body, full, NODE_KEYS)
        if not isinstance(body, yaml.MappingNode):
            continue
        if "ssh" not in fields:
            w.problem(name_node, f"{full}.ssh", "missing (required): the node's [user@]host")
        values: dict[str, Any] = {}
        for field_name, (_, vnode) in fields.items():
            if field_name in PATH_KEYS:
                values[field_name] = w.existing(vnode, f"{full}.{field_name}", directory_ok=False)
            else:
                check, what = CHECKS[field_name]
                values[field_name] = w.typed(vnode, f"{full}.{field_name}", check, what)
        if len(w.problems) == before:
            found[name] = Node(name=name, **values)
    return found


@dataclass(frozen=True)
class Places:
    """The nodes a job's `node:` may name: the file's and the config's; `written` every node name
    the file writes, valid or not, so a job on a node with its own problem is not told it is missing."""

    nodes: Mapping[str, Node]
    written: set[str]

    def check(self, raw: Any) -> Node:
        if not isinstance(raw, str) or not raw.strip():
            raise TypeError
        if raw in self.nodes:
            return self.nodes[raw]
        if raw in self.written:
            raise Reported
        known = ", ".join(sorted(self.nodes)) or "none"
        raise ValueError(f"no node named {raw!r} in the file's nodes: or the config's (known: {known})")


class Reported(Exception):
    """Already reported elsewhere (the node's own problem, where the file's `nodes:` writes it)."""


def file_nodes(w: _Walker, node: yaml.Node | None, known: Mapping[str, Node]) -> tuple[dict[str, Node], Places]:
    """A job file's own `nodes:` (`node`, None when it has none), and the places its jobs may
    name: those and the `known` ones (the config's), the file's winning on a shared name."""
    own: dict[str, Node] = {}
    written: set[str] = set()  # names of the file's nodes, valid or not (a bad one is reported once)
    if node is not None:
        own = walk_nodes(w, node, "nodes")
        if isinstance(node, yaml.MappingNode):
            written = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return own, Places({**known, **own}, written)


def place(w: _Walker, vnode: yaml.Node, key: str, places: Places) -> Node | None:
    """A job's `node:`: the name of a node of the file's `nodes:` or of the config's."""
    raw = w.value(vnode)
    try:
        return places.check(raw)
    except Reported:
        pass  # the node's own problem is reported: the file is refused anyway
    except TypeError:
        w.problem(vnode, key, f"expected a node name, got {w.describe(raw)}")
    except ValueError as exc:
        w.problem(vnode, key, str(exc))
    return None


def node_to_json(node: Node) -> dict[str, Any]:
    """A node for the protocol: every field, paths absolute."""
    return {
        "name": node.name,
        "ssh": node.ssh,
        "port": node.port,
        "identity": str(node.identity) if node.identity is not None else None,
        "known_hosts": str(node.known_hosts) if node.known_hosts is not None else None,
        "python": node.python,
        "capacity": node.capacity,
    }


def node_from_json(raw: Any, key: str = "node") -> tuple[Node | None, list[str]]:
    """A node read back from the protocol, checked as a job file's: (node, []) or (None, problems),
    each problem one line starting with its key."""
    if not isinstance(raw, dict):
        return None, [f"{key}: expected a node {{name, ssh, port, identity, known_hosts, python, capacity}}"]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for field_name, value in raw.items():
        where = f"{key}.{field_name}"
        if field_name not in ("name", *NODE_KEYS):
            problems.append(f"{where}: unknown key (allowed: name, {', '.join(NODE_KEYS)})")
        elif value is None:
            continue
        elif field_name == "name":
            try:
                values["name"] = check_name(value)
            except (TypeError, ValueError):
                problems.append(f"{where}: a node name is letters, digits, _ . - (at most 64), got {value!r}")
        elif field_name in PATH_KEYS:
            path = Path(value) if isinstance(value, str) and value else None
            if path is None or not path.is_absolute():
                problems.append(f"{where}: expected an absolute path, got {value!r}")
            elif not path.is_file():
                problems.append(f"{where}: {path} does not exist" if not path.exists() else f"{where}: not a file")
            else:
                values[field_name] = path
        else:
            check, what = CHECKS[field_name]
            try:
                values[field_name] = check(value)
            except (TypeError, ValueError):
                problems.append(f"{where}: expected {what}, got {value!r}")
    for required in ("name", "ssh"):
        if raw.get(required) is None:
            problems.append(f"{key}.{required}: missing (required)")
    if problems:
        return None, problems
    return Node(**values), []


def local_versions() -> dict[str, str | None]:
    """What a node must match: this playdeck's version and this ansible-core's (as node_link
    compares them: ansible.release is a tiny module, not Ansible itself)."""
    import tui

    try:
        from ansible.release import __version__ as ansible_core
    except ImportError:
        ansible_core = None
    return {"playdeck": tui.__version__, "ansible_core": ansible_core}


def probe_problem(node: Node, probe: dict[str, Any]) -> str | None:
    """Why jobs must not be placed on `node`, from node_link.probe's answer; None when they may.

    The probe is "ok" when the node answered with the same playdeck and ansible-core as here (the
    supervisor's protocol, and what a playbook does, must be the same on both sides); its
    "error" says why not. Every line names the node."""
    if probe.get("ok"):
        return None
    why = str(probe.get("error") or "no answer (reason unknown)")
    return why if node.describe() in why else f"{node.describe()}: {why}"
