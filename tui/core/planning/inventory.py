"""Loading an inventory for the inventory pane, by asking Ansible itself.

`ansible-inventory --list` is the only reader that agrees with what a playbook
will see (plugins, scripts, group_vars, host ranges), so we run it rather than
parse files ourselves. It runs as an asyncio subprocess and its JSON is decoded
in a worker thread: a 5,000-host inventory takes seconds, and the console must
keep drawing meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

EXECUTABLE = "ansible-inventory"
DETAIL_CAP = 1500  # characters of ansible's stderr put into an error: enough to see why, short enough to show
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# stderr lines that say only "it failed", which the operator already knows from our own message
_NOISE = re.compile(
    r"^(<<< caused by >>>|\[ERROR\]: No inventory was parsed.*|\[WARNING\]: Unable to parse .* as an inventory source)$"
)


class InventoryError(Exception):
    """The inventory could not be loaded; the message names the inventory and says why, for an operator."""


@dataclass
class Group:
    name: str
    children: list[str]  # child group names, in the order ansible-inventory gives
    hosts: list[str]  # hosts directly in this group


@dataclass
class Inventory:
    source: Path
    groups: dict[str, Group]  # includes "all" and "ungrouped" as ansible reports them
    hostvars: dict[str, dict[str, Any]]
    # host -> groups it is directly in; built on first use so a big tree does not rescan every group per host
    _membership: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def hosts(self) -> list[str]:
        """Every host, sorted and unique: a host in several groups is still one machine."""
        names = set(self.hostvars)
        for group in self.groups.values():
            names.update(group.hosts)
        return sorted(names)

    def hosts_in(self, group: str) -> list[str]:
        """All hosts under `group` through its children, sorted and unique; KeyError if there is no such group."""
        if group not in self.groups:
            raise KeyError(group)
        found: set[str] = set()
        seen: set[str] = set()
        stack = [group]
        while stack:  # iterative with a seen-set: deep or (malformed) cyclic nesting must not recurse forever
            name = stack.pop()
            if name in seen or name not in self.groups:
                continue
            seen.add(name)
            found.update(self.groups[name].hosts)
            stack.extend(self.groups[name].children)
        return sorted(found)

    def host_groups(self, host: str) -> list[str]:
        """Groups `host` is directly in, in inventory order (not the groups those are nested in)."""
        if self._membership is None:
            membership: dict[str, list[str]] = {}
            for group in self.groups.values():
                for name in group.hosts:
                    membership.setdefault(name, []).append(group.name)
            self._membership = membership
        return list(self._membership.get(host, []))


def limit_for(selection: Iterable[str]) -> str | None:
    """Selected hosts/groups as an Ansible --limit pattern; None means "no limit", so never return ""."""
    if isinstance(selection, str):  # a lone name, not an iterable of its characters
        selection = [selection]
    names: dict[str, None] = {}  # a dict keeps first-seen order while de-duplicating
    for raw in selection:
        name = raw.strip()
        if name:
            names.setdefault(name, None)
    return ",".join(names) or None


def find_executable() -> str | None:
    """Prefer the ansible-inventory installed with our own Python, so it matches the ansible-core we run jobs with."""
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(EXECUTABLE)


def _detail(stderr: bytes) -> str:
    """The useful part of ansible's stderr: no colours, no blank or repeated lines, capped."""
    text = _ANSI.sub("", stderr.decode("utf-8", errors="replace"))
    lines: list[str] = []
    for line in (raw.rstrip() for raw in text.splitlines()):
        if line.strip() and line not in lines:
            lines.append(line)
    useful = [line for line in lines if not _NOISE.match(line.strip())] or lines
    out = "\n".join(useful)
    if len(out) > DETAIL_CAP:
        out = out[:DETAIL_CAP].rsplit("\n", 1)[0] + "\n…"
    return out


def _parse(source: Path, stdout: bytes) -> Inventory:
    """Decode and shape `ansible-inventory --list` output; runs in a worker thread for big inventories."""
    try:
        data = json.loads(stdout)
    except ValueError as exc:
        head = _ANSI.sub("", stdout[:200].decode("utf-8", errors="replace")).strip()
        raise InventoryError(
            f"{source}: ansible-inventory printed something that is not JSON ({exc}): {head!r}"
        ) from None
    if not isinstance(data, dict):
        raise InventoryError(
            f"{source}: ansible-inventory printed JSON that is not an inventory (a {type(data).__name__})"
        )
    meta = data.get("_meta")
    raw_hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    hostvars: dict[str, dict[str, Any]] = {
        str(h): dict(v) for h, v in (raw_hostvars or {}).items() if isinstance(v, dict)
    }
    groups: dict[str, Group] = {}
    for name, body in data.items():
        if name == "_meta" or not isinstance(body, dict):
            continue
        groups[name] = Group(
            name, [str(c) for c in body.get("children") or []], [str(h) for h in body.get("hosts") or []]
        )
    # ansible omits empty groups (often "ungrouped") from the top level but still names them as children
    for group in list(groups.values()):
        for child in group.children:
            groups.setdefault(child, Group(child, [], []))
    groups.setdefault("all", Group("all", [], []))
    for group in groups.values():
        for host in group.hosts:  # hosts without variables are missing from _meta.hostvars
            hostvars.setdefault(host, {})
    if not hostvars:
        raise InventoryError(f"{source}: the inventory has no hosts")
    return Inventory(source, groups, hostvars)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Kill the whole process group: an inventory script's own children must not outlive the load."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    await proc.wait()


async def load_inventory(path: Path, *, timeout: float = 120.0) -> Inventory:
    """Run `ansible-inventory -i path --list` without blocking the loop; raise InventoryError saying why it failed."""
    source = Path(os.path.abspath(Path(path).expanduser()))
    if not source.exists():  # clearer than ansible's "Unable to parse ... as an inventory source"
        raise InventoryError(f"{source}: inventory not found")
    exe = find_executable()
    if exe is None:
        raise InventoryError(
            f"{source}: cannot load the inventory: {EXECUTABLE} is not installed (not next to {sys.executable} nor on PATH)"
        )
    env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_FORCE_COLOR", None)  # ansible lets it override NOCOLOR (ansible/utils/color.py)
    try:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "-i",
            str(source),
            "--list",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group, so a timeout or cancel can kill it all
        )
    except OSError as exc:
        raise InventoryError(f"{source}: cannot run {exe}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise InventoryError(f"{source}: {EXECUTABLE} did not finish within {timeout:g}s and was stopped") from None
    finally:
        await _stop(proc)  # no-op after a normal exit; kills on timeout or cancellation
    if proc.returncode != 0:
        detail = _detail(stderr) or "(no error output)"
        raise InventoryError(
            f"{source}: cannot load the inventory ({EXECUTABLE} exit status {proc.returncode}):\n{detail}"
        )
    return await asyncio.to_thread(_parse, source, stdout)
