"""Execution nodes (issue 13): a job's CPU per event on a node vs here, and cancel on a node.

    python -m tests.bench.run --only nodes [--quick]

The node is this machine behind a real OpenSSH server on 127.0.0.1, started with tests/sshd.py's
start_sshd (a fresh host key in a known_hosts the Node points at, so host keys are checked; a fresh
client key). The node's Python is a wrapper around ours with its own HOME, XDG_RUNTIME_DIR and
TMPDIR under the bench's temp dir and this checkout first on PYTHONPATH (both sides run the same
code). Jobs go through the Engine, which hands job.spec.node to AttemptProcess: ssh (one
ControlMaster, kept 60 s) to `python -m tui.core.running.supervisor --node` there.

1. CPU per event. The same event-heavy playbook (FLOOD_TASKS debug tasks, each a loop of
   FLOOD_ITEMS items, over web01-03, connection local; ~3,100 events) run through one Engine, here
   and on the node, interleaved (local, node) for ROUNDS rounds, after one unmeasured node job that
   opens the ControlMaster. Per run:
   - engine: this process's CPU (getrusage RUSAGE_SELF, every thread) from `engine.add` to the
     job's final status, per event the engine received. Here the supervisor (a child) writes the
     log; for a node job this process writes it (node_link.NodeLink.keep), from the full events.
   - total: engine + every child waited for (RUSAGE_CHILDREN: the local supervisor and Ansible,
     or the ssh mux client) + the ssh ControlMaster (it daemonizes: /proc/PID/stat) + the node
     side: the sshd listener and everything below it (utime+stime+cutime+cstime of each, so what
     ended and was waited for inside the tree counts once), read once the node side is quiet.
   Figures are medians of the rounds; the ratios node/local are ratios of the medians.
2. Cancel. CANCEL_REPS runs of `slow_task.yml` (limit db01, a `sleep` of a unique length) on the
   node and as many here, interleaved. Once the sleep runs (on the node: below the node's sshd),
   `engine.cancel(job)`; then /proc is polled every 5 ms until no process carries the attempt's
   PLAYDECK_ATTEMPT marker and no such sleep is left (on the node, everything the node's
   supervisor started, and the supervisor itself), and until the job's status is canceled.
   p50/p99/max; target p99 <= 1 s; baseline: the same local job, in the same run.

Everything started here is stopped at the end: the engine's jobs, the ControlMaster (by pid), the
sshd (its sessions, then the listener); processes still carrying one of our markers are killed by
pid and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_cancel import POLL, START_WAIT, _is_supervisor, _wait, kill_leftovers, scan
from tests.bench.bench_overhead import INVENTORY, PLAYBOOKS, ROOT, isolated, loadavg, percentile, row
from tests.conftest import _live, _read
from tests.sshd import SSHD, SshServer, descendants, start_sshd

SLOW = PLAYBOOKS / "slow_task.yml"
HOSTS = "web01,web02,web03"
FLOOD_ITEMS = 50
TARGET = 1.0  # seconds, absolute: cancel p99 on a loopback node
GONE_WAIT = 30.0
JOB_WAIT = 600.0
TICK = os.sysconf("SC_CLK_TCK")


# -- the node: a real sshd on loopback -------------------------------------------------------------


def make_node(server: SshServer, root: Path) -> Any:
    """A Node for the loopback sshd: its host key in a known_hosts, our Python behind a wrapper."""
    from tui.core.planning.nodes import Node

    for sub in ("home", "run", "tmp"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    python = root / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'exec env HOME="{root}/home" XDG_RUNTIME_DIR="{root}/run" TMPDIR="{root}/tmp" '
        f'PYTHONPATH="{ROOT}" "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    known = server.known_hosts(root / "known_hosts")
    return Node(
        name="lo",
        ssh=f"{server.user}@{server.host}",
        port=server.port,
        identity=server.key,
        known_hosts=known,
        python=str(python),
        capacity=4,
    )


def cmdline(pid: int) -> bytes:
    return _read(f"/proc/{pid}/cmdline")


def below_sshd(server: SshServer) -> list[int]:
    """What runs below the node's sshd besides sshd itself (the ControlMaster's connection stays)."""
    return [p for p in server.sessions() if _live(str(p)) and not cmdline(p).startswith(b"sshd")]


def masters(control: Path) -> list[int]:
    """The ssh ControlMaster processes with their socket in our control dir (`ssh: <path> [mux]`)."""
    want = str(control).encode()
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and want in (line := cmdline(int(p))) and b"[mux]" in line and _live(p)
    ]


# -- CPU ---------------------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime+stime+cutime+cstime of one process (its waited-for children's included), in seconds."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0.0
    fields = stat[stat.rfind(b")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu(root: int) -> float:
    return sum(proc_cpu(pid) for pid in [root, *descendants(root)])


def rusage(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def flood_playbook(directory: Path, tasks: int) -> Path:
    """`tasks` debug tasks, each a loop of FLOOD_ITEMS items: one event per item and host, and a few."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["- name: Event flood", "  hosts: all", "  gather_facts: false", "  tasks:"]
    for k in range(tasks):
        lines += [
            f"    - name: flood {k}",
            "      ansible.builtin.debug:",
            f'        msg: "round {k} item {{{{ item }}}} on {{{{ inventory_hostname }}}}"',
            f'      loop: "{{{{ range({FLOOD_ITEMS}) | list }}}}"',
            '      loop_control: {label: "{{ item }}"}',
        ]
    path = directory / "flood.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the engine ----------------------------------------------------------------------------------------


