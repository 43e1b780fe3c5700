"""The CLI verbs that talk to the engine server: for scripts and for a second terminal.

`playdeck ls|submit|cancel|retry|timeout|pause|resume|run-now|logs|server ...` (and `report`,
`server log`, which read the state dir and need no server). Each is one short client of the
server (started on demand, except by `server stop|status`). Exit statuses: 0 ok, 1 the server
refused the action or the job did not succeed, 2 invalid input, 3 no server could be reached.
Everything the server sends (job names, messages, log lines) is untrusted text: it is printed
plain, SGR colours at most in log lines, never a control character and never as markup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui.cliargs import ArgsError, Parser
from tui.client.autostart import (
    SocketPathError,
    ensure_server,
    probe,
    socket_path,
    wait_gone,
)
from tui.client.connection import SUBMIT_TIMEOUT, ClientError, Connection, ServerError, Unreachable, _job_path
from tui.core.durations import DurationError, format_duration, parse_duration
from tui.core.sanitize import sanitize, strip_sgr
from tui.core.scheduling.protect import ACTION_REFUSED
from tui.core.scheduling.protect import REFUSED as PROTECTED
from tui.streams import say

OK, REFUSED, INVALID, UNREACHABLE = 0, 1, 2, 3
VERBS = ("ls", "submit", "cancel", "retry", "timeout", "pause", "resume", "run-now", "logs", "server")
SCHEDULE_VERBS = ("pause", "resume", "run-now")  # a scheduled job's schedule (tui/server/schedules.py)


def out(text: object) -> None:
    """Untrusted text on stdout as plain characters."""
    say(sys.stdout, strip_sgr(str(text)))


def err(text: object) -> None:
    """One line on stderr, plain."""
    say(sys.stderr, strip_sgr(str(text)).replace("\n", " "))


def _refusal(exc: ServerError) -> int:
    """The server's refusal as one line (plus its problem lines); 400/404 are the caller's input."""
    err(f"playdeck: {exc.error}")
    for problem in exc.problems:
        err(f"  {problem}")
    return INVALID if exc.status in (400, 404) else REFUSED


async def _connected(action: Callable[[Connection], Awaitable[int]], start: bool = True) -> int:
    """Run `action` on a connection to the server, starting the server first unless told not to."""
    try:
        path = socket_path()
        if start:
            await ensure_server(path)
        async with Connection(path) as conn:
            return await action(conn)
    except SocketPathError as exc:
        err(f"playdeck: {exc}")
        return INVALID
    except ServerError as exc:
        return _refusal(exc)
    except ClientError as exc:
        err(f"playdeck: {exc}")
        return UNREACHABLE


# --- ls ------------------------------------------------------------------------------------------


def _elapsed(job: dict[str, Any]) -> float | None:
    """The last attempt's run time, as `playdeck run`'s table shows it."""
    attempts = job.get("attempts") or []
    if not attempts:
        return None
    try:
        started = datetime.fromisoformat(attempts[-1]["started"])
        ended = attempts[-1].get("ended")
        end = datetime.fromisoformat(ended) if ended else datetime.now(started.tzinfo or UTC)
        return (end - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _totals(job: dict[str, Any]) -> dict[str, int]:
    totals = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
    for counts in (job.get("hosts") or {}).values():
        for key in totals:
            totals[key] += int(counts.get(key, 0))
    return totals


def print_jobs(summary: dict[str, Any]) -> None:
    """The table `playdeck run` prints, from the server's /v1/jobs (every cell a Text: no markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    styles = {
        "successful": "green",
        "failed": "red",
        "timeout": "magenta",
        "canceled": "yellow",
        "error": "bold red",
        "running": "cyan",
        "waiting": "yellow",
        "queued": "dim",
        "interrupted": "yellow",
        "scheduled": "blue",
    }
    table = Table(title="playdeck server jobs", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("status", no_wrap=True)
    for header in ("att.", "ok", "changed", "failed", "unreach.", "elapsed"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("next run", no_wrap=True)
    jobs = summary.get("jobs", [])
    nodes = any(job.get("node") for job in jobs)  # the column only when a job runs on a node
    if nodes:
        table.add_column("node", no_wrap=True, overflow="ellipsis", max_width=16)
    for job in jobs:
        status = strip_sgr(str(job.get("status", "")))
        totals = _totals(job)
        name = Text(strip_sgr(str(job.get("name", ""))), style="dim" if job.get("history") else "")
        table.add_row(
            name,
            Text(status, style=styles.get(status, "")),
            *(
                Text(str(n))
                for n in (
                    len(job.get("attempts") or []),
                    totals["ok"],
                    totals["changed"],
                    totals["failed"],
                    totals["unreachable"],
                )
            ),
            Text(format_duration(_elapsed(job))),
            Text(_next_run(job)),
            *([Text(strip_sgr(str(job.get("node") or "-")))] if nodes else []),
        )
    try:
        Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)
    except (OSError, ValueError):
        pass


def _next_run(job: dict[str, Any]) -> str:
    """A scheduled job's next run in its schedule's zone ("paused", "-" when none)."""
    schedule = job.get("schedule")
    if not isinstance(schedule, dict):
        return ""
    if schedule.get("paused"):
        return "paused"
    raw = job.get("next_run")
    try:
        when = datetime.fromisoformat(str(raw))
    except ValueError:
        return "-"
    return strip_sgr(f"{when.strftime('%Y-%m-%d %H:%M')} {schedule.get('timezone', '')}")


async def _ls(args: argparse.Namespace, conn: Connection) -> int:
    summary = await conn.jobs()
    if args.json:
        say(sys.stdout, json.dumps(summary, indent=2))  # JSON escapes every control character
    else:
        print_jobs(summary)
    return OK


# --- job actions ---------------------------------------------------------------------------------


async def _submit(args: argparse.Namespace, conn: Connection) -> int:
    path = Path(args.jobfile).expanduser().absolute()
    if not path.is_file():
        err(f"playdeck: {path}: no such job file, nothing was submitted")
        return INVALID
    body: dict[str, Any] = {"jobfile": str(path)}
    if args.no_preflight:
        body["preflight"] = False
    if args.yes:
        body["yes"] = True  # jobs touching the file's protected hosts (protect:) may run
    try:  # Connection.submit has no `yes` yet: the same request, with it
        answer = await conn.request("POST", "/v1/jobs", body, timeout=SUBMIT_TIMEOUT)
    except ServerError as exc:
        if exc.status == 400 or (exc.status == 409 and exc.error == PROTECTED):
            err(
                "playdeck: invalid input, nothing was submitted:"
                if exc.status == 400
                else "playdeck: protected targets, nothing was submitted (confirm with --yes):"
            )
            for problem in exc.problems or [exc.error]:
                err(f"  {problem}")
            return INVALID
        raise
    names = [str(name) for name in (answer or {}).get("jobs", [])]
    for name in names:
        out(name)
    return OK


async def _cancel(args: argparse.Namespace, conn: Connection) -> int:
    await conn.cancel(args.job)
    return OK


async def _confirmed(call: Awaitable[None]) -> int:
    """A retry or run-now of a job whose submission touched protected hosts: exit 2 naming them
    unless --yes (the server audits the refusal), as `playdeck submit` does."""
    try:
        await call
    except ServerError as exc:
        if exc.status == 409 and exc.error == ACTION_REFUSED:
            err("playdeck: protected targets, nothing was run (confirm with --yes):")
            for problem in exc.problems:
                err(f"  {problem}")
            return INVALID
        raise
    return OK


async def _retry(args: argparse.Namespace, conn: Connection) -> int:
    return await _confirmed(conn.retry(args.job, failed=args.failed, yes=args.yes))


async def _schedule_verb(args: argparse.Namespace, conn: Connection) -> int:
    """pause / resume / run-now: the server audits it and answers 409 when it does not apply."""
    if args.verb == "run-now":
        return await _confirmed(conn.run_now(args.job, yes=args.yes))
    await conn.request("POST", _job_path(args.job, args.verb, None), {})
    return OK


async def _timeout(args: argparse.Namespace, conn: Connection) -> int:
    await conn.set_timeout(args.job, args.seconds)
    return OK


def _job(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The newest job of that name in /v1/jobs (an earlier server's job may share the name)."""
    found = [job for job in summary.get("jobs", []) if job.get("name") == name]
    return max(found, key=lambda job: (not job.get("history"), int(job.get("id", 0)))) if found else None


async def _logs(args: argparse.Namespace, conn: Connection) -> int:
    async for line in conn.log_lines(args.job, follow=args.follow):
        # the server sanitized it; a second pass costs one search. Nobody reading (`| head`): stop
        if not say(sys.stdout, sanitize(line)):
            return OK
    if not args.follow:
        return OK
    job = _job(await conn.jobs(), args.job)
    status = str(job.get("status", "")) if job else "gone"
    if status == "successful":
        return OK
    message = str(job.get("message") or "") if job else ""
    err(f"playdeck: {args.job}: {status}" + (f": {message}" if message else ""))
    return REFUSED


# --- server --------------------------------------------------------------------------------------


def _status_lines(status: dict[str, Any]) -> list[str]:
    jobs = status.get("jobs") or {}
    return [
        f"pid       {status.get('pid')}",
        f"socket    {status.get('socket')}",
        f"version   {status.get('version')}",
        f"started   {status.get('started')}",
        f"jobs      {jobs.get('total', 0)} ({jobs.get('unfinished', 0)} unfinished)",
        f"clients   {status.get('clients')}",
        f"idle exit {format_duration(status.get('idle_exit'))}",
        f"config    {status.get('config')}",
        *([f"PROBLEM   {status['config_problem']}"] if status.get("config_problem") else []),
        f"metrics   {status.get('metrics') or 'off'}",
        f"notify    {', '.join(status.get('notify') or []) or 'none'}",
    ]


async def _server(args: argparse.Namespace) -> int:
    try:
        path = socket_path()
    except SocketPathError as exc:
        err(f"playdeck: {exc}")
        return INVALID
    try:
        status = await probe(path)
    except ClientError as exc:
        err(f"playdeck: {exc}")
        return UNREACHABLE
    if args.action == "status":
        if status is None:
            err(f"playdeck: no server answers on {path}")
            return UNREACHABLE
        if args.json:
            say(sys.stdout, json.dumps(status, indent=2))
        else:
            for line in _status_lines(status):
                out(line)
        return OK
    if args.action == "stop":
        if status is None:
            err(f"playdeck: no server answers on {path}: nothing to stop")
            return OK
        async with Connection(path) as conn:
            try:
                await conn.stop_server()
            except Unreachable:
                pass  # it may close the connection as it goes
        pid = status.get("pid")
        if not await wait_gone(path, pid if isinstance(pid, int) else None, timeout=60):
            err(f"playdeck: the server (pid {pid}) has not ended within 60s")
            return REFUSED
        out(f"stopped server pid {status.get('pid')}")
        return OK
    if status is not None:
        out(f"already running: pid {status.get('pid')}, socket {path}")
        return OK
    try:
        status = await ensure_server(path)
    except ClientError as exc:
        err(f"playdeck: {exc}")
        return UNREACHABLE
    out(f"started: pid {status.get('pid')}, socket {path}")
    return OK


# --- parsing -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="playdeck", description="Talk to the playdeck server (started on demand).")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    ls = verbs.add_parser("ls", help="list the server's jobs")
    ls.add_argument("--json", action="store_true", help="the server's JSON (the shape of `playdeck run --json`)")
    submit = verbs.add_parser("submit", help="submit a job file's jobs")
    submit.add_argument("jobfile", type=Path)
    submit.add_argument("--no-preflight", action="store_true", help="skip Ansible's check of inventories and limits")
    submit.add_argument(
        "--yes", action="store_true", help="submit jobs that touch the file's protected hosts (protect:); audited"
    )
    for name, text in (
        ("cancel", "cancel a job"),
        ("retry", "run a job again"),
        ("timeout", "set a job's timeout (0 = none)"),
        ("pause", "pause a scheduled job's schedule"),
        ("resume", "resume a paused schedule (from the next cron time on)"),
        ("run-now", "run a scheduled job once now (its cron times unchanged)"),
        ("logs", "print a job's output"),
    ):
        verb = verbs.add_parser(name, help=text)
        verb.add_argument("job")
        if name in ("retry", "run-now"):
            verb.add_argument(
                "--yes", action="store_true", help="confirm touching the protected hosts its submission touched"
            )
        if name == "retry":
            verb.add_argument("--failed", action="store_true", help="only the hosts that failed or were unreachable")
        elif name == "timeout":
            verb.add_argument("duration", help="seconds, or 90s / 5m / 1h; 0 = no timeout")
        elif name == "logs":
            verb.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    server = verbs.add_parser("server", help="start, stop or describe the server")
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--json", action="store_true", help="status as JSON")
    server.add_argument("--foreground", action="store_true", help="start: run the server in this process")
    return parser


ACTIONS: dict[str, Callable[[argparse.Namespace, Connection], Awaitable[int]]] = {
    "ls": _ls,
    "submit": _submit,
    "cancel": _cancel,
    "retry": _retry,
    "timeout": _timeout,
    "pause": _schedule_verb,
    "resume": _schedule_verb,
    "run-now": _schedule_verb,
    "logs": _logs,
}


def main(argv: list[str]) -> int | None:
    """Run a verb; None when argv[0] is not one of ours (the caller then tries its own commands)."""
    if argv[:1] == ["report"]:  # reads the state dir only, never a server (tui/report_cli.py)
        from tui.report_cli import cmd_report  # noqa: PLC0415 - not needed by the other verbs

        return cmd_report(argv[1:])
    if argv[:1] == ["nodes"]:  # probes the nodes over ssh; asks a running server, never starts one
        from tui.nodes_cli import cmd_nodes  # noqa: PLC0415

        return cmd_nodes(argv[1:])
    if argv[:2] == ["server", "log"]:  # the server's JSON-lines log in the state dir (tui/server_log_cli.py)
        from tui.server_log_cli import cmd_server_log  # noqa: PLC0415

        return cmd_server_log(argv[2:])
    if not argv or argv[0] not in VERBS:
        return None
    try:
        args = _parser().parse_args(argv)
        if args.verb == "timeout":
            args.seconds = parse_duration(args.duration)
    except ArgsError as exc:
        err(str(exc))
        return INVALID
    except DurationError as exc:
        err(f"playdeck timeout: {exc}")
        return INVALID
    if args.verb == "server" and args.foreground:
        if args.action != "start":
            err("playdeck server: --foreground goes with start")
            return INVALID
        os.execv(sys.executable, [sys.executable, "-m", "tui.server", "--foreground"])
    try:
        if args.verb == "server":
            return asyncio.run(_server(args))
        action = ACTIONS[args.verb]
        return asyncio.run(_connected(lambda conn: action(args, conn)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    status = main(sys.argv[1:])
    if status is None:
        err(f"playdeck: not a verb: {' '.join(sys.argv[1:2])!r}; one of {', '.join(VERBS)}, report, nodes")
        status = INVALID
    sys.exit(status)
