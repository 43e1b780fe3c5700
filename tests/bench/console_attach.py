"""The attached console, measured: a console in a pty attached to a bench server of its own.

Shared by bench_console (startup, keys under load, CPU of a whole run) and the rows of issue 10
measured here: a console attaching to a server that holds 50 jobs (first frame showing job rows)
and the console's CPU per event through the server socket with one and with three consoles.

Every bench run gets its own `BenchServer`: `python -m tui.server --foreground --idle-exit 0
--max-parallel N`, started by the bench BEFORE any console (so a console's startup measures
attaching, never starting a server), with PLAYDECK_SOCKET in a private 0700 temp dir and its own
PLAYDECK_STATE_DIR; consoles get the same two variables. Jobs run under the server, so a console's
cutime/cstime no longer include them: the console's own CPU (utime+stime) and the server's
(utime+stime+cutime+cstime, pid from `python -m tui server status --json`) are read apart.
The server is stopped with SIGTERM (which cancels its jobs) in a finally block; whatever still
carries its marker is then killed by pid and reported.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import json
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from tests.conftest import _read, end_leftovers  # one /proc reader for every test and bench

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "sample_inventory" / "hosts.yml"
PLAYBOOKS = ROOT / "sample_playbooks"
COLS, ROWS = 120, 40
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARK_VAR = "PLAYDECK_BENCH_CONSOLE"
STATUSES = ("queued", "running", "waiting", "successful", "failed", "timeout", "canceled", "error", "interrupted")
FINISHED = {"successful", "failed", "timeout", "canceled", "error", "interrupted"}
QUIT_LABEL = re.compile(rb"Quit")
HELP_TEXT = re.compile(rb"playdeck keys")
REPLAY_MODULE = "tests.bench.replay_supervisor"
# the log title: " <name> · <status> · following|paused"
TITLE = re.compile(
    rb" ([^\x00-\x20\x7f]+) \xc2\xb7 (?:"
    + b"|".join(s.encode() for s in STATUSES)
    + rb") \xc2\xb7 (?:following|paused)"
)


# --- /proc -------------------------------------------------------------------


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from field 3 (state) on; None once the process is gone."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(own utime+stime, waited-for children's cutime+cstime) in seconds."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children


def alive(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def pids_with_env(needle: str) -> list[int]:
    want = needle.encode()
    me = str(os.getpid())
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and p != me and want in _read(f"/proc/{p}/environ") and alive(int(p))
    ]


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def loadavg() -> str:
    return _read("/proc/loadavg").decode().strip()


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [int(x) for x in _read("/proc/stat").split(b"\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


# --- bytecode ----------------------------------------------------------------------

PYCACHE = Path(tempfile.gettempdir()) / "playdeck-bench-pycache"


def bytecode_env() -> dict[str, str]:
    """Cached bytecode for every process of the benchmarks, as an installed playdeck has.

    This machine sets PYTHONDONTWRITEBYTECODE=1 and playdeck is an editable install, so without this
    every console would compile its own sources at each start while Textual (pip-installed, with .pyc)
    would not: an unfair comparison with the baseline app. The cache lives outside the repository."""
    return {"PYTHONPYCACHEPREFIX": str(PYCACHE), "PYTHONDONTWRITEBYTECODE": ""}


def warm_bytecode() -> None:
    """Fill the cache before anything is timed (what the benchmarks' processes import)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    code = (
        "import tui.cli, tui.headless, tui.console.app, tui.core.running.supervisor, ansible_runner, textual.app, "
        "textual.widgets, ansible.cli.playbook, ansible.cli.inventory, ansible.executor.playbook_executor"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        check=False,
        timeout=300,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- a process in a pseudo-terminal -------------------------------------------


class PtyProcess:
    """One process on the slave side of a pty; every byte it draws is kept, with arrival times."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path = ROOT):
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.buf = bytearray()
        self._ends: list[int] = []  # end offset of each chunk read
        self._times: list[float] = []  # monotonic time each chunk was read
        self._cond = threading.Condition()
        self._done = False
        self.exit_status: int | None = None
        self.started = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty slave is already stdin/stdout/stderr and the controlling terminal
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self._reader = threading.Thread(target=self._read_loop, name=f"pty-{pid}", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
            except (OSError, ValueError):
                break
            if not ready:
                if self.exit_status is not None:
                    break
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:  # EIO: the slave side is closed, the process is gone
                break
            if not data:
                break
            now = time.monotonic()
            with self._cond:
                try:
                    self.buf += data
                except BufferError:  # a search still holds the old buffer: grow a copy instead
                    self.buf = self.buf + data
                self._ends.append(len(self.buf))
                self._times.append(now)
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    @property
    def offset(self) -> int:
        with self._cond:
            return len(self.buf)

    def snapshot(self, start: int = 0) -> bytes:
        """A copy of what arrived from `start` on (never search `buf` itself without the lock: it grows)."""
        with self._cond:
            return bytes(self.buf[max(0, start) :])

    def time_of(self, offset: int) -> float:
        """When the byte just before `offset` arrived."""
        with self._cond:
            i = bisect.bisect_left(self._ends, offset)
            return self._times[min(i, len(self._times) - 1)]

    def send(self, data: bytes) -> float:
        """Write keys to the terminal; the time it was written."""
        t = time.monotonic()
        os.write(self.fd, data)
        return t

    def wait_for(
        self,
        pattern: re.Pattern[bytes],
        start: int,
        timeout: float,
        accept: Callable[[re.Match[bytes]], bool] = lambda m: True,
    ) -> tuple[float, re.Match[bytes]] | None:
        """First match of `pattern` in what arrived from `start` on that `accept`s: (arrival time, match)."""
        deadline = time.monotonic() + timeout
        pos = start
        overlap = 512
        with self._cond:
            while True:
                for match in pattern.finditer(self.buf, pos):
                    if match.start() >= start and accept(match):
                        i = bisect.bisect_left(self._ends, match.end())
                        return self._times[min(i, len(self._times) - 1)], match
                pos = max(start, len(self.buf) - overlap)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._done:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def poll(self) -> int | None:
        if self.exit_status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.exit_status = -1
                return self.exit_status
            if pid == self.pid:
                self.exit_status = os.waitstatus_to_exitcode(status)
        return self.exit_status

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.exit_status

    def close(self) -> None:
        if self.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                if self.wait(3) is not None:
                    break
        self._reader.join(timeout=2)
        try:
            os.close(self.fd)
        except OSError:
            pass


def bench_env(workdir: Path) -> dict[str, str]:
    """The environment of every console and server here: no user config, no inherited terminal or test
    settings, cached bytecode, real Ansible unless a server asks for the replay supervisor."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEXTUAL", "TMUX"))
        and k not in ("COLUMNS", "LINES", "NO_COLOR", "PYTEST_CURRENT_TEST", "PLAYDECK_SUPERVISOR_MODULE")
    }
    env.update(
        {
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
            "PLAYDECK_CONFIG": str(workdir / "no-config.yml"),  # a user's config must not change keys or theme
            "TMPDIR": str(workdir),
        }
    )
    env.update(bytecode_env())
    return env


