"""The server's config: checked as written, reloaded on change and on SIGHUP without a restart,
all or nothing (a broken file is refused, the last good one stays, every console is told), and
never at a running job's cost. Also the config's `protect:` and the confirmation a retry of a
job on protected hosts needs again. Real servers on real sockets, real ansible-playbook."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.test_server import audit, hello, job_file, server, slow, wait_for  # noqa: F401 - server is a fixture
from tui.core.config import NotifyTarget, load_server_config
from tui.core.planning.jobfile import InputError


def write(path: Path, text: str) -> None:
    """Replace the file as editors do (a new file renamed over the old one)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def status(srv: Any) -> dict[str, Any]:
    return srv("GET", "/v1/status")[1]


def playdeck(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(sock))
    return subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


# --- the file, checked as written --------------------------------------------------------------


def test_config_is_checked_with_file_line_and_key(tmp_path: Path):
    path = tmp_path / "config.yml"
    path.write_text(
        "theme: textual-dark\n"
        "metrics_listen: 9464\n"
        "notify:\n"
        "  - url: json://127.0.0.1:1/hook\n"
        "    on: [failed, sometimes]\n"
        "  - on: failed\n"
        "protect: []\n"
        "schedules: [missing.yml]\n"
        "colour: blue\n"
    )
    with pytest.raises(InputError) as caught:
        load_server_config(path)
    said = [str(p) for p in caught.value.problems]
    assert f"{path}:2: metrics_listen: expected an address" in said[1] or any(
        s.startswith(f"{path}:2: metrics_listen:") for s in said
    ), said
    wanted = {
        (2, "metrics_listen"),
        (5, "notify[0].on"),
        (6, "notify[1].url"),
        (7, "protect"),
        (8, "schedules[0]"),
        (9, "colour"),
    }
    assert {(p.line, p.key) for p in caught.value.problems} == wanted, said
    path.write_text(
        'metrics_listen: "[::1]:9464"\nnotify:\n  - url: "tgram://bot/chat"\n    on: circuit-open\nprotect: "db*"\n'
    )
    config = load_server_config(path)
    assert config.metrics_listen == ("::1", 9464) and config.protect == ("db*",)
    assert config.notify == (NotifyTarget("tgram://bot/chat", frozenset({"circuit-open"})),)
    assert config.notify[0].redacted() == "tgram://…"  # a message never carries the URL's secrets
    assert load_server_config(tmp_path / "absent.yml").notify == ()


