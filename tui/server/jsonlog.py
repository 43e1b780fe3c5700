"""The server's structured log: JSON lines in `<state dir>/server.log.jsonl`, rotated by size.

On-call people grep it, ship it (Loki, Vector, journald's JSON) and read it with
`playdeck server log [-f]`. Each line is one object: `time` (ISO-8601 with the zone), `level`
("info", "warning", ...), `event` (a short kebab-case name), `logger`, then the event's fields,
and `error` (the traceback) when an exception came with it. A plain `log.warning("text %s", x)`
is `{"event": "message", "message": "text ..."}`, so nothing logged anywhere is lost: a record
is an event exactly when it carries `fields` (possibly empty).

Callers write events as
    event(log, "job-ended", job=name, status="failed")
or  log.info("job-ended", extra={"fields": {"job": name, "status": "failed"}})

Fields carry untrusted text (job names, host reasons): json.dumps escapes every control
character (ensure_ascii: the file is pure ASCII, so even C1 and bidi controls are escapes)
and nothing is stripped; the reader sanitizes for the terminal. The formatter never raises:
a value that is not JSON becomes its repr. The file and its rotated copies are 0600: job
names and messages are as private as the job logs beside them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import logging.handlers
import os
import re
import traceback
from pathlib import Path
from typing import Any, Callable

from tui.core.sanitize import strip_sgr
from tui.core.storage.paths import ensure_private_dir

LOG_NAME = "server.log.jsonl"
MAX_BYTES = 5 * 1024 * 1024  # per file; with BACKUPS, at most 20 MiB of log
BACKUPS = 3
PLAIN = "message"  # the event of a plain (non-event) log call
RESERVED = ("time", "level", "event", "logger")  # written first; a field of that name is kept as `<name>_`
WARN_STATUSES = frozenset({"failed", "timeout", "error", "interrupted"})  # job statuses logged as warnings
BARE = re.compile(r"[\w.,:/@+\-]+")  # a value shown without quotes: no space, quote, = or control


def log_path(state_dir: Path | str) -> Path:
    """Where the server of that state dir writes its structured log."""
    return Path(state_dir) / LOG_NAME


def event(logger: logging.Logger, name: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log the event `name` with `fields` (the structured-log convention, as one call)."""
    logger.log(level, name, extra={"fields": fields})


