"""Overhead: N jobs through `playdeck run` vs the same playbooks through `xargs -P` + `ansible-playbook`.

Same playbooks, same limits, same extra vars, same parallelism (4), local hosts
only (never ghost01). The bare runs send Ansible's output to /dev/null; playdeck
writes its logs as it always does. Variants are run in a rotating order and
repeated (5 reps full, 1 quick); medians are compared. Target: playdeck's wall
time <= 1.05 x the bare one.

Also measured in the same run, to explain a miss: CPU time of each variant
(user+sys of the whole process tree, from wait4), Python startup, the import
time of ansible_runner (paid once per attempt by the supervisor), and the
preflight helper's time (paid once per `playdeck run` without --no-preflight).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "sample_inventory" / "hosts.yml"
PLAYBOOKS = ROOT / "sample_playbooks"
BIN = Path(sys.executable).parent  # the real entry points, not a pyenv shim, for every side alike
PARALLEL = 4
TARGET = 1.05

# (name, playbook, limit): local-connection hosts only
JOBS: list[tuple[str, str, str]] = [
    ("health-web", "health_check.yml", "web01,web02"),
    ("health-db", "health_check.yml", "db01,db02,cache01"),
    ("deploy-a", "deploy.yml", "web01,web02"),
    ("deploy-b", "deploy.yml", "web03"),
]

# what playdeck's runner_kwargs gives Ansible, given to the bare runs too
ANSIBLE_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_FORCE_COLOR": "True",
}


# -- helpers shared with the other bench modules of this suite -----------------


def row(
    name: str,
    value: Any,
    unit: str = "",
    baseline: Any = None,
    ratio: Any = None,
    target: Any = None,
    met: Any = None,
    notes: str = "",
    target_of: str = "ratio",
    **extra: Any,
) -> dict[str, Any]:
    """A result row. `target` bounds the ratio, or with target_of="value" the value itself (in `unit`)."""
    if ratio is None and isinstance(value, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        ratio = value / baseline
    checked = value if target_of == "value" else ratio
    if met is None and target is not None and isinstance(checked, (int, float)):
        met = bool(checked <= target)
    if target_of != "ratio":
        extra["target_of"] = target_of
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
        "notes": notes,
        **extra,
    }


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); with few samples p99 is close to the max."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


@contextlib.contextmanager
def isolated(prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A temp dir holding PLAYDECK_STATE_DIR and TMPDIR, and an environment using them.

    os.environ is switched too (in-process engines read it) and restored afterwards.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"pd-bench-{prefix}-"))
    (tmp / "state").mkdir()
    (tmp / "tmp").mkdir()
    saved = {k: os.environ.get(k) for k in ("PLAYDECK_STATE_DIR", "TMPDIR", "PATH", "PYTHONPATH")}
    env = dict(os.environ)
    env["PLAYDECK_STATE_DIR"] = str(tmp / "state")
    env["TMPDIR"] = str(tmp / "tmp")
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    # this checkout's code in every child, whatever checkout the editable install points at now
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    os.environ.update({k: env[k] for k in saved})
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        yield tmp, env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tempfile.tempdir = None
        shutil.rmtree(tmp, ignore_errors=True)


def timed(
    cmd: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the waited-for tree, exit status); output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def write_job_file(path: Path, work: Path, jobs: list[tuple[str, str, str]] = JOBS) -> Path:
    lines = [f"inventory: {json.dumps(str(INVENTORY))}", f"max_parallel: {PARALLEL}", "jobs:"]
    for name, playbook, limit in jobs:
        lines += [
            f"  - name: {name}",
            f"    playbook: {json.dumps(str(PLAYBOOKS / playbook))}",
            f"    limit: {json.dumps(limit)}",
            f"    extra_vars: {{playdeck_tmp: {json.dumps(str(work / name))}}}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bare_command(playbook: str, limit: str, work: Path) -> str:
    extra = json.dumps({"playdeck_tmp": str(work)})
    return (
        f"exec {shlex.quote(str(BIN / 'ansible-playbook'))} -i {shlex.quote(str(INVENTORY))} "
        f"--limit {shlex.quote(limit)} -e {shlex.quote(extra)} {shlex.quote(str(PLAYBOOKS / playbook))} "
        f">/dev/null 2>&1"
    )


def xargs_command(tmp: Path, work: Path, jobs: list[tuple[str, str, str]] = JOBS) -> tuple[list[str], bytes]:
    """`xargs -P N -n 1 sh -c '...'` over one line per job, each line the job's ansible-playbook command."""
    lines = [bare_command(playbook, limit, work / name) for name, playbook, limit in jobs]
    script = tmp / "jobs.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["xargs", "-P", str(PARALLEL), "-n", "1", "-d", "\n", "sh", "-c"], script.read_bytes()


