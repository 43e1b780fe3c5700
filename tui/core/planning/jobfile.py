"""Loading job files: every problem is reported with its file, line and key.

Validation walks the YAML node tree rather than the loaded dict, because only
nodes remember the line a value came from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from tui.core.durations import DurationError, parse_duration
from tui.core.planning.nodes import Node, Places, file_nodes, place
from tui.core.planning.spec import CATCH_UPS, CONDITIONS, LOCKS, OVERLAPS, JobSpec
from tui.core.scheduling import cron
from tui.core.scheduling.chains import cycle, parents_first

TOP_KEYS = ("inventory", "max_parallel", "lock", "protect", "nodes", "jobs")
JOB_KEYS = (
    "name",
    "playbook",
    "inventory",
    "limit",
    "extra_vars",
    "timeout",
    "retries",
    "retry_delay",
    "tags",
    "skip_tags",
    "check",
    "diff",
    "forks",
    "verbosity",
    "vault_password_file",
    "become",
    "become_user",
    "priority",
    "after",
    "circuit",
    "lock",
    "schedule",
    "timezone",
    "overlap",
    "catch_up",
    "node",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, pointing at where it is."""

    path: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class InputError(Exception):
    """Invalid input; nothing has run. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class JobFile:
    path: Path
    max_parallel: int | None
    jobs: list[JobSpec]
    protect: tuple[str, ...] = ()  # host patterns (names, globs, groups) a run must confirm
    nodes: dict[str, Node] = field(default_factory=dict)  # the file's own `nodes:` (not the config's)


class _Walker:
    """Collects problems while converting nodes to checked Python values."""

    def __init__(self, path: Path, loader: yaml.SafeLoader):
        self.path = path
        self.base = path.parent
        self.loader = loader
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(self.path, line, key, message))

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, key: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, f"expected a mapping, got {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            name = self.value(knode)
            full = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str) or name not in allowed:
                self.problem(knode, full, f"unknown key (allowed: {', '.join(allowed)})")
            elif name in out:
                self.problem(knode, full, "key given twice")
            else:
                out[name] = (knode, vnode)
        return out

    @staticmethod
    def describe(raw: Any) -> str:
        """A wrong value as a problem names it: its kind, or its repr and type."""
        return _describe(raw)

    def typed(self, node: yaml.Node, key: str, check: Callable[[Any], Any], what: str) -> Any:
        """Convert with `check`, which returns the value or raises ValueError/TypeError."""
        raw = self.value(node)
        try:
            return check(raw)
        except (DurationError, cron.CronError) as exc:
            self.problem(node, key, str(exc))
        except (TypeError, ValueError):
            self.problem(node, key, f"expected {what}, got {_describe(raw)}")
        return None

    def existing(self, node: yaml.Node, key: str, *, directory_ok: bool) -> Path | None:
        raw = self.typed(node, key, _string, "a path")
        if raw is None:
            return None
        path = (self.base / Path(raw).expanduser()).resolve()
        if not path.exists():
            self.problem(node, key, f"{path} does not exist")
        elif not directory_ok and not path.is_file():
            self.problem(node, key, f"{path} is not a file")
        else:
            return path
        return None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


def _describe(raw: Any) -> str:
    if isinstance(raw, dict):
        return "a mapping"
    if isinstance(raw, list):
        return "a list"
    return f"{raw!r} ({type(raw).__name__})"


def _string(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise TypeError
    return raw


def _int_at_least(low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or (high is not None and raw > high):
            raise ValueError
        return raw

    return check


def _bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError
    return raw


def _pattern(raw: Any) -> str:
    """A host pattern or tag list: a string, or a list of strings joined with commas."""
    if isinstance(raw, list) and raw and all(isinstance(x, str) and x.strip() for x in raw):
        return ",".join(raw)
    return _string(raw)


def _int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError
    return raw


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise TypeError
    return raw


def _after(raw: Any) -> tuple[tuple[str, str], ...]:
    """`after`: a job name, a list of names (each must succeed), or {name: success|failure|always}."""
    if isinstance(raw, str):
        pairs = [(_name(raw), "success")]
    elif isinstance(raw, list) and raw:
        pairs = [(_name(item), "success") for item in raw]
    elif isinstance(raw, dict) and raw:
        pairs = [(_name(name), condition) for name, condition in raw.items()]
        if not all(condition in CONDITIONS for _, condition in pairs):
            raise ValueError
    else:
        raise TypeError
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError
    return tuple(pairs)


def _lock(raw: Any) -> str:
    """`lock`: "hosts" (a job may also say "none", to opt out of a file-wide default)."""
    if raw not in LOCKS:
        raise ValueError
    return str(raw)


def _job_lock(raw: Any) -> str:
    return "none" if raw == "none" else _lock(raw)


def _cron(raw: Any) -> str:
    """`schedule`: a 5-field cron expression; its own complaint when cronsim refuses it."""
    if not isinstance(raw, str):
        raise TypeError
    return cron.check_expr(raw)


def _zone(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError
    cron.check_zone(raw)
    return raw


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(raw: Any) -> str:
        if raw not in allowed:
            raise ValueError
        return str(raw)

    return check


def _patterns(raw: Any) -> tuple[str, ...]:
    """`protect`: a host pattern, or a list of them (names, fnmatch globs, group names)."""
    if isinstance(raw, str) and raw.strip():
        return (raw,)
    if isinstance(raw, list) and raw and all(isinstance(x, str) and x.strip() for x in raw):
        return tuple(raw)
    raise TypeError


def _vars(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise TypeError
    return raw


def _positive_duration(raw: Any) -> float:
    seconds = parse_duration(raw)
    if seconds is None:
        raise ValueError
    return seconds


class _AnyTagLoader(yaml.SafeLoader):
    """Playbooks use tags like !vault and !unsafe; for a syntax check any tag will do."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def playbook_problem(path: Path) -> Problem | None:
    """A playbook that is not valid YAML, or not a list of plays, named with its line.

    Ansible would find this too, but only after a job started; here nothing runs.
    """
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTagLoader)  # noqa: S506 - safe loader subclass
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(path, None, "", f"cannot read the playbook: {exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return Problem(
            path,
            mark.line + 1 if mark else None,
            "",
            f"playbook YAML syntax error: {getattr(exc, 'problem', None) or exc}",
        )
    if not isinstance(data, list):
        return Problem(path, None, "", "not a playbook: a playbook is a list of plays")
    return None


