"""Checks that need Ansible itself, run once before a headless run so bad input exits 2 and runs nothing.

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
from pathlib import Path
from typing import Iterable

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
        if specs is not None:
            self.assign(specs)

    def assign(self, specs: list[JobSpec]) -> Check:
        """The jobs this worker checks: their inventories and limits, sent when the answer is asked for."""
        self.specs = list(specs)
        request = [
            {"name": s.name, "inventory": str(s.inventory), "limit": s.limit or (s.module and "all")}
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
            return json.loads(out)
        except ValueError:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return {s.name: f"could not check the inventory: {detail[0]}" for s in specs}

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


def start_check(specs: Iterable[JobSpec]) -> Check:
    """Start checking now; calling the result waits for the answer: job name -> what is wrong with
    its inventory or limit, empty when all is well.

    Started early, the check (most of it is importing Ansible) overlaps the caller's own start-up.
    """
    return Check(list(specs))


def _why(noise: str) -> str:
    """Ansible's own reason, from its first 'Failed to parse ... plugin: <reason>' warning."""
    for line in noise.splitlines():
        if "Failed to parse" in line and "plugin:" in line:
            return line.split("plugin:", 1)[1].strip()
    return ""


def main() -> int:
    """The worker: load each inventory once with Ansible's InventoryManager, try every limit on it."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    request = json.load(sys.stdin)
    noise = io.StringIO()
    problems: dict[str, str] = {}
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
    print(json.dumps(problems))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
