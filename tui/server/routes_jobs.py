"""The /v1/jobs routes: submit (a job file or one spec), act on a job, its log and its results.

A job is named in the URL; `?id=N` picks one job of that name by id (a history job and a
current one may share a name, and a finished name may be launched again).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from tui.core.engine import EngineError
from tui.core.job import Job
from tui.core.planning.jobfile import InputError, Problem, load_job_file
from tui.core.planning.nodes import Node, probe_problem
from tui.core.planning.spec import JobSpec
from tui.core.planning.wirespec import SpecError, spec_from_json
from tui.core.scheduling import protect as protection
from tui.core.scheduling.locks import UnresolvedLock, check_resolved
from tui.server.http import SERVER, audit, body, error, fail
from tui.server.logs import stream_log
from tui.server.state import Server
from tui.server.wire import results_dict, summary_dict

INVALID = "invalid input, nothing was submitted"
CLASH = "a job of that name is unfinished on the server, nothing was submitted"


async def get_jobs(request: web.Request) -> web.Response:
    jobs = request.app[SERVER].engine.jobs
    return web.json_response(
        {"jobs": [summary_dict(job) for job in jobs]},
        dumps=lambda d: json.dumps(d, default=str),
    )


def _clashes(server: Server, names: list[str]) -> list[str]:
    """Names taken by an unfinished job of this server (a finished one's name may run again)."""
    taken = {job.name: job for job in server.unfinished()}
    return [f"{name!r} is {taken[name].status.value} on the server" for name in names if name in taken]


def _secrets(raw: Any) -> dict[str, str]:
    """Prompt answers for the job; a bad one is refused without echoing any value."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise SpecError(["secrets: expected a mapping of strings to strings"])
    return dict(raw)


def _protect(raw: Any) -> tuple[str, ...]:
    """A spec's "protect": host patterns (as a job file's `protect:`) its launch must confirm."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise SpecError(["protect: expected a host pattern or a list of them"])
    return tuple(raw)


async def post_jobs(request: web.Request) -> web.Response:
    """Validate like `playdeck run` (job file or spec, then preflight); submit all or nothing.
    The preflight also resolves each job's hosts (for `lock: hosts`) and the protected ones:
    a submission touching a protected host needs "yes": true, else 409 naming job and hosts."""
    server = request.app[SERVER]
    data = await body(request)
    secrets: dict[str, str] = {}
    protect: tuple[str, ...] = ()
    yes = data.get("yes", False)
    if not isinstance(yes, bool):
        return error(400, '"yes" must be true or false')
    if "spec" in data:
        try:
            secrets = _secrets(data.get("secrets"))
            protect = _protect(data.get("protect"))  # a console's job file's patterns, for its launches
            specs = [await asyncio.to_thread(spec_from_json, data["spec"], server.config.nodes)]
        except SpecError as exc:
            return error(400, INVALID, exc.problems)
        where: Path | None = None
        args: dict[str, Any] = {}
    else:
        raw = data.get("jobfile")
        if not isinstance(raw, str) or not raw:
            return error(400, 'body needs "jobfile" (an absolute path) or "spec" (one job); v1 takes no "specs"')
        where = Path(raw)
        if not where.is_absolute():
            return error(400, f"jobfile must be an absolute path: {raw}")
        try:
            job_file = await asyncio.to_thread(load_job_file, where, server.config.nodes)
            specs, protect = job_file.jobs, job_file.protect
        except InputError as exc:
            return error(400, INVALID, [str(p) for p in exc.problems])
        args = {"jobfile": str(where)}
    names = [spec.name for spec in specs]
    if clash := _clashes(server, names):
        return error(409, CLASH, clash)
    if unusable := await _node_problems(specs):  # unreachable, or other versions: before any job is placed
        return error(400, INVALID, unusable)
    protect = tuple(dict.fromkeys((*protect, *server.config.protect)))  # the config's patterns guard every launch
    if data.get("preflight", True) is not False:
        check = server.spares.take(specs).assign(specs, protect)  # a warm preflight worker
        found = await asyncio.to_thread(check)
        if found:
            return error(400, INVALID, [_preflight_problem(where, name, why) for name, why in found.items()])
        specs = check.resolved()
        touched = protection.touched(check.protected)
        said = protection.lines(touched, protect)
    else:
        try:
            check_resolved(specs)
        except UnresolvedLock as exc:
            return error(400, INVALID, [f"lock: {exc} (preflight: false)"])
        touched = {spec.name: [] for spec in specs} if protect else {}
        said = protection.unchecked_lines(list(touched), protect)
    if touched and not yes:
        audit(request, "protect-refused", **args, protected=touched, protect=list(protect))
        return web.json_response({"error": protection.REFUSED, "problems": said, "protected": touched}, status=409)
    if server.stopping.is_set():
        return error(409, "the server is stopping, nothing was submitted")
    if clash := _clashes(server, names):  # another submission may have won during the preflight
        return error(409, CLASH, clash)
    if touched:  # confirmed: who said yes to which protected hosts
        args.update(protected=touched, protect=list(protect), yes=True)
    audit(request, "submit", **args, jobs=names)  # never the secrets: the engine records which, not what
    return _submit(server, specs, secrets, touched)


