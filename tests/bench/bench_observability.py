"""Metrics and alerts: their CPU per event, and an unreachable webhook delaying nothing.

    python -m tests.bench.run --only observability [--quick]

Each server is a fresh, real `python -m tui.server --foreground` (bench_server's `Server`) with
PLAYDECK_CONFIG set, in one of three configs:
  a. off: an empty config file (no metrics address, no notify target): the baseline;
  b. on: `metrics_listen` on loopback, scraped every 1 s by this bench during the run, and
     `notify` to a live loopback receiver (tests/webhook.py) with on: [failed, timeout,
     succeeded], so every job posts;
  c. unreachable: `notify` to a closed port (refused) and to a receiver that takes the
     connection and never answers (Webhook(mode="hang")), same `on`.
The runs are interleaved a, b, c, a, b, c, ... (3 rounds, 2 with --quick) and each figure is the
median over the rounds, against machine noise (2 cores shared with other people).

1. CPU per event: the same event-heavy workload in each: FLOOD_JOBS replay jobs
   (tests/bench/replay_supervisor.py: synthetic events, no ansible-playbook, so the CPU left is
   the server's own event path), PARALLEL at a time, the first ones released at once by a go
   file. The server process's CPU (utime+stime of all its threads, /proc/PID/stat) from the go
   to every job ended (and, in b, every alert received), divided by the events the jobs sent
   (counted from the supervisor's protocol; checked against each job's host results and, in b,
   against the scraped `playdeck_events_total`). Ratios b/a and c/a.
2. Delays, in a and c, right after the flood (so in c the flood's alerts to the hanging and the
   refusing targets are still pending, retried with backoff): a short job's submission -> its end
   in the engine (a 25-event replay job, median of SHORT_JOBS), `GET /v1/status` latency (median
   of STATUS_REQUESTS) and the latency of `cancel` of a job blocked behind a running one (median
   of CANCELS). Ratios c/a. A blocked loop (an alert sent in the engine's call stack) would show
   seconds here: SEND_TIMEOUT is 10 s.

Every server is stopped (`server stop`, then signals); processes still carrying our
PLAYDECK_SOCKET at the end are killed and counted.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_overhead import ANSIBLE_ENV, INVENTORY, PARALLEL, PLAYBOOKS, isolated, loadavg, row
from tests.bench.bench_server import (
    FINISHED,
    REPLAY_MODULE,
    Server,
    iso_ts,
    killed_leftovers,
    proc_cpu,
    replay_events,
    replay_jobfile,
    wait_for,
)
from tests.webhook import Webhook, closed_port

FLOOD_JOBS = 8
ON = "[failed, timeout, succeeded]"
SHORT_LINES = 25
SHORT_JOBS = 5
STATUS_REQUESTS = 20
CANCELS = 5
CPU_TARGET = 1.10  # "no measurable CPU": within the noise of 2 shared cores
# "never delays": the median may add at most this (well under what a person notices at a key);
# ms-scale ratios swing with the machine's load, and an alert sent on the loop would add 10 s
DELAY_ADDED = 0.050
CONFIGS = ("off", "on", "unreachable")


# -- configs and job files ---------------------------------------------------------------------


def write_config(path: Path, kind: str, hook: Webhook | None, hang: Webhook | None) -> int | None:
    """The config file of one kind; the metrics port for "on" (else None)."""
    if kind == "off":
        path.write_text("# observability off: no metrics_listen, no notify\n", encoding="utf-8")
        return None
    if kind == "on":
        assert hook is not None
        port = closed_port()
        path.write_text(
            f'metrics_listen: "127.0.0.1:{port}"\nnotify:\n  - url: "{hook.url("bench")}"\n    on: {ON}\n',
            encoding="utf-8",
        )
        return port
    assert hang is not None
    path.write_text(
        f'notify:\n  - url: "json://127.0.0.1:{closed_port()}/refused"\n    on: {ON}\n'
        f'  - url: "{hang.url("hang")}"\n    on: {ON}\n',
        encoding="utf-8",
    )
    return None


def blocked_jobfile(path: Path, parent: str, children: list[str], go: Path) -> Path:
    """A replay job that waits on a go file never created (running until canceled), and jobs
    `after` it (blocked): what a cancel of a not-yet-running job acts on."""
    extra = json.dumps({"playdeck_replay_lines": 10, "playdeck_replay_go_file": str(go)})
    out = [f"inventory: {json.dumps(str(INVENTORY))}", "jobs:"]
    out += [
        f"  - name: {parent}",
        f"    playbook: {json.dumps(str(PLAYBOOKS / 'chatty.yml'))}",
        "    limit: db01",
        f"    extra_vars: {extra}",
    ]
    for child in children:
        out += [
            f"  - name: {child}",
            f"    playbook: {json.dumps(str(PLAYBOOKS / 'chatty.yml'))}",
            "    limit: db01",
            f"    extra_vars: {json.dumps({'playdeck_replay_lines': 10})}",
            f"    after: {parent}",
        ]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def short_jobfile(path: Path, name: str) -> Path:
    extra = json.dumps({"playdeck_replay_lines": SHORT_LINES})
    path.write_text(
        f"inventory: {json.dumps(str(INVENTORY))}\njobs:\n  - name: {name}\n"
        f"    playbook: {json.dumps(str(PLAYBOOKS / 'chatty.yml'))}\n    limit: lb01\n"
        f"    extra_vars: {extra}\n",
        encoding="utf-8",
    )
    return path


# -- one server's run ----------------------------------------------------------------------------


async def quiet(pid: int, limit: float = 20.0) -> None:
    """Wait until the server is idle (Apprise's plugins load in a thread at start): < 1 tick in 0.5 s."""
    deadline = time.monotonic() + limit
    before = proc_cpu(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = proc_cpu(pid)
        if now - before < 0.015:
            return
        before = now


async def scraper(port: int, found: dict[str, Any], stop: asyncio.Event) -> None:
    """GET /metrics every 1 s until stopped, and once more then (after the CPU was read): the
    scrape count, the last playdeck_events_total, errors."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        while True:
            last = stop.is_set()
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(5)) as r:
                    text = await r.text()
                found["scrapes"] += 0 if last else 1
                for line in text.splitlines():
                    if line.startswith("playdeck_events_total "):
                        found["events_total"] = float(line.split()[1])
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                found["errors"].append(type(exc).__name__)
            if last:
                return
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass


async def flood(server: Server, tmp: Path, label: str, lines: int, hook: Webhook | None, port: int | None) -> dict:
    """The event-heavy workload; the server's CPU over it per event."""
    names = [f"{label}-flood-{i}" for i in range(FLOOD_JOBS)]
    go = tmp / f"go-{label}"
    posts_before = len(hook.posts) if hook else 0
    await server.conn.submit(replay_jobfile(tmp / f"{label}.yml", names, lines, go), preflight=False)
    first = names[:PARALLEL]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = await server.jobs(first)
        if len(jobs) == len(first) and all(j["status"] == "running" for j in jobs.values()):
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError(f"{label}: the first {PARALLEL} flood jobs did not start")
    await quiet(server.pid)
    scraped: dict[str, Any] = {"scrapes": 0, "events_total": None, "errors": []}
    stop = asyncio.Event()
    scraping = asyncio.create_task(scraper(port, scraped, stop)) if port else None
    cpu, start = proc_cpu(server.pid), time.monotonic()
    go.touch()
    try:
        while True:
            jobs = await server.jobs(names)
            if len(jobs) == len(names) and all(j["status"] in FINISHED for j in jobs.values()):
                break
            if time.monotonic() - start > 600:
                raise RuntimeError(f"{label}: the flood did not end in 600 s")
            await asyncio.sleep(0.1)
        posted = True
        if hook is not None:
            posted = await wait_for(lambda: len(hook.posts) - posts_before >= len(names), 60, 0.02)
        used = proc_cpu(server.pid) - cpu
        wall = time.monotonic() - start
    finally:
        stop.set()
        if scraping is not None:
            await scraping
    events = replay_events(lines) * len(names)
    complete = all(j["status"] == "successful" for j in jobs.values()) and all(
        sum(h["ok"] for h in j["hosts"].values()) == lines for j in jobs.values()
    )
    return {
        "us": used / events * 1e6,
        "cpu": used,
        "events": events,
        "wall": wall,
        "complete": complete,
        "posted": posted,
        "scraped": scraped,
    }


async def delays(server: Server, tmp: Path, label: str) -> dict[str, list[float]]:
    """A short job's submission -> end, GET /v1/status, and cancel of a blocked job: latencies."""
    parent, children = f"{label}-hold", [f"{label}-blocked-{i}" for i in range(CANCELS)]
    await server.conn.submit(blocked_jobfile(tmp / f"{label}-hold.yml", parent, children, tmp / "never"), False)
    deadline = time.monotonic() + 60
    while (await server.jobs([parent])).get(parent, {}).get("status") != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: the holding job did not start")
        await asyncio.sleep(0.1)
    status: list[float] = []
    for _ in range(STATUS_REQUESTS):
        start = time.perf_counter()
        await server.conn.status()
        status.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)
    cancel: list[float] = []
    for child in children:
        start = time.perf_counter()
        await server.conn.cancel(child)
        cancel.append(time.perf_counter() - start)
    short: list[float] = []
    for i in range(SHORT_JOBS):
        name = f"{label}-short-{i}"
        path = short_jobfile(tmp / f"{name}.yml", name)
        submitted = time.time()
        await server.conn.submit(path, preflight=False)
        deadline = time.monotonic() + 120
        while (job := (await server.jobs([name])).get(name, {})).get("status") not in FINISHED:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label}: {name} did not end in 120 s")
            await asyncio.sleep(0.05)
        if job["status"] != "successful":
            raise RuntimeError(f"{label}: {name} ended {job['status']}")
        short.append(iso_ts(job["attempts"][-1]["ended"]) - submitted)
    canceled = [j["status"] for j in (await server.jobs(children)).values()]
    if canceled != ["canceled"] * CANCELS:
        raise RuntimeError(f"{label}: blocked jobs ended {canceled}")
    await server.conn.cancel(parent)
    return {"short": short, "status": status, "cancel": cancel}


