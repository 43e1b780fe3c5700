"""The HTTP routes (notes/protocol.md): commands are requests, state comes over /v1/events.

Every request passes the SO_PEERCRED check first; every mutating one is audited
with the client's identity before the engine acts (the engine then audits the
action itself, as it does for the console).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tui.core.engine import EngineError
from tui.core.job import Job
from tui.core.planning.jobfile import InputError, Problem, load_job_file
from tui.server.logs import stream_log
from tui.server.state import Server
from tui.server.trust import identity, peer_of, trusted
from tui.server.wire import summary_dict

SERVER: web.AppKey[Server] = web.AppKey("server", Server)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, text: str, problems: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": text}
    if problems is not None:
        body["problems"] = problems
    return web.json_response(body, status=status)


@web.middleware
async def only_our_uid(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any peer whose kernel-reported uid is not ours, before any handler runs."""
    peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
    if not trusted(peer):
        if request.transport is not None:
            request.transport.close()
        return error(403, "playdeck server: only its own user may connect")
    request["peer"] = peer
    return await handler(request)


def audit(request: web.Request, action: str, job: Job | None = None, **args: Any) -> None:
    """Who asked, from where: the client's claims plus the kernel's pid, before the engine acts."""
    server = request.app[SERVER]
    server.engine.record(
        "client",
        job,
        request=action,
        **args,
        **identity(request.headers, request.get("peer")),
    )


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not JSON: {exc}"}),
            content_type="application/json",
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER].status())


async def get_jobs(request: web.Request) -> web.Response:
    jobs = request.app[SERVER].engine.jobs
    return web.json_response(
        {"jobs": [summary_dict(job) for job in jobs]},
        dumps=lambda d: json.dumps(d, default=str),
    )


def _clashes(server: Server, names: list[str]) -> list[str]:
    """Names taken by a job of this server (the engine refuses those: finished ones included)."""
    taken = {job.name: job for job in server.engine.jobs if not job.history}
    return [f"{name!r} is {taken[name].status.value} on the server" for name in names if name in taken]


async def post_jobs(request: web.Request) -> web.Response:
    """Validate like `playdeck run` (job file, then preflight); submit all or nothing."""
    server = request.app[SERVER]
    data = await body(request)
    raw = data.get("jobfile")
    if not isinstance(raw, str) or not raw:
        return error(400, 'body needs "jobfile": an absolute path (v1 takes no "specs")')
    path = Path(raw)
    if not path.is_absolute():
        return error(400, f"jobfile must be an absolute path: {raw}")
    try:
        job_file = await asyncio.to_thread(load_job_file, path)
    except InputError as exc:
        return error(400, "invalid input, nothing was submitted", [str(p) for p in exc.problems])
    names = [spec.name for spec in job_file.jobs]
    if clash := _clashes(server, names):
        return error(409, "a job of that name exists on the server, nothing was submitted", clash)
    if data.get("preflight", True) is not False:
        found = await asyncio.to_thread(server.spares.take(job_file.jobs))  # a warm preflight worker
        if found:
            problems = [str(Problem(path, None, f"job {name!r}", why)) for name, why in found.items()]
            return error(400, "invalid input, nothing was submitted", problems)
    if server.stopping.is_set():
        return error(409, "the server is stopping, nothing was submitted")
    if clash := _clashes(server, names):  # another submission may have won during the preflight
        return error(409, "a job of that name exists on the server, nothing was submitted", clash)
    audit(request, "submit", jobfile=str(path), jobs=names)
    try:
        for spec in job_file.jobs:
            server.engine.add(spec)
    except EngineError as exc:
        return error(409, str(exc))
    return web.json_response({"jobs": names}, status=201)


def _job(request: web.Request) -> Job:
    job = request.app[SERVER].find(request.match_info["name"])
    if job is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no job named {request.match_info['name']!r}"}),
            content_type="application/json",
        )
    return job


async def post_action(request: web.Request) -> web.Response:
    """cancel / retry / timeout / answer on one job; an action that does not apply is a 409."""
    server = request.app[SERVER]
    action = request.match_info["action"]
    job = _job(request)
    data = await body(request)
    engine = server.engine
    try:
        if action == "cancel":
            audit(request, "cancel", job)
            engine.cancel(job)
        elif action == "retry":
            audit(request, "retry", job, failed=bool(data.get("failed")))
            engine.retry(job, failed_only=bool(data.get("failed")))
        elif action == "timeout":
            seconds = data.get("seconds")
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
                return error(400, '"seconds" must be a number or null')
            audit(request, "timeout", job, seconds=seconds)
            engine.set_timeout(job, seconds)
        elif action == "answer":
            text = data.get("text")
            if not isinstance(text, str):
                return error(400, '"text" must be a string')
            audit(request, "answer", job)  # that an answer was given, never what
            engine.answer_prompt(job, text)
        else:
            return error(404, f"no action {action!r}")
    except EngineError as exc:
        return error(409, str(exc))
    return web.json_response({"ok": True})


async def post_stop(request: web.Request) -> web.Response:
    audit(request, "server-stop")
    request.app[SERVER].stop("client")
    return web.json_response({"ok": True})


async def get_log(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    job = _job(request)
    server.streams += 1
    try:
        return await stream_log(request, job, request.query.get("follow") == "1", server.stopping)
    finally:
        server.streams -= 1


async def get_events(request: web.Request) -> web.WebSocketResponse:
    """Snapshot, then batched deltas; the client may send {"watch": [names]}."""
    hub = request.app[SERVER].hub
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
    await ws.prepare(request)
    client = hub.add(ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            names = data.get("watch") if isinstance(data, dict) else None
            if isinstance(names, list):
                hub.watch(client, [str(n) for n in names])
    finally:
        hub.remove(client)
    return ws


def make_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[only_our_uid], client_max_size=1 << 20)
    app[SERVER] = server
    app.router.add_get("/v1/status", get_status)
    app.router.add_get("/v1/jobs", get_jobs)
    app.router.add_post("/v1/jobs", post_jobs)
    app.router.add_post("/v1/jobs/{name}/{action}", post_action)
    app.router.add_get("/v1/jobs/{name}/log", get_log)
    app.router.add_post("/v1/server/stop", post_stop)
    app.router.add_get("/v1/events", get_events)
    return app
