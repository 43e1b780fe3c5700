"""Prometheus metrics (tui/server/metrics.py): a real server object runs real ansible-playbook
jobs (one succeeding, one failing and retried until its circuit opens), and /metrics is read
over a real TCP port and parsed with prometheus_client's own parser; then a real
`python -m tui.server` serves them at its config's metrics_listen."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import INVENTORY, ROOT, TEST_PLAYBOOKS, playbook, run, until
from tests.test_server import hello, job_file, server, wait_for  # noqa: F401 - server is a fixture
from tui.core.planning.spec import JobSpec, Status, spec_for_playbook
from tui.server.app import make_app
from tui.server.metrics import Metrics, job_label
from tui.server.state import Server

HOSTILE = 'evil "name"\nfake_metric 1\x1b]0;title\x07\x1b[31mred'
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample by (name, sorted labels); the parser raises on a broken exposition."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"duplicate sample {key}"
            found[key] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def new_server(tmp_path: Path, state: Path, max_parallel: int) -> Server:
    return Server(tmp_path / "sock" / "server.sock", state, max_parallel, 0)


def test_metrics_count_real_attempts_hosts_events_and_states(tmp_path: Path, isolated_state: Path):
    async def main() -> tuple[Samples, Samples, Samples, str, dict[str, int]]:
        deck = new_server(tmp_path, isolated_state, max_parallel=2)
        metrics = deck.metrics  # the server's own, subscribed to its engine
        await metrics.apply(("127.0.0.1", 0))
        assert metrics.port
        # the event stream of the server itself, on a Unix socket: one attached client
        (tmp_path / "sock").mkdir()
        runner = web.AppRunner(make_app(deck), handle_signals=False, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, str(deck.socket)).start()
        try:
            code, kind, text = await scrape(metrics.port)
            assert code == 200 and kind.startswith("text/plain") and "version=" in kind
            empty = samples(text)

            engine = deck.engine
            hello = spec_for_playbook(TEST_PLAYBOOKS / "load_one_debug.yml", INVENTORY, name="hello", limit="web01")
            broken = spec_for_playbook(
                playbook("failing_host"),
                INVENTORY,
                name=HOSTILE,
                limit="web02",
                extra_vars={"failing_host": "web02", "playdeck_tmp": str(tmp_path / "demo")},
                retries=1,
                retry_delay=0.1,
                circuit=2,
            )
            never = spec_for_playbook(TEST_PLAYBOOKS / "load_one_debug.yml", INVENTORY, name="never", limit="web01")
            jobs = engine.add_all([hello, broken, never])  # two run (max_parallel 2), one waits
            connector = aiohttp.UnixConnector(path=str(deck.socket))
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.ws_connect("http://playdeck/v1/events") as ws,
            ):
                await until(lambda: len(deck.hub.clients) == 1, 10, "the client to attach")
                busy = samples((await scrape(metrics.port))[2])
                await ws.close()
            engine.cancel(jobs[2])  # canceled while queued: no attempt to count
            await engine.wait_idle()
            # a scheduled job (its name hostile too) that rests until 03:00
            nightly = JobSpec(name=HOSTILE + " nightly", inventory=INVENTORY, playbook=playbook("health_check"))
            deck.schedules.register(engine.add_all([replace(nightly, schedule="0 3 * * *")]))
            await until(lambda: not deck.hub.clients, 10, "the client to leave")
            text = (await scrape(metrics.port))[2]
            totals = dict.fromkeys(("ok", "changed", "failed", "unreachable"), 0)
            for job in jobs:
                for attempt in job.attempts:
                    for counts in attempt.results.hosts.values():
                        for result in totals:
                            totals[result] += getattr(counts, result)
            return empty, busy, samples(text), text, totals
        finally:
            await metrics.close()
            await deck.engine.close()
            await runner.cleanup()

    empty, busy, done, text, totals = run(main())  # type: ignore[misc]

    # before anything ran: every fixed label at 0
    assert value(empty, "playdeck_attempts_total", status="failed") == 0
    assert value(empty, "playdeck_hosts_total", result="ok") == 0
    assert value(empty, "playdeck_events_total") == 0
    assert value(empty, "playdeck_queue_length") == 0 and value(empty, "playdeck_clients") == 0

    # while the first two ran: the third queued behind them (max_parallel 2)
    assert value(busy, "playdeck_jobs", status="running") == 2
    assert value(busy, "playdeck_jobs", status="queued") == 1
    assert value(busy, "playdeck_queue_length") == 1
    assert value(busy, "playdeck_clients") == 1

    # one successful attempt; the failing job's two attempts (its retry) each counted once
    assert value(done, "playdeck_attempts_total", status="successful") == 1
    assert value(done, "playdeck_attempts_total", status="failed") == 2
    assert value(done, "playdeck_attempts_total", status="canceled") == 0
    assert value(done, "playdeck_job_duration_seconds_count", status="failed") == 2
    assert value(done, "playdeck_job_duration_seconds_count", status="successful") == 1
    assert value(done, "playdeck_job_duration_seconds_sum", status="successful") > 0
    assert value(done, "playdeck_jobs", status="successful") == 1
    assert value(done, "playdeck_jobs", status="failed") == 1
    assert value(done, "playdeck_jobs", status="scheduled") == 1
    assert value(done, "playdeck_jobs", status="canceled") == 1
    assert value(done, "playdeck_jobs", status="running") == 0
    assert value(done, "playdeck_queue_length") == 0 and value(done, "playdeck_clients") == 0
    # hosts: the sums of every attempt's own results; each failing attempt failed on web02 once
    for result, count in totals.items():
        assert value(done, "playdeck_hosts_total", result=result) == count, result
    assert value(done, "playdeck_hosts_total", result="failed") == 2
    assert value(done, "playdeck_hosts_total", result="unreachable") == 0
    assert value(done, "playdeck_hosts_total", result="ok") >= 1 + 2 * 3  # hello's task; 3 tasks before the failure
    assert value(done, "playdeck_events_total") > 10

    # the hostile names: controls made visible, one line, quote intact after the format's escaping
    clean = job_label(HOSTILE)
    assert "\x1b" not in clean and "\n" not in clean and '"' in clean and "\u241b]0;title" in clean
    assert value(done, "playdeck_circuit_open", job=clean) == 1
    assert ("playdeck_circuit_open", (("job", "hello"),)) not in done  # no breaker: not shown
    next_run = value(done, "playdeck_schedule_next_run_timestamp_seconds", job=job_label(HOSTILE + " nightly"))
    assert next_run > 1.7e9
    assert "\x1b" not in text and "fake_metric" not in [line.split(" ")[0] for line in text.splitlines()]


def test_endpoint_only_when_configured_moves_and_refuses_a_busy_port(tmp_path: Path, isolated_state: Path):
    async def main() -> None:
        deck = new_server(tmp_path, isolated_state, max_parallel=1)
        metrics = Metrics(deck)
        await metrics.apply(None)
        assert metrics.port is None  # off unless configured
        await metrics.apply(("127.0.0.1", 0))
        first = metrics.port
        assert first is not None
        assert (await scrape(first))[0] == 200
        assert (await scrape(first, "/"))[0] == 404
        assert (await scrape(first, "/metrics/x"))[0] == 404
        assert (await scrape(first, method="POST"))[0] == 405
        await metrics.apply(("127.0.0.1", 0))  # the same address: nothing changes
        assert metrics.port == first

        with socket.socket() as busy:  # a port somebody else holds
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            taken = busy.getsockname()[1]
            with pytest.raises(OSError) as caught:
                await metrics.apply(("127.0.0.1", taken))
            assert caught.value.errno == errno.EADDRINUSE
            assert str(caught.value) == f"cannot serve metrics on 127.0.0.1:{taken}: Address already in use"
            assert metrics.port == first and (await scrape(first))[0] == 200  # the old endpoint stays

        with socket.socket() as probe:  # a free port to move to
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        await metrics.apply(("127.0.0.1", free))
        assert metrics.port == free and (await scrape(free))[0] == 200
        with pytest.raises(aiohttp.ClientConnectorError):
            await scrape(first)  # moved: the old port is closed

        # the same port on another host that covers the old one: the old endpoint lets it go first
        await metrics.apply(("localhost", free))
        assert metrics.listen == ("localhost", free) and (await scrape(free))[0] == 200

        await metrics.apply(None)
        assert metrics.port is None
        with pytest.raises(aiohttp.ClientConnectorError):
            await scrape(free)
        await metrics.close()  # closing twice is fine

    run(main())


def test_on_change_never_raises_and_counts_events_cheaply(tmp_path: Path, isolated_state: Path):
    """A listener error would be logged by the engine, but a broken job object must not even get there."""

    async def main() -> None:
        deck = new_server(tmp_path, isolated_state, max_parallel=1)
        metrics = Metrics(deck)
        metrics.on_change(object(), "status")  # type: ignore[arg-type]
        for _ in range(1000):
            metrics.on_change(object(), "event")  # type: ignore[arg-type]
        assert metrics.events == 1000
        found = samples(metrics.exposition().decode())
        assert value(found, "playdeck_events_total") == 1000
        assert sum(v for (name, _), v in found.items() if name == "playdeck_attempts_total") == 0

    run(main())


def test_job_label_is_one_bounded_line():
    assert job_label("plain-name") == "plain-name"
    assert job_label("a\nb\tc") == "a\u2424b\u2409c"
    assert job_label("\x1b[1mbold\x1b[0m") == "bold"
    assert len(job_label("x" * 5000)) == 200


def test_status_enum_values_are_the_only_status_labels(tmp_path: Path, isolated_state: Path):
    async def main() -> Samples:
        return samples(Metrics(new_server(tmp_path, isolated_state, 1)).exposition().decode())

    found = run(main())
    statuses = {dict(labels)["status"] for (name, labels) in found if name == "playdeck_jobs"}  # type: ignore[union-attr]
    assert statuses == {status.value for status in Status}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_real_server_serves_its_configs_metrics_listen(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(f'metrics_listen: "127.0.0.1:{port}"\n')
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))
    srv = server()
    assert run(scrape(port, "/"))[0] == 404  # type: ignore[index]
    assert srv("POST", "/v1/jobs", {"jobfile": str(job_file(tmp_path, hello())), "preflight": False})[0] == 201

    def scraped() -> Samples | None:
        found = samples(run(scrape(port))[2])  # type: ignore[index]
        return found if value(found, "playdeck_jobs", status="successful") == 1 else None

    found = wait_for(scraped, 30, "the job to end")
    assert value(found, "playdeck_attempts_total", status="successful") == 1
    assert value(found, "playdeck_attempts_total", status="failed") == 0
    assert value(found, "playdeck_hosts_total", result="ok") == 1  # one debug task on web01
    assert value(found, "playdeck_events_total") > 0

    # a second server whose metrics address is taken (by the first) refuses to start, saying why
    other = tmp_path / "other"
    other.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(other / "sock" / "server.sock"))
    env["PLAYDECK_STATE_DIR"] = str(other / "state")
    refused = subprocess.run(
        [sys.executable, "-m", "tui.server", "--foreground"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and f"cannot serve metrics on 127.0.0.1:{port}" in refused.stderr, refused.stderr

    srv.stop()
    assert srv.proc.returncode == 0
    with pytest.raises(aiohttp.ClientConnectorError):
        run(scrape(port))  # stopped with its server