async def one_run(tmp: Path, env: dict[str, str], kind: str, rnd: int, lines: int, hook: Webhook) -> dict[str, Any]:
    label = f"{kind}{rnd}"
    hang = Webhook(mode="hang") if kind == "unreachable" else None
    config = tmp / f"config-{label}.yml"
    port = write_config(config, kind, hook, hang)
    server = Server(tmp, env, label, {"PLAYDECK_SUPERVISOR_MODULE": REPLAY_MODULE, "PLAYDECK_CONFIG": str(config)})
    try:
        await server.start(PARALLEL)
        got = await flood(server, tmp, label, lines, hook if kind == "on" else None, port)
        if kind != "on":
            got["pending"] = [hang.hits if hang else 0]  # requests taken, never answered
            got["delays"] = await delays(server, tmp, label)
            got["pending"].append(hang.hits if hang else 0)
            got["status"] = await server.conn.status()
    finally:
        stopping = time.monotonic()
        await server.stop()
        stopped = time.monotonic() - stopping
        if hang is not None:
            hang.close()
    got["load"], got["stop"] = loadavg(), stopped
    return got


# -- rows ------------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def ms(values: list[float]) -> str:
    return ", ".join(f"{v * 1e3:.1f}" for v in values)


async def main(quick: bool) -> list[dict[str, Any]]:
    rounds = 2 if quick else 3
    lines = 4_000 if quick else 12_000
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CONFIGS}
    rows: list[dict[str, Any]] = []
    load_before = loadavg()
    with isolated("observability") as (tmp, env), Webhook() as hook:
        env.update(ANSIBLE_ENV)
        env.pop("PLAYDECK_SUPERVISOR_MODULE", None)
        sock = tmp / "sock" / "server.sock"
        try:
            for rnd in range(rounds):
                for kind in CONFIGS:
                    runs[kind].append(await one_run(tmp, env, kind, rnd, lines, hook))
        except Exception as exc:  # noqa: BLE001 - a failed run is a row saying why
            rows.append(row("observability.run-error", None, notes=f"{type(exc).__name__}: {exc}"))
        finally:
            left = await killed_leftovers(sock)
    if all(len(r) == rounds for r in runs.values()):
        rows += cpu_rows(runs, lines, load_before)
        rows += delay_rows(runs)
    rows.append(
        row(
            "observability.leftover_processes",
            len(left),
            "",
            target=0,
            target_of="value",
            notes=f"processes of our servers alive after the bench (killed now): {left}; `server stop` took "
            + "; ".join(f"{k} [{', '.join(format(r['stop'], '.2f') for r in v)}] s" for k, v in runs.items())
            + f"; load {loadavg()}",
        )
    )
    return rows


