"""The HTTP routes (notes/protocol.md): commands are requests, state comes over /v1/events.

Every request passes the SO_PEERCRED check first; every mutating one is audited
with the client's identity before the engine acts (the engine then audits the
action itself, as it does for the console). The /v1/jobs routes are in routes_jobs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from tui.server.http import PEER, SERVER, audit, error
from tui.server.routes_jobs import add_routes
from tui.server.state import Server
from tui.server.trust import peer_of, trusted

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def only_our_uid(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any peer whose kernel-reported uid is not ours, before any handler runs."""
    peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
    if peer is None or not trusted(peer):
        if request.transport is not None:
            request.transport.close()
        return error(403, "playdeck server: only its own user may connect")
    request[PEER] = peer
    return await handler(request)


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER].status())


async def post_stop(request: web.Request) -> web.Response:
    audit(request, "server-stop")
    request.app[SERVER].stop("client")
    return web.json_response({"ok": True})


def _ids(raw: list[object]) -> list[int]:
    return [n for n in raw if isinstance(n, int) and not isinstance(n, bool)]


async def get_events(request: web.Request) -> web.WebSocketResponse:
    """Snapshot, then batched deltas; the client may send {"watch": [names]} or {"watch_ids": [ids]}.
    Who attached and when they left go to the audit trail, like any action."""
    hub = request.app[SERVER].hub
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
    await ws.prepare(request)
    client = hub.add(ws)
    audit(request, "attach", client=client.number)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("watch_ids"), list):
                hub.watch_ids(client, _ids(data["watch_ids"]))
            elif isinstance(data.get("watch"), list):
                hub.watch(client, [str(n) for n in data["watch"]])
    finally:
        hub.remove(client)
        audit(request, "detach", client=client.number)
    return ws


def make_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[only_our_uid], client_max_size=1 << 20)
    app[SERVER] = server
    app.router.add_get("/v1/status", get_status)
    add_routes(app)
    app.router.add_post("/v1/server/stop", post_stop)
    app.router.add_get("/v1/events", get_events)
    return app
