"""Checks that need Ansible itself, run once before a headless run so bad input exits 2 and runs nothing.

The same pass resolves each job's target hosts (inventory + limit + its plays' `hosts:`), for
host locks, and which of them a file's `protect:` patterns cover: one Ansible import for all.

An inventory Ansible cannot parse (it would call that "no hosts matched" and
succeed), an inventory script that fails, and a `--limit` that matches no host
are all found by asking Ansible's own inventory manager, in one short-lived
process for all jobs (`python -m tui.core.planning.preflight`), so its import cost and
inventory scripts never touch the caller's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from tui.core.planning.spec import JobSpec
from tui.core.running import procs

TIMEOUT = 120.0


class Check:
    """A running check: call it for the answer; `stop()` ends it and everything it started."""

    def __init__(self, specs: list[JobSpec] | None = None, *, module: str = "tui.core.planning.preflight"):
        """Start the worker (`python -m module`, which must end in `main()` below); with `specs`
        it checks those, else `assign` gives it its jobs later (a worker started early, warm)."""
        env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1")
        env.pop("ANSIBLE_FORCE_COLOR", None)
        package_root = str(Path(__file__).resolve().parents[3])  # tui/core/planning/ -> the checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # a session of its own: the check and any inventory script it runs are found, and ended, as one
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.specs: list[JobSpec] = []
        self.data = b""
        self.protect: tuple[str, ...] = ()
        # once called: each job's resolved hosts, and the protected ones among them (job name -> names)
        self.hosts: dict[str, list[str]] = {}
        self.protected: dict[str, list[str]] = {}
        if specs is not None:
            self.assign(specs)

    def assign(self, specs: list[JobSpec], protect: Iterable[str] = ()) -> Check:
        """The jobs this worker checks: their inventories, limits and playbooks, and the host
        patterns that are protected; sent when the answer is asked for."""
        self.specs = list(specs)
        self.protect = tuple(protect)
        request = [
            {
                "name": s.name,
                "inventory": str(s.inventory),
                "limit": s.limit or (s.module and "all"),
                "playbook": str(s.playbook) if s.playbook is not None else None,
                "protect": list(self.protect),
            }
            for s in self.specs
        ]
        self.data = json.dumps(request).encode()
        return self

    def __call__(self) -> dict[str, str]:
        specs = self.specs
        try:
            out, err = self.proc.communicate(self.data, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            return {s.name: f"checking inventory {s.inventory} took over {TIMEOUT:.0f}s" for s in specs}
        try:
            answer = json.loads(out)
            self.hosts, self.protected = dict(answer["hosts"]), dict(answer["protected"])
            return dict(answer["problems"])
        except (ValueError, KeyError, TypeError):
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return {s.name: f"could not check the inventory: {detail[0]}" for s in specs}

    def resolved(self) -> list[JobSpec]:
        """The checked specs with their resolved hosts (call after the answer said all is well)."""
        return [replace(s, resolved_hosts=tuple(self.hosts.get(s.name, ()))) for s in self.specs]

    def started(self) -> set[int]:
        """Every live process of the check: its session (inventory scripts that outlived the worker
        are re-parented away but keep it) and its descendants (one that started a session of its own)."""
        sid = self.proc.pid
        found = procs.descendants(sid) | procs.in_session(sid)
        if procs.alive([sid]):
            found.add(sid)
        return found

    def stop(self) -> set[int]:
        """End the check and all it started (SIGTERM, then SIGKILL); what could not be ended."""
        left = procs.terminate(self.started, grace=0.5)
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()  # reap it; its pipes close with it
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        return left


def start_check(specs: Iterable[JobSpec], protect: Iterable[str] = ()) -> Check:
    """Start checking now; calling the result waits for the answer: job name -> what is wrong with
    its inventory or limit, empty when all is well.

    Started early, the check (most of it is importing Ansible) overlaps the caller's own start-up.
    """
    return Check().assign(list(specs), protect) if protect else Check(list(specs))


def _why(noise: str) -> str:
    """Ansible's own reason, from its first 'Failed to parse ... plugin: <reason>' warning."""
    for line in noise.splitlines():
        if "Failed to parse" in line and "plugin:" in line:
            return line.split("plugin:", 1)[1].strip()
    return ""


