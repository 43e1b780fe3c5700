"""`playdeck server log [-f] [-n N] [--json] [--state-dir DIR]`: the server's structured log.

Reads `<state dir>/server.log.jsonl` (tui/server/jsonlog.py) and its rotated copies without the
server: the log is most wanted when the server is gone. Lines are shown as
`HH:MM:SS level event key=value ...` (a traceback indented below), or as JSON lines with
--json. Everything in the file may hold untrusted text (job names, host reasons): every value
is made safe for the terminal (jsonlog.text_value), and a line that is not JSON is shown
sanitized, never parsed further. `-f` follows the file across rotations (a new inode, or a
file that shrank, is reopened from its start) until Ctrl-C, which is a normal end (0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Iterable

from tui.core.sanitize import decode, strip_sgr
from tui.core.storage.paths import state_dir as default_state_dir
from tui.server.jsonlog import BACKUPS, PLAIN, log_path, text_fields
from tui.streams import silence

OK, MISSING, INVALID = 0, 1, 2
POLL = 0.25  # seconds between looks at a followed file that has nothing new
SHOWN_FIRST = ("time", "level", "event", "logger", "error")  # not among key=value (nor a plain message)
UNPARSED = "unparsed-line"  # --json: the event a line that is not a JSON object is wrapped in


class _Gone(Exception):
    """stdout is closed (`| head`): stop quietly."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playdeck server log", description="Show the server's structured log (JSON lines in the state dir)."
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep showing new entries until Ctrl-C")
    parser.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="entries to show first (default 50)")
    parser.add_argument("--json", action="store_true", help="the JSON lines themselves")
    parser.add_argument(
        "--state-dir", type=Path, help="the server's state dir (default $PLAYDECK_STATE_DIR, else the usual one)"
    )
    return parser


def _clock(stamp: Any) -> str:
    """HH:MM:SS in the local zone, from the entry's ISO time; its text (made safe) when it is not one."""
    try:
        when = dt.datetime.fromisoformat(str(stamp))
        if when.tzinfo is not None:
            when = when.astimezone()
        return when.strftime("%H:%M:%S")
    except ValueError:
        return strip_sgr(str(stamp)).replace("\n", "\u240a")


def readable(entry: dict[str, Any]) -> list[str]:
    """One entry as terminal lines: `HH:MM:SS level event key=value ...`, then its traceback."""
    event = entry.get("event", "?")
    head = f"{_clock(entry.get('time', '?'))} {strip_sgr(str(entry.get('level', '?'))):<7} "
    plain = event == PLAIN and "message" in entry
    head += strip_sgr(str(entry["message"] if plain else event)).replace("\n", "\u240a")
    rest = {key: value for key, value in entry.items() if key not in SHOWN_FIRST and not (plain and key == "message")}
    if rest:
        head += f" {text_fields(rest)}"
    lines = [head]
    if "error" in entry:
        lines += [f"    {strip_sgr(line)}" for line in str(entry["error"]).split("\n")]
    return lines


def render(raw: bytes, as_json: bool) -> list[str]:
    """A line of the file as what to print; a damaged line is shown sanitized, never a crash."""
    text = decode(raw).rstrip("\r\n")
    try:
        entry = json.loads(text)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        if as_json:
            return [json.dumps({"event": UNPARSED, "line": text})]
        return [strip_sgr(text)]
    if as_json:
        return [json.dumps(entry)]  # ASCII: no control character reaches the terminal raw
    return readable(entry)


def _split(data: bytes) -> list[bytes]:
    """Lines of complete-line data, split on \\n only (a stray \\r in a damaged line is shown, not obeyed)."""
    return [line for line in data.split(b"\n") if line.strip()]


def _write(lines: Iterable[str]) -> None:
    try:
        out = sys.stdout
        for line in lines:
            out.write(line + "\n")
        out.flush()
    except (OSError, ValueError):
        silence(sys.stdout)
        raise _Gone from None