def cpu_rows(runs: dict[str, list[dict[str, Any]]], lines: int, load_before: str) -> list[dict[str, Any]]:
    base = med([r["us"] for r in runs["off"]])
    each = {kind: [r["us"] for r in got] for kind, got in runs.items()}
    checks = {kind: all(r["complete"] and r["posted"] for r in got) for kind, got in runs.items()}
    scraped = [r["scraped"] for r in runs["on"]]
    counted = all(s["events_total"] == r["events"] for s, r in zip(scraped, runs["on"]))
    common = (
        f"{FLOOD_JOBS} replay jobs x {replay_events(lines)} events, {PARALLEL} at a time; server CPU "
        f"(/proc stat utime+stime) from the go to every job ended; runs interleaved off/on/unreachable, "
        f"median of {len(runs['off'])}; us/event per run: off [{', '.join(f'{v:.1f}' for v in each['off'])}]"
    )
    rows = []
    for kind, name, said in (
        ("on", "metrics_and_notify", "metrics scraped every 1 s + notify to a live loopback receiver"),
        ("unreachable", "unreachable_notify", "notify to a refused port and to a receiver that never answers"),
    ):
        value = med(each[kind])
        extra = ""
        if kind == "on":
            extra = (
                f"; every job's alert received before the CPU was read; scrapes per run "
                f"{[s['scrapes'] for s in scraped]}, scrape errors {sum(len(s['errors']) for s in scraped)}, "
                f"playdeck_events_total at the end == events sent: {counted} "
                f"({[s['events_total'] for s in scraped]})"
            )
        else:
            extra = f"; requests the hanging receiver had taken (none answered) before and after the delays were measured {[r['pending'] for r in runs[kind]]}"
        rows.append(
            row(
                f"observability.cpu_per_event_{name}",
                round(value, 2),
                "us/event",
                baseline=round(base, 2),
                target=CPU_TARGET,
                notes=f"{said} vs both off; {kind} [{', '.join(f'{v:.1f}' for v in each[kind])}]; {common}; "
                f"all jobs successful with every result counted: {checks['off'] and checks[kind]}{extra}; "
                f"loads after each {kind} run {[r['load'] for r in runs[kind]]}; load before {load_before}",
                samples={k: [round(v, 2) for v in each[k]] for k in ("off", kind)},
            )
        )
    return rows


