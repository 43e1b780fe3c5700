"""The engine server: events through its socket, cancel by the CLI, idle CPU, a stalled client, submit.

    python -m tests.bench.run --only server [--quick]

Each server is a real `python -m tui.server --foreground` on a socket in a private temp dir
(PLAYDECK_SOCKET), and each client a real process (`--client` below: a tui.client Mirror that
watches the jobs' logs and counts what it applies, and its own CPU).

1. Events to 1 and to 3 clients: replay supervisors (tests/bench/replay_supervisor.py, synthetic
   lines, all released at once by a go file) through the server; events/s from the go to the
   moment the LAST client has applied every job's end and last log line (end to end; the engine's
   own end is in the notes). Target >= 20k events/s, client CPU <= 0.2 ms per event. Baseline, same
   run: the same supervisors read by a bare json.loads reader (no engine, no socket).
2. `playdeck cancel JOB` (the CLI, a fresh process) on a real ansible-playbook job whose `sleep`
   runs: from launching the CLI to every process of the attempt gone (PLAYDECK_ATTEMPT marker in
   /proc, as bench_cancel); p99 target <= 1 s.
3. An idle server (no jobs, one attached idle client): its CPU as a fraction of one core.
4. A stalled client (SIGSTOP) while paced jobs produce events for ~20 s: the server's RSS must
   plateau (growth after the first 5 s < 20 MB); the other client must keep up (its end lag and
   its queue on the server stay small); the stalled one resyncs after SIGCONT.
5. `playdeck submit` of bench_overhead's jobs (preflight on) to all jobs finished (seen by an
   attached Mirror), vs `xargs -P 4 ansible-playbook` in the same run; first submission (cold
   preflight worker) and later ones (warm spare) separately. Target <= 1.05x. The server runs jobs
   at nice 10, xargs at 0: the full run also times `nice -n 10 xargs` (the priority taken out).

Servers get --idle-exit 120 (not 0) so one a killed bench leaves behind still goes away; the end
of the bench kills (by pid) and counts any process still carrying our PLAYDECK_SOCKET.

The machine is small and shared: figures are noisy; loadavg is in the notes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench.bench_cancel import scan
from tests.bench.bench_overhead import (
    ANSIBLE_ENV,
    BIN,
    INVENTORY,
    PARALLEL,
    PLAYBOOKS,
    ROOT,
    isolated,
    loadavg,
    percentile,
    row,
    timed,
    write_job_file,
    xargs_command,
)
from tests.bench.bench_overhead import (
    JOBS as OVERHEAD_JOBS,
)
from tests.conftest import _live, _read

REPLAY_MODULE = "tests.bench.replay_supervisor"
HOSTS = 25  # replay_supervisor.HOSTS: one task_start per 25 synthetic lines
FLOOD_JOBS = 4
RATE_TARGET = 20_000.0
CLIENT_CPU_TARGET = 0.2  # ms per event
CANCEL_TARGET = 1.0
IDLE_TARGET = 0.5  # percent of a core
GROWTH_TARGET = 20.0  # MB
LAG_TARGET = 1.0  # s: the healthy client's lag beside a stalled one
SUBMIT_TARGET = 1.05
SETTLE = 2.0  # s for the supervisors to import and wait on the go file
FINISHED = {"successful", "failed", "timeout", "canceled", "error", "interrupted"}
TICK = os.sysconf("SC_CLK_TCK")


def replay_events(lines: int) -> int:
    """Events one synthetic replay job sends: start, play, a task per HOSTS lines, the lines, stats."""
    return lines + -(-lines // HOSTS) + 3


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a live process (all its threads)."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK if len(fields) > 12 else 0.0


def autogroup() -> str:
    return _read("/proc/sys/kernel/sched_autogroup_enabled").decode().strip() or "?"


def cpu_ns(pid: int) -> int:
    """CPU nanoseconds of a process's live threads (schedstat): finer than stat's clock ticks."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        fields = _read(f"/proc/{pid}/task/{task}/schedstat").split()
        total += int(fields[0]) if fields else 0
    return total


