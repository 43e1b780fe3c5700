"""`playdeck nodes`: is each execution node usable, and what runs there now?

`playdeck nodes [--json] [--config FILE] [JOBFILE]` checks the nodes of the config (`nodes:`;
FILE, else $PLAYDECK_CONFIG or the default config) and of JOBFILE's `nodes:`: each one is
reached over ssh as a job would be (tui.core.running.node_link.probe: host keys checked), its
playdeck and ansible-core versions compared with ours, and, when a server runs (none is
started), the jobs running there counted against its capacity. Exit status: 0 every node is
usable, 1 one is not (unreachable or another version), 2 invalid input (a bad config or job file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tui.cliargs import ArgsError, Parser
from tui.core.config import config_path, load_server_config
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.nodes import Node, local_versions, probe_problem
from tui.core.sanitize import strip_sgr
from tui.streams import say

OK, NOT_OK, INVALID = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="playdeck nodes",
        description="Check each execution node: reachable over ssh (host keys checked), the same playdeck "
        "and ansible-core versions as here, its capacity and the jobs running there (from the server, "
        "if one runs). Exit status: 0 all usable, 1 one is not, 2 invalid input.",
    )
    parser.add_argument("jobfile", nargs="?", type=Path, help="also check this job file's nodes:")
    parser.add_argument("--config", type=Path, help="the config file whose nodes: to check (default: the usual one)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    return parser


def _nodes(args: argparse.Namespace) -> dict[str, Node]:
    """The config's nodes, then the job file's (which win on a shared name, as for its jobs)."""
    config = load_server_config(args.config.expanduser() if args.config else config_path())
    nodes = dict(config.nodes)
    if args.jobfile is not None:
        nodes.update(load_job_file(args.jobfile, config.nodes).nodes)
    return nodes


async def _running() -> dict[str, list[str]] | None:
    """Names of the server's running jobs by node; None when no server runs (none is started)."""
    from tui.client.autostart import SocketPathError, probe, socket_path  # noqa: PLC0415
    from tui.client.connection import ClientError, Connection  # noqa: PLC0415

    try:
        path = socket_path()
        if await probe(path) is None:
            return None
        async with Connection(path) as conn:
            summary = await conn.jobs()
    except (SocketPathError, ClientError):
        return None
    running: dict[str, list[str]] = {}
    for job in summary.get("jobs", []):
        node = job.get("node")
        if isinstance(node, str) and job.get("status") == "running" and not job.get("history"):
            running.setdefault(node, []).append(str(job.get("name")))
    return running


async def _check(nodes: dict[str, Node]) -> list[dict[str, Any]]:
    from tui.core.running import node_link  # noqa: PLC0415 - ssh only when there are nodes

    local = local_versions()
    answers, running = await asyncio.gather(
        asyncio.gather(*(node_link.probe(node) for node in nodes.values())), _running()
    )
    rows = []
    for node, answer in zip(nodes.values(), answers):
        problem = probe_problem(node, answer)
        jobs = None if running is None else running.get(node.name, [])
        rows.append(
            {
                "name": node.name,
                "ssh": node.ssh,
                "port": node.port,
                "python": node.python,
                "capacity": node.capacity,
                "reachable": bool(answer.get("ok")),
                "playdeck": answer.get("playdeck"),
                "ansible_core": answer.get("ansible_core"),
                "local": local,
                "ok": problem is None,
                "problem": problem,
                "running": None if jobs is None else len(jobs),  # None: no server runs
                "jobs": jobs,
            }
        )
    return rows


def _table(rows: list[dict[str, Any]]) -> None:
    """Every cell a Text (ssh's error lines and job names are not markup)."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    table = Table(title="playdeck nodes", title_justify="left", show_edge=False, pad_edge=False)
    for header in ("node", "ssh", "state", "playdeck", "ansible-core", "running"):
        table.add_column(header, no_wrap=header != "state", overflow="fold")
    for row in rows:
        where = row["ssh"] + (f":{row['port']}" if row["port"] else "")
        state = Text("OK", style="green") if row["ok"] else Text(strip_sgr(str(row["problem"])), style="red")
        running = "-" if row["running"] is None else f"{row['running']}/{row['capacity']}"
        table.add_row(
            Text(row["name"]),
            Text(strip_sgr(where)),
            state,
            Text(strip_sgr(str(row["playdeck"] or "-"))),
            Text(strip_sgr(str(row["ansible_core"] or "-"))),
            Text(running),
        )
    try:
        Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)
    except (OSError, ValueError):
        pass


def cmd_nodes(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        nodes = _nodes(args)
    except ArgsError as exc:
        say(sys.stderr, str(exc))
        return INVALID
    except InputError as exc:
        say(sys.stderr, "playdeck nodes: invalid input:")
        for problem in exc.problems:
            say(sys.stderr, f"  {strip_sgr(str(problem))}")
        return INVALID
    if not nodes:
        say(sys.stderr, "playdeck nodes: no nodes: in the config" + (" or the job file" if args.jobfile else ""))
        return OK
    try:
        rows = asyncio.run(_check(nodes))
    except KeyboardInterrupt:
        return 130
    if args.json:
        say(sys.stdout, json.dumps({"nodes": rows}, indent=2))
    else:
        _table(rows)
    return OK if all(row["ok"] for row in rows) else NOT_OK
