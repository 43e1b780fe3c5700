"""Peer: the same jobs through ansible-navigator vs playdeck.

ansible-navigator (`run --mode stdout --ee false`) runs one playbook per
invocation, so the job set goes through it one after another; playdeck runs
the same job file concurrently (`playdeck run JOBFILE --no-preflight`, max 4).
Reported: the wall-time ratio, and beside it each tool's startup time
(`--version`, and a run of a one-task playbook on one local host) and memory
(peak RSS of the tool's own process, and of its whole process tree, sampled
from /proc every 20 ms in separate runs so the sampling does not perturb the
timings).

ansible-navigator is a benchmark-only dependency (the `bench` extra); without
it this module reports a row saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_overhead import (
    ANSIBLE_ENV,
    BIN,
    INVENTORY,
    JOBS,
    PLAYBOOKS,
    isolated,
    loadavg,
    row,
    timed,
    write_job_file,
)

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE = 0.02
EMPTY_PLAYBOOK = """\
- name: Nearly nothing
  hosts: web01
  gather_facts: false
  tasks:
    - name: One task
      ansible.builtin.debug:
        msg: hello
"""


def navigator() -> str | None:
    found = BIN / "ansible-navigator"
    return str(found) if found.exists() else shutil.which("ansible-navigator")


# -- memory, from /proc ------------------------------------------------------------


def _tree_rss(root: int) -> tuple[int, int]:
    """(RSS of root, summed RSS of root and its live descendants), in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
            with open(f"/proc/{name}/statm", "rb") as fh:
                resident = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = resident * PAGE_KB
    total, stack, seen = 0, [root], {root}
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        for child in children.get(pid, ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return rss.get(root, 0), total


def peak_rss(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run `cmd`, sampling its tree's RSS every 20 ms: peaks of its own process and of the tree (KiB)."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    peaks = {"root_kb": 0, "tree_kb": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            root, tree = _tree_rss(proc.pid)
            peaks["root_kb"] = max(peaks["root_kb"], root)
            peaks["tree_kb"] = max(peaks["tree_kb"], tree)
            done.wait(SAMPLE)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)  # the zombie stays readable until here
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {**peaks, "maxrss_kb": usage.ru_maxrss, "rc": proc.returncode}


def _mb(kb: float) -> float:
    return round(kb / 1024, 1)


# -- the benchmark ---------------------------------------------------------------


def run(quick: bool) -> list[dict[str, Any]]:
    nav = navigator()
    if nav is None:
        return [
            row(
                "peer.ansible-navigator-missing",
                None,
                notes="ansible-navigator is not installed: pip install -e '.[bench]'",
            )
        ]
    reps = 1 if quick else 3
    startup_reps = 3 if quick else 7
    rows: list[dict[str, Any]] = []
    with isolated("peer") as (tmp, env):
        env.update(ANSIBLE_ENV)  # the same Ansible settings on every side
        playdeck = str(BIN / "playdeck")
        state = tmp / "state"
        (tmp / "nav").mkdir()
        empty = tmp / "empty.yml"
        empty.write_text(EMPTY_PLAYBOOK, encoding="utf-8")
        nav_version = subprocess.run(
            [nav, "--version"], capture_output=True, text=True, env=env, cwd=tmp
        ).stdout.strip()

        def nav_cmd(playbook: Path, limit: str | None, extra: dict[str, str] | None, tag: str) -> list[str]:
            cmd = [
                nav,
                "run",
                str(playbook),
                "-i",
                str(INVENTORY),
                "--mode",
                "stdout",
                "--ee",
                "false",
                "--lf",
                str(tmp / "nav" / "navigator.log"),
                "--rad",
                str(tmp / "nav" / f"runner-{tag}"),
                # its default: a JSON artifact per playbook run, here kept out of the repository
                "--pas",
                str(tmp / "nav" / f"{tag}-{{playbook_name}}-{{time_stamp}}.json"),
            ]
            if limit:
                cmd += ["--limit", limit]
            if extra:
                cmd += ["-e", json.dumps(extra)]
            return cmd

        load_before = loadavg()

        # -- startup: --version, then a one-task playbook on one local host
        def version_times(cmd: list[str]) -> list[float]:
            return [timed(cmd, env, cwd=tmp)[0] for _ in range(startup_reps)]

        timed([nav, "--version"], env, cwd=tmp)  # warm caches
        v_nav = version_times([nav, "--version"])
        v_pd = version_times([playdeck, "--version"])
        v_ap = version_times([str(BIN / "ansible-playbook"), "--version"])

        minimal = {"navigator": [], "playdeck": [], "playdeck+preflight": [], "ansible-playbook": []}
        minimal_rc: dict[str, list[int]] = {k: [] for k in minimal}
        kinds = list(minimal)
        for rep in range(2 if quick else 5):
            order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]
            for kind in order:
                tag = f"min-{kind}-{rep}"
                if kind == "navigator":
                    cmd = nav_cmd(empty, None, None, tag)
                elif kind == "ansible-playbook":
                    cmd = [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(empty)]
                else:
                    cmd = [playdeck, "run", str(empty), "-i", str(INVENTORY), "--state-dir", str(state)]
                    if kind == "playdeck":
                        cmd.append("--no-preflight")
                wall, _, rc = timed(cmd, env, cwd=tmp)
                minimal[kind].append(wall)
                minimal_rc[kind].append(rc)

        # -- the job set: navigator one after another, playdeck concurrently
        def navigator_sequential(rep: int) -> tuple[float, list[int]]:
            work = tmp / "work" / f"nav-{rep}"
            start = time.perf_counter()
            codes = [
                timed(
                    nav_cmd(PLAYBOOKS / pb, limit, {"playdeck_tmp": str(work / name)}, f"set-{rep}-{name}"),
                    env,
                    cwd=tmp,
                )[2]
                for name, pb, limit in JOBS
            ]
            return time.perf_counter() - start, codes

        def playdeck_concurrent(rep: int) -> tuple[float, list[int]]:
            work = tmp / "work" / f"pd-{rep}"
            jobfile = write_job_file(tmp / f"jobs-{rep}.yml", work)
            wall, _, rc = timed(
                [playdeck, "run", str(jobfile), "--no-preflight", "--state-dir", str(state)], env, cwd=tmp
            )
            return wall, [rc]

        sets: dict[str, list[float]] = {"navigator": [], "playdeck": []}
        set_rc: dict[str, list[int]] = {"navigator": [], "playdeck": []}
        for rep in range(reps):
            order = [("navigator", navigator_sequential), ("playdeck", playdeck_concurrent)]
            if rep % 2:
                order.reverse()
            for kind, fn in order:
                wall, codes = fn(rep)
                sets[kind].append(wall)
                set_rc[kind] += codes

        # -- memory, in separate sampled runs
        mem_min_nav = peak_rss(nav_cmd(empty, None, None, "rss-min"), env, tmp)
        mem_min_pd = peak_rss(
            [playdeck, "run", str(empty), "-i", str(INVENTORY), "--no-preflight", "--state-dir", str(state)], env, tmp
        )
        mem_min_ap = peak_rss([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(empty)], env, tmp)
        mem_set_nav = [
            peak_rss(
                nav_cmd(PLAYBOOKS / pb, limit, {"playdeck_tmp": str(tmp / "work" / "rss" / name)}, f"rss-{name}"),
                env,
                tmp,
            )
            for name, pb, limit in JOBS
        ]
        mem_set_pd = peak_rss(
            [
                playdeck,
                "run",
                str(write_job_file(tmp / "jobs-rss.yml", tmp / "work" / "rss-pd")),
                "--no-preflight",
                "--state-dir",
                str(state),
            ],
            env,
            tmp,
        )
        load_after = loadavg()

    med = statistics.median

    def bad(codes: list[int]) -> str:
        wrong = [c for c in codes if c != 0]
        return f"; NONZERO EXIT {wrong}" if wrong else ""

    context = f"{nav_version}; loadavg {load_before} -> {load_after}"
    nav_set, pd_set = med(sets["navigator"]), med(sets["playdeck"])
    rows.append(
        row(
            "peer.jobs.navigator_sequential_wall",
            nav_set,
            "s",
            notes=f"{len(JOBS)} jobs, ansible-navigator run --mode stdout --ee false, one after another; "
            f"runs {[round(x, 2) for x in sets['navigator']]}{bad(set_rc['navigator'])}; {context}",
        )
    )
    rows.append(
        row(
            "peer.jobs.playdeck_concurrent_wall",
            pd_set,
            "s",
            baseline=nav_set,
            notes=f"playdeck run JOBFILE --no-preflight, max 4 at once; runs "
            f"{[round(x, 2) for x in sets['playdeck']]}{bad(set_rc['playdeck'])}",
        )
    )
    rows.append(
        row(
            "peer.startup.navigator_version",
            med(v_nav),
            "s",
            notes=f"ansible-navigator --version, median of {startup_reps}; "
            f"ansible-playbook --version {med(v_ap):.3f} s",
        )
    )
    rows.append(
        row(
            "peer.startup.playdeck_version",
            med(v_pd),
            "s",
            baseline=med(v_nav),
            notes="playdeck --version vs ansible-navigator --version",
        )
    )
    n_min = len(minimal["navigator"])
    rows.append(
        row(
            "peer.startup.navigator_minimal_run",
            med(minimal["navigator"]),
            "s",
            notes=f"one debug task on web01, median of {n_min}{bad(minimal_rc['navigator'])}; bare "
            f"ansible-playbook {med(minimal['ansible-playbook']):.3f} s"
            f"{bad(minimal_rc['ansible-playbook'])}",
        )
    )
    rows.append(
        row(
            "peer.startup.playdeck_minimal_run",
            med(minimal["playdeck"]),
            "s",
            baseline=med(minimal["navigator"]),
            notes=f"playdeck run PLAYBOOK -i INV --no-preflight{bad(minimal_rc['playdeck'])}; vs bare "
            f"ansible-playbook x{med(minimal['playdeck']) / med(minimal['ansible-playbook']):.2f}",
        )
    )
    rows.append(
        row(
            "peer.startup.playdeck_minimal_run_preflight",
            med(minimal["playdeck+preflight"]),
            "s",
            baseline=med(minimal["navigator"]),
            notes=f"the same with preflight (the default){bad(minimal_rc['playdeck+preflight'])}",
        )
    )
    rows.append(
        row(
            "peer.rss.tool_process_minimal_run",
            _mb(mem_min_pd["root_kb"]),
            "MB",
            baseline=_mb(mem_min_nav["root_kb"]),
            notes="peak RSS of the tool's own process (playdeck vs ansible-navigator; navigator hosts "
            "ansible-runner in-process, playdeck in a supervisor child)",
        )
    )
    rows.append(
        row(
            "peer.rss.tree_minimal_run",
            _mb(mem_min_pd["tree_kb"]),
            "MB",
            baseline=_mb(mem_min_nav["tree_kb"]),
            notes=f"peak summed RSS of the whole process tree (shared pages counted per process); bare "
            f"ansible-playbook tree {_mb(mem_min_ap['tree_kb'])} MB",
        )
    )
    nav_tree = max(m["tree_kb"] for m in mem_set_nav)
    nav_root = max(m["root_kb"] for m in mem_set_nav)
    rows.append(
        row(
            "peer.rss.tree_jobs",
            _mb(mem_set_pd["tree_kb"]),
            "MB",
            baseline=_mb(nav_tree),
            notes=f"{len(JOBS)} jobs: playdeck's tree with 4 running at once vs navigator's largest "
            f"single-job tree (it runs one at a time); tool process: playdeck "
            f"{_mb(mem_set_pd['root_kb'])} MB, navigator {_mb(nav_root)} MB",
        )
    )
    return rows
