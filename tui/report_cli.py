"""`playdeck report`: an incident report from the state dir, for a ticket or a postmortem.

`playdeck report [--since 2h | --run ID] [--format md|html] [-o FILE] [--state-dir DIR]`
(default: the last 24 hours, Markdown, on stdout). It reads history and the audit trail
only, so it needs no server and is safe while one runs. Exit status: 0 written,
1 the file could not be written, 2 invalid input (a bad --since, --run, -o or --state-dir).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from tui.cliargs import ArgsError, Parser
from tui.core.durations import DurationError, parse_duration
from tui.core.reporting import FORMATS, ReportError, build_report, render
from tui.core.sanitize import strip_sgr
from tui.core.storage.paths import state_dir as default_state_dir
from tui.streams import say

OK, FAILED, INVALID = 0, 1, 2
DEFAULT_SINCE = "24h"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="playdeck report",
        description="An incident report from history and the audit trail: a summary, each failed host "
        "with its reason, every job with its attempts, durations and log, and a timeline of status "
        "changes and operator actions (who did what). Reads only; a running server is not needed "
        "and not disturbed. Exit status: 0 written, 1 the file could not be written, 2 invalid input.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--since",
        metavar="WHEN",
        help=f"jobs and actions since a duration ago (90m, 2h, 1h30m) or an ISO time (default {DEFAULT_SINCE})",
    )
    which.add_argument("--run", metavar="ID", help="one run (a directory name under the state dir's runs/)")
    parser.add_argument("--format", choices=FORMATS, default="md", help="md (Markdown, default) or html")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (atomically, mode 0600) instead of stdout"
    )
    parser.add_argument("--state-dir", type=Path, help="where playdeck keeps its state (default $PLAYDECK_STATE_DIR)")
    return parser


def parse_since(value: str, now: datetime) -> datetime:
    """A duration back from `now`, or an absolute ISO time (a naive one is local)."""
    try:
        seconds = parse_duration(value)
    except DurationError:
        seconds = None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ArgsError(
                f"playdeck report: --since {value!r}: not a duration (90m, 2h, 1h30m) or an ISO time (2026-12-01T03:00)"
            ) from None
        when = when if when.tzinfo is not None else when.astimezone()
        if when > now:
            raise ArgsError(f"playdeck report: --since {value!r} is in the future")
        return when
    if seconds is None:
        raise ArgsError(f"playdeck report: --since {value!r}: give a duration above zero, e.g. 2h")
    return now - timedelta(seconds=seconds)


def _output(value: str) -> Path:
    """Where -o writes: a file (new or replaced) in an existing directory."""
    path = Path(value).expanduser()
    if value.strip() == "" or path.is_dir():
        raise ArgsError(f"playdeck report: -o {value!r}: is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ArgsError(f"playdeck report: -o {value!r}: no directory {str(parent)!r} to write it in")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArgsError(f"playdeck report: -o {value!r}: directory {str(parent)!r} is not writable")
    return path


def write_atomic(path: Path, text: str) -> None:
    """The whole report or nothing: a private temp file beside it, synced, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _err(text: str) -> None:
    say(sys.stderr, strip_sgr(text).replace("\n", " "))


def cmd_report(argv: list[str]) -> int:
    """`playdeck report ...`; the exit status."""
    now = datetime.now().astimezone()
    try:
        args = _parser().parse_args(argv)
        since = None if args.run else parse_since(args.since or DEFAULT_SINCE, now)
        output = _output(args.output) if args.output is not None else None
        state = (args.state_dir or default_state_dir()).expanduser()
        if args.state_dir is not None and not state.is_dir():
            raise ArgsError(f"playdeck report: --state-dir {str(args.state_dir)!r}: no such directory")
        if args.run is not None and (not args.run or "/" in args.run or args.run in (".", "..")):
            raise ArgsError(f"playdeck report: --run {args.run!r}: not a run id")
        try:
            report = build_report(state, since, args.run)
        except ReportError as exc:
            raise ArgsError(f"playdeck report: --run: {exc}") from None
    except ArgsError as exc:
        _err(str(exc))
        return INVALID
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else OK
    text = render(report, args.format)
    if output is None:
        return OK if say(sys.stdout, text.rstrip("\n")) else FAILED
    try:
        write_atomic(output, text)
    except OSError as exc:
        _err(f"playdeck report: -o {str(output)!r}: not written: {exc.strerror or exc}")
        return FAILED
    _err(f"playdeck report: wrote {output}")
    return OK