class Bench:
    """One Engine for every job of the bench, and what its listener counted."""

    def __init__(self, state: Path, server: SshServer, node: Any, control: Path):
        from tui.core.engine import Engine

        self.engine = Engine(state, max_parallel=4)
        self.server, self.node, self.control = server, node, control
        self.events: dict[int, int] = {}
        self.ended: dict[int, asyncio.Event] = {}
        self.markers: list[str] = []
        self.problems: list[str] = []
        self.engine.subscribe(self._listen)

    def _listen(self, job: Any, what: str) -> None:
        if what == "event":
            self.events[job.id] = self.events.get(job.id, 0) + 1
        elif what == "status" and job.status.finished and job.id in self.ended:
            self.ended[job.id].set()

    def add(self, spec: Any) -> Any:
        job = self.engine.add(spec)
        self.ended.setdefault(job.id, asyncio.Event())
        if job.status.finished:
            self.ended[job.id].set()
        if job.last is not None:
            self.markers.append(job.last.marker)
        return job

    async def finished(self, job: Any, limit: float = JOB_WAIT) -> bool:
        try:
            await asyncio.wait_for(self.ended[job.id].wait(), limit)
            return True
        except asyncio.TimeoutError:
            return False

    async def settle(self, limit: float = 30.0) -> None:
        """Until nothing of an earlier job runs, here or below the node's sshd."""
        from tui.core.running.procs import MARKER_VAR

        def quiet() -> bool:
            if below_sshd(self.server):
                return False
            return not any(scan(f"{MARKER_VAR}={m}", 0)[0] for m in self.markers[-2:])

        if not await _wait(quiet, limit, 0.05):
            self.problems.append(f"not quiet after {limit:.0f}s: {below_sshd(self.server)}")

    # -- 1. CPU per event ---------------------------------------------------------------------------

    async def flood(self, playbook: Path, label: str, on_node: bool) -> dict[str, Any]:
        from tui.core.planning.spec import spec_for_playbook

        await self.settle()
        spec = spec_for_playbook(
            playbook, INVENTORY, name=f"flood-{label}", limit=HOSTS, node=self.node if on_node else None
        )
        masters0 = masters(self.control)
        self0, kids0 = rusage(resource.RUSAGE_SELF), rusage(resource.RUSAGE_CHILDREN)
        node0, ssh0 = tree_cpu(self.server.pid), sum(proc_cpu(p) for p in masters0)
        start = time.perf_counter()
        job = self.add(spec)
        ok = await self.finished(job)
        wall = time.perf_counter() - start
        self1 = rusage(resource.RUSAGE_SELF)  # before this bench's own polling below
        await self.settle()
        masters1 = masters(self.control)
        kids1, node1 = rusage(resource.RUSAGE_CHILDREN), tree_cpu(self.server.pid)
        ssh1 = sum(proc_cpu(p) for p in masters1)
        events = self.events.get(job.id, 0)
        attempt = job.last
        logged = len(attempt.events_log.read_text().splitlines()) if attempt and attempt.events_log.exists() else 0
        if not ok or job.status.value != "successful":
            self.problems.append(f"{label}: {job.status.value} ({job.message})")
        if on_node and not masters1:
            self.problems.append(f"{label}: no ssh ControlMaster found in {self.control}: its CPU is not counted")
        if on_node and masters0 and masters0 != masters1:
            self.problems.append(f"{label}: the ControlMaster changed during the run ({masters0} -> {masters1})")
        engine = self1 - self0
        total = engine + (kids1 - kids0) + (node1 - node0) + (ssh1 - ssh0)
        return {
            "engine_us": engine / max(events, 1) * 1e6,
            "total_us": total / max(events, 1) * 1e6,
            "engine": engine,
            "children": kids1 - kids0,
            "node_side": node1 - node0,
            "master": ssh1 - ssh0,
            "events": events,
            "logged": logged,
            "wall": wall,
            "status": job.status.value,
        }

    # -- 2. cancel -------------------------------------------------------------------------------------

    async def cancel_one(self, label: str, seconds: int, on_node: bool) -> dict[str, Any] | None:
        """One slow job, canceled once its sleep runs; seconds from the cancel to each stage."""
        from tui.core.planning.spec import spec_for_playbook
        from tui.core.running.procs import MARKER_VAR

        await self.settle()
        spec = spec_for_playbook(
            SLOW,
            INVENTORY,
            name=label,
            limit="db01",
            extra_vars={"slow_seconds": seconds},
            node=self.node if on_node else None,
        )
        job = self.add(spec)
        assert job.last is not None
        needle = f"{MARKER_VAR}={job.last.marker}"

        def sleeping() -> bool:
            sleeps = scan(needle, seconds)[1]
            return bool(sleeps) and (not on_node or bool(sleeps & set(self.server.sessions())))

        if not await _wait(sleeping, START_WAIT):
            self.problems.append(f"{label}: the sleep never started ({job.status.value}: {job.message})")
            if not job.status.finished:
                self.engine.cancel(job)
            await self.finished(job, GONE_WAIT)
            return None
        t0 = time.monotonic()
        self.engine.cancel(job)
        out: dict[str, float] = {}
        end = t0 + GONE_WAIT
        while True:
            marked, sleeps = scan(needle, seconds)
            now = time.monotonic()
            if not sleeps:
                out.setdefault("sleep", now - t0)
            if not sleeps and not any(not _is_supervisor(pid) for pid in marked):
                out.setdefault("ansible", now - t0)
            if not marked and not sleeps:
                out["all"] = now - t0
                break
            if now > end:
                self.problems.append(
                    f"{label}: {sorted(marked | sleeps)} still alive {GONE_WAIT:.0f}s after the cancel"
                )
                kill_leftovers(marked | sleeps)
                break
            if job.status.finished:
                out.setdefault("status", now - t0)
            await asyncio.sleep(POLL)
        if "status" not in out:
            await _wait(lambda: job.status.finished, GONE_WAIT, interval=POLL)
            out["status"] = time.monotonic() - t0
        if job.status.value != "canceled":
            self.problems.append(f"{label}: ended {job.status.value} ({job.message})")
        return out

    async def close(self) -> None:
        await self.engine.close()


