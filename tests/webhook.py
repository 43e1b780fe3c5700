"""A real HTTP receiver on loopback for alert tests: records every POST's JSON body.

Runs `http.server` in its own thread, so it answers whether the test's event loop is busy,
blocked, or in another process (a server under test posts to it through Apprise's `json://`).

    with Webhook() as hook:                 # or Webhook(mode="hang") / Webhook(status=500)
        url = hook.url("alerts")            # json://127.0.0.1:PORT/alerts
        ...
        (post,) = hook.wait(1)              # each: {"path", "body" (parsed JSON), "at" (monotonic)}

mode "hang" reads the request and never answers (until the receiver is closed): a target
that takes connections but is stuck. `closed_port()` gives a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    def __init__(self, mode: str = "ok", status: int = 200):
        if mode not in ("ok", "hang"):
            raise ValueError("mode is ok or hang")
        self.mode = mode
        self.status = status
        self.posts: list[dict[str, Any]] = []
        self.hits = 0  # requests seen, answered or not
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def url(self, path: str = "hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with hook._lock:
                    hook.hits += 1
                    hook._lock.notify_all()
                if hook.mode == "hang":
                    hook._closing.wait()
                    return
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with hook._lock:
                    hook.posts.append({"path": self.path, "body": body, "at": time.monotonic()})
                    hook._lock.notify_all()
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr per request
                pass

        return Handler

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until `count` posts arrived (AssertionError after `timeout`); all posts so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"webhook got {len(self.posts)} posts, wanted {count} in {timeout}s")
                self._lock.wait(left)
            return list(self.posts)

    async def await_posts(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """`wait` for asyncio tests: polls, so the loop (and the server under test) keeps running."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook got {len(self.posts)} posts, wanted {count} in {timeout}s")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Webhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A loopback port where nothing listens now (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
