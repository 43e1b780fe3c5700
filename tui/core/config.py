"""The user's config file, as the server reads it: checked as written, all or nothing.

One file serves both sides (`$PLAYDECK_CONFIG`, else `$XDG_CONFIG_HOME/playdeck/config.yml`):
the console reads its keys (theme, bell, keys, history, playbook_dir; tui/console/config.py)
and the server reads these:

    metrics_listen: "127.0.0.1:9464"   # GET /metrics there (off unless given)
    notify:                             # Apprise URLs; `on` defaults to [failed, timeout]
      - url: "json://alerts.example:8080/hook"
        on: [failed, timeout, circuit-open]
    protect: [prod, "db*"]              # host patterns every launch onto them must confirm
    max_parallel: 4
    schedules: [~/jobs/nightly.yml]     # job files the server submits at start and on reload
    nodes:                              # execution nodes any job file's `node:` may name
      dc2: {ssh: ops@bastion-dc2.example, python: /opt/playdeck/bin/python, capacity: 4}

A file that does not parse or check raises InputError naming file, line and key: a
starting server refuses it, a running one keeps its last good config (never half of one).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tui.core.planning.jobfile import (
    InputError,
    _int_at_least,
    _patterns,
    _Walker,
    yaml_document,
)
from tui.core.planning.nodes import Node, walk_nodes

NOTIFY_EVENTS = (
    "failed",
    "timeout",
    "error",
    "canceled",
    "interrupted",
    "succeeded",
    "skipped",
    "circuit-open",
    "schedule-missed",
)
DEFAULT_ON = frozenset({"failed", "timeout"})
SERVER_KEYS = ("metrics_listen", "notify", "protect", "max_parallel", "schedules", "nodes")
CONSOLE_KEYS = ("theme", "bell", "playbook_dir", "keys", "history")  # checked by the console
TOP_KEYS = SERVER_KEYS + CONSOLE_KEYS


def config_path() -> Path:
    override = os.environ.get("PLAYDECK_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base).expanduser() / "playdeck" / "config.yml"


@dataclass(frozen=True)
class NotifyTarget:
    url: str  # an Apprise URL: it holds secrets, so only redacted() goes into messages
    on: frozenset[str] = DEFAULT_ON

    def redacted(self) -> str:
        """The scheme only ("json://…"): enough to tell targets apart, nothing secret."""
        scheme = self.url.split("://", 1)[0] if "://" in self.url else "?"
        return f"{scheme}://…"


@dataclass(frozen=True)
class ServerConfig:
    path: Path | None = None
    metrics_listen: tuple[str, int] | None = None
    notify: tuple[NotifyTarget, ...] = ()
    protect: tuple[str, ...] = ()
    max_parallel: int | None = None
    schedules: tuple[Path, ...] = field(default_factory=tuple)
    nodes: dict[str, Node] = field(default_factory=dict)  # by name (tui.core.planning.nodes)


_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>\d{1,5})$")


def _listen(raw: Any) -> tuple[str, int]:
    """ "host:port" or "[v6]:port"; the host must be given (no silent 0.0.0.0)."""
    if not isinstance(raw, str):
        raise TypeError
    match = _ADDRESS.match(raw.strip())
    if not match:
        raise ValueError
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError
    return (match["v6"] or match["host"], port)


def _url(raw: Any) -> str:
    if not isinstance(raw, str) or "://" not in raw or not raw.split("://", 1)[0]:
        raise ValueError
    return raw.strip()


def _events(raw: Any) -> frozenset[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(x, str) and x in NOTIFY_EVENTS for x in items):
        raise ValueError
    return frozenset(items)


def _raw_keys(
    w: _Walker, node: yaml.Node, key: str, allowed: tuple[str, ...]
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping's keys as written: YAML 1.1 reads a bare `on:` as true, the contract means "on"."""
    if not isinstance(node, yaml.MappingNode):
        w.problem(node, key, "expected a mapping {url, on}")
        return {}
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        name = knode.value if isinstance(knode, yaml.ScalarNode) else None
        if not isinstance(name, str) or name not in allowed:
            w.problem(knode, f"{key}.{name}", f"unknown key (allowed: {', '.join(allowed)})")
        elif name in out:
            w.problem(knode, f"{key}.{name}", "key given twice")
        else:
            out[name] = (knode, vnode)
    return out


def load_server_config(path: Path | None = None) -> ServerConfig:
    """The server's part of the config file; a missing file is the defaults."""
    path = (path or config_path()).expanduser().absolute()
    if not path.exists():
        return ServerConfig()
    with yaml_document(path) as (loader, root):
        if root is None:
            return ServerConfig(path=path)
        w = _Walker(path, loader)
        config = _walk(w, root, path)
        if w.problems:
            raise InputError(w.problems)
        return config


def configured_nodes() -> dict[str, Node]:
    """The config file's nodes, which a job file's `node:` (and the console's launch dialogs) may
    name; a config that does not check gives none here (the server says what is wrong with it),
    so only what uses them is affected."""
    try:
        return dict(load_server_config().nodes)
    except InputError:
        return {}


def _walk(w: _Walker, root: yaml.Node, path: Path) -> ServerConfig:
    top = w.mapping(root, "", TOP_KEYS)
    listen = None
    if "metrics_listen" in top:
        listen = w.typed(top["metrics_listen"][1], "metrics_listen", _listen, 'an address "host:port"')
    protect: tuple[str, ...] = ()
    if "protect" in top:
        protect = w.typed(top["protect"][1], "protect", _patterns, "a host pattern or a list of them") or ()
    max_parallel = None
    if "max_parallel" in top:
        max_parallel = w.typed(top["max_parallel"][1], "max_parallel", _int_at_least(1), "a whole number >= 1")
    targets: list[NotifyTarget] = []
    if "notify" in top:
        node = top["notify"][1]
        if not isinstance(node, yaml.SequenceNode):
            w.problem(node, "notify", "expected a list of {url, on}")
        else:
            for i, item in enumerate(node.value):
                key = f"notify[{i}]"
                fields = _raw_keys(w, item, key, ("url", "on"))
                url = None
                if "url" in fields:
                    url = w.typed(fields["url"][1], f"{key}.url", _url, "an Apprise URL (scheme://...)")
                elif isinstance(item, yaml.MappingNode):
                    w.problem(item, f"{key}.url", "missing")
                on = DEFAULT_ON
                if "on" in fields:
                    on = w.typed(fields["on"][1], f"{key}.on", _events, f"a list of {', '.join(NOTIFY_EVENTS)}")
                if url and on:
                    targets.append(NotifyTarget(url, on))
    schedules: list[Path] = []
    if "schedules" in top:
        node = top["schedules"][1]
        items = node.value if isinstance(node, yaml.SequenceNode) else None
        if items is None:
            w.problem(node, "schedules", "expected a list of job files")
        else:
            for i, item in enumerate(items):
                found = w.existing(item, f"schedules[{i}]", directory_ok=False)
                if found is not None:
                    schedules.append(found)
    nodes = walk_nodes(w, top["nodes"][1], "nodes") if "nodes" in top else {}
    return ServerConfig(path, listen, tuple(targets), tuple(protect), max_parallel, tuple(schedules), nodes)