#: A node found usable is not asked again for this long (a submission of many files costs one
#: ssh round trip per node a minute); one found unusable is asked again at the next submission.
PROBE_TTL = 60.0
_usable: dict[Node, float] = {}  # node -> time.monotonic() of its last good probe


async def _node_problems(specs: list[JobSpec]) -> list[str]:
    """Each node the jobs run on, probed over ssh (tui.core.running.node_link.probe): reachable,
    and the same playdeck and ansible-core versions as here; one line per node that is not,
    naming the jobs placed there."""
    placed: dict[Node, list[str]] = {}
    for spec in specs:
        if spec.node is not None:
            placed.setdefault(spec.node, []).append(spec.name)
    if not placed:
        return []
    from tui.core.running import node_link  # noqa: PLC0415 - ssh is only for node jobs

    now = time.monotonic()
    ask = [node for node in placed if now - _usable.get(node, -PROBE_TTL) >= PROBE_TTL]
    answers = await asyncio.gather(*(node_link.probe(node) for node in ask))
    problems = []
    for node, answer in zip(ask, answers):
        why = probe_problem(node, answer)
        if why is None:
            _usable[node] = time.monotonic()
        else:
            _usable.pop(node, None)
            names = ", ".join(repr(name) for name in placed[node])
            problems.append(f"job{'s' if len(placed[node]) > 1 else ''} {names}: {why}")
    return problems


def _preflight_problem(where: Path | None, name: str, why: str) -> str:
    if where is None:
        return f"job {name!r}: {why}"
    return str(Problem(where, None, f"job {name!r}", why))


def _submit(
    server: Server, specs: list[JobSpec], secrets: dict[str, str], touched: dict[str, list[str]]
) -> web.Response:
    try:
        jobs = server.place(specs, secrets, touched)
    except EngineError as exc:
        return error(409, str(exc))
    return web.json_response({"jobs": [job.name for job in jobs], "ids": [job.id for job in jobs]}, status=201)


SCHEDULE_ACTIONS: dict[str, Callable[[Server, Job], None]] = {
    "pause": lambda server, job: server.schedules.pause(job),
    "resume": lambda server, job: server.schedules.resume(job),
    "run-now": lambda server, job: server.schedules.run_now(job),
}


def job_of(request: web.Request) -> Job:
    """The job the URL names: `?id=N` picks that job (its name must match), else the name's newest."""
    server = request.app[SERVER]
    name = request.match_info["name"]
    raw = request.query.get("id")
    if raw is None:
        job = server.find(name)
    else:
        try:
            number = int(raw)
        except ValueError:
            raise fail(web.HTTPBadRequest, f"id must be a whole number, got {raw[:40]!r}") from None
        job = server.by_id(number)
        if job is not None and job.name != name:
            job = None
        if job is None:
            raise fail(web.HTTPNotFound, f"no job {number} named {name!r}")
    if job is None:
        raise fail(web.HTTPNotFound, f"no job named {name!r}")
    return job


async def post_action(request: web.Request) -> web.Response:
    """cancel / retry / timeout / answer / pause / resume / run-now on one job; an action that
    does not apply is a 409."""
    server = request.app[SERVER]
    action = request.match_info["action"]
    job = job_of(request)
    data = await body(request)
    engine = server.engine
    if action in ("retry", "run-now") and job.protected is not None:
        refused = _unconfirmed(request, action, job, data)
        if refused is not None:
            return refused
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
        elif action in SCHEDULE_ACTIONS:  # a scheduled job's schedule (tui/server/schedules.py)
            audit(request, action, job)
            SCHEDULE_ACTIONS[action](server, job)
            server.hub.on_change(job, "status")  # a paused running job's next_run changes without a status
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


def _unconfirmed(request: web.Request, action: str, job: Job, data: dict[str, Any]) -> web.Response | None:
    """A retry or run-now of a job whose submission touched protected hosts asks again (409
    naming them) unless "yes": true; audited either way. Scheduled fires do not ask: the
    submission that registered the schedule confirmed them."""
    hosts = list(job.protected or ())
    said = [protection.again_line(job.name, hosts)]
    if data.get("yes") is not True:
        audit(request, "protect-refused", job, asked=action, protected={job.name: hosts})
        return web.json_response(
            {"error": protection.ACTION_REFUSED, "problems": said, "protected": {job.name: hosts}}, status=409
        )
    audit(request, "protect-confirmed", job, asked=action, protected={job.name: hosts}, yes=True)
    return None


async def get_log(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    job = job_of(request)
    server.streams += 1
    try:
        return await stream_log(request, job, request.query.get("follow") == "1", server.stopping)
    finally:
        server.streams -= 1


async def get_results(request: web.Request) -> web.Response:
    """The last attempt's task results (bounded in memory: "dropped" counts the rest, in "events")."""
    return web.json_response(results_dict(job_of(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/jobs", get_jobs)
    app.router.add_post("/v1/jobs", post_jobs)
    app.router.add_post("/v1/jobs/{name}/{action}", post_action)
    app.router.add_get("/v1/jobs/{name}/log", get_log)
    app.router.add_get("/v1/jobs/{name}/results", get_results)
