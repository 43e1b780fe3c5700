"""The one command that runs the benchmark suite.

    python -m tests.bench.run [--quick] [--only NAME ...] [--json FILE] [--markdown]
    python -m tests.bench.run --from-json FILE --markdown   # the table of an earlier run, for the README

Every `tests/bench/bench_*.py` module present is imported (found with pkgutil) and
its `run(quick) -> list[dict]` called. Each row is
`{"name", "value", "unit", "baseline", "ratio", "target", "met", "notes"}`
(baseline, ratio, target and met may be None). A baseline is always measured in
the same run as the figure it is compared with.

The suite reports; it does not gate: the exit status is 0 even when targets are
missed. A module that fails to import or to run becomes a row saying why.
`--only overhead cancel` runs `bench_overhead` and `bench_cancel` (a full module
name such as `bench_cancel` works too).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results.json"
PREFIX = "bench_"
FIELDS = ("name", "value", "unit", "baseline", "ratio", "target", "met", "notes")


def discover() -> list[str]:
    """Short names (without `bench_`) of every bench module in this package, sorted."""
    return sorted(
        info.name[len(PREFIX) :] for info in pkgutil.iter_modules([str(HERE)]) if info.name.startswith(PREFIX)
    )


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = None
    try:
        import tui

        source = str(Path(tui.__file__).resolve().parent)
    except Exception as exc:  # noqa: BLE001
        source = f"not importable: {exc}"
    try:
        import subprocess

        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        git = f"{commit}{' (modified)' if dirty else ''}" if commit else None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {
        "tui_source": source,
        "git": git,
        "nproc": os.cpu_count(),
        "cpus_usable": affinity,
        "mem_total_mb": mem_kb // 1024 if mem_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "versions": {
            d: _version(d)
            for d in ("playdeck", "ansible-core", "ansible-runner", "textual", "rich", "pexpect", "ansible-navigator")
        },
    }


def normalize(row: dict[str, Any], module: str) -> dict[str, Any]:
    """Every field present; the ratio filled in from value/baseline when the module left it out."""
    out = {key: row.get(key) for key in FIELDS}
    out["name"] = str(out["name"] or f"{module}.?")
    if (
        out["ratio"] is None
        and isinstance(out["value"], (int, float))
        and isinstance(out["baseline"], (int, float))
        and out["baseline"]
    ):
        out["ratio"] = out["value"] / out["baseline"]
    # a target applies to the ratio unless the row says `"target_of": "value"` (an absolute limit, in `unit`)
    target_of = row.get("target_of") or "ratio"
    checked = out["value"] if target_of == "value" else out["ratio"]
    if out["met"] is None and out["target"] is not None and isinstance(checked, (int, float)):
        out["met"] = bool(checked <= out["target"])
    out["module"] = module
    for key, value in row.items():  # extra detail a module wants kept in the JSON
        if key not in out:
            out[key] = value
    return out


def error_row(module: str, stage: str, exc: BaseException) -> dict[str, Any]:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return normalize(
        {
            "name": f"{module}.{stage}-error",
            "value": None,
            "unit": "",
            "notes": f"{stage} failed: {detail}",
            "traceback": traceback.format_exc(),
        },
        module,
    )


def run_module(short: str, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    info: dict[str, Any] = {"loadavg_before": loadavg()}
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"tests.bench.{PREFIX}{short}")
    except BaseException as exc:  # noqa: BLE001 - reported as a row, never a crash
        if isinstance(exc, KeyboardInterrupt):
            raise
        rows = [error_row(short, "import", exc)]
    else:
        try:
            result = module.run(quick)
            rows = [normalize(r, short) for r in (result or [])]
            if not rows:
                rows = [normalize({"name": f"{short}.no-rows", "notes": "run() returned no rows"}, short)]
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            rows = [error_row(short, "run", exc)]
    info["seconds"] = round(time.perf_counter() - start, 2)
    info["loadavg_after"] = loadavg()
    return rows, info


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text


def _target(row: dict[str, Any]) -> str:
    target = row["target"]
    if target is None:
        return "–"
    if isinstance(target, str):  # a module's own wording, e.g. "<= 1 s"
        return target.replace("<=", "≤")
    unit = (row["unit"] or "") if row.get("target_of") == "value" else "x"
    return f"≤ {_fmt(target, unit)}"


def print_table(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width = None if sys.stdout.isatty() else 200
    console = Console(highlight=False, width=width)
    table = Table(title=f"playdeck bench ({'quick' if info['quick'] else 'full'})", title_justify="left")
    for header, justify in (
        ("name", "left"),
        ("value", "right"),
        ("baseline", "right"),
        ("ratio", "right"),
        ("target", "right"),
        ("met", "center"),
        ("notes", "left"),
    ):
        table.add_column(header, justify=justify, overflow="fold")
    for row in rows:
        met = row["met"]
        met_text = Text(_fmt(met), style="green" if met else ("red" if met is False else ""))
        table.add_row(
            Text(row["name"]),
            _fmt(row["value"], row["unit"] or ""),
            _fmt(row["baseline"], row["unit"] or ""),
            _fmt(row["ratio"]),
            _target(row),
            met_text,
            Text(str(row["notes"] or "")),
        )
    console.print(table)
    machine = info["machine"]
    console.print(
        Text(
            f"{info['date']}  nproc {machine['nproc']}  loadavg before {info['loadavg_before']} after "
            f"{info['loadavg_after']}  python {machine['python']}  ansible-core {machine['versions']['ansible-core']}  "
            f"ansible-runner {machine['versions']['ansible-runner']}  textual {machine['versions']['textual']}",
            style="dim",
        )
    )
    for name, mod in info["modules"].items():
        console.print(
            Text(
                f"  {name}: {mod['seconds']} s, loadavg {mod['loadavg_before']} -> {mod['loadavg_after']}", style="dim"
            )
        )


def markdown_table(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The rows with a target or a baseline, as the README shows them."""
    out = ["| measure | value | baseline | ratio | target | met |", "|---|---:|---:|---:|---:|:---:|"]
    for row in rows:
        if row["target"] is None and row["baseline"] is None:
            continue
        unit = row["unit"] or ""
        target = _target(row)
        out.append(
            f"| {row['name']} | {_fmt(row['value'], unit)} | {_fmt(row['baseline'], unit)} | "
            f"{_fmt(row['ratio'])} | {target} | {_fmt(row['met'])} |"
        )
    machine = info["machine"]
    out.append("")
    out.append(
        f"{info['date']}, {'quick' if info['quick'] else 'full'} run, {machine['nproc']} cores, "
        f"load {info['loadavg_before']} -> {info['loadavg_after']}, Python {machine['python']}, "
        f"ansible-core {machine['versions']['ansible-core']}, ansible-runner "
        f"{machine['versions']['ansible-runner']}, Textual {machine['versions']['textual']}, git {machine['git']}."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a first look")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules (e.g. overhead cancel)")
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="FILE",
        help=f"where to write rows and machine info (default {DEFAULT_JSON})",
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown, for the README")
    parser.add_argument("--from-json", type=Path, metavar="FILE", help="print the table of an earlier run; run nothing")
    args = parser.parse_args(argv)
    if args.from_json:
        earlier = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(markdown_table(earlier["rows"], earlier) if args.markdown else json.dumps(earlier["rows"], indent=2))
        return 0

    available = discover()
    wanted = available
    rows: list[dict[str, Any]] = []
    if args.only:
        wanted = []
        for name in args.only:
            short = name.removeprefix(PREFIX).removesuffix(".py")
            if short in available:
                wanted.append(short)
            else:
                rows.append(
                    normalize(
                        {
                            "name": f"{short}.missing",
                            "notes": f"no module tests/bench/{PREFIX}{short}.py (have: {', '.join(available)})",
                        },
                        short,
                    )
                )
    info: dict[str, Any] = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "argv": sys.argv[1:],
        "machine": machine_info(),
        "loadavg_before": loadavg(),
        "modules": {},
    }
    for short in wanted:
        print(f"bench: {short} ...", file=sys.stderr, flush=True)
        module_rows, module_info = run_module(short, args.quick)
        rows.extend(module_rows)
        info["modules"][short] = module_info
        print(f"bench: {short} done in {module_info['seconds']} s", file=sys.stderr, flush=True)
    info["loadavg_after"] = loadavg()
    print_table(rows, info)
    if args.markdown:
        print(markdown_table(rows, info))
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**info, "rows": rows}, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"results: {args.json}", file=sys.stderr)
    except OSError as exc:
        print(f"bench: could not write {args.json}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
