"""One client's HTTP connection to the engine server over its private Unix socket (protocol v1).

Every request carries who is asking (login name, SUDO_USER, SSH_CLIENT) so the server can audit
each action; the server takes the pid from SO_PEERCRED, never from us. Errors come back as
exceptions with the server's one line for people, so verbs and the console can show it as is.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from tui.core.planning.spec import JobSpec
from tui.core.planning.wirespec import spec_to_json

BASE = "http://playdeck"
SUBMIT_TIMEOUT = 300.0


class ClientError(Exception):
    """Base of what a client call can raise; `str()` is one line fit for an operator."""


class Unreachable(ClientError):
    """No server answers on the socket (absent, refused, or it went away mid-call)."""


class NoAnswer(Unreachable):
    """Something holds the socket but did not answer in time (a stopped or swamped server)."""


class ServerError(ClientError):
    """The server refused the request: `status` is the HTTP status, `problems` its detail lines."""

    def __init__(
        self, status: int, error: str, problems: list[str] | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.problems = list(problems or [])
        self.body = dict(body or {})  # the whole answer, e.g. "protected": {job: [hosts]} with a 409

    @property
    def protected(self) -> dict[str, list[str]]:
        """A submission refused for protected targets: {job name: [hosts]} (empty otherwise)."""
        raw = self.body.get("protected") if self.status == 409 else None
        if not isinstance(raw, dict):
            return {}
        return {str(k): [str(h) for h in v] for k, v in raw.items() if isinstance(v, list)}


def identity_headers() -> dict[str, str]:
    """Who is acting, for the server's audit trail (the pid it reads from the socket itself)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {
        "X-Playdeck-User": user,
        "X-Playdeck-Sudo-User": os.environ.get("SUDO_USER", ""),
        "X-Playdeck-SSH-Client": os.environ.get("SSH_CLIENT", ""),
    }


async def _raise_for(resp: aiohttp.ClientResponse) -> None:
    """Turn a 4xx/5xx into ServerError with the server's own words when it gave them."""
    if resp.status < 400:
        return
    error, problems, answer = f"server answered HTTP {resp.status}", None, None
    try:
        body = json.loads(await resp.text())
        if isinstance(body, dict):
            answer = body
            error = str(body.get("error") or error)
            raw = body.get("problems")
            problems = [str(p) for p in raw] if isinstance(raw, list) else None
    except (ValueError, aiohttp.ClientError):
        pass
    raise ServerError(resp.status, error, problems, answer)