def test_a_bad_config_stops_a_starting_server_naming_the_line(tmp_path: Path):
    config = tmp_path / "config.yml"
    config.write_text("max_parallel: 0\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(tmp_path / "s" / "server.sock"))
    proc = subprocess.run(
        [sys.executable, "-m", "tui.server", "--foreground", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{config}:1: max_parallel: expected a whole number >= 1" in proc.stderr
    assert not (tmp_path / "s" / "server.sock").exists()


# --- reload ---------------------------------------------------------------------------------------


async def _notices(sock: Path, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Attach as a console does and collect notices (the snapshot's standing ones, then frames)."""
    seen: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as session,
        session.ws_connect("http://playdeck/v1/events") as ws,
    ):

        async def read() -> None:
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("t") == "snapshot":
                    seen.extend(data.get("notices") or [])
                elif data.get("t") == "notice":
                    seen.append(data)
                if until(seen):
                    return

        await asyncio.wait_for(read(), timeout)
    return seen


def test_reload_on_change_and_sighup_keeps_the_last_good_config_and_running_jobs(server, tmp_path):  # noqa: F811
    config = tmp_path / "config.yml"
    config.write_text("max_parallel: 2\n")
    srv = server("--idle-exit", "0", "--config", str(config))
    assert status(srv)["max_parallel"] == 2 and status(srv)["config_problem"] is None
    path = job_file(tmp_path, slow("long", 8))
    assert srv("POST", "/v1/jobs", {"jobfile": str(path)})[0] == 201
    wait_for(lambda: srv("GET", "/v1/jobs")[1]["jobs"][0]["status"] == "running", 30, "the long job running")

    # a change takes effect without a restart
    write(config, "max_parallel: 3\n")
    wait_for(lambda: status(srv)["max_parallel"] == 3, 10, "max_parallel 3 from the changed file")

    # a broken file is refused whole: the old values stay, the reason names file, line and key,
    # and a console attaching now is told (a standing notice in its snapshot)
    write(config, "max_parallel: 5\nnotify: nope\n")
    wait_for(lambda: status(srv)["config_problem"], 10, "the refusal")
    problem = status(srv)["config_problem"]
    assert f"{config}:2: notify: expected a list" in problem, problem
    assert status(srv)["max_parallel"] == 3  # not half of the new file
    notices = asyncio.run(_notices(srv.socket, lambda seen: seen))
    assert "config not reloaded" in notices[0]["text"] and notices[0]["level"] == "warning", notices
    assert "playdeck: config" not in playdeck(srv.socket, "server", "status").stdout  # plain lines
    assert "PROBLEM" in playdeck(srv.socket, "server", "status").stdout

    # SIGHUP reloads too (an edit the watcher would also see is avoided: written in place, then HUP)
    config.write_text("max_parallel: 4\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: status(srv)["max_parallel"] == 4 and not status(srv)["config_problem"], 10, "SIGHUP reload")
    assert srv.proc.poll() is None

    # none of it touched the running job
    wait_for(lambda: srv("GET", "/v1/jobs")[1]["jobs"][0]["status"] == "successful", 60, "the long job's end")
    trail = [r["action"] for r in audit(srv.state)]
    assert trail.count("config-refused") == 1 and trail.count("config-reload") >= 2, trail


def test_schedules_files_in_the_config_register_and_a_removed_one_stops(server, tmp_path):  # noqa: F811
    nightly = job_file(tmp_path, {**hello("nightly"), "schedule": "0 3 * * *"}, name="nightly.yml")
    config = tmp_path / "config.yml"
    config.write_text(f"schedules: [{nightly}]\n")
    srv = server("--idle-exit", "0", "--config", str(config))
    jobs = wait_for(lambda: srv("GET", "/v1/jobs")[1]["jobs"], 10, "the config's scheduled job")
    assert jobs[0]["name"] == "nightly" and jobs[0]["status"] == "scheduled" and jobs[0]["next_run"], jobs
    write(config, "{}\n")
    wait_for(lambda: srv("GET", "/v1/jobs")[1]["jobs"][0]["status"] == "canceled", 10, "the schedule dropped")
    assert srv("GET", "/v1/jobs")[1]["jobs"][0]["next_run"] is None
    assert "schedule-removed" in [r["action"] for r in audit(srv.state)]


# --- protected targets: the config's patterns and a retry ----------------------------------------


def test_config_protect_guards_submissions_and_a_retry_asks_again(server, tmp_path):  # noqa: F811
    config = tmp_path / "config.yml"
    config.write_text("protect: [web01]\n")
    srv = server("--idle-exit", "0", "--config", str(config))
    path = job_file(tmp_path, hello("touchy"))  # limit web01
    refused = playdeck(srv.socket, "submit", str(path))
    assert refused.returncode == 2 and "web01" in refused.stderr, refused.stderr
    assert srv("GET", "/v1/jobs")[1]["jobs"] == []
    assert playdeck(srv.socket, "submit", "--yes", str(path)).returncode == 0
    wait_for(lambda: srv("GET", "/v1/jobs")[1]["jobs"][0]["status"] == "successful", 60, "touchy's run")

    again = playdeck(srv.socket, "retry", "touchy")
    assert again.returncode == 2, again.stderr
    assert "touches protected hosts: web01" in again.stderr and "--yes" in again.stderr
    assert len(srv("GET", "/v1/jobs")[1]["jobs"][0]["attempts"]) == 1  # nothing ran
    assert playdeck(srv.socket, "retry", "--yes", "touchy").returncode == 0
    wait_for(lambda: len(srv("GET", "/v1/jobs")[1]["jobs"][0]["attempts"]) == 2, 30, "the confirmed retry")
    asked = [r["args"] for r in audit(srv.state) if r["action"] == "client" and r.get("job") == "touchy"]
    requests = [a["request"] for a in asked]
    assert requests.count("protect-refused") == 1 and requests.count("protect-confirmed") == 1, requests


# --- alerts rerouted by a reload; a missed schedule told --------------------------------------------


def test_a_reload_reroutes_alerts_and_a_missed_schedule_is_told(server, tmp_path):  # noqa: F811
    from tests.conftest import playbook  # noqa: PLC0415
    from tests.webhook import Webhook  # noqa: PLC0415

    failing = {"name": "broken", "playbook": str(playbook("failing_host")), "limit": "web02"}
    path = job_file(tmp_path, failing)
    config = tmp_path / "config.yml"
    with Webhook() as first, Webhook() as second:
        config.write_text(f"notify:\n  - url: {first.url('a')}\n")
        srv = server("--idle-exit", "0", "--config", str(config))
        assert srv("POST", "/v1/jobs", {"jobfile": str(path)})[0] == 201
        (post,) = first.wait(1, timeout=60)
        assert "broken" in post["body"]["title"] and "failed" in post["body"]["title"], post
        assert "web02" in post["body"]["message"], post

        write(config, f"notify:\n  - url: {second.url('b')}\n    on: [failed, schedule-missed]\n")
        wait_for(lambda: status(srv)["notify"] == ["json://…"] and _reloads(srv) >= 1, 10, "the reload")
        assert playdeck(srv.socket, "retry", "broken").returncode == 0
        (post,) = second.wait(1, timeout=60)
        assert "broken" in post["body"]["title"] and len(first.posts) == 1  # rerouted, no restart
        srv.stop()

        # a schedule whose minute passed while no server ran, with catch_up: skip, is told as missed
        # (the persisted time is moved back three minutes instead of waiting them out)
        every = job_file(tmp_path, {**hello("every"), "schedule": "* * * * *"}, name="every.yml")
        srv = server("--idle-exit", "0", "--config", str(config))
        assert srv("POST", "/v1/jobs", {"jobfile": str(every)})[0] == 201
        srv.stop()
        saved = json.loads((srv.state / "schedules.json").read_text())
        for record in saved.values():
            moved = datetime.fromisoformat(record["handled"]) - timedelta(minutes=3)
            record["handled"] = moved.isoformat()
        (srv.state / "schedules.json").write_text(json.dumps(saved))
        srv = server("--idle-exit", "0", "--config", str(config))
        assert srv("POST", "/v1/jobs", {"jobfile": str(every)})[0] == 201
        posts = second.wait(2, timeout=20)
        assert "every" in posts[1]["body"]["message"] and "catch_up: skip" in posts[1]["body"]["message"], posts
        assert srv("GET", "/v1/jobs")[1]["jobs"][-1]["attempts"] == []  # told, not run


def _reloads(srv: Any) -> int:
    return sum(1 for r in audit(srv.state) if r["action"] == "config-reload")
