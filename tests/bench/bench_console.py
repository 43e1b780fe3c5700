"""Console benchmarks: the REAL console process in a pseudo-terminal, attached to a real engine server.

    python -m tests.bench.bench_console            # quick, then full; prints the rows
    python -m tests.bench.run --only console       # through the suite runner

Every console here is `python -m tui ...` (the `playdeck` entry point) started with `pty.fork()`
at 120x40 (TERM=xterm-256color); a reader thread keeps every byte it draws with arrival times; a
"signal" is a byte pattern in what arrived after a key was written (see console_attach.PtyProcess).
The console is a thin client of the per-user engine server: each bench run starts its own server
first (console_attach.BenchServer: private 0700 socket dir, own state dir, `--idle-exit 0`), so a
startup measures attaching, and stops it (SIGTERM) in a finally block. Jobs run under the server:
the console's own CPU and the server's (with its reaped children) are read apart.

1. Startup (`-i sample_inventory/hosts.yml`, attaching to an empty running server): launch until
   the footer ("Quit") is drawn, then `?` until the help is drawn; medians of runs interleaved with
   a minimal Textual app (Static + Footer, `?` opens a modal) started the same way. With a generated
   5,000-host inventory (50 groups; the console runs ansible-inventory itself): `?` right after the
   first frame while ansible-inventory still runs, and keys typed into the job filter until 1.5 s
   after the tree is drawn.
2. Attach (console_attach.bench_attach): a console attaching to a server holding 50 finished jobs
   (replay supervisor) until its first frame shows the footer and job rows; median and max, vs the
   same console attaching to an empty server.
3. Events through the server socket (console_attach.bench_events): 4 replay jobs released at once
   with 1 and then 3 consoles attached; the events/s the server sustained and each console's own
   CPU per event ingested by the server.
4. Keys under load: 6 real Ansible jobs (4 x chatty.yml, disk_cleanup, health_check) submitted by
   the console's job file to the server; `j`/`k` alternate; signal: the log title
   (" <job> · <status> · following|paused") naming the newly selected job (redrawn by the key's
   handling; the 4 Hz tick only redraws it with the current name). Random 40-120 ms pauses between
   keys. Baseline: the same keys in a new console on the same server once those jobs are stopped
   (q, y). A what-if row repeats the loaded run with every autogroup of the jobs' processes at
   nice 10 (/proc/PID/autogroup).
5. CPU of a whole run: 4 chatty jobs to completion from a job file. Console CPU = its own
   utime+stime from its first frame until every job ended; server CPU = the server's
   utime+stime+cutime+cstime over the same window (read once every supervisor is reaped). Events =
   lines of every attempt's events.jsonl. Baseline: `python -m tui run JOBFILE` (headless, engine
   in-process), own and cutime+cstime from its first supervisor to its last reading. The whole-run
   row compares console + server from the console's launch (the server's preflight at submission
   included) with the headless run's rusage (preflight on too). One pair of runs in quick mode,
   three interleaved pairs in full: each row from the median pair.

Each console is quit with `q` (then `y` when it asks). Every process is tagged with an environment
marker; whatever carries it after the console or server is gone is killed by pid and reported.
"""

from __future__ import annotations

import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from tests.bench.console_attach import (
    FINISHED,
    HELP_TEXT,
    INVENTORY,
    MARK_VAR,
    PLAYBOOKS,
    ROOT,
    TITLE,
    BenchServer,
    Console,
    alive,
    bench_attach,
    bench_env,
    bench_events,
    chatty,
    cmdline,
    count_events,
    cpu_seconds,
    job_statuses,
    leftover_note,
    loadavg,
    machine_busy,
    percentile,
    pids_with_env,
    row,
    wait_until,
    warm_bytecode,
    write_jobfile,
)
from tests.conftest import _read

MINIMAL_APP = '''\
"""Baseline: the smallest Textual app with a footer and a `?` key, launched like the console."""
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class Help(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self):
        yield Static("playdeck keys")


class Minimal(App):
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("question_mark", "help", "Help")]

    def compose(self):
        yield Static("minimal baseline")
        yield Footer()

    def action_help(self):
        self.push_screen(Help())


Minimal().run()
'''