class Connection:
    """An aiohttp session bound to the server's socket; use as `async with Connection(path) as c`."""

    def __init__(self, socket: Path | str, timeout: float | None = 30.0) -> None:
        self.socket = Path(socket)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Create the session (needs a running loop); idempotent."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)),
                headers=identity_headers(),
                timeout=self._timeout,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        self.open()
        assert self._session is not None
        return self._session

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """One JSON request; the decoded JSON answer (None for an empty body). `timeout` replaces
        the connection's for this request; a server that does not answer in time is Unreachable."""
        options: dict[str, Any] = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        try:
            async with self.session.request(method, BASE + path, json=body, **options) as resp:
                await _raise_for(resp)
                text = await resp.text()
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unreachable(f"no playdeck server answers on {self.socket}: {exc}") from exc
        except TimeoutError as exc:  # a stopped (SIGSTOP) or swamped server
            raise NoAnswer(f"the playdeck server on {self.socket} did not answer {method} {path} in time") from exc
        return json.loads(text) if text.strip() else None

    # --- the endpoints ---------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/v1/status"))

    async def jobs(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/v1/jobs"))

    async def submit(self, jobfile: Path, preflight: bool = True, yes: bool = False) -> list[str]:
        """Submit a job file by absolute path (the server reads it); the names it started.
        `yes`: the operator confirmed touching the file's protected hosts."""
        body: dict[str, Any] = {"jobfile": str(Path(jobfile).expanduser().absolute())}
        if not preflight:
            body["preflight"] = False
        if yes:
            body["yes"] = True
        # the server runs Ansible's preflight on the file's inventories first: allow it minutes
        answer = await self.request("POST", "/v1/jobs", body, timeout=SUBMIT_TIMEOUT)
        return [str(name) for name in (answer or {}).get("jobs", [])]

    async def submit_spec(
        self,
        spec: JobSpec,
        secrets: dict[str, str] | None = None,
        preflight: bool = True,
        yes: bool = False,
        protect: tuple[str, ...] | list[str] = (),
    ) -> list[int]:
        """Submit one job (the launch dialog's); its prompt answers go along, memory only on the
        server. The new job's id (a finished job's name may be launched again: ids tell them apart).
        `protect`: host patterns that need confirmation (the console's job file's); `yes`: the
        operator confirmed touching them (else a protected target is a 409 with "protected")."""
        body: dict[str, Any] = {"spec": spec_to_json(spec), "secrets": dict(secrets or {}), "preflight": preflight}
        if protect:
            body["protect"] = list(protect)
        if yes:
            body["yes"] = True
        answer = await self.request("POST", "/v1/jobs", body, timeout=SUBMIT_TIMEOUT)
        return [int(number) for number in (answer or {}).get("ids", [])]

    async def cancel(self, name: str, job_id: int | None = None) -> None:
        await self.request("POST", _job_path(name, "cancel", job_id), {})

    async def retry(self, name: str, failed: bool = False, job_id: int | None = None, yes: bool = False) -> None:
        """`yes`: the operator confirmed touching the protected hosts the job's submission touched
        (without it such a retry is a 409 with `protected`)."""
        body: dict[str, Any] = {"failed": failed}
        if yes:
            body["yes"] = True
        await self.request("POST", _job_path(name, "retry", job_id), body)

    async def set_timeout(self, name: str, seconds: float | None, job_id: int | None = None) -> None:
        await self.request("POST", _job_path(name, "timeout", job_id), {"seconds": seconds})

    async def answer(self, name: str, text: str, job_id: int | None = None) -> None:
        await self.request("POST", _job_path(name, "answer", job_id), {"text": text})

    async def pause(self, name: str, job_id: int | None = None) -> None:
        """A scheduled job fires nothing until resumed (409 when it has no schedule or is paused)."""
        await self.request("POST", _job_path(name, "pause", job_id), {})

    async def resume(self, name: str, job_id: int | None = None) -> None:
        await self.request("POST", _job_path(name, "resume", job_id), {})

    async def run_now(self, name: str, job_id: int | None = None, yes: bool = False) -> None:
        """Run a scheduled job once now (409 when it is already running or its circuit is open,
        or, without `yes`, when its submission touched protected hosts)."""
        await self.request("POST", _job_path(name, "run-now", job_id), {"yes": True} if yes else {})

    async def results(self, name: str, job_id: int | None = None) -> dict[str, Any]:
        """The last attempt's task results: {"tasks": [...], "dropped": n, "events": path|None}."""
        return dict(await self.request("GET", _job_path(name, "results", job_id)))

    async def stop_server(self) -> None:
        await self.request("POST", "/v1/server/stop", {})

    async def log_lines(self, name: str, follow: bool = False, job_id: int | None = None) -> AsyncIterator[str]:
        """The job's output, line by line as the server streams it (follow: until the job ends).
        No total timeout: a followed job may run for hours."""
        url = f"{BASE}{_job_path(name, 'log', job_id)}{'&' if job_id is not None else '?'}follow={int(follow)}"
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as resp:
                await _raise_for(resp)
                pending = b""
                async for chunk in resp.content.iter_any():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", errors="replace")
                if pending:
                    yield pending.decode("utf-8", errors="replace")
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unreachable(f"no playdeck server answers on {self.socket}: {exc}") from exc

    async def events(self) -> aiohttp.ClientWebSocketResponse:
        """The websocket of /v1/events (snapshot, deltas, logs of watched jobs); caller closes it."""
        try:
            return await self.session.ws_connect(
                BASE + "/v1/events", timeout=aiohttp.ClientWSTimeout(ws_close=5), heartbeat=None, max_msg_size=0
            )
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unreachable(f"no playdeck server answers on {self.socket}: {exc}") from exc
        except aiohttp.WSServerHandshakeError as exc:
            raise ServerError(exc.status, f"server refused the event stream: HTTP {exc.status}") from exc


def _quote(name: str) -> str:
    """A job name as one URL path segment (names may hold any character but '/')."""
    return quote(name, safe="")


def _job_path(name: str, what: str, job_id: int | None) -> str:
    """/v1/jobs/NAME/WHAT, with ?id=N when the caller means one job of that name."""
    return f"/v1/jobs/{_quote(name)}/{what}" + (f"?id={int(job_id)}" if job_id is not None else "")