def delay_rows(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    what = {
        "short": (
            "short_job_end",
            f"a {replay_events(SHORT_LINES)}-event replay job: submission -> its end in the engine",
        ),
        "status": ("status_latency", "GET /v1/status round trip through the socket"),
        "cancel": ("cancel_blocked_latency", "POST cancel of a job blocked `after` a running one"),
    }
    for key, (name, said) in what.items():
        off = [v for r in runs["off"] for v in r["delays"][key]]
        bad = [v for r in runs["unreachable"] for v in r["delays"][key]]
        rows.append(
            row(
                f"observability.{name}_unreachable",
                round(med(bad) * 1e3, 2),
                "ms",
                baseline=round(med(off) * 1e3, 2),
                target=f"<= a + {DELAY_ADDED * 1e3:.0f} ms",
                met=med(bad) - med(off) <= DELAY_ADDED,
                notes=f"{said}, with alerts to a refused port and a never-answering receiver pending (c) vs "
                f"no notify (a); the ratio c/a is reported, the target bounds the time added; median of {len(bad)} / {len(off)}; max {max(bad) * 1e3:.1f} / "
                f"{max(off) * 1e3:.1f} ms; c: [{ms(bad)}] ms; a: [{ms(off)}] ms",
            )
        )
    targets = {str(r["status"].get("notify")) for r in runs["unreachable"]}
    rows[-1]["notes"] += f"; the c servers' notify targets (status, redacted): {sorted(targets)}"
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    return asyncio.run(main(quick))


if __name__ == "__main__":
    import sys

    from tests.bench.bench_ingest import print_rows

    print_rows(run("--quick" in sys.argv))
