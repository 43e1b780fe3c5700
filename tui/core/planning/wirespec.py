"""A JobSpec as JSON, for the server protocol (the console's launch dialog submits one spec).

Paths travel as absolute strings. Reading one back checks it as the job file loader checks a
job (tui.core.planning.jobfile): the same types, the same existing files, the same playbook
syntax check; every problem is one line naming its key, and a bad spec is refused whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from tui.core.planning.jobfile import _bool, _int_at_least, _one_of, _string, _vars, playbook_problem
from tui.core.planning.jobfile import _int as _whole
from tui.core.planning.nodes import Node, node_from_json, node_to_json
from tui.core.planning.spec import CATCH_UPS, CONDITIONS, LOCKS, OVERLAPS, JobSpec
from tui.core.scheduling import cron

PATH_KEYS = ("inventory", "playbook", "vault_password_file")
#: resolved_hosts never travels: the server resolves a job's hosts itself (its preflight), a client's word is not taken
LOCAL_KEYS = ("resolved_hosts",)
KEYS = tuple(f.name for f in fields(JobSpec) if f.name not in LOCAL_KEYS)


class SpecError(ValueError):
    """A spec that cannot be run as given; `problems` are one line each, starting with the key."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    """Every field of the spec, paths made absolute (the server does not share our directory)."""
    data: dict[str, Any] = {}
    for key in KEYS:
        value = getattr(spec, key)
        if key in PATH_KEYS:
            value = str(Path(value).expanduser().absolute()) if value is not None else None
        elif key == "extra_vars":
            value = dict(value)
        elif key == "after":
            value = [[name, condition] for name, condition in value]
        elif key == "node":
            value = node_to_json(value) if value is not None else None
        data[key] = value
    return data


def _seconds(raw: Any) -> float:
    """A number of seconds > 0 (JSON has numbers: no "5m" here, the client converts)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw <= 0:
        raise ValueError
    return float(raw)


def _after(raw: Any) -> tuple[tuple[str, str], ...]:
    """[[name, condition], ...]: each name once, each condition success, failure or always."""
    if not isinstance(raw, list):
        raise TypeError
    pairs = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 2 or item[1] not in CONDITIONS:
            raise ValueError
        pairs.append((_string(item[0]), str(item[1])))
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError
    return tuple(pairs)


def _lock(raw: Any) -> str:
    if raw not in LOCKS:
        raise ValueError
    return str(raw)


def _cron(raw: Any) -> str:
    return cron.check_expr(_string(raw))  # CronError is a ValueError


def _zone(raw: Any) -> str:
    cron.check_zone(_string(raw))
    return str(raw)


def _module_args(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError
    return raw


CHECKS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "name": (_string, "a non-empty string"),
    "limit": (_string, "a host pattern (a non-empty string)"),
    "extra_vars": (_vars, "a mapping of variable names to values"),
    "timeout": (_seconds, "a number of seconds > 0"),
    "retries": (_int_at_least(0), "a whole number >= 0"),
    "retry_delay": (_seconds, "a number of seconds > 0"),
    "tags": (_string, "a non-empty string"),
    "skip_tags": (_string, "a non-empty string"),
    "check": (_bool, "true or false"),
    "diff": (_bool, "true or false"),
    "forks": (_int_at_least(1), "a whole number >= 1"),
    "verbosity": (_int_at_least(0, 6), "a whole number from 0 to 6"),
    "module": (_string, "a module name"),
    "module_args": (_module_args, "a string"),
    "become": (_bool, "true or false"),
    "become_user": (_string, "a user name"),
    "priority": (_whole, "a whole number"),
    "after": (_after, "a list of [job name, success|failure|always] pairs, each name once"),
    "circuit": (_int_at_least(1), "a whole number >= 1"),
    "lock": (_lock, '"hosts" (or null for no lock)'),
    "schedule": (_cron, "a 5-field cron expression (minute hour day month weekday)"),
    "timezone": (_zone, "an IANA time zone name (Europe/Berlin, UTC)"),
    "overlap": (_one_of(OVERLAPS), " | ".join(OVERLAPS)),
    "catch_up": (_one_of(CATCH_UPS), " | ".join(CATCH_UPS)),
}


def _describe(raw: Any) -> str:
    if isinstance(raw, dict):
        return "a mapping"
    if isinstance(raw, list):
        return "a list"
    text = repr(raw)
    return f"{text[:60]}… ({type(raw).__name__})" if len(text) > 60 else f"{text} ({type(raw).__name__})"


def _path(raw: Any, key: str, problems: list[str], *, directory_ok: bool) -> Path | None:
    if not isinstance(raw, str) or not raw:
        problems.append(f"{key}: expected an absolute path, got {_describe(raw)}")
        return None
    path = Path(raw)
    if not path.is_absolute():
        problems.append(f"{key}: must be an absolute path, got {raw!r}")
        return None
    if not path.exists():
        problems.append(f"{key}: {path} does not exist")
    elif not directory_ok and not path.is_file():
        problems.append(f"{key}: {path} is not a file")
    else:
        return path
    return None


def _node(raw: Any, nodes: Mapping[str, Node], problems: list[str]) -> Node | None:
    if isinstance(raw, str):
        if raw in nodes:
            return nodes[raw]
        problems.append(f"node: no node named {raw[:60]!r} in the config (known: {', '.join(sorted(nodes)) or 'none'})")
        return None
    node, found = node_from_json(raw)
    problems.extend(found)
    return node


def spec_from_json(data: Any, nodes: Mapping[str, Node] | None = None) -> JobSpec:
    """The spec `data` describes, checked; SpecError lists every problem (nothing half-read).

    Omitted or null keys take JobSpec's defaults; name and inventory are required, and exactly
    one of playbook (a playbook run) or module (an ad-hoc command). "node" is a whole node
    (as spec_to_json writes it) or the name of one of `nodes` (the server's config)."""
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping, got {_describe(data)}"])
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in KEYS:
            problems.append(f"{key}: unknown key (allowed: {', '.join(KEYS)})")
        elif raw is None:
            continue
        elif key == "node":
            values[key] = _node(raw, nodes or {}, problems)
        elif key in PATH_KEYS:
            values[key] = _path(raw, key, problems, directory_ok=key == "inventory")
            if key == "playbook" and values[key] is not None:
                found = playbook_problem(values[key])
                if found is not None:
                    problems.append(f"playbook: {found}")
        else:
            check, what = CHECKS[key]
            try:
                values[key] = check(raw)
            except (TypeError, ValueError):
                problems.append(f"{key}: expected {what}, got {_describe(raw)}")
    for required in ("name", "inventory"):
        if data.get(required) is None:
            problems.append(f"{required}: missing (required)")
    has_playbook, has_module = data.get("playbook") is not None, data.get("module") is not None
    if has_playbook == has_module:
        problems.append(
            "playbook: give either a playbook or a module (an ad-hoc command), not both"
            if has_playbook
            else "playbook: missing: give a playbook, or a module for an ad-hoc command"
        )
    if any(name == data.get("name") for name, _ in values.get("after") or ()):
        problems.append("after: a job cannot run after itself")
    if data.get("timezone") is not None and data.get("schedule") is None:  # overlap/catch_up carry defaults
        problems.append("timezone: only with a schedule")
    if data.get("schedule") is not None and data.get("after"):
        problems.append("after: not with a schedule (a scheduled job runs at its times)")
    if has_playbook and data.get("module_args") is not None:
        problems.append("module_args: only for an ad-hoc command (module), not with a playbook")
    if problems:
        raise SpecError(problems)
    return JobSpec(**values)