def median_time(cmd: list[str], env: dict[str, str], reps: int, stdin: bytes | None = None) -> float:
    return statistics.median(timed(cmd, env, stdin=stdin)[0] for _ in range(reps))


ONE_TASK = """\
- name: One task
  hosts: web01
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
"""


def supervisor_exit(tmp: Path, env: dict[str, str], reps: int) -> list[dict[str, Any]]:
    """Run the attempt supervisor on its own, as the engine does (stdin kept open), on a one-task playbook.

    Per run: time to its "end" message, time from that message to the process's exit, its exit
    status, and the first line of its stderr. A supervisor that lingers after "end" delays
    every job's end by that much.
    """
    from tui.core.planning.spec import spec_for_playbook
    from tui.core.running.attempt import runner_kwargs, supervisor_module
    from tui.core.running.procs import MARKER_VAR

    playbook = tmp / "one-task.yml"
    playbook.write_text(ONE_TASK, encoding="utf-8")
    results = []
    for i in range(reps):
        directory = Path(tempfile.mkdtemp(prefix="supervisor-", dir=tmp))
        spec = spec_for_playbook(playbook, INVENTORY, name=f"sup-{i}")
        config = {
            "kwargs": runner_kwargs(spec, directory, None),
            "dir": str(directory),
            "deadline": None,
            "grace": 1.0,
            "nice": 0,
            "secrets": {},
        }
        run_env = dict(env, **{MARKER_VAR: f"bench-supervisor-{os.getpid()}-{i}"})
        run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        err_path = directory / "stderr.log"
        with open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", supervisor_module()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=run_env,
                start_new_session=True,
            )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(config) + "\n").encode())
        proc.stdin.flush()  # and kept open until it exits, as the engine keeps it
        end_at = None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("t") == "end":
                end_at = time.perf_counter()
                break
        rc = proc.wait()
        exit_at = time.perf_counter()
        proc.stdin.close()
        proc.stdout.close()
        first = (err_path.read_text(errors="replace").strip().splitlines() or [""])[0]
        results.append(
            {
                "to_end": (end_at or exit_at) - start,
                "lag": exit_at - (end_at or exit_at),
                "rc": rc,
                "stderr": first[:160],
                "end_seen": end_at is not None,
            }
        )
    return results


# -- the benchmark --------------------------------------------------------------