class BenchServer:
    """The engine server of one bench run, started before its consoles: `python -m tui.server --foreground
    --idle-exit 0 --max-parallel N`, PLAYDECK_SOCKET in a private 0700 temp dir, its own PLAYDECK_STATE_DIR.
    Always stopped by `stop()` (SIGTERM, then SIGKILL; then whatever carries its marker, by pid)."""

    def __init__(self, workdir: Path, label: str, max_parallel: int = 4, replay: bool = False) -> None:
        self.label = label
        self.sockdir = Path(tempfile.mkdtemp(prefix=f"sock-{label}-", dir=workdir))
        os.chmod(self.sockdir, 0o700)
        self.sock = self.sockdir / "server.sock"
        self.state = workdir / f"state-{label}-{uuid.uuid4().hex[:6]}"
        self.mark = f"{MARK_VAR}={uuid.uuid4().hex}"
        self.env = bench_env(workdir)
        self.env.update(
            {
                "PLAYDECK_SOCKET": str(self.sock),
                "PLAYDECK_STATE_DIR": str(self.state),
                MARK_VAR: self.mark[len(MARK_VAR) + 1 :],
            }
        )
        if replay:
            self.env["PLAYDECK_SUPERVISOR_MODULE"] = REPLAY_MODULE
        self.log = workdir / f"server-{label}.log"
        self.leftover: list[str] = []
        cmd = [
            sys.executable,
            "-m",
            "tui.server",
            "--foreground",
            "--idle-exit",
            "0",
            "--max-parallel",
            str(max_parallel),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            self.pid = self._started()
        except BaseException:
            self.stop()
            raise

    def _started(self, timeout: float = 90) -> int:
        from tui.server.paths import knock

        deadline = time.monotonic() + timeout
        while knock(self.sock, 2) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {self.label} did not start: {self.log.read_text(errors='replace')[-400:]}")
            time.sleep(0.05)
        status = subprocess.run(
            [sys.executable, "-m", "tui", "server", "status", "--json"],
            env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        pid = int(json.loads(status.stdout)["pid"])
        if pid != self.proc.pid:
            raise RuntimeError(f"server status says pid {pid}, we started {self.proc.pid}")
        return pid

    def cpu(self) -> float:
        """utime+stime+cutime+cstime: the server and every job process it has reaped."""
        got = cpu_seconds(self.pid)
        return got[0] + got[1] if got else float("nan")

    def ours(self) -> list[int]:
        """The server's descendants (they inherit its marker): supervisors, ansible, their forks."""
        return [p for p in pids_with_env(self.mark) if p != self.pid]

    def request(self, call: Callable[[Any], Any]) -> Any:
        """One request on a fresh connection: `call(conn)` is awaited."""
        from tui.client.connection import Connection

        async def go() -> Any:
            async with Connection(self.sock, timeout=60) as conn:
                return await call(conn)

        return asyncio.run(go())

    def jobs(self) -> dict[str, dict[str, Any]]:
        """name -> the server's /v1/jobs entry (`playdeck run --json` shape)."""
        return {j["name"]: j for j in self.request(lambda c: c.jobs())["jobs"]}

    def statuses(self) -> dict[str, str]:
        return {name: str(job["status"]) for name, job in self.jobs().items()}

    def submit(self, jobfile: Path) -> None:
        self.request(lambda c: c.submit(jobfile, preflight=False))

    def reaped(self, timeout: float = 30) -> bool:
        """Every supervisor gone (reaped, so its CPU is in the server's cutime)."""
        return wait_until(lambda: not [p for p in self.ours() if "supervisor" in cmdline(p)], timeout, 0.1)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(wait)
                except subprocess.TimeoutExpired:
                    self.leftover.append(f"server {self.proc.pid} alive {wait} s after {sig.name}")
        end_leftovers(
            self.ours,
            wait=10,
            note=lambda pid, sig: self.leftover.append(f"{pid} {cmdline(pid)[:80]} ({signal.Signals(sig).name})"),
        )

    def __enter__(self) -> "BenchServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Console:
    """One playdeck console (or the baseline app) in a pty, attached to `server`, with its own process marker."""

    def __init__(
        self, args: list[str], workdir: Path, server: BenchServer | None = None, script: Path | None = None
    ) -> None:
        self.mark = f"{MARK_VAR}={uuid.uuid4().hex}"
        self.server = server
        env = bench_env(workdir)
        if server is not None:
            env.update({k: server.env[k] for k in ("PLAYDECK_SOCKET", "PLAYDECK_STATE_DIR")})
        else:  # the baseline app attaches to nothing; a console by mistake must not find the user's server
            env.update({"PLAYDECK_SOCKET": str(workdir / "no-server" / "s.sock"), "PLAYDECK_STATE_DIR": str(workdir)})
        env[MARK_VAR] = self.mark.split("=", 1)[1]
        argv = [sys.executable, str(script)] if script else [sys.executable, "-m", "tui", *args]
        self.proc = PtyProcess(argv, env)
        self.pid = self.proc.pid
        self.leftover: list[str] = []

    @property
    def state(self) -> Path:
        assert self.server is not None
        return self.server.state

    def ours(self) -> list[int]:
        return [p for p in pids_with_env(self.mark) if p != self.pid]

    def first_frame(self, timeout: float = 60) -> float:
        found = self.proc.wait_for(QUIT_LABEL, 0, timeout)
        if found is None:
            raise RuntimeError(
                f"no first frame within {timeout}s; output tail: {self.proc.snapshot(self.proc.offset - 600)!r}"
            )
        return found[0]

    def quit(self, timeout: float = 60) -> int | None:
        """q, then y if it asks; then make sure nothing it started is left (killed by pid, and noted)."""
        asked = re.compile(rb"still queued or running")
        start = self.proc.offset
        for _ in range(3):  # a q that lands while a dialog is still closing is eaten by it: try again
            if self.proc.poll() is not None:
                break
            self.proc.send(b"q")
            deadline = time.monotonic() + 5
            answered = False
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self.proc.wait_for(asked, start, 0.2) is not None:
                    time.sleep(0.1)
                    self.proc.send(b"y")
                    answered = True
                    break
            if answered:
                break
        self.proc.wait(timeout)
        status = self.proc.poll()
        if status is None:
            self.leftover.append(f"console {self.pid} did not exit after q/y: killed")
        self.proc.close()
        end_leftovers(
            self.ours,
            note=lambda pid, sig: self.leftover.append(f"{pid} {cmdline(pid)[:80]} ({signal.Signals(sig).name})"),
        )
        return status


# --- helpers -------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def row(
    name: str,
    value: float | None,
    unit: str,
    baseline: float | None = None,
    target: str | None = None,
    met: bool | None = None,
    notes: str = "",
) -> dict[str, Any]:
    ratio = round(value / baseline, 2) if value is not None and baseline else None
    return {
        "name": name,
        "value": None if value is None else round(value, 3),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": ratio,
        "target": target,
        "met": met,
        "notes": notes,
    }


def write_jobfile(path: Path, jobs: list[dict[str, Any]], max_parallel: int) -> Path:
    import yaml

    path.write_text(
        yaml.safe_dump({"inventory": str(INVENTORY), "max_parallel": max_parallel, "jobs": jobs}, sort_keys=False),
        encoding="utf-8",
    )
    return path


def chatty(name: str, host: str, lines: int, cmd_lines: int) -> dict[str, Any]:
    return {
        "name": name,
        "playbook": str(PLAYBOOKS / "chatty.yml"),
        "limit": host,
        "extra_vars": {"chatty_lines": lines, "chatty_cmd_lines": cmd_lines},
    }


def job_statuses(state: Path) -> dict[str, str]:
    found = {}
    for path in state.glob("runs/*/*/job.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found[record.get("name")] = record.get("status")
    return found


def count_events(state: Path) -> int:
    total = 0
    for path in state.glob("runs/*/*/attempt-*/events.jsonl"):
        with open(path, "rb") as fh:
            total += sum(1 for _ in fh)
    return total


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def leftover_note(*owners: Console | BenchServer) -> str:
    left = [x for c in owners for x in c.leftover]
    return f"; LEFT BEHIND (killed): {left}" if left else "; nothing left running"


def watched(console: Console, timeout: float = 30) -> str:
    """The job named by the last log title drawn (the selected job: the one whose log the console watches)."""
    if console.proc.wait_for(TITLE, 0, timeout) is None:
        return "none"
    last = None
    for last in TITLE.finditer(console.proc.snapshot(0)):
        pass
    return last.group(1).decode(errors="replace") if last else "none"


def replay_jobs(server: BenchServer, workdir: Path, label: str, count: int, lines: int, go: Path) -> list[str]:
    """`count` replay jobs of `lines` synthetic events each, released by the go file, submitted to `server`."""
    from tests.bench.bench_server import replay_jobfile

    names = [f"{label}-{i:02d}" for i in range(count)]
    server.submit(replay_jobfile(workdir / f"{label}.yml", names, lines, go))
    return names


def all_finished(server: BenchServer, names: list[str]) -> bool:
    """From the job records on disk (polling the server's socket would add to the CPU measured)."""
    got = job_statuses(server.state)
    return all(got.get(n) in FINISHED for n in names)


# --- attach: a console attaching to a server holding 50 jobs -------------------------------


def _attach_once(workdir: Path, server: BenchServer, rows: re.Pattern[bytes] | None) -> dict[str, float]:
    """Launch -> first frame: the footer drawn and, with `rows`, a job row of the grid too."""
    console = Console(["-i", str(INVENTORY)], workdir, server)
    try:
        frame = console.first_frame()
        cpu = cpu_seconds(console.pid)
        if rows is not None:
            found = console.proc.wait_for(rows, 0, 30)
            if found is None:
                raise RuntimeError("the grid showed no job row within 30 s")
            frame = max(frame, found[0])
        return {"frame": frame - console.proc.started, "cpu": cpu[0] if cpu else float("nan")}
    finally:
        console.quit()
        if console.leftover:
            raise RuntimeError(f"attach console left processes: {console.leftover}")


def bench_attach(quick: bool, workdir: Path) -> list[dict[str, Any]]:
    """Median and max first frame of a console attaching to a server with 50 finished jobs (replay
    supervisor) vs the same console attaching to an empty server, launches interleaved."""
    reps = 4 if quick else 9
    job_row = re.compile(rb"att-\d\d")
    with BenchServer(workdir, "attach50", 4, replay=True) as full, BenchServer(workdir, "attach0") as empty:
        go = workdir / "go-attach"
        go.touch()
        names = replay_jobs(full, workdir, "att", 50, 200, go)
        if not wait_until(lambda: all_finished(full, names), 300, 0.5):
            raise RuntimeError("the 50 replay jobs did not finish within 300 s")
        _attach_once(workdir, full, job_row)  # untimed: page cache
        ours, base, loads = [], [], []
        for _ in range(reps):
            base.append(_attach_once(workdir, empty, None))
            ours.append(_attach_once(workdir, full, job_row))
            loads.append(loadavg().split()[0])
        events = count_events(full.state)
    left = leftover_note(full, empty)
    frames, bframes = [r["frame"] for r in ours], [r["frame"] for r in base]
    med, top = statistics.median(frames), max(frames)
    common = (
        f"{reps} launches of `playdeck -i hosts.yml` attaching to a running server holding 50 finished replay jobs "
        f"({events} events on disk) -> first frame with the footer and a job row (att-NN) drawn; runs "
        f"{'/'.join(f'{x:.2f}' for x in frames)} s; baseline: the same console attaching to an empty server, "
        f"interleaved ({'/'.join(f'{x:.2f}' for x in bframes)} s); console CPU to its first frame "
        f"{statistics.median(r['cpu'] for r in ours):.2f} s (empty server {statistics.median(r['cpu'] for r in base):.2f} s)"
        f"; 1-min load {'/'.join(loads)}"
    )
    return [
        row(
            "console.attach_50_jobs.first_frame_median",
            med,
            "s",
            statistics.median(bframes),
            "<= 1 s",
            med <= 1.0,
            common,
        ),
        row(
            "console.attach_50_jobs.first_frame_max",
            top,
            "s",
            max(bframes),
            "<= 1 s",
            top <= 1.0,
            "max of the same launches" + left,
        ),
    ]


# --- events through the server socket to 1 and 3 consoles -------------------------------------


def _events_run(quick: bool, workdir: Path, count: int, lines: int) -> dict[str, Any]:
    """A fresh replay server, `count` consoles and one Textual-free Mirror client (bench_server's) attached;
    4 replay jobs released at once; CPU of each from just before the go to all jobs ended and reaped + 1.5 s."""
    from tests.bench.bench_server import Client

    label = f"ev{count}"
    with BenchServer(workdir, label, 4, replay=True) as server:
        consoles = [Console(["-i", str(INVENTORY)], workdir, server) for _ in range(count)]
        mirror = None
        try:
            for console in consoles:
                console.first_frame()
            go = workdir / f"go-{label}"
            names = replay_jobs(server, workdir, label, 4, lines, go)
            if not wait_until(lambda: all(s == "running" for s in server.statuses().values()), 120, 0.2):
                raise RuntimeError(f"the replay jobs did not start: {server.statuses()}")
            watching = [watched(c) for c in consoles]
            mirror = Client(server, workdir, f"{label}-mirror", [watching[0]])
            asyncio.run(mirror.started())
            time.sleep(2.0)  # the supervisors wait on the go file
            cpu0 = [cpu_seconds(c.pid)[0] for c in consoles]
            srv0, own0, wall0, t0 = server.cpu(), cpu_seconds(server.pid)[0], time.time(), time.monotonic()
            offsets = [c.proc.offset for c in consoles]
            go.touch()
            if not wait_until(lambda: all_finished(server, names), 600, 0.1):
                raise RuntimeError("the replay jobs did not end within 600 s")
            server.reaped()
            time.sleep(1.5)  # the last deltas (<= 0.1 s batches) and the console's next frames
            sgr = rb"(?:\x1b\[[0-9;]*m)*"  # the recap's last host line: the end of the watched job's log, drawn
            recap = re.compile(rb"host25\.example\.internal *" + sgr + rb" *: *" + sgr + rb"ok=")
            drawn = [c.proc.wait_for(recap, at, 5) for c, at in zip(consoles, offsets)]
            cpu1 = [cpu_seconds(c.pid)[0] for c in consoles]
            srv1, own1, t1 = server.cpu(), cpu_seconds(server.pid)[0], time.monotonic()
            time.sleep(3.0)  # what each console costs with nothing happening: its fixed, per-second part
            idle = [(cpu_seconds(c.pid)[0] - b) / (time.monotonic() - t1) for c, b in zip(consoles, cpu1)]
            client = asyncio.run(mirror.result(120))
            jobs = server.jobs()
            on_disk = sum(sum(1 for _ in open(jobs[n]["attempts"][-1]["events"], "rb")) for n in names)
            ended = max(datetime.fromisoformat(jobs[n]["attempts"][-1]["ended"]).timestamp() for n in names)
            statuses = sorted({jobs[n]["status"] for n in names})
        finally:
            if mirror is not None:
                mirror.kill()
            for console in consoles:
                console.quit()
    wall = t1 - t0
    return {
        "events": on_disk,
        "rate": on_disk / max(ended - wall0, 1e-9),
        "wall": wall,
        "console_ms": [(b - a) * 1000 / max(1, on_disk) for a, b in zip(cpu0, cpu1)],
        "console_net_ms": [max(0.0, (b - a) - r * wall) * 1000 / max(1, on_disk) for a, b, r in zip(cpu0, cpu1, idle)],
        "idle_ms_s": [r * 1000 for r in idle],
        "mirror_ms": (client["cpu_last"] - client["cpu_first"]) * 1000 / max(1, on_disk),
        "server_us": (srv1 - srv0) * 1e6 / max(1, on_disk),
        "server_own_us": (own1 - own0) * 1e6 / max(1, on_disk),
        "watching": watching,
        "recap": [None if d is None else d[0] - t0 for d in drawn],
        "statuses": statuses,
        "load": loadavg(),
        "left": leftover_note(server, *consoles),
    }


def bench_events(quick: bool, workdir: Path) -> list[dict[str, Any]]:
    from tests.bench.bench_server import bare_reader

    lines = 6_000 if quick else 25_000
    base_env = bench_env(workdir)
    bare = [asyncio.run(bare_reader(base_env, workdir, lines, "bare-1"))["rate"]]
    runs = {count: _events_run(quick, workdir, count, lines) for count in (1, 3)}
    bare.append(asyncio.run(bare_reader(base_env, workdir, lines, "bare-2"))["rate"])
    baseline = statistics.mean(bare)
    rows = []
    for count, got in runs.items():
        tag = f"{count}_console{'s' if count > 1 else ''}"
        worst = max(got["console_ms"])
        rows.append(
            row(
                f"console.server_events.rate_{tag}",
                got["rate"],
                "events/s",
                baseline,
                ">= 20000 events/s",
                got["rate"] >= 20_000,
                f"4 replay jobs x {got['events'] // 4} events released at once on a server with {count} console{'s' * (count > 1)} "
                f"attached (120x40 pty each) and one Mirror client; events on disk / (go -> the engine's last attempt "
                f"end); statuses {got['statuses']}; server CPU {got['server_us']:.1f} us/event with its replay "
                f"supervisors ({got['server_own_us']:.1f} us/event its own); baseline: a bare json.loads reader of the "
                f"same supervisors, no engine ({'/'.join(f'{b:.0f}' for b in bare)}/s before/after); load {got['load']}"
                f"{got['left']}",
            )
        )
        rows.append(
            row(
                f"console.server_events.cpu_per_event_{tag}",
                worst,
                "ms/event",
                got["mirror_ms"],
                "<= 0.2 ms/event",
                worst <= 0.2,
                f"the most any console spent: its own CPU (utime+stime) from just before the go to every job ended "
                f"+ 1.5 s ({got['wall']:.1f} s) / events the server ingested; each: "
                f"{', '.join(f'{x:.4f}' for x in got['console_ms'])} ms; beyond each console's idle cost "
                f"({', '.join(f'{x:.0f}' for x in got['idle_ms_s'])} ms CPU/s with nothing happening): "
                f"{', '.join(f'{x:.4f}' for x in got['console_net_ms'])} ms; each console watches the log of its "
                f"selected job ({', '.join(got['watching'])}), whose last recap line it drew "
                f"{', '.join('never' if x is None else f'{x:.2f} s' for x in got['recap'])} after the go; baseline: a Textual-free Mirror client (bench_server's) "
                f"watching the same job, same run",
            )
        )
    return rows