IMPORTS = ("import_playbook", "ansible.builtin.import_playbook")


def play_patterns(path: Path, depth: int = 0) -> list[str]:
    """The `hosts:` of every play of a playbook, following `import_playbook`. Whatever cannot be
    read without running Ansible (a templated pattern or path, a broken file) counts as "all":
    a lock or a protection may cover too much, never too little."""
    from tui.core.planning.jobfile import _AnyTagLoader  # noqa: PLC0415

    try:
        plays = yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTagLoader)  # noqa: S506 - safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ["all"]
    if not isinstance(plays, list) or depth > 20:
        return ["all"]
    patterns: list[str] = []
    for play in plays:
        if not isinstance(play, dict):
            continue
        imported = next((play[k] for k in IMPORTS if k in play), None)
        if imported is not None:
            target = path.parent / str(imported)
            ok = isinstance(imported, str) and "{{" not in imported and target.is_file()
            patterns += play_patterns(target, depth + 1) if ok else ["all"]
        elif "hosts" in play:
            patterns.append(_pattern_of(play["hosts"]))
    return patterns


def _pattern_of(raw: Any) -> str:
    if isinstance(raw, list):
        raw = ",".join(str(x) for x in raw)
    text = str(raw) if raw is not None else ""
    return "all" if not text.strip() or "{{" in text or "{%" in text else text


def _resolve(manager: Any, item: dict[str, Any], plays: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The job's target hosts (in inventory order) and the protected ones among them; `plays`
    caches each playbook's patterns and each inventory's protected hosts (a file of many jobs often
    runs one playbook many times)."""
    playbook = item.get("playbook")
    if playbook and playbook not in plays:
        plays[playbook] = play_patterns(Path(playbook))
    patterns = plays[playbook] if playbook else [item.get("limit") or "all"]
    limit = item.get("limit")
    manager.subset(limit if playbook else None)
    try:
        hosts = [h.name for h in manager.get_hosts(patterns)] if patterns else []
    finally:
        manager.subset(None)
    key = f"\0protect\0{item['inventory']}"  # the file's patterns, resolved once per inventory
    if key not in plays:
        plays[key] = [h.name for pattern in item.get("protect") or () for h in manager.get_hosts(pattern)]
    covered = set(plays[key])
    return hosts, [h for h in hosts if h in covered]


def main() -> int:
    """The worker: load each inventory once with Ansible's InventoryManager, try every limit on it,
    and resolve each job's hosts (and the protected ones among them)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    request = json.load(sys.stdin)
    noise = io.StringIO()
    problems: dict[str, str] = {}
    hosts: dict[str, list[str]] = {}
    protected: dict[str, list[str]] = {}
    plays: dict[str, list[str]] = {}
    with redirect_stdout(noise), redirect_stderr(noise):
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader

        loaded: dict[str, object] = {}
        for item in request:
            path = item["inventory"]
            if path not in loaded:
                try:
                    manager = InventoryManager(loader=DataLoader(), sources=[path])
                    loaded[path] = manager if manager.list_hosts("all") else f"inventory {path} has no hosts"
                except AnsibleError as exc:
                    loaded[path] = (
                        f"inventory {path} cannot be used: {_why(noise.getvalue()) or str(exc).strip().splitlines()[0]}"
                    )
                noise.seek(0)
                noise.truncate()
            manager = loaded[path]
            if isinstance(manager, str):
                problems[item["name"]] = manager
                continue
            limit = item.get("limit")
            if limit:
                manager.subset(limit)  # type: ignore[attr-defined]
                matched = manager.get_hosts("all")  # type: ignore[attr-defined]
                manager.subset(None)  # type: ignore[attr-defined]
                if not matched:
                    problems[item["name"]] = f"limit {limit!r} matches no host in {path}"
                    continue
            try:
                hosts[item["name"]], protected[item["name"]] = _resolve(manager, item, plays)
            except AnsibleError as exc:
                problems[item["name"]] = f"cannot resolve its hosts: {str(exc).strip().splitlines()[0]}"
    print(json.dumps({"problems": problems, "hosts": hosts, "protected": protected}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
