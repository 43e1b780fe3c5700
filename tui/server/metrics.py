"""Prometheus metrics of the server, served on a TCP address only when the config names one.

Counters of ended attempts (by status), their durations and their hosts' results are kept as
attempts end; everything that is a state (jobs by status, the queue, clients, schedules,
circuits) is read from the server at scrape time by a collector, so it can never drift.
The registry is private: nothing else in the process (or a library) adds metrics to it.
Events are counted with a plain int: that path runs once per Ansible event and must stay cheap.

Only the job name, sanitized, is a label carrying outside text; every other label takes
values from a fixed set (statuses, result kinds).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tui.core.job import Job
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr

if TYPE_CHECKING:
    from tui.server.state import Server

log = logging.getLogger(__name__)
disable_created_metrics()  # the *_created series say nothing a scrape needs, and double the output

PATH = "/metrics"
RESULTS = ("ok", "changed", "failed", "unreachable")
# what an attempt can end as (Engine._finish); each is shown at 0 from the start, so rates work
ATTEMPT_ENDS = (Status.SUCCESSFUL, Status.FAILED, Status.TIMEOUT, Status.CANCELED, Status.ERROR)
# seconds: from a one-task play to a long rollout
BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, float("inf"))
MAX_LABEL = 200  # characters of a job name in a label


def job_label(name: str) -> str:
    """A job name as a label value: controls made visible (strip_sgr), on one line, bounded.
    Quotes and backslashes are left to the exposition format's own escaping."""
    text = strip_sgr(name).replace("\n", "\u2424").replace("\t", "\u2409")
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


class ListenError(OSError):
    """The metrics address cannot be bound; its str() is the message alone, for people."""

    def __str__(self) -> str:
        return str(self.strerror)


