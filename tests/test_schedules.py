"""Cron schedules: the pure decisions with fixed clocks (DST in Europe/Berlin both ways), then a
real server firing a `* * * * *` schedule, skipping an overlapping fire, pausing and resuming,
never firing a persisted time twice after a restart, and catching up once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.test_server import audit, hello, job_file, server, slow, wait_for  # noqa: F401 - server is a fixture
from tui.core.planning.jobfile import InputError, load_job_file
from tui.core.planning.spec import JobSpec
from tui.core.planning.wirespec import SpecError, spec_from_json, spec_to_json
from tui.core.scheduling import cron

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def at(*parts: int, zone: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


# --- pure: next fire, DST, catch-up, overlap --------------------------------------------------------


def test_next_fire_is_strictly_after_and_in_the_zone():
    daily = cron.cron("30 3 * * *", "Europe/Berlin")
    assert daily.next_after(at(2026, 12, 2, 3, 30)) == at(2026, 12, 3, 3, 30)
    assert daily.next_after(at(2026, 12, 2, 3, 29, 59)) == at(2026, 12, 2, 3, 30)
    # the same instant given in UTC: 02:30 UTC is 03:30 in Berlin in winter
    assert daily.next_after(datetime(2026, 12, 2, 2, 0, tzinfo=UTC)) == at(2026, 12, 2, 3, 30)
    assert cron.describe(at(2026, 12, 2, 3, 30), daily) == "2026-12-02 03:30 Europe/Berlin"


def test_spring_forward_runs_the_skipped_time_at_once_and_once():
    """2026-03-29 02:00 -> 03:00 in Berlin: a 02:30 job runs at 03:00 (Debian cron), once."""
    daily = cron.cron("30 2 * * *", "Europe/Berlin")
    first = daily.next_after(at(2026, 3, 28, 12, 0))
    assert first == at(2026, 3, 29, 3, 0)
    assert first.utcoffset() == timedelta(hours=2)
    assert daily.next_after(first) == at(2026, 3, 30, 2, 30)


def test_fall_back_does_not_double_a_fixed_time_but_wildcards_run_in_both_hours():
    """2026-10-25 03:00 -> 02:00: a 02:30 job runs once; a */30 job runs in the first and second 02:xx."""
    daily = cron.cron("30 2 * * *", "Europe/Berlin")
    first = daily.next_after(at(2026, 10, 24, 12, 0))
    assert (first, first.utcoffset()) == (at(2026, 10, 25, 2, 30), timedelta(hours=2))
    second = daily.next_after(first)
    assert second == at(2026, 10, 26, 2, 30)
    every = cron.cron("*/30 * * * *", "Europe/Berlin")
    times = []
    moment = at(2026, 10, 25, 1, 50)
    for _ in range(5):
        moment = every.next_after(moment)
        times.append(moment.astimezone(UTC).strftime("%H:%M"))
    assert times == ["00:00", "00:30", "01:00", "01:30", "02:00"]  # 02:00+02, 02:30+02, 02:00+01, 02:30+01, 03:00


def test_catch_up_once_fires_the_newest_missed_time_only_and_skip_none():
    hourly = cron.cron("0 * * * *", "Europe/Berlin")
    last = at(2026, 12, 2, 1, 0)
    now = at(2026, 12, 2, 4, 20)  # 02:00, 03:00, 04:00 were missed
    assert cron.catch_up(hourly, "once", last, now) == at(2026, 12, 2, 4, 0)
    assert cron.catch_up(hourly, "skip", last, now) is None
    assert cron.catch_up(hourly, "once", None, now) is None  # never registered: nothing owed
    assert cron.catch_up(hourly, "once", at(2026, 12, 2, 4, 0), now) is None  # fired already: never twice
    assert cron.first_due(hourly, at(2026, 12, 2, 4, 0), now) == at(2026, 12, 2, 5, 0)
    # a clock that stepped back behind the persisted fire does not fire that time again
    assert cron.first_due(hourly, at(2026, 12, 2, 4, 0), at(2026, 12, 2, 3, 59)) == at(2026, 12, 2, 5, 0)


def test_catch_up_across_the_spring_gap_counts_the_moved_run():
    daily = cron.cron("30 2 * * *", "Europe/Berlin")
    missed = cron.catch_up(daily, "once", at(2026, 3, 28, 2, 30), at(2026, 3, 29, 9, 0))
    assert missed == at(2026, 3, 29, 3, 0)


def test_overlap_decisions():
    assert [cron.overlap(p, False) for p in ("skip", "queue", "cancel")] == ["fire"] * 3
    assert [cron.overlap(p, True) for p in ("skip", "queue", "cancel")] == ["skip", "queue", "cancel"]
    with pytest.raises(ValueError):
        cron.overlap("later", True)


def test_bad_expressions_and_zones_are_refused_with_a_reason():
    for bad in ("* * * *", "* * * * * *", "61 * * * *", "@daily", ""):
        with pytest.raises(cron.CronError):
            cron.check_expr(bad)
    for zone in ("Mars/Base", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(cron.CronError):
            cron.check_zone(zone)
    assert cron.local_zone()[0]


def test_a_bad_schedule_is_invalid_input_of_its_own_file(tmp_path: Path):
    book = tmp_path / "p.yml"
    book.write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "inventory: hosts.yml\njobs:\n  - name: a\n    playbook: p.yml\n    schedule: '61 * * * *'\n"
        "    timezone: Mars/Base\n"
    )
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1: {}\n")
    good = tmp_path / "good.yml"
    good.write_text("inventory: hosts.yml\njobs:\n  - name: a\n    playbook: p.yml\n    schedule: '*/5 * * * *'\n")
    with pytest.raises(InputError) as caught:
        load_job_file(bad)
    lines = [str(p) for p in caught.value.problems]
    assert any(line.startswith(f"{bad}:5: jobs[0].schedule: ") and "minute" in line for line in lines), lines
    assert any(line.startswith(f"{bad}:6: jobs[0].timezone: unknown time zone") for line in lines), lines
    spec = load_job_file(good).jobs[0]
    assert (spec.schedule, spec.timezone, spec.overlap, spec.catch_up) == ("*/5 * * * *", None, "skip", "skip")


def test_the_wire_spec_carries_a_schedule_and_a_plain_spec_still_round_trips():
    """The console's launches send every key (overlap/catch_up with their defaults): still valid."""
    plain = JobSpec(
        name="a",
        inventory=ROOT / "sample_inventory" / "hosts.yml",
        playbook=ROOT / "tests" / "playbooks" / "load_one_debug.yml",
    )
    assert spec_from_json(spec_to_json(plain)) == plain
    timed = replace(plain, schedule="*/5 * * * *", timezone="UTC", overlap="queue", catch_up="once")
    assert spec_from_json(spec_to_json(timed)) == timed
    with pytest.raises(SpecError) as caught:
        spec_from_json({**spec_to_json(plain), "schedule": "* *", "timezone": "UTC"} | {"overlap": "never"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["schedule", "overlap"]
    with pytest.raises(SpecError, match="timezone: only with a schedule"):
        spec_from_json({**spec_to_json(plain), "timezone": "UTC"})


# --- a real server ------------------------------------------------------------------------------------


def playdeck(socket: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_SOCKET=str(socket))
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=60, env=env)


def jobs_of(srv) -> dict[str, dict]:
    return {job["name"]: job for job in srv("GET", "/v1/jobs")[1]["jobs"] if not job["history"]}


def live(srv) -> dict[str, dict]:
    """The websocket's JOB objects are the summary's plus next_run/schedule; /v1/jobs has both keys too."""
    return jobs_of(srv)


def fires(state: Path, name: str) -> list[dict]:
    return [r for r in audit(state) if r.get("action") == "schedule-fire" and r.get("job") == name]


def test_a_real_server_fires_skips_an_overlap_pauses_and_after_restarts_never_doubles_but_catches_up(  # noqa: E501
    server,  # noqa: F811
    tmp_path,
):
    every = {**hello("every"), "schedule": "* * * * *", "timezone": "UTC", "catch_up": "once"}
    busy = {**slow("busy", 9), "schedule": "* * * * *", "timezone": "Europe/Berlin", "overlap": "skip"}
    skipper = {**hello("skipper"), "schedule": "* * * * *", "catch_up": "skip"}
    queuer = {**slow("queuer", 9), "schedule": "* * * * *", "overlap": "queue"}
    canceller = {**slow("canceller", 9), "schedule": "* * * * *", "overlap": "cancel"}
    path = job_file(tmp_path, every, busy, skipper, queuer, canceller)
    srv = server("--idle-exit", "1")
    answer = srv("POST", "/v1/jobs", {"jobfile": str(path)})
    assert answer[0] == 201, answer
    state = srv.state
    now = datetime.now(UTC)
    boundary = (now + timedelta(seconds=8)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    jobs = jobs_of(srv)
    for name in ("every", "busy", "skipper"):
        assert jobs[name]["status"] == "scheduled", jobs[name]
        assert jobs[name]["attempts"] == []
    assert jobs["busy"]["schedule"] == {"cron": "* * * * *", "timezone": "Europe/Berlin", "paused": False}
    assert "next run" in jobs["every"]["message"] and "UTC" in jobs["every"]["message"]
    assert datetime.fromisoformat(jobs["every"]["next_run"]) > now

    listing = playdeck(srv.socket, "ls")
    assert listing.returncode == 0 and "next run" in listing.stdout and "Europe/Berlin" in listing.stdout
    assert playdeck(srv.socket, "pause", "skipper").returncode == 0
    paused = jobs_of(srv)["skipper"]
    assert (paused["next_run"], paused["schedule"]["paused"], paused["message"][:6]) == (None, True, "paused")
    assert playdeck(srv.socket, "pause", "skipper").returncode == 1  # already paused: refused
    assert playdeck(srv.socket, "resume", "skipper").returncode == 0
    assert jobs_of(srv)["skipper"]["next_run"] is not None
    time.sleep(2)  # the idle exit (1 s) does not stop a server holding schedules
    assert srv.proc.poll() is None

    # busy, queuer and canceller run now (9 s), so they are still going at the boundary: its fire
    # there is skipped (busy), runs when the run ends (queuer), or cancels the run first (canceller)
    time.sleep(max(0.0, (boundary - datetime.now(UTC)).total_seconds() - 7))
    slow_ones = ("busy", "queuer", "canceller")
    for name in slow_ones:
        assert playdeck(srv.socket, "run-now", name).returncode == 0
    wait_for(lambda: all(jobs_of(srv)[n]["status"] == "running" for n in slow_ones), 10, "all three running")
    runs_before = len(fires(state, "every"))
    time.sleep(max(0.0, (boundary - datetime.now(UTC)).total_seconds()))
    wait_for(lambda: len(fires(state, "every")) > runs_before, 5, "every fired at the boundary")
    wait_for(
        lambda: (
            all(job["status"] == "scheduled" for job in jobs_of(srv).values())
            and all(len(jobs_of(srv)[n]["attempts"]) >= 2 for n in ("queuer", "canceller"))
        ),
        40,
        "all at rest again, the queued and the canceling fire run",
    )
    jobs = jobs_of(srv)
    started = datetime.fromisoformat(jobs["every"]["attempts"][-1]["started"])
    assert timedelta(0) <= started - boundary < timedelta(seconds=1), (started, boundary)
    assert "last run successful" in jobs["every"]["message"]
    assert datetime.fromisoformat(jobs["every"]["next_run"]) == boundary + timedelta(minutes=1)
    skips = [r for r in audit(state) if r.get("action") == "schedule-skip" and r.get("job") == "busy"]
    assert [datetime.fromisoformat(r["args"]["at"]) for r in skips] == [boundary], skips
    busy_attempts = len(jobs["busy"]["attempts"])
    for name, action, first_end in (
        ("queuer", "schedule-queue", "successful"),
        ("canceller", "schedule-cancel", "canceled"),
    ):
        held = [r for r in audit(state) if r.get("action") == action and r.get("job") == name]
        assert [datetime.fromisoformat(r["args"]["at"]) for r in held] == [boundary], held
        late = [r for r in fires(state, name) if r["args"]["reason"] == "overlap"]
        assert len(late) == 1, late
        attempts = jobs[name]["attempts"]
        assert [a["status"] for a in attempts[-2:]] == [first_end, "successful"], attempts
        ended = datetime.fromisoformat(attempts[-2]["ended"])
        assert datetime.fromisoformat(attempts[-1]["started"]) >= ended  # never two runs at once
    assert not [r for r in fires(state, "busy") if datetime.fromisoformat(r["args"]["at"]) == boundary]
    trail = [(r["action"], r["args"].get("request")) for r in audit(state) if r.get("job") == "busy"]
    assert ("client", "run-now") in trail and ("run-now", None) in trail, trail
    saved = json.loads((state / "schedules.json").read_text())
    assert datetime.fromisoformat(saved["every\t* * * * *\tUTC"]["last_fire"]) == boundary
    assert playdeck(srv.socket, "pause", "skipper").returncode == 0  # a pause outlives the restarts below
    srv.stop()

    # a restart within the same minute: the boundary's fire is persisted, so nothing fires again
    srv = server("--idle-exit", "0")
    assert srv("POST", "/v1/jobs", {"jobfile": str(path)})[0] == 201
    time.sleep(1)
    jobs = jobs_of(srv)
    if datetime.now(UTC) < boundary + timedelta(seconds=58):
        assert jobs["every"]["status"] == "scheduled" and jobs["every"]["attempts"] == []
        assert busy_attempts >= 1
    assert jobs["skipper"]["schedule"]["paused"] is True and jobs["skipper"]["next_run"] is None
    srv.stop()

    # no server while the next minute passes: `once` catches that run up when one starts again
    # (a real missed minute, not an edited file); the paused one owes nothing and stays paused
    missed = boundary + timedelta(minutes=1)
    time.sleep(max(0.0, (missed - datetime.now(UTC)).total_seconds() + 1))
    before = len(fires(state, "every"))
    srv = server("--idle-exit", "0")
    assert srv("POST", "/v1/jobs", {"jobfile": str(path)})[0] == 201
    wait_for(
        lambda: jobs_of(srv)["every"]["status"] == "scheduled" and jobs_of(srv)["every"]["attempts"],
        20,
        "every caught up",
    )
    caught = fires(state, "every")[before:]
    assert [(r["args"]["reason"], datetime.fromisoformat(r["args"]["at"])) for r in caught] == [("catch-up", missed)]
    jobs = jobs_of(srv)
    assert len(jobs["every"]["attempts"]) == 1
    assert jobs["skipper"]["attempts"] == [] and jobs["skipper"]["schedule"]["paused"] is True
    assert playdeck(srv.socket, "cancel", "skipper").returncode == 0
    assert jobs_of(srv)["skipper"]["status"] == "canceled" and jobs_of(srv)["skipper"]["next_run"] is None
    srv.stop()


def test_playdeck_run_runs_a_scheduled_job_once_now_and_says_so(tmp_path):
    path = job_file(tmp_path, {**hello("nightly"), "schedule": "30 3 * * *", "timezone": "Europe/Berlin"})
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stderr
    assert "schedules run only in the server: running nightly once, now" in proc.stderr
    assert "successful" in proc.stdout


def test_an_open_circuit_stops_the_schedule_and_an_operators_retry_restarts_it(server, tmp_path):  # noqa: F811
    marker = tmp_path / "broken"
    marker.write_text("")
    book = tmp_path / "maybe_fail.yml"
    book.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.fail: {msg: broken}\n      when: marker is exists\n"
    )
    job = {
        "name": "yearly",
        "playbook": str(book),
        "limit": "web01",
        "extra_vars": {"marker": str(marker)},
        "schedule": "0 0 1 1 *",
        "circuit": 1,
    }
    srv = server("--idle-exit", "0")
    assert srv("POST", "/v1/jobs", {"jobfile": str(job_file(tmp_path, job))})[0] == 201
    assert playdeck(srv.socket, "run-now", "yearly").returncode == 0
    wait_for(lambda: jobs_of(srv)["yearly"]["status"] == "failed", 30, "the run failed")
    broken = jobs_of(srv)["yearly"]
    assert broken["circuit_open"] and "circuit" in broken["message"] and broken["next_run"] is None
    refused = playdeck(srv.socket, "run-now", "yearly")
    assert refused.returncode == 1 and "circuit" in refused.stderr
    marker.unlink()
    assert playdeck(srv.socket, "retry", "yearly").returncode == 0  # the operator closes it
    wait_for(lambda: jobs_of(srv)["yearly"]["status"] == "scheduled", 30, "at rest again")
    healed = jobs_of(srv)["yearly"]
    assert not healed["circuit_open"] and healed["next_run"] is not None
    assert [a["status"] for a in healed["attempts"]] == ["failed", "successful"]
    assert "last run successful" in healed["message"]
    frames = asyncio.run(_pause_over_the_websocket(srv))
    first, last = frames[0], frames[-1]
    assert first["schedule"] == {"cron": "0 0 1 1 *", "timezone": first["schedule"]["timezone"], "paused": False}
    assert first["next_run"] is not None and first["status"] == "scheduled"
    assert last["schedule"]["paused"] is True and last["next_run"] is None and last["message"].startswith("paused")


async def _pause_over_the_websocket(srv) -> list[dict]:
    """The JOB objects of `yearly` a console sees: the snapshot's, then the deltas until paused."""
    seen: list[dict] = []
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(srv.socket))) as session,
        session.ws_connect("http://playdeck/v1/events") as ws,
    ):

        async def until_paused() -> None:
            while not (seen and seen[-1]["schedule"]["paused"]):
                frame = json.loads((await ws.receive(timeout=10)).data)
                seen.extend(job for job in frame.get("jobs", []) if job["name"] == "yearly" and not job["history"])

        first = json.loads((await ws.receive(timeout=10)).data)
        seen.extend(job for job in first["jobs"] if job["name"] == "yearly" and not job["history"])
        async with session.post("http://playdeck/v1/jobs/yearly/pause", json={}) as response:
            assert response.status == 200
        await until_paused()
    return seen