def run(quick: bool) -> list[dict[str, Any]]:
    reps = 1 if quick else 5
    rows: list[dict[str, Any]] = []
    with isolated("overhead") as (tmp, env):
        env.update(ANSIBLE_ENV)  # the bare runs get what playdeck gives Ansible; harmless for playdeck
        playdeck = str(BIN / "playdeck")
        state = tmp / "state"

        def variant(kind: str, rep: int) -> tuple[float, float, int]:
            work = tmp / "work" / f"{kind}-{rep}"  # fresh per run: every run does the same (changed) work
            work.mkdir(parents=True)
            if kind == "bare":
                cmd, stdin = xargs_command(tmp, work)
                return timed(cmd, env, cwd=tmp, stdin=stdin)
            jobfile = write_job_file(tmp / f"jobs-{kind}-{rep}.yml", work)
            cmd = [playdeck, "run", str(jobfile), "--state-dir", str(state)]
            if kind == "playdeck":
                cmd.append("--no-preflight")
            return timed(cmd, env, cwd=tmp)

        kinds = ["bare", "playdeck", "playdeck+preflight"]
        samples: dict[str, list[tuple[float, float, int]]] = {k: [] for k in kinds}
        load_before = loadavg()
        # warm the page cache and Ansible's caches so the first measured variant is not penalised
        variant("bare", -1)
        for rep in range(reps):
            order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]
            if rep % 2:
                order.reverse()
            for kind in order:
                samples[kind].append(variant(kind, rep))
        load_after = loadavg()

        wall = {k: statistics.median(s[0] for s in v) for k, v in samples.items()}
        cpu = {k: statistics.median(s[1] for s in v) for k, v in samples.items()}
        fails = {k: [s[2] for s in v if s[2] != 0] for k, v in samples.items()}
        base = wall["bare"]
        context = f"N={len(JOBS)} jobs, -P {PARALLEL}, {reps} rep(s), median; loadavg {load_before} -> {load_after}"

        def note(kind: str) -> str:
            runs = ", ".join(f"{s[0]:.2f}" for s in samples[kind])
            bad = f"; NONZERO EXIT {fails[kind]}" if fails[kind] else ""
            return f"runs [{runs}] s; CPU {cpu[kind]:.1f} s{bad}"

        rows.append(
            row(
                "overhead.bare_xargs_wall",
                base,
                "s",
                notes=f"xargs -P {PARALLEL} ansible-playbook; {note('bare')}; {context}",
            )
        )
        rows.append(
            row(
                "overhead.playdeck_run_wall",
                wall["playdeck"],
                "s",
                baseline=base,
                target=TARGET,
                notes=f"playdeck run --no-preflight; {note('playdeck')}",
            )
        )
        rows.append(
            row(
                "overhead.playdeck_run_preflight_wall",
                wall["playdeck+preflight"],
                "s",
                baseline=base,
                target=TARGET,
                notes=f"playdeck run (preflight on, the default); {note('playdeck+preflight')}",
            )
        )
        rows.append(
            row(
                "overhead.playdeck_run_cpu",
                cpu["playdeck"],
                "s",
                baseline=cpu["bare"],
                notes="user+sys CPU of the whole tree (wait4), --no-preflight vs bare; "
                f"extra per job {(cpu['playdeck'] - cpu['bare']) / len(JOBS):.2f} s",
            )
        )

        # -- where the time goes: each fixed cost playdeck adds, measured on its own
        diag_reps = 3
        py = sys.executable
        t_python = median_time([py, "-c", "pass"], env, diag_reps)
        t_runner = median_time([py, "-c", "import ansible_runner"], env, diag_reps)
        t_supervisor = median_time([py, "-c", "import tui.core.running.supervisor, ansible_runner"], env, diag_reps)
        t_cli = median_time([playdeck, "run", "--help"], env, diag_reps)
        request = json.dumps([{"name": n, "inventory": str(INVENTORY), "limit": lim} for n, _, lim in JOBS]).encode()
        pre_env = dict(env, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1")
        pre_env.pop("ANSIBLE_FORCE_COLOR", None)
        t_preflight = median_time([py, "-m", "tui.core.planning.preflight"], pre_env, diag_reps, stdin=request)
        t_ap_version = median_time([str(BIN / "ansible-playbook"), "--version"], env, diag_reps)
        rows += [
            row("overhead.diag.python_startup", t_python, "s", notes="python -c pass"),
            row(
                "overhead.diag.supervisor_import",
                t_supervisor,
                "s",
                notes=f"python -c 'import tui.core.running.supervisor, ansible_runner': paid once per attempt, "
                f"on top of ansible-playbook; ansible_runner alone {t_runner:.3f} s",
            ),
            row("overhead.diag.playdeck_cli_startup", t_cli, "s", notes="playdeck run --help"),
            row(
                "overhead.diag.preflight",
                t_preflight,
                "s",
                notes="python -m tui.core.planning.preflight on the 4 jobs (once per playdeck run without --no-preflight); "
                f"wall difference measured above: {wall['playdeck+preflight'] - wall['playdeck']:+.2f} s",
            ),
            row(
                "overhead.diag.ansible_playbook_version",
                t_ap_version,
                "s",
                notes="ansible-playbook --version: Ansible's own startup, paid by both sides",
            ),
        ]
        sup = supervisor_exit(tmp, env, diag_reps)
        t_one = median_time(
            [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(tmp / "one-task.yml")], env, diag_reps
        )
        codes = sorted({r["rc"] for r in sup})
        errors = sorted({r["stderr"] for r in sup if r["stderr"]})
        rows += [
            row(
                "overhead.diag.supervisor_exit_lag",
                statistics.median(r["lag"] for r in sup),
                "s",
                notes=f"supervisor's 'end' message -> its process gone (delays every job's end, and its cancel; "
                f"was 1.0 s with SIGABRT before f38db8e); exit status "
                f"{codes}{'' if sup and all(r['end_seen'] for r in sup) else ' (no end message!)'}"
                f"{'; stderr: ' + ' | '.join(errors) if errors else ''}",
                samples=[round(r["lag"], 3) for r in sup],
            ),
            row(
                "overhead.diag.supervisor_one_task",
                statistics.median(r["to_end"] for r in sup),
                "s",
                baseline=t_one,
                notes="python -m tui.core.running.supervisor on a one-task playbook, start -> 'end' "
                "message, vs bare ansible-playbook on it: the fixed cost of one attempt",
            ),
        ]
    return rows