# -- the runs ------------------------------------------------------------------------------------------


async def measure(tmp: Path, quick: bool) -> dict[str, Any]:
    from tui.core.running import node_link

    rounds, tasks, reps = (2, 8, 5) if quick else (3, 20, 20)
    got: dict[str, Any] = {"flood": {"local": [], "node": []}, "cancel": {"local": [], "node": []}, "left": []}
    with start_sshd(tmp / "sshd") as server:
        node = make_node(server, tmp / "node")
        control = node_link.control_dir()
        bench = Bench(tmp / "state", server, node, control)
        got["problems"] = bench.problems
        try:
            playbook = flood_playbook(tmp / "flood", tasks)
            await bench.flood(playbook, "warmup-node", True)  # opens the ControlMaster; not counted
            for rnd in range(rounds):
                for where in ("local", "node"):
                    got["flood"][where].append(await bench.flood(playbook, f"{where}-{rnd}", where == "node"))
            base = 7000 + (os.getpid() % 1000) * 50  # unique sleep lengths
            for i in range(reps):
                for k, where in enumerate(("local", "node")):
                    label = f"cancel-{where}-{i}"
                    result = await bench.cancel_one(label, base + 2 * i + k, where == "node")
                    if result is not None:
                        got["cancel"][where].append(result)
        finally:
            await bench.close()
            for pid in masters(control):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.5)
            got["work_dirs"] = sorted(p.name for p in (tmp / "node" / "run" / "playdeck" / "node").glob("*"))
            got["under_sshd"] = below_sshd(server)
            got["masters_left"] = masters(control)
        from tui.core.running.procs import MARKER_VAR

        left: set[int] = set()
        for marker in bench.markers:
            left |= scan(f"{MARKER_VAR}={marker}", 0)[0]
        got["left"] = sorted(left | set(got["under_sshd"]) | set(got["masters_left"]))
        kill_leftovers(set(got["left"]))
    return got


