"""The console's config file and the little state it remembers (the theme).

Config: `$PLAYDECK_CONFIG`, else `$XDG_CONFIG_HOME/playdeck/config.yml`:

    theme: playdeck-dark
    bell: true                 # ring the terminal bell when a job fails or times out
    playbook_dir: ~/playbooks  # what `n` offers, besides the job file's playbooks
    max_parallel: 4
    keys: {cancel-job: x, retry-job: R}   # command id -> key; see the help screen (?) for ids
    history: {keep_runs: 50, keep_days: 30, show: 50}

The server's keys (metrics_listen, notify, protect, schedules) are its own: tui/core/config.py.
A broken config never stops the console: it starts with defaults and says what was wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tui.console.commands import COMMANDS
from tui.core.config import SERVER_KEYS, config_path
from tui.core.storage.paths import ensure_private_dir, state_dir

__all__ = ["Config", "config_path", "load_config", "remember", "remembered"]


@dataclass
class Config:
    theme: str | None = None
    bell: bool = False
    playbook_dir: Path | None = None
    max_parallel: int | None = None
    keys: dict[str, str] = field(default_factory=dict)
    keep_runs: int = 50  # history: runs kept on disk (logs included)
    keep_days: float = 30.0  # history: and none older than this
    show_history: int = 50  # history: earlier jobs shown at start
    problems: list[str] = field(default_factory=list)


def load_config(path: Path | None = None) -> Config:
    path = path or config_path()
    config = Config()
    if not path.exists():
        return config
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        config.problems.append(f"{path}: cannot read, using defaults: {exc}")
        return config
    if not isinstance(data, dict):
        config.problems.append(f"{path}: expected a mapping, using defaults")
        return config
    ids = {c.id for c in COMMANDS}
    for key, value in data.items():
        if key == "theme" and isinstance(value, str):
            config.theme = value
        elif key == "bell" and isinstance(value, bool):
            config.bell = value
        elif key == "playbook_dir" and isinstance(value, str):
            config.playbook_dir = (path.parent / Path(value).expanduser()).resolve()
        elif key == "max_parallel" and isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            config.max_parallel = value
        elif key in SERVER_KEYS and key != "max_parallel":
            continue  # the server's (tui/core/config.py): it checks them and says what is wrong
        elif key == "history" and isinstance(value, dict):
            for name, number in value.items():
                if (
                    name in ("keep_runs", "keep_days", "show")
                    and isinstance(number, (int, float))
                    and not isinstance(number, bool)
                    and number >= 0
                ):
                    setattr(
                        config,
                        "show_history" if name == "show" else name,
                        float(number) if name == "keep_days" else int(number),
                    )
                else:
                    config.problems.append(f"{path}: history.{name}: unknown key or not a number >= 0")
        elif key == "keys" and isinstance(value, dict):
            for command_id, keys in value.items():
                if command_id in ids and isinstance(keys, str) and keys.strip():
                    config.keys[command_id] = keys.strip()
                else:
                    config.problems.append(f"{path}: keys.{command_id}: unknown command or empty key")
        else:
            config.problems.append(f"{path}: {key}: unknown key or wrong type, ignored")
    return config


def _ui_state_file() -> Path:
    return state_dir() / "ui.json"


def remembered(name: str) -> Any:
    try:
        return json.loads(_ui_state_file().read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError, AttributeError):
        return None


def remember(name: str, value: Any) -> None:
    """Best effort: failing to remember a theme is not worth interrupting anyone for."""
    path = _ui_state_file()
    try:
        ensure_private_dir(path.parent)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data[name] = value
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except OSError:
        pass