def rss_mb(pid: int) -> float:
    for line in _read(f"/proc/{pid}/status").decode().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def nums(values: list[float], spec: str = ".2f") -> str:
    return ", ".join(format(v, spec) for v in values)


def iso_ts(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else 0.0


async def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# -- a server process and client processes ---------------------------------------------


class Server:
    """`python -m tui.server --foreground` on a private socket; always stopped by `stop()`."""

    def __init__(self, tmp: Path, env: dict[str, str], label: str, extra: dict[str, str] | None = None) -> None:
        from tui.client.connection import Connection

        self.sock = tmp / "sock" / "server.sock"
        self.sock.parent.mkdir(mode=0o700, exist_ok=True)
        self.env = dict(env, PLAYDECK_SOCKET=str(self.sock), **(extra or {}))
        self.state = tmp / f"state-{label}"
        self.log = tmp / f"server-{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn = Connection(self.sock, timeout=60)
        self.info: dict[str, Any] = {}

    async def start(self, max_parallel: int) -> None:
        cmd = [sys.executable, "-m", "tui.server", "--foreground", "--idle-exit", "120"]
        cmd += ["--state-dir", str(self.state), "--max-parallel", str(max_parallel)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        from tui.client.connection import ClientError

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                self.info = await self.conn.status()
                return
            except ClientError:
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text(errors='replace')[-500:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def jobs(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """/v1/jobs entries (run --json shape) of these names."""
        wanted = set(names)
        return {j["name"]: j for j in (await self.conn.jobs())["jobs"] if j["name"] in wanted}

    async def stop(self) -> None:
        """`server stop` (cancels jobs), then SIGTERM, then SIGKILL: never left running."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                await asyncio.wait_for(self.conn.stop_server(), 30)
            await asyncio.to_thread(proc.wait, 60)
        except Exception:  # noqa: BLE001 - fall back to signals
            for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                if proc.poll() is None:
                    proc.send_signal(sig)
                    try:
                        await asyncio.to_thread(proc.wait, wait)
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            await self.conn.close()


class Client:
    """A Mirror client in its own process (`python -m tests.bench.bench_server --client`)."""

    def __init__(self, server: Server, tmp: Path, label: str, names: list[str]) -> None:
        self.out = tmp / f"client-{label}.json"
        self.ready = Path(f"{self.out}.ready")
        cmd = [sys.executable, "-m", "tests.bench.bench_server", "--client", str(server.sock), str(self.out), *names]
        with open(tmp / f"client-{label}.err", "wb") as err:
            self.proc = subprocess.Popen(cmd, env=server.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)

    async def started(self) -> None:
        if not await wait_for(lambda: self.ready.exists() or self.proc.poll() is not None, 60):
            raise RuntimeError("a client did not attach within 60 s")
        if self.proc.poll() is not None:
            raise RuntimeError(f"a client exited {self.proc.returncode} before attaching")

    async def result(self, timeout: float) -> dict[str, Any]:
        try:
            await asyncio.to_thread(self.proc.wait, timeout)
        finally:
            self.kill()
        if not self.out.exists():
            raise RuntimeError(f"a client left no result (exit {self.proc.returncode})")
        return dict(json.loads(self.out.read_text()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


async def client_main(sock: str, out: str, names: list[str]) -> None:
    """Attach, watch `names`, count what is applied; done once they all finished and frames stop."""
    from tui.client.connection import Connection
    from tui.client.mirror import Mirror

    mirror = Mirror()
    stats: dict[str, Any] = {"updates": 0, "lines": 0, "messages": 0, "first": None, "cpu_first": None}
    finished_at: dict[str, float] = {}  # name -> wall time this client saw it finished
    snapshot = asyncio.Event()
    last = time.monotonic()

    def on_jobs(kind: str, jobs: list[dict[str, Any]]) -> None:
        nonlocal last
        last = time.monotonic()
        stats["updates"] += len(jobs)
        for job in jobs:
            if job.get("status") in FINISHED and job.get("name") in names:
                finished_at.setdefault(job["name"], time.time())
        if kind == "snapshot":
            snapshot.set()

    def on_log(name: str, lines: list[str], total: int, *job_id: Any) -> None:
        nonlocal last
        last = time.monotonic()
        if stats["first"] is None:
            stats["first"], stats["cpu_first"] = last, time.process_time()
        stats["lines"] += len(lines)

    mirror.listen(on_jobs)
    mirror.listen_logs(on_log)
    conn = Connection(sock, timeout=None)
    task = asyncio.create_task(mirror.run(conn))
    await asyncio.wait_for(snapshot.wait(), 60)
    await mirror.watch(names)
    Path(f"{out}.ready").touch()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not (len(finished_at) == len(names) and time.monotonic() - last > 1.0):
        if task.done():  # the stream ended or a listener failed: say why in the result
            stats["error"] = repr(task.exception()) if not task.cancelled() else "cancelled"
            break
        await asyncio.sleep(0.05)
    stats.update(
        last=last,
        cpu_last=time.process_time(),
        snapshots=mirror.snapshots,
        finished_at=finished_at,
        log_seen={str(k): v for k, v in mirror.log_seen.items()},
        complete=len(finished_at) == len(names),
    )
    Path(out).write_text(json.dumps(stats))
    task.cancel()
    await conn.close()


# -- job files ---------------------------------------------------------------------------


def replay_jobfile(path: Path, names: list[str], lines: int, go: Path, rate: float = 0) -> Path:
    """Jobs for the replay supervisor: `lines` synthetic events each, released by the go file."""
    out = [f"inventory: {json.dumps(str(INVENTORY))}", "jobs:"]
    for name in names:
        extra = {"playdeck_replay_lines": lines, "playdeck_replay_go_file": str(go)}
        if rate:
            extra["playdeck_replay_rate"] = rate
        out += [
            f"  - name: {name}",
            f"    playbook: {json.dumps(str(PLAYBOOKS / 'chatty.yml'))}",
            "    limit: lb01",
            f"    extra_vars: {json.dumps(extra)}",
        ]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def slow_jobfile(path: Path, name: str, seconds: int) -> Path:
    path.write_text(
        f"inventory: {json.dumps(str(INVENTORY))}\njobs:\n  - name: {name}\n"
        f"    playbook: {json.dumps(str(PLAYBOOKS / 'slow_task.yml'))}\n    limit: db01\n"
        f"    extra_vars: {{slow_seconds: {seconds}}}\n",
        encoding="utf-8",
    )
    return path


async def until_running(server: Server, names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = await server.jobs(names)
        if len(jobs) == len(names) and all(j["status"] != "queued" for j in jobs.values()):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"jobs {names} did not start within {timeout:.0f} s")


# -- 1. events to 1 and 3 clients -------------------------------------------------------


async def bare_reader(env: dict[str, str], tmp: Path, lines: int, label: str) -> dict[str, float]:
    """The same replay supervisors, read by json.loads alone: events / (go -> last event)."""
    from tui.core.running.attempt import STREAM_LIMIT

    go = tmp / f"go-{label}"
    run_env = dict(env, PLAYDECK_REPLAY_LINES=str(lines), PLAYDECK_REPLAY_GO_FILE=str(go))
    count, last = 0, 0.0

    async def one(index: int) -> None:
        nonlocal count, last
        directory = tmp / f"{label}-{index}"
        directory.mkdir(parents=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", REPLAY_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=run_env, limit=STREAM_LIMIT, start_new_session=True,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps({"kwargs": {}, "dir": str(directory), "nice": 10}) + "\n").encode())
        while line := await proc.stdout.readline():
            if json.loads(line).get("t") == "ev":
                count += 1
                last = time.monotonic()
        proc.stdin.close()
        await proc.wait()

    readers = [asyncio.create_task(one(i)) for i in range(FLOOD_JOBS)]
    await asyncio.sleep(SETTLE)
    start = time.monotonic()
    go.touch()
    await asyncio.gather(*readers)
    return {"events": count, "rate": count / max(last - start, 1e-9), "load": float(loadavg().split()[0])}


async def flood(server: Server, tmp: Path, label: str, clients: list[Client], names: list[str], lines: int) -> dict:
    """Release the jobs' events at once; wait for every client to have applied everything."""
    go = tmp / f"go-{label}"
    await server.conn.submit(replay_jobfile(tmp / f"{label}.yml", names, lines, go), preflight=False)
    await until_running(server, names)
    await asyncio.sleep(SETTLE)
    cpu, wall, start = proc_cpu(server.pid), time.time(), time.monotonic()
    go.touch()
    results = await asyncio.gather(*(c.result(600) for c in clients))
    server_cpu = proc_cpu(server.pid) - cpu
    jobs = await server.jobs(names)
    ended = max(iso_ts(j["attempts"][-1]["ended"]) for j in jobs.values())
    on_disk = [sum(1 for _ in open(j["attempts"][-1]["events"], "rb")) for j in jobs.values()]
    events = replay_events(lines) * len(names)
    end = max(r["last"] for r in results)
    return {
        "events": events,
        "rate": events / (end - start),
        "engine_rate": events / max(ended - wall, 1e-9),
        "server_us": server_cpu / events * 1e6,
        "client_ms": [(r["cpu_last"] - r["cpu_first"]) / events * 1e3 for r in results],
        "lines": [r["lines"] for r in results],
        "complete": all(r["complete"] for r in results)
        and all(j["status"] == "successful" for j in jobs.values())
        and on_disk == [replay_events(lines)] * len(names)
        and all(sum(h["ok"] for h in j["hosts"].values()) == lines for j in jobs.values()),
        "snapshots": [r["snapshots"] for r in results],
        "statuses": sorted({j["status"] for j in jobs.values()}),
        "load": loadavg(),
    }


async def events_and_idle(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    lines = 6_000 if quick else 25_000
    idle_for = 5.0 if quick else 10.0
    base = [await bare_reader(env, tmp, lines, "bare-1")]
    server = Server(tmp, env, "events", {"PLAYDECK_SUPERVISOR_MODULE": REPLAY_MODULE})
    runs: dict[int, dict[str, Any]] = {}
    try:
        await server.start(FLOOD_JOBS)
        for count in (1, 3):
            names = [f"flood{count}-{i}" for i in range(FLOOD_JOBS)]
            clients = [Client(server, tmp, f"flood{count}-{k}", names) for k in range(count)]
            try:
                for client in clients:
                    await client.started()
                if count == 1:  # 3. idle: no job yet, this one client attached
                    await asyncio.sleep(1.0)
                    cpu, ccpu, start = cpu_ns(server.pid), cpu_ns(clients[0].proc.pid), time.monotonic()
                    await asyncio.sleep(idle_for)
                    span = time.monotonic() - start
                    idle = (cpu_ns(server.pid) - cpu) / 1e9 / span * 100
                    idle_client = (cpu_ns(clients[0].proc.pid) - ccpu) / 1e9 / span * 100
                runs[count] = await flood(server, tmp, f"flood{count}", clients, names, lines)
            finally:
                for client in clients:
                    client.kill()
    finally:
        await server.stop()
    base.append(await bare_reader(env, tmp, lines, "bare-2"))
    baseline = statistics.mean(b["rate"] for b in base)
    rows = []
    for count, got in runs.items():
        rows.append(
            row(
                f"server.events_to_{count}_client{'s' if count > 1 else ''}",
                round(got["rate"], 1),
                "events/s",
                baseline=round(baseline, 1),
                target=f">= {RATE_TARGET:.0f}",
                met=got["rate"] >= RATE_TARGET,
                notes=f"{FLOOD_JOBS} replay jobs x {replay_events(lines)} events, go -> the last client applied "
                f"everything; the engine alone ended at {got['engine_rate']:.0f}/s; server CPU "
                f"{got['server_us']:.1f} us/event (one core's worth: {1e6 / got['server_us']:.0f}/s; the "
                f"replay supervisors, server and clients share the 2 cores); every event in events.jsonl, every result in the engine's "
                f"host counts and every job successful: "
                f"{got['complete']}; log lines per client {got['lines']}, snapshots {got['snapshots']}; "
                f"baseline = bare json.loads reader of the same supervisors "
                f"({nums([b['rate'] for b in base], '.0f')}/s before/after); load {got['load']}; "
                "2 shared cores: noisy",
            )
        )
        worst = max(got["client_ms"])
        rows.append(
            row(
                f"server.client_cpu_per_event_{count}",
                round(worst, 4),
                "ms",
                target=CLIENT_CPU_TARGET,
                target_of="value",
                notes=f"the most any of the {count} client processes spent (a tui.client Mirror watching "
                f"every job's log, counting, drawing nothing; its CPU from its first log frame to its last "
                f"frame / events); each: "
                f"{nums(got['client_ms'], '.4f')} ms",
            )
        )
    rows.append(
        row(
            "server.idle_cpu",
            round(idle, 3),
            "% of a core",
            target=IDLE_TARGET,
            target_of="value",
            notes=f"server with no job and one idle attached Mirror client, over {idle_for:.0f} s "
            f"(its threads' /proc schedstat); the client itself: {idle_client:.3f} %",
        )
    )
    return rows


# -- 4. a stalled client ------------------------------------------------------------------


async def stalled(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    seconds = 10.0 if quick else 20.0
    rate = 1500.0
    lines = int(rate * seconds)
    names = [f"stall-{i}" for i in range(FLOOD_JOBS)]
    server = Server(tmp, env, "stall", {"PLAYDECK_SUPERVISOR_MODULE": REPLAY_MODULE})
    clients: list[Client] = []
    samples: list[tuple[float, float]] = []
    queued: dict[int, int] = {}
    try:
        await server.start(FLOOD_JOBS)
        for label in ("ok", "stopped"):  # one after the other: the server numbers them in that order
            clients.append(Client(server, tmp, f"stall-{label}", names))
            await clients[-1].started()
        healthy, stopped = clients
        stopped.proc.send_signal(signal.SIGSTOP)
        go = tmp / "go-stall"
        await server.conn.submit(replay_jobfile(tmp / "stall.yml", names, lines, go, rate), preflight=False)
        await until_running(server, names)
        await asyncio.sleep(SETTLE)
        before = rss_mb(server.pid)
        start = time.monotonic()
        go.touch()
        while True:
            samples.append((time.monotonic() - start, rss_mb(server.pid)))
            if len(samples) % 4 == 0:
                for q in (await server.conn.status()).get("queues", []):
                    queued[q["id"]] = max(queued.get(q["id"], 0), q["queued"])
                if all(j["status"] in FINISHED for j in (await server.jobs(names)).values()):
                    break
            if time.monotonic() - start > seconds * 10 + 60:
                raise RuntimeError("the stall jobs did not end")
            await asyncio.sleep(0.25)
        status = await server.conn.status()
        jobs = await server.jobs(names)
        ok = await healthy.result(120)
        stopped.proc.send_signal(signal.SIGCONT)
        late = await stopped.result(120)
    finally:
        for client in clients:
            client.kill()
        await server.stop()
    at5 = min(samples, key=lambda s: abs(s[0] - 5.0))[1]
    peak = max(mb for _, mb in samples)
    growth = peak - at5
    ends = {name: iso_ts(j["attempts"][-1]["ended"]) for name, j in jobs.items()}
    lag = max(ok["finished_at"][name] - ends[name] for name in names)
    queues = {q["id"]: q for q in status.get("queues", [])}
    mine = min(queued, default=0)  # the running client attached first: the lower number
    return [
        row(
            "server.stalled_client_rss_growth",
            round(growth, 2),
            "MB",
            target=GROWTH_TARGET,
            target_of="value",
            notes=f"server RSS growth after the first 5 s of {FLOOD_JOBS} paced jobs x {rate:.0f} events/s x "
            f"{seconds:.0f} s, one client SIGSTOPped watching all logs: {before:.1f} MB before, {at5:.1f} at 5 s, "
            f"peak {peak:.1f} (total growth {peak - before:.1f} MB, {len(samples)} samples); server queues at "
            f"the end {list(queues.values())}; load {loadavg()}",
        ),
        row(
            "server.stalled_neighbour_lag",
            round(lag, 3),
            "s",
            target=LAG_TARGET,
            target_of="value",
            notes=f"the running client beside the stopped one: from each job's end in the engine to this client "
            f"seeing it, max; most frames queued for it on the server {queued.get(mine, 0)} (for the stopped "
            f"one: {max(queued.values(), default=0) if len(queued) < 2 else queued.get(max(queued), 0)}; sampled "
            f"every s); its snapshots {ok['snapshots']} (1 = never resynced), log lines "
            f"{ok['lines']}; the stopped client after SIGCONT: snapshots {late['snapshots']}, all jobs seen "
            f"finished {late['complete']}",
        ),
    ]


# -- 2. cancel by the CLI, 5. submit vs xargs ------------------------------------------------


async def cancels(server: Server, tmp: Path, reps: int) -> list[dict[str, Any]]:
    run_id = server.info["run"]
    gone: list[float] = []
    cli: list[float] = []
    problems: list[str] = []
    for i in range(reps):
        name, seconds = f"cancel-{i}", 7000 + os.getpid() % 1000 * 25 + i
        await server.conn.submit(slow_jobfile(tmp / f"{name}.yml", name, seconds), preflight=False)
        job_id = next(j["id"] for j in (await server.conn.jobs())["jobs"] if j["name"] == name)
        needle = f"PLAYDECK_ATTEMPT={run_id}.{job_id}.1"
        if not await wait_for(lambda: bool(scan(needle, seconds)[1]), 120):
            problems.append(f"{name}: its sleep never ran")
            await server.conn.cancel(name)
            continue
        known = set().union(*scan(needle, seconds))  # the attempt's processes: polled every 5 ms below
        start = time.monotonic()
        proc = subprocess.Popen(
            [str(BIN / "playdeck"), "cancel", name], env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        cli_at = None
        while time.monotonic() - start < 30:
            if cli_at is None and proc.poll() is not None:
                cli_at = time.monotonic()
            if not any(_live(str(pid)) for pid in known):  # cheap: only what we saw; then one full scan
                now = time.monotonic()
                marked, sleeps = scan(needle, seconds)
                known = marked | sleeps
                if not known:
                    gone.append(now - start)
                    break
            await asyncio.sleep(0.005)
        else:
            problems.append(f"{name}: {sorted(known)} alive 30 s after the cancel")
        _, err = await asyncio.to_thread(proc.communicate)
        cli.append((cli_at or time.monotonic()) - start)
        if proc.returncode:
            problems.append(f"{name}: playdeck cancel exited {proc.returncode}: {err.decode()[:200]}")
        deadline = time.monotonic() + 30
        while (status := (await server.jobs([name]))[name]["status"]) not in FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if status != "canceled":
            problems.append(f"{name}: ended {status}")
    p99 = percentile(gone, 99)
    return [
        row(
            "server.cancel_cli_p99",
            None if p99 is None else round(p99, 3),
            "s",
            target=CANCEL_TARGET,
            target_of="value",
            met=None if p99 is None else bool(p99 <= CANCEL_TARGET and not problems),
            notes=f"`playdeck cancel JOB` launched -> no process with the attempt's marker and no sleep left (the "
            f"pids seen before polled every 5 ms, then a full /proc scan), "
            f"{len(gone)}/{reps} runs (slow_task.yml on db01, local); median {statistics.median(gone or [0]):.3f} s, "
            f"max {max(gone, default=0):.3f} s; the CLI process itself exited after median "
            f"{statistics.median(cli or [0]):.3f} s (its start-up included); problems: {problems or 'none'}; "
            f"load {loadavg()}",
            samples=[round(g, 3) for g in gone],
        )
    ]


async def submits(server: Server, tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    """bare, submit (first), submit, bare, [submit, bare]: the median bare run is the baseline."""
    from tui.client.connection import Connection
    from tui.client.mirror import Mirror

    seen: dict[str, float] = {}

    def on_jobs(kind: str, jobs: list[dict[str, Any]]) -> None:
        for job in jobs:
            if job.get("status") in FINISHED:
                seen.setdefault(job["name"], time.monotonic())

    mirror = Mirror()
    mirror.listen(on_jobs)
    events = Connection(server.sock, timeout=None)
    follower = asyncio.create_task(mirror.run(events))
    bare: list[float] = []
    niced: list[float] = []
    cli_ls: list[float] = []
    sub: list[dict[str, float]] = []
    statuses: set[str] = set()
    try:
        await wait_for(lambda: mirror.snapshots > 0, 30)
        for _ in range(3):  # the CLI's own fixed cost: start-up and one request
            cli_ls.append((await asyncio.to_thread(timed, [str(BIN / "playdeck"), "ls", "--json"], server.env))[0])
        order = ["bare", "submit", "submit", "bare"]
        if not quick:  # and xargs at the server's job nice: what the priority alone costs under load
            order += ["nice", "submit", "bare", "nice"]  # (see the row's note about autogroups)
        for rep, kind in enumerate(order):
            work = tmp / "work" / f"{kind}-{rep}"
            work.mkdir(parents=True)
            if kind in ("bare", "nice"):
                cmd, stdin = xargs_command(tmp, work)
                cmd = ["nice", "-n", "10", *cmd] if kind == "nice" else cmd
                wall, _, rc = await asyncio.to_thread(timed, cmd, env, tmp, stdin)
                (bare if kind == "bare" else niced).append(wall)
                statuses.add(f"xargs rc {rc}")
                continue
            jobs = [(f"{name}-{rep}", pb, limit) for name, pb, limit in OVERHEAD_JOBS]
            names = [j[0] for j in jobs]
            jobfile = write_job_file(tmp / f"submit-{rep}.yml", work, jobs)
            start, wall0 = time.monotonic(), time.time()
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "playdeck"), "submit", str(jobfile), env=server.env, cwd=tmp,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            rc = await proc.wait()
            returned = time.monotonic() - start
            if rc or not await wait_for(lambda: all(n in seen for n in names), 600, 0.01):
                raise RuntimeError(f"submit {rep}: exit {rc}, finished {sorted(seen)}")
            done = await server.jobs(names)
            statuses |= {j["status"] for j in done.values()}
            ended = max(iso_ts(j["attempts"][-1]["ended"]) for j in done.values())
            sub.append({"wall": max(seen[n] for n in names) - start, "returned": returned, "engine": ended - wall0})
    finally:
        follower.cancel()
        await events.close()
    base = statistics.median(bare)
    later = sub[1:]
    later_wall = statistics.median(s["wall"] for s in later)
    common = (
        f"{len(OVERHEAD_JOBS)} jobs of bench_overhead, server --max-parallel {PARALLEL} vs xargs -P {PARALLEL}; "
        f"bare runs [{nums(bare)}] s (median is the baseline); statuses {sorted(statuses)}; "
        f"the server runs jobs at nice 10 (as the console did), xargs at 0: under other users' load that "
        f"alone slows the server's side; load {loadavg()}"
    )
    first = sub[0]
    return [
        row(
            "server.submit_first",
            round(first["wall"], 3),
            "s",
            baseline=round(base, 3),
            target=SUBMIT_TARGET,
            notes=f"first `playdeck submit` on a server started beforehand (its first preflight worker starts cold "
            f"then: the server starts its warm spare at the first submission) "
            f"-> all jobs finished as seen by an attached Mirror; the CLI returned after {first['returned']:.2f} s; "
            f"the engine's last end at {first['engine']:.2f} s (`playdeck ls --json`, the CLI's start-up and one "
            f"request: median {statistics.median(cli_ls):.2f} s); {common}",
        ),
        row(
            "server.submit_later",
            round(later_wall, 3),
            "s",
            baseline=round(base, 3),
            target=SUBMIT_TARGET,
            notes=f"later submissions (warm preflight spare), median of "
            f"[{nums([s['wall'] for s in later])}] s; the CLI returned after "
            f"[{nums([s['returned'] for s in later])}] s; engine's last end "
            f"[{nums([s['engine'] for s in later])}] s",
        ),
    ] + (
        [
            row(
                "server.submit_later_vs_nice10_xargs",
                round(later_wall, 3),
                "s",
                baseline=round(statistics.median(niced), 3),
                notes=f"the same later submissions vs `nice -n 10 xargs -P {PARALLEL}` (the server's job nice), "
                f"runs [{nums(niced)}] s; with sched_autogroup_enabled={autogroup()} a nice only ranks a process "
                f"within its session (the bench's own, here), so this shows the priority's share only "
                f"where autogroup is off",
            )
        ]
        if niced
        else []
    )


async def real_jobs(tmp: Path, env: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    server = Server(tmp, env, "real")
    try:
        await server.start(PARALLEL)
        rows = await cancels(server, tmp, 5 if quick else 20)
        rows += await submits(server, tmp, env, quick)
    finally:
        await server.stop()
    return rows


# -- the bench ----------------------------------------------------------------------------------


def leftovers(sock: Path) -> list[int]:
    """Processes started under our servers (they inherit PLAYDECK_SOCKET) that still live."""
    needle = f"\0PLAYDECK_SOCKET={sock}\0".encode()
    me = str(os.getpid())
    return [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and pid != me and needle in b"\0" + _read(f"/proc/{pid}/environ")
    ]


async def killed_leftovers(sock: Path) -> list[int]:
    """After a bench: what of our servers' processes still lives (after a moment), SIGKILLed."""
    await asyncio.sleep(0.5)
    left = leftovers(sock)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


async def main(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with isolated("server") as (tmp, env):
        env.update(ANSIBLE_ENV)
        env.pop("PLAYDECK_SUPERVISOR_MODULE", None)
        sock = tmp / "sock" / "server.sock"
        try:
            for part in (events_and_idle, stalled, real_jobs):
                try:
                    rows += await part(tmp, env, quick)
                except Exception as exc:  # noqa: BLE001 - one failed part is a row, the rest still run
                    rows.append(row(f"server.{part.__name__}-error", None, notes=f"{type(exc).__name__}: {exc}"))
        finally:
            left = await killed_leftovers(sock)
            rows.append(
                row(
                    "server.leftover_processes",
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
    if sys.argv[1:2] == ["--client"]:
        asyncio.run(client_main(sys.argv[2], sys.argv[3], sys.argv[4:]))
    else:
        from tests.bench.bench_ingest import print_rows

        print_rows(run("--quick" in sys.argv))