def _files(path: Path) -> list[Path]:
    """The log and its rotated copies, newest first (those that exist)."""
    names = [path] + [path.with_name(f"{path.name}.{k}") for k in range(1, BACKUPS + 1)]
    return [name for name in names if name.is_file()]


def _tail(path: Path, count: int) -> tuple[list[bytes], IO[bytes] | None, bytes]:
    """The last `count` complete lines (across rotated copies when the current file has fewer),
    the current file open at its end (for -f) and its unfinished last line."""
    lines: deque[bytes] = deque(maxlen=max(count, 0) or None)
    current: IO[bytes] | None = None
    pending = b""
    files = _files(path)
    newest_first: list[list[bytes]] = []
    have = 0
    for index, name in enumerate(files):
        try:
            handle = open(name, "rb")
        except OSError:
            continue
        chunk = handle.read()
        if index == 0 and name == path:
            current = handle
            cut = chunk.rfind(b"\n") + 1
            chunk, pending = chunk[:cut], chunk[cut:]
        else:
            handle.close()
        whole = _split(chunk)
        newest_first.append(whole)
        have += len(whole)
        if have >= count:
            break
    if count > 0:
        for whole in reversed(newest_first):
            lines.extend(whole)
    return list(lines), current, pending


def _follow(path: Path, handle: IO[bytes] | None, pending: bytes, as_json: bool) -> None:
    """Print what is appended to `path`, reopening it when rotated (new inode) or truncated."""
    inode = os.fstat(handle.fileno()).st_ino if handle else None
    while True:
        data = handle.read(1 << 16) if handle else b""
        if data:
            pending += data
            cut = pending.rfind(b"\n") + 1
            if cut:
                whole, pending = _split(pending[:cut]), pending[cut:]
                _write(line for raw in whole for line in render(raw, as_json))
            continue
        try:
            info = os.stat(path)
        except OSError:  # between the rename and the new file of a rotation
            time.sleep(POLL)
            continue
        if handle is None or info.st_ino != inode:
            if handle is not None:
                rest = pending + handle.read()  # written before the rename: not to be lost
                handle.close()
                _write(line for raw in _split(rest) for line in render(raw, as_json))
            pending = b""
            try:
                handle = open(path, "rb")
            except OSError:
                handle = None
                time.sleep(POLL)
                continue
            inode = os.fstat(handle.fileno()).st_ino
            continue
        if info.st_size < handle.tell():  # truncated in place: start again
            handle.seek(0)
            pending = b""
            continue
        time.sleep(POLL)


def cmd_server_log(argv: list[str]) -> int:
    """The verb; 0 shown (or followed until Ctrl-C), 1 no log yet, 2 bad arguments."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else INVALID
    if args.lines < 0:
        print("playdeck server log: -n must be 0 or more", file=sys.stderr)
        return INVALID
    if args.state_dir is not None:
        state = args.state_dir.expanduser()
    else:
        state = default_state_dir()  # $PLAYDECK_STATE_DIR, else $XDG_STATE_HOME/playdeck
    path = log_path(state)
    if not _files(path):
        shown = strip_sgr(str(path)).replace("\n", "\u240a")
        print(f"playdeck server log: no server log at {shown} (a server writes it once started)", file=sys.stderr)
        return MISSING
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")  # a C-locale terminal still gets every line
        except (OSError, ValueError):
            pass
    handle: IO[bytes] | None = None
    try:
        lines, handle, pending = _tail(path, args.lines)
        _write(line for raw in lines for line in render(raw, args.json))
        if not args.follow:
            if pending.strip():
                _write(render(pending, args.json))
            return OK
        _follow(path, handle, pending, args.json)
    except KeyboardInterrupt:
        return OK
    except _Gone:
        return OK
    finally:
        if handle is not None and not handle.closed:
            handle.close()
    return OK


if __name__ == "__main__":
    sys.exit(cmd_server_log(sys.argv[1:]))