class _Live(Collector):
    """What is read from the server at each scrape."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        server = self.metrics.server
        own = [job for job in server.engine.jobs if not job.history]
        counts = dict.fromkeys(Status, 0)
        for job in own:
            counts[job.status] += 1
        jobs = GaugeMetricFamily(
            "playdeck_jobs", "This server's jobs by status (earlier runs' not counted)", labels=["status"]
        )
        for status, count in counts.items():
            jobs.add_metric([status.value], count)
        yield jobs
        yield GaugeMetricFamily("playdeck_queue_length", "Jobs queued for a free slot", value=counts[Status.QUEUED])
        yield GaugeMetricFamily("playdeck_clients", "Attached event-stream clients", value=len(server.hub.clients))
        yield CounterMetricFamily("playdeck_events", "Ansible events received", value=self.metrics.events)
        yield self._next_runs()
        yield self._circuits(own)

    def _next_runs(self) -> Metric:
        family = GaugeMetricFamily(
            "playdeck_schedule_next_run_timestamp_seconds",
            "When a schedule fires next (absent while paused or its circuit is open)",
            labels=["job"],
        )
        newest: dict[str, tuple[int, float]] = {}
        for entry in list(self.metrics.server.schedules.entries.values()):
            job = entry.job
            if entry.paused or entry.next_at is None or job.circuit_open:
                continue
            _keep_newest(newest, job, entry.next_at.timestamp())
        for label, (_, value) in sorted(newest.items()):
            family.add_metric([label], value)
        return family

    def _circuits(self, own: list[Job]) -> Metric:
        family = GaugeMetricFamily(
            "playdeck_circuit_open",
            "1 when a job's circuit breaker stopped its retries (jobs with a breaker)",
            labels=["job"],
        )
        newest: dict[str, tuple[int, float]] = {}
        for job in own:
            if job.spec.circuit is not None:
                _keep_newest(newest, job, 1.0 if job.circuit_open else 0.0)
        for label, (_, value) in sorted(newest.items()):
            family.add_metric([label], value)
        return family


def _keep_newest(found: dict[str, tuple[int, float]], job: Job, value: float) -> None:
    """One sample per label: a name launched again (or two names that sanitize alike) shows its newest job."""
    label = job_label(job.name)
    if label not in found or found[label][0] < job.id:
        found[label] = (job.id, value)


class Metrics:
    """The server's metrics and their endpoint; `on_change` is an engine listener."""

    def __init__(self, server: Server):
        self.server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.events = 0
        self._counted: dict[int, int] = {}  # job id -> the newest attempt number counted
        self.attempts = Counter(
            "playdeck_attempts", "Ended attempts by their status", ["status"], registry=self.registry
        )
        self.duration = Histogram(
            "playdeck_job_duration_seconds",
            "How long ended attempts ran, by their status",
            ["status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.hosts = Counter(
            "playdeck_hosts", "Host results of ended attempts (PLAY RECAP counts)", ["result"], registry=self.registry
        )
        for status in ATTEMPT_ENDS:
            self.attempts.labels(status.value)
            self.duration.labels(status.value)
        for result in RESULTS:
            self.hosts.labels(result)
        self.registry.register(_Live(self))
        self.listen: tuple[str, int] | None = None
        self._runner: web.AppRunner | None = None

    # -- the engine's changes ------------------------------------------------------
    def on_change(self, job: Job, what: str) -> None:
        """Never blocks, never raises: the engine calls it for every event of every job."""
        if what == "event":
            self.events += 1
            return
        if what != "status":
            return
        try:
            self._ended(job)
        except Exception:  # a metrics bug must not reach the engine
            log.exception("metrics: an attempt's end was not counted")

    def _ended(self, job: Job) -> None:
        """Count the job's newest attempt once, when it has ended (its job is then waiting or finished)."""
        attempt = job.last
        if job.history or attempt is None or attempt.ended is None:
            return
        if self._counted.get(job.id, 0) >= attempt.number:
            return
        self._counted[job.id] = attempt.number
        status = attempt.status.value
        self.attempts.labels(status).inc()
        self.duration.labels(status).observe(max(0.0, (attempt.ended - attempt.started).total_seconds()))
        totals = attempt.results.totals()
        for result in RESULTS:
            count = getattr(totals, result)
            if count:
                self.hosts.labels(result).inc(count)

    # -- the endpoint ----------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format, generated on the loop's thread (it reads the engine's jobs)."""
        return generate_latest(self.registry)

    async def _handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @property
    def port(self) -> int | None:
        """The bound TCP port (the one the OS picked for port 0), None when not serving."""
        if self._runner is None:
            return None
        for address in self._runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                return int(address[1])
        return None

    async def _start(self, listen: tuple[str, int]) -> web.AppRunner:
        app = web.Application()
        app.router.add_get(PATH, self._handle, allow_head=False)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        host, port = listen
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            # asyncio's own text repeats the address: the errno's words say it plainly
            why = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else str(exc.strerror or exc)
            raise ListenError(exc.errno, f"cannot serve metrics on {_show(listen)}: {why}") from exc
        return runner

    async def apply(self, listen: tuple[str, int] | None) -> None:
        """Serve GET /metrics on `listen`, or nothing (None). A new address moves the endpoint; the
        same one changes nothing. If the new address cannot be bound, OSError says why and the
        endpoint stays where it was (a reload keeps the old config)."""
        if listen == self.listen and (listen is None) == (self._runner is None):
            return
        if listen is None:
            await self.close()
            return
        old, old_listen = self._runner, self.listen
        try:
            runner = await self._start(listen)
        except OSError as exc:
            if old is None or old_listen is None or exc.errno != errno.EADDRINUSE or old_listen[1] != listen[1]:
                raise
            # the old endpoint holds that port itself (another host of the same port): let it go first
            await old.cleanup()
            self._runner, self.listen = None, None
            try:
                runner = await self._start(listen)
            except OSError:
                self._runner = await self._start(old_listen)  # as it was, or raises saying why not
                self.listen = old_listen
                raise
            old = None
        self._runner, self.listen = runner, listen
        if old is not None:
            await old.cleanup()

    async def close(self) -> None:
        """Stop serving (at server stop, or when the config drops metrics_listen)."""
        runner, self._runner, self.listen = self._runner, None, None
        if runner is not None:
            await runner.cleanup()


def _show(listen: tuple[str, int]) -> str:
    host, port = listen
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