def write_inventory(path: Path, hosts: int = 5000, groups: int = 50) -> Path:
    lines = ["all:", "  vars:", "    ansible_connection: local", "  children:"]
    per = hosts // groups
    for g in range(groups):
        lines += [
            f"    grp{g:02d}:",
            "      vars:",
            f"        role_desc: generated group {g}",
            f"        app_port: {8000 + g}",
            "      hosts:",
        ]
        for h in range(per):
            n = g * per + h
            lines += [
                f"        node{n:05d}.grp{g:02d}.example:",
                f"          ansible_host: 10.{g}.{h // 250}.{h % 250 + 1}",
                f"          rack: r{h % 40:02d}",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- 1. startup ------------------------------------------------------------------


def _startup_once(
    workdir: Path, server: BenchServer | None, args: list[str] | None, script: Path | None = None
) -> dict[str, float]:
    console = Console(args or [], workdir, server, script=script)
    try:
        frame = console.first_frame()
        cpu = cpu_seconds(console.pid)
        start = console.proc.offset
        key = console.proc.send(b"?")
        found = console.proc.wait_for(HELP_TEXT, start, 30)
        if found is None:
            raise RuntimeError("? did not show the help within 30 s")
        console.proc.send(b"?")  # close the help again, so q quits
        time.sleep(0.3)
        return {
            "frame": frame - console.proc.started,
            "key": found[0] - key,
            "usable": found[0] - console.proc.started,
            "cpu": cpu[0] if cpu else float("nan"),
        }
    finally:
        console.quit()
        if console.leftover:
            raise RuntimeError(f"startup console left processes: {console.leftover}")


def _big_inventory_key(workdir: Path, server: BenchServer, inventory: Path) -> dict[str, Any]:
    """First frame, then `?` at once, while ansible-inventory is still running (checked in /proc)."""
    console = Console(["-i", str(inventory)], workdir, server)
    try:
        frame = console.first_frame()
        loading = [p for p in console.ours() if "ansible-inventory" in cmdline(p)]
        start = console.proc.offset
        key = console.proc.send(b"?")
        found = console.proc.wait_for(HELP_TEXT, start, 30)
        still = [p for p in loading if alive(p)]
        if found is None:
            raise RuntimeError("? did not show the help within 30 s (5k inventory)")
        return {
            "frame": frame - console.proc.started,
            "key": found[0] - key,
            "loading_at_key": bool(loading),
            "loading_at_help": bool(still),
        }
    finally:
        console.quit()
        if console.leftover:
            raise RuntimeError(f"5k-inventory console left processes: {console.leftover}")


def _big_inventory_typing(workdir: Path, server: BenchServer, inventory: Path) -> dict[str, Any]:
    """Keys typed into the job filter from the first frame until the 5,000-host tree is drawn, and 1.5 s more.

    Each key's signal is the whole filter value it makes, which is unique: every round starts with an untimed
    prefix `r<N>q` after Ctrl+U, then a..z are timed one by one."""
    console = Console(["-i", str(inventory)], workdir, server)
    result: dict[str, Any] = {}
    try:
        console.first_frame()
        start = console.proc.offset
        console.proc.send(b"/")
        if console.proc.wait_for(re.compile(rb"filter jobs"), start, 30) is None:
            raise RuntimeError("/ did not open the job filter")
        latencies: list[float] = []
        shown = re.compile(rb"grp\d\d")  # group rows of the tree: drawn only once the inventory is loaded
        loaded_at: float | None = None
        stop_after: float | None = None
        round_no, typed = 0, ""
        scan_from, next_look = 0, time.monotonic() + 1
        alphabet = "abcdefghijklmnopqrstuvwxyz"
        while True:
            if not typed:  # a fresh, unique prefix for this round (not timed)
                round_no += 1
                console.proc.send(b"\x15")  # ctrl+u: clear the input
                time.sleep(0.05)
                typed = f"r{round_no}q"
                start = console.proc.offset
                console.proc.send(typed.encode())
                if console.proc.wait_for(re.compile(re.escape(typed.encode())), start, 30) is None:
                    result["lost"] = f"typed {typed!r} did not appear within 30 s; probe stopped"
                    break
            char = alphabet[len(typed) - len(f"r{round_no}q")]
            typed += char
            start = console.proc.offset
            key = console.proc.send(char.encode())
            got = console.proc.wait_for(re.compile(re.escape(typed.encode())), start, 30)
            latencies.append(30.0 if got is None else got[0] - key)
            if got is None:
                result["lost"] = f"typed {char!r} did not appear within 30 s; probe stopped"
                break
            if char == alphabet[-1]:
                typed = ""
            if loaded_at is None:
                m = shown.search(console.proc.snapshot(scan_from))
                if m:
                    loaded_at = console.proc.time_of(scan_from + m.end())
                    stop_after = time.monotonic() + 1.5
                else:
                    scan_from = max(0, console.proc.offset - 64)
                    if stop_after is None and time.monotonic() > next_look:
                        next_look = time.monotonic() + 1
                        if not any("ansible-inventory" in cmdline(p) for p in console.ours()):
                            stop_after = time.monotonic() + 3  # loading ended without a tree (an error?)
            if stop_after is not None and time.monotonic() > stop_after:
                break
            if time.monotonic() - console.proc.started > 120:
                break
            time.sleep(random.uniform(0.03, 0.08))
        result["typed"] = latencies
        result["loaded"] = None if loaded_at is None else loaded_at - console.proc.started
        console.proc.send(b"\x15\r")  # clear the filter, back to the grid
        time.sleep(0.3)
    finally:
        console.quit()
        result["leftover"] = console.leftover
    return result


def bench_startup(quick: bool, workdir: Path) -> list[dict[str, Any]]:
    """Every console attaches to one empty server started beforehand (attaching, not starting a server)."""
    server = BenchServer(workdir, "startup")
    try:
        rows = _startup_rows(quick, workdir, server)
    finally:
        server.stop()
    if server.leftover:
        rows[-1]["notes"] += f"; server LEFT BEHIND (killed): {server.leftover}"
    return rows


def _startup_rows(quick: bool, workdir: Path, server: BenchServer) -> list[dict[str, Any]]:
    reps = 3 if quick else 7
    script = workdir / "minimal_app.py"
    script.write_text(MINIMAL_APP, encoding="utf-8")
    _startup_once(workdir, None, None, script)  # warm the page cache for both, untimed
    _startup_once(workdir, server, ["-i", str(INVENTORY)])
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    loads = []
    for _ in range(reps):  # interleaved, so a burst of load from elsewhere hits both
        base.append(_startup_once(workdir, None, None, script))
        ours.append(_startup_once(workdir, server, ["-i", str(INVENTORY)]))
        loads.append(loadavg().split()[0])
    med = {k: statistics.median(r[k] for r in ours) for k in ("frame", "key", "usable")}
    bmed = {k: statistics.median(r[k] for r in base) for k in ("frame", "key", "usable")}
    spread = lambda rs, k: "/".join(f"{r[k]:.2f}" for r in rs)  # noqa: E731
    rows = [
        row(
            "console.startup.first_frame",
            med["frame"],
            "s",
            bmed["frame"],
            "<= 1 s",
            med["frame"] <= 1.0,
            f"median of {reps}; launch -> footer 'Quit' drawn, sample inventory, attaching to an empty server "
            f"started beforehand; runs {spread(ours, 'frame')} s; "
            f"minimal app {spread(base, 'frame')} s; CPU used by the first frame (load-independent): "
            f"{statistics.median(r['cpu'] for r in ours):.2f} s vs minimal app "
            f"{statistics.median(r['cpu'] for r in base):.2f} s; 1-min load {'/'.join(loads)}",
        ),
        row(
            "console.startup.input_accepted",
            med["usable"],
            "s",
            bmed["usable"],
            "<= 1 s",
            med["usable"] <= 1.0,
            f"median of {reps}; launch -> '?' pressed at first frame -> help drawn; "
            f"key->help {statistics.median(r['key'] for r in ours) * 1000:.0f} ms "
            f"(minimal app {statistics.median(r['key'] for r in base) * 1000:.0f} ms); runs {spread(ours, 'usable')} s",
        ),
    ]
    inventory = write_inventory(workdir / "h5k.yml")  # short: the tree's root label must fit the pane
    big = _big_inventory_key(workdir, server, inventory)
    confirmed = big["loading_at_key"] and big["loading_at_help"]
    probe = _big_inventory_typing(workdir, server, inventory)
    typed = probe["typed"]
    rows.append(
        row(
            "console.startup.5k_inventory.first_frame",
            big["frame"],
            "s",
            bmed["frame"],
            "<= 1 s",
            big["frame"] <= 1.0,
            f"5,000 hosts in 50 groups; inventory shown on screen {probe['loaded']:.1f} s after launch"
            if probe["loaded"] is not None
            else "5,000 hosts in 50 groups; inventory never shown within 120 s",
        )
    )
    rows.append(
        row(
            "console.startup.5k_inventory.key_while_loading",
            big["key"] * 1000,
            "ms",
            bmed["key"] * 1000,
            "<= 1000 ms",
            big["key"] <= 1.0 and confirmed,
            f"'?' right after the first frame -> help drawn; ansible-inventory alive in /proc when the key was written: "
            f"{big['loading_at_key']}, when the help was drawn: {big['loading_at_help']}; baseline = minimal app key->help",
        )
    )
    rows.append(
        row(
            "console.startup.5k_inventory.max_key_latency_during_load",
            max(typed) * 1000,
            "ms",
            bmed["key"] * 1000,
            "<= 1000 ms",
            max(typed) <= 1.0,
            f"a second launch: {len(typed)} keys typed into the job filter from the first frame until 1.5 s after the "
            f"5,000-host tree was drawn; p50 {percentile(typed, 50) * 1000:.0f} ms, p99 {percentile(typed, 99) * 1000:.0f} ms"
            + (f"; {probe['lost']}" if probe.get("lost") else "")
            + (f"; LEFT BEHIND: {probe['leftover']}" if probe["leftover"] else "; nothing left running"),
        )
    )
    return rows


# --- 2. keys under load ------------------------------------------------------------


def _title_name(match: re.Match[bytes]) -> str:
    return match.group(1).decode(errors="replace")


def _current_title(console: Console, timeout: float = 30) -> str:
    """The job named by the last log title drawn (the title is only redrawn when it changes,
    so it can be far back in the output)."""
    found = console.proc.wait_for(TITLE, 0, timeout)
    if found is None:
        raise RuntimeError("no log title on screen")
    last = None
    for m in TITLE.finditer(console.proc.snapshot(0)):
        last = m
    return _title_name(last or found[1])


def _press_jk(
    console: Console, count: int, warmup: int = 4, during: Callable[[], None] | None = None
) -> tuple[list[float], int]:
    """Alternate j/k; time each key until a title naming another job than the one before is drawn."""
    current = _current_title(console)
    latencies: list[float] = []
    timeouts = 0
    for i in range(warmup + count):
        key = b"j" if i % 2 == 0 else b"k"
        start = console.proc.offset
        sent = console.proc.send(key)
        found = console.proc.wait_for(TITLE, start, 10.0, accept=lambda m: _title_name(m) != current)
        if found is None:
            timeouts += 1
            if i >= warmup:
                latencies.append(10.0)
            current = _current_title(console)
        else:
            if i >= warmup:
                latencies.append(found[0] - sent)
            current = _title_name(found[1])
        if during is not None:
            during()
        time.sleep(random.uniform(0.04, 0.12))
    return latencies, timeouts


def _load_jobs(quick: bool) -> list[dict[str, Any]]:
    lines = 6000 if quick else 20000  # long enough to outlast the key presses; canceled by q, y
    jobs = [chatty(f"chatty-{h}", h, lines, 2000) for h in ("lb01", "cache01", "db01", "db02")]
    jobs += [
        {
            "name": "cleanup",
            "playbook": str(PLAYBOOKS / "disk_cleanup.yml"),
            "limit": "all:!ghost01",
            "extra_vars": {"cleanup_age": "1d", "fake_log_count": 8},
        },
        {"name": "health", "playbook": str(PLAYBOOKS / "health_check.yml"), "limit": "all:!ghost01"},
    ]
    return jobs


def main_thread_sched(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of the process's main thread."""
    raw = _read(f"/proc/{pid}/task/{pid}/schedstat").split()
    return (int(raw[0]) / 1e9, int(raw[1]) / 1e9) if len(raw) >= 2 else (0.0, 0.0)


def autogroups(pids: list[int]) -> list[str]:
    """The scheduler autogroup of each pid ("/autogroup-N nice X"): nice only orders tasks within one."""
    return [_read(f"/proc/{p}/autogroup").decode().strip() for p in pids]


class AutogroupNicer:
    """What-if for the suggested fix: keep every autogroup the jobs create at nice 10 (a write to
    /proc/PID/autogroup, which any process may do to its own user's processes to lower them)."""

    def __init__(self, find: Callable[[], list[int]], nice: int = 10):
        self.find, self.nice = find, nice
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "AutogroupNicer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in self.find():
                try:
                    with open(f"/proc/{pid}/autogroup", "w") as fh:
                        fh.write(str(self.nice))
                except OSError:
                    pass
            time.sleep(0.1)


def _loaded_phase(jobfile: Path, workdir: Path, server: BenchServer, count: int, renice_groups: bool) -> dict[str, Any]:
    """The console submits the job file to `server` and presses j/k while they stream; q, y stops them."""
    state = server.state
    console = Console([str(jobfile)], workdir, server)
    try:
        console.first_frame()
        # wait until the jobs really run: events flowing in at least 4 attempts
        wait_until(lambda: sum(1 for p in state.glob("runs/*/*/attempt-*/events.jsonl") if p.stat().st_size) >= 4, 90)
        time.sleep(3)
        nicer = AutogroupNicer(server.ours) if renice_groups else None
        if nicer is not None:
            nicer.__enter__()
            time.sleep(1)
        try:
            job_pids = server.ours()
            groups = autogroups(job_pids)
            console_group, server_group = autogroups([console.pid, server.pid])
            load_before = loadavg()
            busy0 = machine_busy()
            tree0 = {p: cpu_seconds(p) for p in job_pids}
            cpu0 = cpu_seconds(console.pid)
            sched0 = main_thread_sched(console.pid)
            t0 = time.monotonic()
            runnable: list[int] = []
            latencies, timeouts = _press_jk(
                console, count, during=lambda: runnable.append(int(loadavg().split()[3].split("/")[0]))
            )
            elapsed = time.monotonic() - t0
            sched1 = main_thread_sched(console.pid)
            cpu1 = cpu_seconds(console.pid)
            busy1 = machine_busy()
        finally:
            if nicer is not None:
                nicer.__exit__()
        tree_cpu = 0.0
        for p, before in tree0.items():
            after = cpu_seconds(p)
            if before and after:
                tree_cpu += after[0] - before[0]
        still = sorted(n for n, s in job_statuses(state).items() if s == "running")
        machine = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
        ran, waited = sched1[0] - sched0[0], sched1[1] - sched0[1]
        return {
            "latencies": latencies,
            "timeouts": timeouts,
            "elapsed": elapsed,
            "load": (
                f"1-min loadavg {load_before.split()[0]} -> {loadavg().split()[0]}, runnable tasks median "
                f"{statistics.median(runnable):.0f}; machine CPU busy {machine:.0f}% over {elapsed:.0f} s; this "
                f"run's job processes used {tree_cpu / elapsed:.2f} cores; {len(still)} jobs still running at "
                f"the end"
            ),
            "sched": (
                f"console main thread: on CPU {ran:.1f} s, runnable but waiting for a CPU {waited:.1f} s "
                f"of {elapsed:.1f} s; console CPU {(cpu1[0] - cpu0[0]) / elapsed * 100:.0f}% of a core"
            ),
            "groups": (
                f"console in {console_group}; server in {server_group}; its {len(job_pids)} job processes in "
                f"{len(set(groups))} autogroups ({', '.join(sorted(set(g.split(' ', 1)[1] for g in groups if ' ' in g)))})"
            ),
            "console": console,
        }
    finally:
        console.quit()
        wait_until(lambda: all(s in FINISHED for s in job_statuses(state).values()), 60)


def bench_keys(quick: bool, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    count = 20 if quick else 100
    jobfile = write_jobfile(workdir / "load-jobs.yml", _load_jobs(quick), max_parallel=6)
    server = BenchServer(workdir, "keys", max_parallel=6)
    try:
        loaded = _loaded_phase(jobfile, workdir, server, count, renice_groups=False)
        idle, idle_lat, idle_timeouts, per_key, idle_load = _idle_keys(workdir, server, count)
    finally:
        server.stop()
    # what-if: the same load with every job autogroup at nice 10 (the suggested fix, applied from outside)
    niced = BenchServer(workdir, "keys-niced", max_parallel=6)
    try:
        fixed = _loaded_phase(jobfile, workdir, niced, count, renice_groups=True)
    finally:
        niced.stop()
    lat = loaded["latencies"]
    p50, p99, top = (percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, max(lat) * 1000)
    b50, b99, btop = (percentile(idle_lat, 50) * 1000, percentile(idle_lat, 99) * 1000, max(idle_lat) * 1000)
    f_lat = fixed["latencies"]
    f50, f99 = percentile(f_lat, 50) * 1000, percentile(f_lat, 99) * 1000
    left = leftover_note(loaded["console"], idle, fixed["console"], server, niced)
    common = (
        f"{count} j/k presses after 4 untimed, jobs submitted by the console's job file to its server; key "
        f"written to the pty master -> log title naming the newly selected job drawn; baseline: a new console on "
        f"the same server once those jobs were stopped (q, y), showing the same jobs "
        f"(1-min load {idle_load.split()[0]}; {per_key:.0f} ms of console CPU per key there)"
    )
    return _key_rows(common, left, loaded, fixed, idle_timeouts, (p50, p99, top), (b50, b99, btop), (f50, f99)), {
        "loaded": loaded,
        "fixed": fixed,
    }


def _idle_keys(workdir: Path, server: BenchServer, count: int) -> tuple[Console, list[float], int, float, str]:
    """The same keys with no job running: a new console on the same server, showing the same (stopped) jobs."""
    idle = Console(["-i", str(INVENTORY)], workdir, server)
    try:
        idle.first_frame()
        wait_until(lambda: TITLE.search(idle.proc.snapshot()) is not None, 30)
        time.sleep(1.0)
        cpu0 = cpu_seconds(idle.pid)
        idle_lat, idle_timeouts = _press_jk(idle, count)
        cpu1 = cpu_seconds(idle.pid)
        idle_load = loadavg()
    finally:
        idle.quit()
    return idle, idle_lat, idle_timeouts, (cpu1[0] - cpu0[0]) * 1000 / (count + 4), idle_load


def _key_rows(
    common: str,
    left: str,
    loaded: dict[str, Any],
    fixed: dict[str, Any],
    idle_timeouts: int,
    ours: tuple[float, float, float],
    base: tuple[float, float, float],
    niced: tuple[float, float],
) -> list[dict[str, Any]]:
    (p50, p99, top), (b50, b99, btop), (f50, f99) = ours, base, niced
    lat = loaded["latencies"]
    return [
        row("console.keys_under_load.p50", p50, "ms", b50, None, None, common),
        row(
            "console.keys_under_load.p99",
            p99,
            "ms",
            b99,
            "<= 100 ms",
            p99 <= 100,
            f"{loaded['load']}; {loaded['sched']}; {loaded['groups']}; "
            f"timeouts (>10 s) loaded/idle: {loaded['timeouts']}/{idle_timeouts}{left}",
        ),
        row(
            "console.keys_under_load.max",
            top,
            "ms",
            btop,
            None,
            None,
            "every loaded latency (ms): " + " ".join(f"{x * 1000:.0f}" for x in lat),
        ),
        row(
            "console.keys_under_load.p99_jobs_autogroup_nice10",
            f99,
            "ms",
            p99,
            "<= 100 ms",
            f99 <= 100,
            f"what-if, not the product as shipped: same jobs, every autogroup of the jobs' processes set to nice 10 "
            f"through /proc/PID/autogroup while running (baseline = p99 as shipped); p50 {f50:.0f} ms; "
            f"{fixed['load']}; {fixed['sched']}; {fixed['groups']}",
        ),
    ]


# --- 3. console CPU per event -------------------------------------------------------


def _cpu_jobs(quick: bool) -> list[dict[str, Any]]:
    lines = 300 if quick else 1500
    return [chatty(f"cpu-{h}", h, lines, 300) for h in ("lb01", "cache01", "db01", "db02")]


def _console_cpu_run(jobfile: Path, workdir: Path, names: set[str], timeout: float) -> dict[str, Any]:
    """The console submits the job file to a fresh server; CPU of each from the console's first frame until
    every job ended and every supervisor is reaped (then in the server's cutime); and the whole run from the
    console's launch (its start-up, the server's preflight of the file and its warm preflight spare included)."""
    server = BenchServer(workdir, "cpu", max_parallel=len(names))
    state = server.state
    before, launch = set(server.ours()), server.cpu()
    console = Console([str(jobfile)], workdir, server)
    try:
        console.first_frame()
        start, srv0, srv_own0 = cpu_seconds(console.pid), server.cpu(), cpu_seconds(server.pid)[0]
        sched0 = main_thread_sched(console.pid)
        launched = start[0]
        t0 = time.monotonic()
        done = wait_until(lambda: {n for n, s in job_statuses(state).items() if s in FINISHED} >= names, timeout, 0.5)
        server.reaped()
        end, srv1, srv_own1 = cpu_seconds(console.pid), server.cpu(), cpu_seconds(server.pid)[0]
        spares = [p for p in server.ours() if p not in before]  # alive, so not in cutime: the warm preflight spare
        spare = sum(sum(cpu_seconds(p) or (0.0, 0.0)) for p in spares)
        wall = time.monotonic() - t0
        sched = main_thread_sched(console.pid)
        statuses = job_statuses(state)
        time.sleep(4)  # what each costs with nothing happening: its fixed, per-second part
        idle_for = time.monotonic() - t0 - wall
        idle_rate = (cpu_seconds(console.pid)[0] - end[0]) / idle_for
        server_idle = (cpu_seconds(server.pid)[0] - srv_own1) / idle_for
    finally:
        console.quit()
        server.stop()
    return {
        "own": end[0] - start[0],
        "server": srv1 - srv0,
        "whole": end[0] + srv1 - launch + spare,
        "server_whole": srv1 - launch + spare,
        "spare": f"{spare:.2f} s in {len(spares)} process(es) not yet reaped",
        "server_own": srv_own1 - srv_own0,
        "startup": launched,
        "wall": wall,
        "events": count_events(state),
        "done": done,
        "statuses": statuses,
        "leftover": console.leftover + server.leftover,
        "idle_rate": idle_rate,
        "server_idle": server_idle,
        "waited": sched[1] - sched0[1],
    }


def _headless_cpu_run(jobfile: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    state = workdir / f"cpu-headless-{uuid.uuid4().hex[:6]}"
    mark = uuid.uuid4().hex
    env = bench_env(workdir)  # no server: `playdeck run` is self-contained (a socket nobody serves, to be sure)
    env.update(PLAYDECK_STATE_DIR=str(state), PLAYDECK_SOCKET=str(workdir / "no-server" / "s.sock"), **{MARK_VAR: mark})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "run", str(jobfile)],  # preflight, as the server does at submission
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = last = None
    whole = None
    t0 = time.monotonic()
    try:
        while proc.returncode is None and time.monotonic() - t0 < timeout:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # its rusage: own + every child it waited for
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                whole = usage.ru_utime + usage.ru_stime
                break
            reading = cpu_seconds(proc.pid)
            if reading is not None:
                if start is None and any(
                    "tui.core.running.supervisor" in cmdline(p)
                    for p in pids_with_env(f"{MARK_VAR}={mark}")
                    if p != proc.pid
                ):
                    start = reading
                if start is not None:
                    last = reading
            time.sleep(0.02 if start is None else 0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    leftover = []
    if not wait_until(lambda: not pids_with_env(f"{MARK_VAR}={mark}"), 15):
        for pid in pids_with_env(f"{MARK_VAR}={mark}"):
            leftover.append(f"{pid} {cmdline(pid)[:80]}")
            os.kill(pid, signal.SIGKILL)
    if start is None or last is None or whole is None:
        raise RuntimeError("the headless run's supervisors were never seen, or it did not end")
    return {
        "own": last[0] - start[0],
        "children": last[1] - start[1],
        "own_whole": last[0],
        "whole": whole,
        "events": count_events(state),
        "rc": proc.returncode,
        "leftover": leftover,
    }


def bench_cpu(quick: bool, workdir: Path) -> list[dict[str, Any]]:
    """One pair of runs (console + server, then headless) in quick mode, three interleaved pairs in full: each
    row is the pair with the median value, the others' values in its notes (CPU time is noisy under load)."""
    jobs = _cpu_jobs(quick)
    names = {j["name"] for j in jobs}
    jobfile = write_jobfile(workdir / "cpu-jobs.yml", jobs, max_parallel=len(jobs))
    timeout = 300 if quick else 900
    runs: list[list[dict[str, Any]]] = []
    for _ in range(1 if quick else 3):
        load0 = loadavg()
        ours = _console_cpu_run(jobfile, workdir, names, timeout)
        load1 = loadavg()
        head = _headless_cpu_run(jobfile, workdir, timeout)
        runs.append(_cpu_rows(len(jobs), ours, head, load0, load1))
    return [median_row(list(same)) for same in zip(*runs)]


def median_row(same: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of the pair with the median value (the median ratio for a row without a target: a comparison),
    every pair's figures in its notes."""
    by_ratio = all(r["target"] is None and r["ratio"] is not None for r in same)
    ordered = sorted(same, key=lambda r: r["ratio"] if by_ratio else r["value"])
    picked = dict(ordered[len(ordered) // 2])
    if len(same) > 1:
        picked["notes"] += (
            f"; the pair with the median {'ratio' if by_ratio else 'value'} of {len(same)} interleaved pairs of runs: "
            f"values {'/'.join(str(r['value']) for r in same)}, baselines {'/'.join(str(r['baseline']) for r in same)}"
            f", ratios {'/'.join(str(r['ratio']) for r in same)}"
        )
    return picked


def _cpu_rows(jobs: int, ours: dict[str, Any], head: dict[str, Any], load0: str, load1: str) -> list[dict[str, Any]]:
    events = max(1, ours["events"])
    per_event = ours["own"] * 1000 / events
    console_whole = ours["whole"] - ours["server_whole"]
    share = ours["own"] / max(1e-9, ours["own"] + ours["server"]) * 100
    h_per_event = head["own"] * 1000 / max(1, head["events"])
    h_share = head["own"] / max(1e-9, head["own"] + head["children"]) * 100
    left = ours["leftover"] + head["leftover"]
    notes = (
        f"{jobs} chatty jobs to completion ({'complete' if ours['done'] else 'NOT all finished'}: "
        f"{sorted(set(ours['statuses'].values()))}); {ours['events']} events ingested by the server (headless "
        f"{head['events']}) in {ours['wall']:.0f} s; console's own CPU {ours['own']:.2f} s from first frame to all "
        f"jobs ended (+{ours['startup']:.2f} s before its first frame, excluded); baseline: the headless process's own "
        f"CPU {head['own']:.2f} s (it runs the engine too); 1-min load {load0.split()[0]} -> {load1.split()[0]}; "
        f"console main thread waited {ours['waited']:.0f} s for a CPU; with all jobs ended the console still used "
        f"{ours['idle_rate'] * 1000:.0f} ms CPU per second, so "
        f"{max(0.0, ours['own'] - ours['idle_rate'] * ours['wall']) * 1000 / events:.3f} ms/event is left beyond "
        f"that fixed cost"
    )
    return [
        row("console.cpu.per_event", per_event, "ms/event", h_per_event, "<= 0.2 ms/event", per_event <= 0.2, notes),
        row(
            "console.cpu.share",
            share,
            "%",
            h_share,
            "<= 3 %",
            share <= 3.0,
            "the console's own CPU / (console + server, the server's utime+stime+cutime+cstime: its engine and "
            "every job process) from the console's first frame to all jobs ended; baseline: headless own / (own + "
            "cutime+cstime) from its first supervisor on; from launch on (start-ups and preflights included) the "
            f"console's share is {console_whole / max(1e-9, ours['whole']) * 100:.2f} % (headless "
            f"{head['own_whole'] / max(1e-9, head['whole']) * 100:.2f} %)",
        ),
        row(
            "console.cpu.whole_run",
            ours["whole"],
            "s",
            head["whole"],
            None,
            None,
            f"CPU of the whole run, from the console's launch to all jobs ended: console own {console_whole:.2f} s + "
            f"server {ours['server_whole']:.2f} s (utime+stime+cutime+cstime: its engine, the preflight of the file "
            f"at submission, every job process; plus its warm preflight spare still alive, {ours['spare']}); from the "
            f"console's first frame on: console {ours['own']:.2f} s, server {ours['server']:.2f} s (its own "
            f"{ours['server_own']:.2f} s); baseline: headless `playdeck run JOBFILE` (preflight on, as the server "
            f"does) from launch to exit, its rusage (own + every child it waited for; rc {head['rc']}); from its "
            f"first supervisor on: own {head['own']:.2f} s + children {head['children']:.2f} s"
            + (f"; LEFT BEHIND (killed): {left}" if left else "; nothing left running"),
        ),
        row(
            "console.cpu.server_engine_per_event",
            ours["server_own"] * 1000 / events,
            "ms/event",
            h_per_event,
            None,
            None,
            f"the server process's own CPU (engine, socket, one console attached) per event vs the headless "
            f"process's own; the server idle afterwards: {ours['server_idle'] * 1000:.0f} ms CPU per second",
        ),
    ]


# --- entry points ---------------------------------------------------------------------


def run(quick: bool) -> list[dict[str, Any]]:
    """Startup, attach, events through the server, keys under load and CPU of a whole run; `quick` takes fewer
    samples and smaller jobs. A bench that fails becomes one row saying why; no server is left running."""
    rows: list[dict[str, Any]] = []
    warm_bytecode()
    with tempfile.TemporaryDirectory(prefix="playdeck-bench-console-") as tmp:
        workdir = Path(tmp)
        benches: list[tuple[str, Callable[[bool, Path], list[dict[str, Any]]]]] = [
            ("startup", bench_startup),
            ("attach", bench_attach),
            ("events", bench_events),
            ("keys", lambda q, w: bench_keys(q, w)[0]),
            ("cpu", bench_cpu),
        ]
        for name, bench in benches:
            try:
                rows.extend(bench(quick, workdir))
            except Exception as exc:  # one bench failing must not hide the others
                rows.append(row(f"console.{name}", None, "", notes=f"bench failed: {type(exc).__name__}: {exc}"))
        rows.append(_leftovers(workdir))
    return rows


def _leftovers(workdir: Path) -> dict[str, Any]:
    """Every process still carrying one of this run's sockets (servers, jobs, consoles), killed by pid."""
    needle = f"PLAYDECK_SOCKET={workdir}/".encode()
    left = [p for p in pids_with_env(needle.decode()) if alive(p)]
    names = [f"{p} {cmdline(p)[:60]}" for p in left]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return row(
        "console.leftover_processes",
        len(left),
        "",
        None,
        "0",
        not left,
        f"processes with this run's PLAYDECK_SOCKET alive after every bench (killed now): {names or 'none'}",
    )


def _print(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        met = {True: "met", False: "MISSED", None: ""}[r["met"]]
        print(
            f"{r['name']:<55} {r['value']!s:>9} {r['unit']:<9} base {r['baseline']!s:>8} "
            f"ratio {r['ratio']!s:>6} {r['target'] or '':<16} {met}"
        )
        if r["notes"]:
            print(f"    {r['notes']}")


if __name__ == "__main__":
    for quick in (True, False):
        print(f"== {'quick' if quick else 'full'}  (loadavg {loadavg()})", flush=True)
        _print(run(quick))
        print(f"   loadavg after: {loadavg()}", flush=True)