# -- rows ------------------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def cpu_rows(flood: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    local, node = flood["local"], flood["node"]
    events = {w: [r["events"] for r in runs] for w, runs in flood.items()}
    logged = {w: [r["logged"] for r in runs] for w, runs in flood.items()}
    common = (
        f"events per run local {events['local']} / node {events['node']} (events.jsonl lines "
        f"{logged['local']} / {logged['node']}); runs interleaved local/node, median of {len(local)}"
    )
    rows = []
    for key, name, said in (
        ("engine_us", "cpu_per_event_engine", "this process (the engine side, RUSAGE_SELF)"),
        ("total_us", "cpu_per_event_total", "engine + children + ssh ControlMaster + the node's sshd tree"),
    ):
        lv, nv = [r[key] for r in local], [r[key] for r in node]
        per_round = [n / b for n, b in zip(nv, lv) if b]
        rows.append(
            row(
                f"nodes.{name}",
                round(med(nv), 2),
                "us/event",
                baseline=round(med(lv), 2),
                notes=f"{said}, node job vs the same job here; node [{', '.join(f'{v:.1f}' for v in nv)}], "
                f"local [{', '.join(f'{v:.1f}' for v in lv)}]; per-round ratios "
                f"[{', '.join(f'{v:.2f}' for v in per_round)}]; {common}",
                samples={"local": [round(v, 2) for v in lv], "node": [round(v, 2) for v in nv]},
            )
        )
    parts = {
        w: ", ".join(
            f"{k.replace('_', ' ')} {med([r[k] for r in runs]):.2f}"
            for k in ("engine", "children", "master", "node_side")
        )
        for w, runs in flood.items()
    }
    rows.append(
        row(
            "nodes.flood_job_wall",
            round(med([r["wall"] for r in node]), 2),
            "s",
            baseline=round(med([r["wall"] for r in local]), 2),
            notes=f"engine.add -> final status of the flood job; CPU seconds (medians) node: {parts['node']}; "
            f"local: {parts['local']}; statuses {sorted({r['status'] for r in local + node})}",
        )
    )
    return rows


def cancel_rows(cancel: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    def stats(where: str, key: str) -> tuple[float | None, float | None, float | None, list[float]]:
        values = [r[key] for r in cancel[where] if key in r]
        return percentile(values, 50), percentile(values, 99), (max(values) if values else None), values

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    def stages(where: str) -> str:
        parts = []
        for key, label in (("sleep", "sleep gone"), ("ansible", "all but the supervisor gone")):
            p50, p99, _, _ = stats(where, key)
            parts.append(f"{label} p50 {fmt(p50)} / p99 {fmt(p99)} s")
        return "; ".join(parts)

    rows = []
    for key, name, said in (
        ("all", "cancel_gone", "engine.cancel() -> no process with the attempt's marker and no sleep left"),
        ("status", "cancel_status", "engine.cancel() -> the job's status is canceled"),
    ):
        n50, n99, nmax, nv = stats("node", key)
        l50, l99, lmax, lv = stats("local", key)
        rows.append(
            row(
                f"nodes.{name}.p50",
                n50,
                "s",
                baseline=l50,
                notes=f"{said}, on the loopback node vs the same job here; n={len(nv)} / {len(lv)}",
            )
        )
        rows.append(
            row(
                f"nodes.{name}.p99",
                n99,
                "s",
                baseline=l99,
                target=TARGET,
                target_of="value",
                notes=f"max {fmt(nmax)} s (local {fmt(lmax)} s); node samples {[round(v, 3) for v in nv]}"
                + (f"; node: {stages('node')}; local: {stages('local')}" if key == "all" else ""),
            )
        )
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not os.path.exists(SSHD):
        return [row("nodes.skipped", None, notes=f"{SSHD} is not installed")]
    load_before = loadavg()
    with isolated("nodes") as (tmp, _env):
        got = asyncio.run(measure(tmp, quick))
    load_after = loadavg()
    flood, cancel = got["flood"], got["cancel"]
    if flood["local"] and len(flood["local"]) == len(flood["node"]):
        rows += cpu_rows(flood)
    if cancel["local"] and cancel["node"]:
        rows += cancel_rows(cancel)
    rows.append(
        row(
            "nodes.leftover",
            len(got["left"]),
            "procs",
            target=0,
            target_of="value",
            notes=f"processes of ours alive after the bench (marked, below the sshd, or our ControlMaster; "
            f"killed now): {got['left']}; node work dirs left: {got['work_dirs'] or 'none'}; problems: "
            f"{'; '.join(got['problems']) or 'none'}; loadavg {load_before} -> {load_after}",
        )
    )
    return rows


if __name__ == "__main__":
    from tests.bench.bench_ingest import print_rows

    print_rows(run("--quick" in sys.argv))
