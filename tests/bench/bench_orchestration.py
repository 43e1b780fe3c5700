"""Orchestration (issue 11): 1,000 cron schedules in one server, and long `after` chains.

    python -m tests.bench.run --only orchestration [--quick]

1. Schedules. A real `python -m tui.server --foreground` (bench_server's Server: private socket
   and state dir), max_parallel 2, with this bench's own Mirror attached over /v1/events. Its CPU
   (utime+stime of /proc/PID/stat, all threads) over an idle window with no job at all is the
   baseline; then one submission (preflight off) registers 1,000 scheduled jobs, all due at the
   same minute boundary 50-110 s ahead (`M H * * *` in UTC: one fire each, at a real boundary,
   through the same tick as `* * * * *`), and the same idle window is measured again before the
   boundary. At the boundary every job must fire: lateness = the server's own `late` in each
   `schedule-fire` audit record (its clock at the fire minus the cron time), and, from the client
   side, the moment the Mirror first sees the job leave `scheduled` minus the boundary. The
   playbook is one debug task on a local host; the fired jobs queue behind 2 slots and the server
   is stopped as soon as all 1,000 were seen fired (its stop cancels them), so ~2 real runs start.
   Targets: max lateness <= 1 s; idle CPU with 1,000 schedules <= 0.5 % of a core.
2. Chains, in process (no Ansible): an Engine (state dir in the temp dir) is given a chain
   gate -> a1 -> ... -> aN (`after` with `always`; the gate a yearly schedule, so nothing runs at
   add time) and `max_parallel` forced to 0 so no link ever starts a process; then the gate and
   each queued link in turn are canceled: every cancel is a parent ending, which goes through
   the engine's real path (status, job.json, audit, Releaser, a scheduling pass) and queues the
   next link. Timed: add_all and that resolution, N = 100..1600; the work is also counted without
   timing noise: job records the engine visits (its `jobs` list wrapped to count what iterating it
   yields) plus Releaser verdicts. time(2N)/time(N) and work(2N)/work(N): linear ~2, quadratic ~4.
   Also in the notes: load_job_file of the same chain as YAML (the submit's parse and checks).
3. Chains in a real server: N chained jobs after a resting scheduled gate, submitted over the
   socket; canceling the gate skips the whole chain (no process runs): submit time and the
   cascade (cancel -> the Mirror sees all N skipped), N = 100, 200, 400. And one real 20-link
   chain of the debug playbook end to end, seconds per link, vs one lone job of the same
   playbook in the same server (the baseline).

Figures are noisy on the small shared machine: the load is in the notes.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.bench.bench_overhead import ANSIBLE_ENV, INVENTORY, ROOT, isolated, loadavg, percentile, row
from tests.bench.bench_server import Server, cpu_ns, iso_ts, killed_leftovers, proc_cpu, wait_for
from tests.conftest import _read

PLAYBOOK = ROOT / "tests" / "playbooks" / "load_one_debug.yml"
HOST = "web01"
SCHEDULES = 1000
PARALLEL = 2
LATE_TARGET = 1.0  # s
IDLE_TARGET = 0.5  # percent of a core
RATIO_TARGET = 2.5  # time or work (2N)/(N): linear 2, quadratic 4
E2E_LINKS = 20
YEARLY = "0 0 1 1 *"
ENDED = {"successful", "failed", "timeout", "canceled", "error", "interrupted", "skipped"}


def fmt(values: list[float], spec: str = ".3f") -> str:
    return ", ".join(format(v, spec) for v in values)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (the server's warm preflight worker)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 1:
                parents[int(entry)] = int(fields[1])
    family, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(proc_cpu(p) for p in family)


def job_entry(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "playbook": str(PLAYBOOK), "limit": HOST, **extra}


def write_jobs(path: Path, jobs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"inventory": str(INVENTORY), "jobs": jobs}), encoding="utf-8")  # JSON is YAML
    return path


def chain_entries(prefix: str, n: int, condition: str = "success", gate: bool = True) -> list[dict[str, Any]]:
    """gate (a resting yearly schedule) -> p1 -> ... -> pN; without gate p1 runs at once."""
    jobs = [job_entry(f"{prefix}gate", schedule=YEARLY, timezone="UTC")] if gate else []
    previous = f"{prefix}gate" if gate else None
    for i in range(1, n + 1):
        extra = {"after": {previous: condition}} if previous else {}
        jobs.append(job_entry(f"{prefix}{i}", **extra))
        previous = f"{prefix}{i}"
    return jobs


class Watcher:
    """This bench's own Mirror on the server's event stream: when each job was first seen in a state."""

    def __init__(self, server: Server) -> None:
        from tui.client.connection import Connection
        from tui.client.mirror import Mirror

        self.mirror = Mirror()
        self.first: dict[tuple[str, str], float] = {}  # (name, status) -> wall time first seen
        self.status: dict[str, str] = {}
        self.mirror.listen(self._on_jobs)
        self.conn = Connection(server.sock, timeout=None)
        self.task = asyncio.create_task(self.mirror.run(self.conn))

    def _on_jobs(self, kind: str, jobs: list[dict[str, Any]]) -> None:
        now = time.time()
        for job in jobs:
            if job.get("history"):
                continue
            name, status = str(job.get("name")), str(job.get("status"))
            self.status[name] = status
            self.first.setdefault((name, status), now)

    async def started(self) -> None:
        if not await wait_for(lambda: self.mirror.snapshots > 0, 60):
            raise RuntimeError("the Mirror got no snapshot within 60 s")

    def count(self, names: list[str], statuses: set[str]) -> int:
        return sum(1 for n in names if self.status.get(n) in statuses)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.conn.close()


# -- 1. 1,000 schedules ------------------------------------------------------------------------


async def idle_window(server: Server, seconds: float) -> dict[str, float]:
    cpu, tree, ns, start = proc_cpu(server.pid), tree_cpu(server.pid), cpu_ns(server.pid), time.monotonic()
    await asyncio.sleep(seconds)
    span = time.monotonic() - start
    return {
        "pct": (proc_cpu(server.pid) - cpu) / span * 100,
        "tree": (tree_cpu(server.pid) - tree) / span * 100,
        "ns": (cpu_ns(server.pid) - ns) / 1e9 / span * 100,
        "span": span,
    }


def audit_fires(state: Path, names: set[str]) -> dict[str, dict[str, Any]]:
    fires: dict[str, dict[str, Any]] = {}
    path = state / "audit.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        record = json.loads(line)
        if record.get("action") == "schedule-fire" and record.get("job") in names:
            fires.setdefault(record["job"], record)
    return fires


async def schedules(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    idle_for = 10.0 if quick else 30.0
    names = [f"cron-{i:04d}" for i in range(SCHEDULES)]
    server = Server(tmp, env, "schedules")
    watcher: Watcher | None = None
    try:
        await server.start(PARALLEL)
        watcher = Watcher(server)
        await watcher.started()
        await asyncio.sleep(2.0)
        base = await idle_window(server, idle_for)
        rss_before = rss_kb(server.pid)

        boundary = (datetime.now(timezone.utc) + timedelta(seconds=110)).replace(second=0, microsecond=0)
        expr = f"{boundary.minute} {boundary.hour} * * *"  # every job due at this one boundary, once
        jobs = [job_entry(n, schedule=expr, timezone="UTC", overlap="skip") for n in names]
        start = time.monotonic()
        await server.conn.submit(write_jobs(tmp / "schedules.yml", jobs), preflight=False)
        submitted = time.monotonic() - start
        if not await wait_for(lambda: watcher.count(names, {"scheduled"}) == SCHEDULES, 120):
            raise RuntimeError(f"only {watcher.count(names, {'scheduled'})} of {SCHEDULES} jobs rest as scheduled")
        registered = time.monotonic() - start
        await asyncio.sleep(2.0)
        window = min(idle_for, (boundary - datetime.now(timezone.utc)).total_seconds() - 3.0)
        if window < 5.0:
            raise RuntimeError(f"registration took {registered:.1f} s: no idle window left before the boundary")
        busy = await idle_window(server, window)
        rss_after = rss_kb(server.pid)

        await asyncio.sleep(max(0.0, (boundary - datetime.now(timezone.utc)).total_seconds()))
        cpu_at_boundary = proc_cpu(server.pid)
        fired = {"queued", "running", "successful", "failed", "canceled", "error", "blocked"}
        await wait_for(lambda: watcher.count(names, fired) == SCHEDULES, 120, 0.02)
        seen: dict[str, float] = {}
        for (name, status), when in watcher.first.items():
            if status in fired and when < seen.get(name, float("inf")):
                seen[name] = when
        fire_cpu = proc_cpu(server.pid) - cpu_at_boundary
        await server.stop()  # its stop cancels the queued fires: ~PARALLEL real runs happened
        records = audit_fires(server.state, set(names))
    finally:
        if watcher is not None:
            await watcher.close()
        await server.stop()
    at = boundary.timestamp()
    late = [float(r["args"]["late"]) for r in records.values()]
    logged = [datetime.fromisoformat(r["time"]).timestamp() - at for r in records.values()]
    client = [seen[n] - at for n in names if n in seen]
    right_time = sum(1 for r in records.values() if datetime.fromisoformat(r["args"]["at"]) == boundary)
    p99 = percentile(late, 99)
    common = f"{len(records)}/{SCHEDULES} fired at {boundary:%H:%M:%S} UTC ({right_time} with that cron time)"
    return [
        row(
            "orchestration.schedule_fire_late_max",
            round(max(late), 3) if late else None,
            "s",
            target=LATE_TARGET,
            target_of="value",
            met=bool(late) and len(late) == SCHEDULES and max(late) <= LATE_TARGET,
            notes=f"{common}; the server's `late` per schedule-fire audit record (its clock at the fire minus the "
            f"cron time): p50 {percentile(late, 50) or 0:.3f}, p99 {p99 or 0:.3f}, max {max(late, default=0):.3f} s "
            f"(the audit line's own time - boundary: max {max(logged, default=0):.3f} s); the fires run in one "
            f"loop pass, so the last one waits for all before it; load {loadavg()}",
        ),
        row(
            "orchestration.schedule_fire_late_p99",
            round(p99, 3) if p99 is not None else None,
            "s",
            target=LATE_TARGET,
            target_of="value",
            notes="p99 of the same `late` values",
        ),
        row(
            "orchestration.schedule_fire_seen_by_client",
            round(max(client), 3) if client else None,
            "s",
            target=LATE_TARGET,
            target_of="value",
            met=bool(client) and len(client) == SCHEDULES and max(client) <= LATE_TARGET,
            notes=f"client side: this bench's Mirror (over /v1/events) first seeing each job leave `scheduled`, "
            f"minus the boundary; {len(client)}/{SCHEDULES} seen; p50 {percentile(client, 50) or 0:.3f}, "
            f"p99 {percentile(client, 99) or 0:.3f}, max {max(client, default=0):.3f} s; server CPU for "
            f"the boundary until all were seen fired: {fire_cpu:.2f} s",
        ),
        row(
            f"orchestration.idle_cpu_{SCHEDULES}_schedules",
            round(busy["pct"], 3),
            "% of a core",
            baseline=round(base["pct"], 3),
            target=IDLE_TARGET,
            target_of="value",
            notes=f"server utime+stime (/proc/PID/stat) over {busy['span']:.1f} s idle with {SCHEDULES} schedules "
            f"registered, before they fire; baseline: the same server over {base['span']:.1f} s before the "
            f"submission (no job); schedstat: {busy['ns']:.3f} vs {base['ns']:.3f} %; with its children (the warm "
            f"preflight worker): {busy['tree']:.3f} vs {base['tree']:.3f} %; RSS {rss_before / 1024:.1f} -> "
            f"{rss_after / 1024:.1f} MB; one Mirror attached throughout; load {loadavg()}",
        ),
        row(
            f"orchestration.schedule_register_{SCHEDULES}",
            round(registered, 3),
            "s",
            notes=f"one submission of {SCHEDULES} scheduled jobs (preflight off) -> the Mirror sees all resting as "
            f"`scheduled`; the HTTP submit itself returned after {submitted:.3f} s",
        ),
    ]


def rss_kb(pid: int) -> int:
    for line in _read(f"/proc/{pid}/status").decode().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- 2. chains in process ----------------------------------------------------------------------


class CountingJobs(list):  # type: ignore[type-arg]
    """The engine's job list, counting every record iterating it yields: the engine's scans."""

    visits = 0

    def __iter__(self) -> Iterator[Any]:
        for job in super().__iter__():
            self.visits += 1
            yield job

    def __reversed__(self) -> Iterator[Any]:
        for job in super().__reversed__():
            self.visits += 1
            yield job


def chain_specs(n: int) -> list[Any]:
    from tui.core.planning.spec import JobSpec

    specs = [JobSpec(name="gate", inventory=INVENTORY, playbook=PLAYBOOK, limit=HOST, schedule=YEARLY, timezone="UTC")]
    for i in range(1, n + 1):
        parent = "gate" if i == 1 else f"a{i - 1}"
        specs.append(
            JobSpec(name=f"a{i}", inventory=INVENTORY, playbook=PLAYBOOK, limit=HOST, after=((parent, "always"),))
        )
    return specs


async def engine_chain(n: int, count: bool) -> dict[str, float]:
    """add_all of the chain, then cancel the gate and each queued link: (seconds, work)."""
    from tui.core.engine import Engine
    from tui.core.planning.spec import Status
    from tui.core.scheduling import links

    verdicts = 0
    judge = links.judge

    def counted(job: Any) -> Any:
        nonlocal verdicts
        verdicts += 1
        return judge(job)

    specs = chain_specs(n)
    with tempfile.TemporaryDirectory(prefix="chain-") as state:
        engine = Engine(Path(state), max_parallel=1)
        engine.max_parallel = 0  # nothing ever starts: only the planning and the resolution are measured
        if count:
            engine.jobs = CountingJobs()
            links.judge = counted
        try:
            start, cpu0 = time.perf_counter(), time.process_time()
            jobs = engine.add_all(specs)
            cpu1 = time.process_time()
            for job in jobs:  # the gate rests (scheduled); each later link is queued by its parent's end
                if job.status not in (Status.SCHEDULED, Status.QUEUED):
                    raise RuntimeError(f"{job.name} is {job.status}, expected its parent's end to queue it")
                engine.cancel(job)
            resolved, cpu2 = time.perf_counter(), time.process_time()
        finally:
            links.judge = judge
        if any(job.status is not Status.CANCELED for job in jobs):
            raise RuntimeError("a link did not end canceled")
        visits = engine.jobs.visits if isinstance(engine.jobs, CountingJobs) else 0
    return {
        "add": cpu1 - cpu0,
        "resolve": cpu2 - cpu1,
        "total": cpu2 - cpu0,
        "wall": resolved - start,
        "work": visits + verdicts,
    }


def parse_chain(tmp: Path, n: int) -> float:
    from tui.core.planning.jobfile import load_job_file

    path = write_jobs(tmp / f"parse-{n}.yml", chain_entries("p", n))
    start = time.process_time()
    load_job_file(path)
    return time.process_time() - start


async def chains_in_process(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    sizes = [100, 200, 400] if quick else [100, 200, 400, 800, 1600]
    reps = 3 if quick else 5
    times: dict[int, dict[str, float]] = {}
    work: dict[int, float] = {}
    parse: dict[int, float] = {}
    await engine_chain(50, False)  # warm imports and caches
    for n in sizes:
        runs = [await engine_chain(n, False) for _ in range(reps)]
        times[n] = {k: min(r[k] for r in runs) for k in ("add", "resolve", "total", "wall")}
        work[n] = (await engine_chain(n, True))["work"]
        parse[n] = min(parse_chain(tmp, n) for _ in range(reps))
    pairs = list(zip(sizes, sizes[1:]))

    def ratios(values: dict[int, float]) -> str:
        return ", ".join(f"{b}/{a} {values[b] / values[a]:.2f}" for a, b in pairs)

    detail = (
        f"CPU s of this process (process_time; the job.json and audit writes are syscalls, counted), min of "
        f"{reps}, add_all / resolution / total by N: "
        + "; ".join(f"{n}: {t['add']:.3f}/{t['resolve']:.3f}/{t['total']:.3f}" for n, t in times.items())
        + f"; total ratios (2N/N): {ratios({n: t['total'] for n, t in times.items()})}"
        + f"; add_all ratios: {ratios({n: t['add'] for n, t in times.items()})}"
        + f"; resolution ratios: {ratios({n: t['resolve'] for n, t in times.items()})}"
        + "; wall s: "
        + ", ".join(f"{n}: {t['wall']:.3f}" for n, t in times.items())
        + f"; load {loadavg()}"
    )
    work_detail = (
        "work by N (job records the engine's scans of its job list yielded + Releaser verdicts): "
        + ", ".join(f"{n}: {int(w)}" for n, w in work.items())
        + f"; ratios: {ratios(work)}; per link: "
        + ", ".join(f"{n}: {w / n:.1f}" for n, w in work.items())
        + "; load_job_file of the same chain as YAML, CPU s by N: "
        + ", ".join(f"{n}: {t:.3f}" for n, t in parse.items())
        + f" (ratios {ratios(parse)})"
    )
    rows = []
    for a, b in dict.fromkeys([pairs[0], pairs[-1]]):
        rows.append(
            row(
                f"orchestration.chain_engine_cpu_{b}",
                round(times[b]["total"], 4),
                "s",
                baseline=round(times[a]["total"], 4),
                target=RATIO_TARGET,
                notes=f"in-process Engine: add_all of gate -> a1..a{b} plus resolving it link by link (cancel-driven, "
                f"no process) vs N={a}; ratio 2 = linear, 4 = quadratic; {detail}",
            )
        )
        rows.append(
            row(
                f"orchestration.chain_engine_work_{b}",
                int(work[b]),
                "visits",
                baseline=int(work[a]),
                target=RATIO_TARGET,
                notes=f"the same chain counted, not timed (deterministic) vs N={a}; {work_detail}",
            )
        )
    return rows


# -- 3. chains in a real server ----------------------------------------------------------------


async def cascade(server: Server, watcher: Watcher, tmp: Path, n: int) -> dict[str, float]:
    """Submit gate -> cN1..cNn; cancel the resting gate: the Mirror must see all n skipped."""
    prefix = f"c{n}-"
    jobs = chain_entries(prefix, n)
    names = [job["name"] for job in jobs[1:]]
    cpu, start = cpu_ns(server.pid), time.monotonic()
    await server.conn.submit(write_jobs(tmp / f"cascade-{n}.yml", jobs), preflight=False)
    submitted, submit_cpu = time.monotonic() - start, (cpu_ns(server.pid) - cpu) / 1e9
    if not await wait_for(lambda: watcher.count(names, {"blocked"}) == n, 60):
        raise RuntimeError(f"cascade {n}: the chain is not all blocked")
    await asyncio.sleep(0.5)
    cpu, start = cpu_ns(server.pid), time.monotonic()
    await server.conn.cancel(f"{prefix}gate")
    if not await wait_for(lambda: watcher.count(names, {"skipped"}) == n, 120, 0.01):
        raise RuntimeError(f"cascade {n}: {watcher.count(names, {'skipped'})}/{n} skipped")
    cascaded = time.monotonic() - start
    await asyncio.sleep(0.3)  # the last deltas' sending
    cascade_cpu = (cpu_ns(server.pid) - cpu) / 1e9
    return {
        "submit": submitted,
        "submit_cpu": submit_cpu,
        "cascade": cascaded,
        "cascade_cpu": cascade_cpu,
        "cpu": submit_cpu + cascade_cpu,
    }


async def lone_and_chain(server: Server, watcher: Watcher, tmp: Path) -> dict[str, Any]:
    """One lone job (twice) and a real 20-link chain, each from submit to its end as the Mirror saw it."""
    lone: list[float] = []
    for rep in range(2):
        name = f"lone-{rep}"
        start = time.time()
        await server.conn.submit(write_jobs(tmp / f"{name}.yml", [job_entry(name)]), preflight=False)
        if not await wait_for(lambda: watcher.status.get(name) in ENDED, 120, 0.01):
            raise RuntimeError(f"{name} did not end")
        lone.append(watcher.first[(name, watcher.status[name])] - start)
    jobs = chain_entries("e2e-", E2E_LINKS, gate=False)
    names = [job["name"] for job in jobs]
    start = time.time()
    await server.conn.submit(write_jobs(tmp / "e2e.yml", jobs), preflight=False)
    if not await wait_for(lambda: watcher.count(names, ENDED) == len(names), 600, 0.01):
        raise RuntimeError(f"the {E2E_LINKS}-link chain did not end")
    end = max(watcher.first[(n, watcher.status[n])] for n in names)
    found = await server.jobs(names)
    statuses = sorted({j["status"] for j in found.values()})
    attempts = [found[n]["attempts"][-1] for n in names if found[n]["attempts"]]
    handoffs = [iso_ts(b["started"]) - iso_ts(a["ended"]) for a, b in zip(attempts, attempts[1:])]
    runs = [iso_ts(a["ended"]) - iso_ts(a["started"]) for a in attempts]
    return {"lone": lone, "total": end - start, "statuses": statuses, "handoffs": handoffs, "runs": runs}


async def chains_in_server(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    sizes = [100, 200] if quick else [100, 200, 400]
    server = Server(tmp, env, "chains")
    watcher: Watcher | None = None
    got: dict[int, dict[str, float]] = {}
    try:
        await server.start(PARALLEL)
        watcher = Watcher(server)
        await watcher.started()
        for n in sizes:
            got[n] = await cascade(server, watcher, tmp, n)
        e2e = await lone_and_chain(server, watcher, tmp)
    finally:
        if watcher is not None:
            await watcher.close()
        await server.stop()
    detail = "; ".join(
        f"N={n}: submit {g['submit']:.3f} s wall / {g['submit_cpu']:.3f} s server CPU, cascade "
        f"{g['cascade']:.3f} s wall / {g['cascade_cpu']:.3f} s server CPU"
        for n, g in got.items()
    )
    cpu_ratios = ", ".join(f"{b}/{a} {got[b]['cpu'] / got[a]['cpu']:.2f}" for a, b in zip(sizes, sizes[1:]))
    base = statistics.median(e2e["lone"])
    per_link = e2e["total"] / E2E_LINKS
    return [
        row(
            "orchestration.chain_server_cpu_200",
            round(got[200]["cpu"], 4),
            "s",
            baseline=round(got[100]["cpu"], 4),
            target=RATIO_TARGET,
            notes=f"real server, its CPU (schedstat, all threads) to take a chain gate -> N links by `submit` "
            f"(preflight off) and, the resting scheduled gate canceled, to skip every link until this bench's "
            f"Mirror saw them all skipped (status, job.json, a delta per link; no process runs); N=200 vs 100; "
            f"CPU ratios {cpu_ratios}; {detail}; load {loadavg()}",
        ),
        row(
            "orchestration.chain_e2e_seconds_per_link",
            round(per_link, 3),
            "s",
            baseline=round(base, 3),
            notes=f"a real {E2E_LINKS}-link chain (load_one_debug.yml on {HOST}, local) submitted to a server, "
            f"submit -> the last link's end seen by the Mirror: {e2e['total']:.2f} s / {E2E_LINKS}; baseline: one "
            f"lone job of the same playbook, submit -> end ({fmt(e2e['lone'])} s, median); statuses "
            f"{e2e['statuses']}; the engine's handoff (a link's start - its parent's end): median "
            f"{statistics.median(e2e['handoffs'] or [0]):.3f}, max {max(e2e['handoffs'], default=0):.3f} s; "
            f"each run median {statistics.median(e2e['runs'] or [0]):.2f} s",
        ),
    ]


# -- the bench ------------------------------------------------------------------------------------


async def main(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with isolated("orchestration") as (tmp, env):
        env.update(ANSIBLE_ENV)
        env.pop("PLAYDECK_SUPERVISOR_MODULE", None)
        sock = tmp / "sock" / "server.sock"
        try:
            for part in (chains_in_process, schedules, chains_in_server):
                try:
                    rows += await part(tmp, env, quick)
                except Exception as exc:  # noqa: BLE001 - one failed part is a row, the rest still run
                    rows.append(row(f"orchestration.{part.__name__}-error", None, notes=f"{type(exc).__name__}: {exc}"))
        finally:
            left = await killed_leftovers(sock)
            rows.append(
                row(
                    "orchestration.leftover_processes",
                    len(left),
                    "",
                    target=0,
                    target_of="value",
                    notes=f"processes of our servers alive after the bench (killed now): {left}",
                )
            )
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    return asyncio.run(main(quick))


if __name__ == "__main__":
    import sys

    from tests.bench.bench_ingest import print_rows

    print_rows(run("--quick" in sys.argv))