@contextmanager
def yaml_document(path: Path) -> Iterator[tuple[yaml.SafeLoader, yaml.Node | None]]:
    """The file's YAML as nodes (None: an empty file), for a walker naming file, line and key;
    InputError for a file that cannot be read or does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(path, None, "", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise InputError([Problem(path, None, "", f"not UTF-8 text: {exc.reason}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            reason = getattr(exc, "problem", None) or str(exc)
            raise InputError([Problem(path, line, "", f"YAML syntax error: {reason}")]) from None
        yield loader, root
    finally:
        loader.dispose()


def load_job_file(path: str | Path, nodes: Mapping[str, Node] | None = None) -> JobFile:
    """Parse and check a job file; raise InputError naming file, line and key.

    `nodes`: nodes defined elsewhere (the config's) that a job's `node:` may name besides the
    file's own `nodes:` (which win on a shared name)."""
    path = Path(path).expanduser().resolve()
    with yaml_document(path) as (loader, root):
        if root is None:
            raise InputError([Problem(path, None, "", "the file is empty")])
        return _walk(_Walker(path, loader), root, nodes or {})


def _walk(w: _Walker, root: yaml.Node, known: Mapping[str, Node]) -> JobFile:
    top = w.mapping(root, "", TOP_KEYS)
    if not top and not w.problems:
        w.problem(root, "jobs", "missing")
    default_inventory = None
    if "inventory" in top:
        default_inventory = w.existing(top["inventory"][1], "inventory", directory_ok=True)
    max_parallel = None
    if "max_parallel" in top:
        max_parallel = w.typed(top["max_parallel"][1], "max_parallel", _int_at_least(1), "a whole number >= 1")
    lock = None
    if "lock" in top:
        lock = w.typed(top["lock"][1], "lock", _lock, "hosts (the only lock; leave it out for none)")
    protect: tuple[str, ...] = ()
    if "protect" in top:
        protect = w.typed(top["protect"][1], "protect", _patterns, "a host pattern or a list of them") or ()
    own, places = file_nodes(w, top["nodes"][1] if "nodes" in top else None, known)
    specs: list[JobSpec] = []
    if "jobs" not in top:
        if top:
            w.problem(root, "jobs", "missing: a job file needs a list of jobs")
    else:
        jobs_node = top["jobs"][1]
        if not isinstance(jobs_node, yaml.SequenceNode) or not jobs_node.value:
            w.problem(jobs_node, "jobs", f"expected a non-empty list of jobs, got {_kind(jobs_node)}")
        else:
            seen: dict[str, int] = {}
            afters: dict[str, tuple[yaml.Node, str]] = {}
            for index, node in enumerate(jobs_node.value):
                spec = _job(w, node, f"jobs[{index}]", default_inventory, "inventory" in top, lock, places)
                if spec is None:
                    continue
                if spec.name in seen:
                    w.problem(node, f"jobs[{index}].name", f"{spec.name!r} is already used by jobs[{seen[spec.name]}]")
                else:
                    seen[spec.name] = index
                    specs.append(spec)
                    after = _fields_of(node).get("after")
                    if after is not None:
                        afters[spec.name] = (after, f"jobs[{index}].after")
            specs = _chained(w, specs, afters, _names(jobs_node))
    if w.problems:
        raise InputError(w.problems)
    return JobFile(w.path, max_parallel, specs, protect, own)


def _fields_of(node: yaml.Node) -> dict[str, yaml.Node]:
    """A job node's values by key (scalar keys only), for finding a key's line afterwards."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _names(jobs_node: yaml.SequenceNode) -> set[str]:
    """Every job name written in the file, valid job or not: a child of a job with another
    problem must not be told that its parent does not exist."""
    names = set()
    for node in jobs_node.value:
        name = _fields_of(node).get("name")
        if isinstance(name, yaml.ScalarNode) and isinstance(name.value, str):
            names.add(name.value)
    return names


def _chained(
    w: _Walker, specs: list[JobSpec], afters: dict[str, tuple[yaml.Node, str]], names: set[str]
) -> list[JobSpec]:
    """Check every `after` against the file's jobs (unknown names, itself, cycles), and put
    parents before their children, so whoever adds them one by one binds the right ones."""
    before = len(w.problems)
    for spec in specs:
        for parent, _ in spec.after:
            node, key = afters[spec.name]
            if parent == spec.name:
                w.problem(node, key, f"{parent!r}: a job cannot run after itself")
            elif parent not in names:
                w.problem(node, key, f"no job named {parent!r} in this file")
    if len(w.problems) != before:
        return specs
    graph = {spec.name: [p for p, _ in spec.after if p in names] for spec in specs}
    found = cycle(graph)
    if found:
        node, key = afters[found[0]]
        w.problem(node, key, f"the jobs form a cycle: {' -> '.join(found)}")
        return specs
    order = {name: i for i, name in enumerate(parents_first(graph))}
    return sorted(specs, key=lambda spec: order[spec.name])


def _job(
    w: _Walker,
    node: yaml.Node,
    key: str,
    default_inventory: Path | None,
    has_default: bool,
    lock: str | None,
    places: Places,
) -> JobSpec | None:
    before = len(w.problems)
    fields = w.mapping(node, key, JOB_KEYS)
    if not isinstance(node, yaml.MappingNode):
        return None
    for required in ("name", "playbook"):
        if required not in fields:
            w.problem(node, f"{key}.{required}", "missing (required)")
    values: dict[str, Any] = {}
    checks: dict[str, tuple[Callable[[Any], Any], str]] = {
        "name": (_string, "a non-empty string"),
        "limit": (_pattern, "a host pattern (string or list of strings)"),
        "extra_vars": (_vars, "a mapping of variable names to values"),
        "timeout": (parse_duration, "seconds or a duration like 90s, 5m, 1h"),
        "retries": (_int_at_least(0), "a whole number >= 0"),
        "retry_delay": (_positive_duration, "a duration > 0"),
        "tags": (_pattern, "a string or list of strings"),
        "skip_tags": (_pattern, "a string or list of strings"),
        "check": (_bool, "true or false"),
        "diff": (_bool, "true or false"),
        "forks": (_int_at_least(1), "a whole number >= 1"),
        "verbosity": (_int_at_least(0, 6), "a whole number from 0 to 6"),
        "become": (_bool, "true or false"),
        "become_user": (_string, "a user name"),
        "priority": (_int, "a whole number (higher starts first)"),
        "circuit": (_int_at_least(1), "a whole number >= 1 (failed attempts in a row)"),
        "after": (_after, "a job name, a list of job names, or a mapping {name: success|failure|always}"),
        "lock": (_job_lock, "hosts, or none (no lock, whatever the file-wide default)"),
        "schedule": (_cron, "a 5-field cron expression (minute hour day month weekday)"),
        "timezone": (_zone, "an IANA time zone name (Europe/Berlin, UTC)"),
        "overlap": (_one_of(OVERLAPS), " | ".join(OVERLAPS)),
        "catch_up": (_one_of(CATCH_UPS), " | ".join(CATCH_UPS)),
    }
    for name, (knode, vnode) in fields.items():
        full = f"{key}.{name}"
        if name in checks:
            check, what = checks[name]
            values[name] = w.typed(vnode, full, check, what)
        elif name == "playbook":
            values[name] = w.existing(vnode, full, directory_ok=False)
            if values[name] is not None:
                problem = playbook_problem(values[name])
                if problem is not None:
                    w.problems.append(problem)
                    values[name] = None
        elif name == "inventory":
            values[name] = w.existing(vnode, full, directory_ok=True)
        elif name == "vault_password_file":
            values[name] = w.existing(vnode, full, directory_ok=False)
        elif name == "node":
            values[name] = place(w, vnode, full, places)
    for only in ("timezone", "overlap", "catch_up"):
        if only in fields and "schedule" not in fields:
            w.problem(fields[only][0], f"{key}.{only}", "only with a schedule")
    if "schedule" in fields and "after" in fields:
        w.problem(fields["after"][0], f"{key}.after", "not with a schedule (a scheduled job runs at its times)")
    if "inventory" not in fields and not has_default:
        w.problem(node, f"{key}.inventory", "missing: set it on the job or at the top of the file")
    if len(w.problems) != before:
        return None
    values.setdefault("inventory", default_inventory)
    values["lock"] = None if values.get("lock", lock) == "none" else values.get("lock", lock)
    if values["inventory"] is None:  # the top-level inventory was itself invalid, already reported
        return None
    return JobSpec(**{k: v for k, v in values.items() if v is not None})
