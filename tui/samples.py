"""Where the demo inventory and playbooks are: the current repository first, else the installed copy."""

from __future__ import annotations

from pathlib import Path

import tui

_SOURCE_ROOT = Path(tui.__file__).resolve().parent.parent
_BUNDLED = Path(tui.__file__).resolve().parent / "bundled"


def _first(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def sample_inventory(prefer_cwd: bool = True) -> Path | None:
    cwd = [Path.cwd() / "sample_inventory" / "hosts.yml"] if prefer_cwd else []
    return _first(*cwd, _SOURCE_ROOT / "sample_inventory" / "hosts.yml", _BUNDLED / "sample_inventory" / "hosts.yml")


def sample_playbooks(prefer_cwd: bool = True) -> Path | None:
    cwd = [Path.cwd() / "sample_playbooks"] if prefer_cwd else []
    return _first(*cwd, _SOURCE_ROOT / "sample_playbooks", _BUNDLED / "sample_playbooks")
