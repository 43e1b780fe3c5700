"""Operator actions from the audit trail (`state_dir/audit.jsonl`), as timeline rows.

The server writes two lines per request: a `client` line with who asked (the client's
claimed user, its kernel pid and uid) and then the engine's own line for what it did
(`cancel`, `retry`, `launch`, ...) under the server's pid. A report shows one row per
request, credited to the client, with the engine's line folded into it; a line the
engine wrote without a client (`playdeck run`'s launches, a schedule firing, the server
starting) stands alone under its own process. The file is appended to while a server
runs: a last line still being written is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.reporting.records import clean, when
from tui.core.storage.audit import redact

ECHO_SECONDS = 5.0  # the engine's line follows its client line at once; this bounds a match
#: A client request -> the engine actions that carry it out.
ECHOES = {
    "submit": ("launch", "adhoc"),
    "cancel": ("cancel",),
    "retry": ("retry", "retry-failed"),
    "timeout": ("timeout",),
    "answer": ("answer",),
    "pause": ("pause",),
    "resume": ("resume",),
    "run-now": ("run-now",),
    "server-stop": ("server-stop",),
}
#: Words for the actions (anything else is shown as recorded, cleaned).
WORDS = {
    "launch": "queued",
    "adhoc": "queued (ad hoc)",
    "retry-failed": "retry failed hosts",
    "timeout": "set timeout",
    "answer": "answer prompt",
    "attach": "console attached",
    "detach": "console detached",
    "server-start": "server started",
    "server-stop": "server stopped",
    "interrupt": "interrupted by signal",
    "schedule-fire": "schedule fired",
}
#: Arguments worth a word in a report; everything else (extra vars, protect lists, sockets) stays in the trail.
DETAIL_KEYS = (
    "target",
    "limit",
    "retries",
    "seconds",
    "failed",
    "status",
    "reason",
    "signal",
    "canceled",
    "interrupted",
    "running",
    "jobs",
    "jobfile",
    "hosts",
    "via",
    "at",
    "late",
    "why",
    "cron",
    "next_run",
    "prompt",
    "variable",
)
STATUS_ACTIONS = ("launch", "adhoc")  # rows that are job status changes, not operator actions


@dataclass
class Row:
    """One timeline row: a job status change, an operator action or a server event."""

    time: datetime
    job: str
    event: str
    by: str
    detail: str
    kind: str  # status | operator | server
    seq: int = 0  # order among rows at the same time: as written


@dataclass(frozen=True)
class AuditLine:
    time: datetime
    action: str
    job: str | None
    pid: int | None
    data: dict[str, Any]


def read_audit(path: Path, notes: list[str]) -> list[AuditLine]:
    """Every readable line, in file order; a torn or foreign line is skipped and counted."""
    lines: list[AuditLine] = []
    skipped = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                try:
                    data = json.loads(raw)
                except ValueError:
                    skipped += 1
                    continue
                time = when(data.get("time")) if isinstance(data, dict) else None
                if time is None or not isinstance(data.get("action"), str):
                    skipped += 1
                    continue
                pid = data.get("pid")
                job = data.get("job")
                lines.append(
                    AuditLine(
                        time=time,
                        action=data["action"],
                        job=str(job) if job is not None else None,
                        pid=pid if isinstance(pid, int) else None,
                        data=data,
                    )
                )
    except FileNotFoundError:
        return []
    except OSError as exc:
        notes.append(f"{path}: not read ({exc.strerror or exc})")
        return []
    if skipped:
        notes.append(f"{path}: {skipped} line(s) not readable, skipped (one still being written, or damaged)")
    return lines


def who(line: AuditLine) -> str:
    """Who did it: the client's user and process for a request, else the process that wrote the line."""
    data, args = line.data, _args(line)
    if line.action == "client":
        user, sudo, ssh = args.get("client_user"), args.get("client_sudo_user"), args.get("client_ssh")
        pid, uid = args.get("client_pid"), args.get("client_uid")
    else:
        user, sudo, ssh = data.get("user"), data.get("sudo_user"), data.get("ssh_client")
        pid, uid = line.pid, None
    parts = []
    if sudo:
        parts.append(f"sudo by {clean(sudo)}")
    if ssh:
        parts.append(f"from {clean(ssh)}")
    if isinstance(uid, int):
        parts.append(f"uid {uid}")
    if isinstance(pid, int):
        parts.append(f"pid {pid}")
    name = clean(user) or "unknown user"
    return f"{name} ({', '.join(parts)})" if parts else name


def _args(line: AuditLine) -> dict[str, Any]:
    args = line.data.get("args")
    return args if isinstance(args, dict) else {}


def detail(line: AuditLine) -> str:
    """The arguments that say what happened, redacted again (the trail should be already), as k=v."""
    args = redact(_args(line))
    parts = []
    for key in DETAIL_KEYS:
        value = args.get(key)
        if value is None or value is False or value in ("", 0, []):
            continue  # nothing said (no retries, not late): noise in a ticket
        if isinstance(value, list):
            value = ", ".join(clean(v) for v in value)
        label = "was" if key == "status" and line.action in ("cancel", "timeout") else key
        parts.append(f"{label}={clean(value)}")
    return " ".join(parts)


def audit_rows(lines: list[AuditLine]) -> list[Row]:
    """Rows for the audit lines, each engine line folded into the client request it carries out."""
    rows: list[Row] = []
    open_requests: list[tuple[AuditLine, Row, set[str]]] = []  # (client line, its row, jobs still to echo)
    for line in lines:
        if line.action == "client":
            args = _args(line)
            request = clean(args.get("request") or "request")
            row = Row(
                line.time, clean(line.job or ""), WORDS.get(request, request), who(line), detail(line), "operator"
            )
            rows.append(row)
            jobs = {str(j) for j in args.get("jobs") or []} if request == "submit" else {line.job or ""}
            open_requests.append((line, row, jobs))
            continue
        match = _echo_of(line, open_requests)
        event = WORDS.get(line.action, clean(line.action))
        kind = "status" if line.action in STATUS_ACTIONS else "server" if line.job is None else "operator"
        if match is None:
            rows.append(Row(line.time, clean(line.job or ""), event, who(line), detail(line), kind))
        elif line.action in STATUS_ACTIONS:
            rows.append(Row(line.time, clean(line.job or ""), event, match.by, detail(line), kind))
        else:
            extra = detail(line)
            if extra:
                match.detail = f"{match.detail} {extra}".strip()
    return rows


def _echo_of(line: AuditLine, open_requests: list[tuple[AuditLine, Row, set[str]]]) -> Row | None:
    """The client request this engine line carries out: same process, just before, same job."""
    for client, row, jobs in reversed(open_requests):
        if (line.time - client.time).total_seconds() > ECHO_SECONDS:
            break
        request = str(_args(client).get("request") or "")
        if client.pid == line.pid and line.action in ECHOES.get(request, ()) and (line.job or "") in jobs:
            jobs.discard(line.job or "")
            return row
    return None
