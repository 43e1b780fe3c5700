"""What every route shares: the app's Server, JSON errors and bodies, and the client audit entry."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tui.core.job import Job
from tui.server.state import Server
from tui.server.trust import Peer, identity

SERVER: web.AppKey[Server] = web.AppKey("server", Server)
PEER: web.RequestKey[Peer] = web.RequestKey("peer", Peer)  # the kernel's word on who connected


def error(status: int, text: str, problems: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": text}
    if problems is not None:
        body["problems"] = problems
    return web.json_response(body, status=status)


def fail(kind: type[web.HTTPException], text: str) -> web.HTTPException:
    """An HTTP error to raise from a helper, with the protocol's JSON body."""
    return kind(text=json.dumps({"error": text}), content_type="application/json")


def audit(request: web.Request, action: str, job: Job | None = None, **args: Any) -> None:
    """Who asked, from where: the client's claims plus the kernel's pid, before the engine acts."""
    server = request.app[SERVER]
    server.engine.record(
        "client",
        job,
        request=action,
        **args,
        **identity(request.headers, request.get(PEER)),
    )


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(web.HTTPBadRequest, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise fail(web.HTTPBadRequest, "body must be a JSON object")
    return data