def text_value(value: Any) -> str:
    """A field's value for a terminal: plain when it is one harmless word, else JSON-quoted
    (newlines, ESC and other C0 controls become escapes) and then sanitized (C1 and bidi
    controls made visible), so a hostile job name can neither move the cursor nor fake a line."""
    if isinstance(value, str) and BARE.fullmatch(value):
        return strip_sgr(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = json.dumps(repr(value), ensure_ascii=False)
    return strip_sgr(text)


def text_fields(fields: dict[Any, Any]) -> str:
    """`key=value key=value`, each part made safe as by text_value."""
    return " ".join(f"{text_value(str(key))}={text_value(value)}" for key, value in fields.items())


def _time(created: float) -> str:
    """The record's time in the local zone, with its offset, to the millisecond."""
    return dt.datetime.fromtimestamp(created, dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _message(record: logging.LogRecord) -> str:
    """record.getMessage(), or what there is of it when the arguments do not fit the format."""
    try:
        return record.getMessage()
    except Exception:
        return f"{record.msg!r} % {record.args!r}"


def _dumps(entry: dict[str, Any]) -> str:
    """One JSON line, whatever is in `entry`: unknown values become their repr, and a key that
    is not a string or a structure that cannot be written (a cycle) is written as a repr too."""
    try:
        return json.dumps(entry, default=repr)
    except (TypeError, ValueError, RecursionError):
        pass
    safe: dict[str, Any] = {}
    for key, value in entry.items():
        try:
            json.dumps(value, default=repr)
        except (TypeError, ValueError, RecursionError):
            value = repr(value)
        safe[key if isinstance(key, str) else repr(key)] = value
    return json.dumps(safe, default=repr)


class JsonFormatter(logging.Formatter):
    """A LogRecord -> one JSON line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as exc:  # the log must never take the server down
            return json.dumps(
                {
                    "time": _time(getattr(record, "created", 0.0)),
                    "level": "error",
                    "event": "log-format-error",
                    "logger": str(getattr(record, "name", "")),
                    "error": repr(exc),
                    "record": repr(getattr(record, "msg", None)),
                }
            )

    def _format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        entry: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname.lower(),
            "event": PLAIN,
            "logger": record.name,
        }
        if fields is not None and isinstance(record.msg, str):
            entry["event"] = record.msg
            if record.args:  # an event name with %-arguments: keep the text too
                entry["message"] = _message(record)
        else:
            entry["message"] = _message(record)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry[f"{key}_" if key in RESERVED or key in entry else key] = value
        elif fields is not None:
            entry["fields"] = fields
        if record.exc_info:
            entry["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        elif record.exc_text:
            entry["error"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _dumps(entry)


class ReadableEvents(logging.Formatter):
    """The stderr handler's formatter, taught events: `job-status job=x status=failed` instead
    of the bare event name; other records go to the formatter it had, unchanged."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict) or not fields:
            return self.inner.format(record)
        try:
            copy = logging.makeLogRecord(record.__dict__)
            copy.msg, copy.args = f"{_message(record)} {text_fields(fields)}", None
            return self.inner.format(copy)
        except Exception:
            return self.inner.format(record)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose files are 0600 from their creation on (not after a chmod:
    no window in which another user could open them). Rotation renames, so the copies
    keep the mode; a log left wider by something else is narrowed when opened."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            return open(fd, "a", encoding="utf-8", errors="backslashreplace")
        except BaseException:
            os.close(fd)
            raise


def setup(state_dir: Path, level: int = logging.INFO) -> logging.Handler:
    """Write the server's log records as JSON lines to `log_path(state_dir)`, rotated (5 MiB x 3).

    The handler goes on the root logger, so warnings of the libraries (asyncio's "Task exception
    was never retrieved", aiohttp's errors) land in the file too; the "tui" logger is set to
    `level`, so the server's own info events do, while other libraries stay at warning. The
    stderr handler that logging.basicConfig installed keeps showing warnings only (its level is
    set to WARNING where it was unset): the file is in addition, not instead. Calling it again
    (tests, a reload) replaces the earlier handler. Raises OSError when the file cannot be opened.
    """
    path = log_path(state_dir)
    ensure_private_dir(path.parent)
    handler = PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.set_name(f"playdeck-jsonlog:{path}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == handler.get_name():
            root.removeHandler(old)
            old.close()
        elif not isinstance(old, PrivateRotatingFileHandler):
            if old.level == logging.NOTSET:
                old.setLevel(logging.WARNING)  # stderr as before: info events go to the file only
            if not isinstance(old.formatter, ReadableEvents):
                old.setFormatter(ReadableEvents(old.formatter))
    root.addHandler(handler)
    logging.getLogger("tui").setLevel(level)
    return handler


def job_listener(logger: logging.Logger) -> Callable[[Any, str], None]:
    """An engine listener (Engine.subscribe) logging each job status change as "job-status"
    (job, id, status, attempt, message); failed/timeout/error as warnings. Never raises."""

    def listen(job: Any, what: str) -> None:
        if what != "status":
            return
        try:
            status = str(getattr(job.status, "value", job.status))
            fields: dict[str, Any] = {"job": job.name, "id": job.id, "status": status}
            attempts = getattr(job, "attempts", None)
            if attempts:
                fields["attempt"] = len(attempts)
            if job.message:
                fields["message"] = job.message
            level = logging.WARNING if status in WARN_STATUSES else logging.INFO
            event(logger, "job-status", level, **fields)
        except Exception:
            logger.exception("job-status not logged")

    return listen
