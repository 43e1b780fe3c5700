"""Alerts through Apprise, against real HTTP receivers on loopback (tests/webhook.py) and real
ansible-playbook jobs in a real in-process Server: what is posted, to whom, and that a dead or
stuck target delays neither the job nor another target, is noticed once, and never leaks its URL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import INVENTORY, run
from tests.test_server import audit, job_file, server, wait_for  # noqa: F401 - server is a fixture
from tests.webhook import Webhook, closed_port
from tui.core.config import NotifyTarget
from tui.core.job import Job
from tui.core.planning.spec import Status, spec_for_playbook
from tui.server.alerts import Alerts
from tui.server.state import Server

REASON = "Configuration validation failed on web02: /etc/app/app.conf line 12"
# one task on the controller (fail/debug): a failing job ends in ~2 s even on a loaded machine
BOOK = f"""- hosts: all
  gather_facts: false
  tasks:
    - name: Validate configuration
      ansible.builtin.fail:
        msg: "{REASON}\\nsecond line of the reason, not in the alert"
      when: inventory_hostname == "web02"
"""


def failing(tmp_path: Path, name: str, **options):
    """web01 succeeds, web02 fails with REASON then a second line."""
    book = tmp_path / "validate.yml"
    book.write_text(BOOK)
    return spec_for_playbook(book, INVENTORY, name=name, limit="web01,web02", **options)


def succeeding(tmp_path: Path, name: str):
    return replace(failing(tmp_path, name), limit="web01")


class Rig:
    """A real Server (engine with nice 10 and prompts kept, as served) and its own Alerts, given
    short timeouts; its notices recorded on their way to the real ones; when each job finished."""

    def __init__(self, tmp_path: Path, state: Path, **alerts_options: float):
        self.server = Server(tmp_path / "server.sock", state, max_parallel=2, idle_exit=0)
        self.alerts: Alerts = self.server.alerts  # built and subscribed by the server
        for key, value in alerts_options.items():
            setattr(self.alerts, key, value)
        self.notices: list[str] = []
        real = self.server.notice

        def notice(text: str, level: str = "warning", standing: str | None = None) -> None:
            self.notices.append(text)
            real(text, level, standing)

        self.server.notice = notice  # type: ignore[method-assign]
        self.ended: dict[str, float] = {}
        self.server.engine.subscribe(self._watch)

    def standing(self) -> list[str]:
        """The alert notices a console attaching now would be given."""
        return [n["text"] for key, n in self.server.hub.standing.items() if key.startswith("alerts")]

    def _watch(self, job: Job, what: str) -> None:
        if what == "status" and job.status.finished:
            self.ended[job.name] = time.monotonic()

    async def finish(self, *specs) -> Job:
        """Run the specs side by side to their end; the first one's job."""
        jobs = [self.server.engine.add(spec) for spec in specs]
        await self.server.engine.wait_idle()
        return jobs[0]


def only_posts(hook: Webhook, count: int, settle: float = 0.5) -> list[dict]:
    """Exactly `count` posts: wait for them, then a little longer for any extra one."""
    hook.wait(count)
    time.sleep(settle)
    assert len(hook.posts) == count, [p["body"]["title"] for p in hook.posts]
    return hook.posts


def test_failed_job_posts_one_message_and_success_only_where_asked(tmp_path, isolated_state):
    with Webhook() as default, Webhook() as wants_success, Webhook() as wants_missed:

        async def main():
            rig = Rig(tmp_path, isolated_state)
            rig.alerts.configure(
                (
                    NotifyTarget(default.url("ops")),
                    NotifyTarget(wants_success.url("ok"), on=frozenset({"succeeded"})),
                    NotifyTarget(wants_missed.url("missed"), on=frozenset({"schedule-missed"})),
                )
            )
            fail = await rig.finish(failing(tmp_path, "deploy\x1b]0;owned\x07"), succeeding(tmp_path, "verify"))
            ok = rig.server.find("verify")
            await default.await_posts(1)
            await wants_success.await_posts(1)
            when = datetime(2026, 12, 2, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
            rig.alerts.schedule_missed(ok, when, "overlap skip: the previous run was still going")
            await wants_missed.await_posts(1)
            await rig.alerts.close()
            return fail, ok, rig

        fail, ok, rig = run(main())
        assert fail.status is Status.FAILED and ok.status is Status.SUCCESSFUL

        (post,) = only_posts(default, 1)
        body = post["body"]
        assert post["path"] == "/ops"
        assert body["type"] == "failure"
        assert body["title"] == "playdeck: deploy␛]0;owned␇ failed"  # controls made visible, never raw
        text = body["message"]
        assert "\x1b" not in text and "\x07" not in text
        lines = text.splitlines()
        assert "job: deploy␛]0;owned␇" in lines and "status: failed" in lines
        assert "message: 1 host failed (web02)" in lines
        (web02,) = [line for line in lines if line.strip().startswith("web02:")]
        assert web02.strip() == f"web02: {REASON}"  # its first reason line only
        assert "second line" not in text
        assert not any(line.strip().startswith("web01") for line in lines)  # only failed hosts
        assert "attempt: 1" in lines
        assert f"log: {fail.last.log}" in lines
        assert f"server: {socket.gethostname()}" in lines

        (post,) = only_posts(wants_success, 1, settle=0)  # the failure was not for it
        assert post["body"]["title"] == "playdeck: verify succeeded" and post["body"]["type"] == "success"
        assert "status: successful" in post["body"]["message"].splitlines()
        (post,) = only_posts(wants_missed, 1, settle=0)  # neither the failure nor the success
        assert post["body"]["title"] == "playdeck: verify schedule missed" and post["body"]["type"] == "warning"
        lines = post["body"]["message"].splitlines()
        assert "missed run: 2026-12-02T03:30:00+01:00" in lines
        assert "why: overlap skip: the previous run was still going" in lines
        assert rig.notices == []


def test_dead_and_stuck_targets_delay_nothing_are_noticed_once_and_never_show_their_url(
    tmp_path, isolated_state, caplog
):
    caplog.set_level(logging.DEBUG)
    dead = f"json://127.0.0.1:{closed_port()}/T0KEN-dead"
    with Webhook(mode="hang") as stuck, Webhook() as good:
        secret_urls = [dead, stuck.url("T0KEN-stuck"), good.url("T0KEN-good")]

        async def main():
            # 1 s per try, 5 tries: the stuck target keeps retrying for ~10 s, well past the jobs
            rig = Rig(tmp_path, isolated_state, timeout=1.0, tries=5, backoff=0.2)
            rig.alerts.configure(tuple(NotifyTarget(url) for url in secret_urls))
            await rig.finish(failing(tmp_path, "first"), failing(tmp_path, "second"))
            await good.await_posts(2, timeout=5)
            await until_count(rig.notices, 2)  # the stuck one's after its first 1 s try
            await asyncio.sleep(0.3)
            assert stuck.hits >= 1 and rig.alerts._tasks, "the stuck target should still be retrying"
            started = time.monotonic()
            await rig.alerts.close()
            closed_in = time.monotonic() - started
            hits = stuck.hits
            await asyncio.sleep(1.5)  # a retry would have come by now
            assert stuck.hits == hits, "closed, yet still retrying"
            return rig, closed_in

        rig, closed_in = run(main())
    # each posted to the good target within 2 s of its job's end, not behind the stuck target's tries
    got = {p["body"]["title"]: p["at"] for p in good.posts}
    assert set(got) == {"playdeck: first failed", "playdeck: second failed"}
    assert got["playdeck: first failed"] - rig.ended["first"] < 2.0
    assert got["playdeck: second failed"] - rig.ended["second"] < 2.0
    assert closed_in < 0.5
    # one notice per failing target, however many messages and tries failed; named, not located
    assert len(rig.notices) == 2, rig.notices
    assert rig.notices[0].startswith("alert target 1 (json://…): alert not delivered")
    assert rig.notices[1].startswith("alert target 2 (json://…): alert not delivered (no answer in 1s)")
    everything = "\n".join([*rig.notices, caplog.text])
    for url in secret_urls:
        port = url.split(":")[2].split("/")[0]
        assert "T0KEN" not in everything and f":{port}" not in everything


def test_configure_reroutes_the_next_message_and_a_recovered_target_is_noticed_again(tmp_path, isolated_state):
    """Reroute without restart; an opened circuit is its own event; a failing target is noticed
    once *until it delivers again*: fail (notice), deliver, fail again (a second notice)."""
    with Webhook() as before, Webhook() as after, Webhook(status=500) as flaky:

        async def main():
            rig = Rig(tmp_path, isolated_state, timeout=1.0, tries=2, backoff=0.1)
            rig.alerts.configure((NotifyTarget(before.url()),))
            one = await rig.finish(failing(tmp_path, "one"))
            await before.await_posts(1)
            rig.alerts.configure((NotifyTarget(after.url(), on=frozenset({"circuit-open", "failed"})),))
            two = await rig.finish(failing(tmp_path, "two", circuit=1))
            await after.await_posts(1)
            assert rig.notices == []

            rig.alerts.configure((NotifyTarget(flaky.url()),))
            rig.alerts.on_change(one, "status")  # the same real job's end told again, now to `flaky`
            await until_count(rig.notices, 1)
            await flaky.await_posts(2)  # both tries refused (500): dropped
            flaky.status = 200
            rig.alerts.on_change(one, "status")
            assert len(rig.standing()) == 1  # consoles attaching meanwhile are told too
            await flaky.await_posts(3)
            await asyncio.sleep(0.2)
            assert len(rig.notices) == 1  # delivered: no notice, and the failing state is over
            assert rig.standing() == []
            flaky.status = 500
            rig.alerts.on_change(one, "status")
            await until_count(rig.notices, 2)
            assert len(rig.standing()) == 1
            rig.alerts.configure((NotifyTarget(before.url()),))  # the failing target removed
            deadline = time.monotonic() + 5
            while rig.standing():  # once what was queued for it is done
                assert time.monotonic() < deadline, rig.standing()
                await asyncio.sleep(0.02)
            await rig.alerts.close()
            return two, rig

        two, rig = run(main())
        assert two.circuit_open
        assert [p["body"]["title"] for p in only_posts(before, 1, settle=0)] == ["playdeck: one failed"]
        (post,) = only_posts(after, 1)  # one message for the change, titled by the circuit
        assert post["body"]["title"] == "playdeck: two circuit open"
        assert "circuit: open after 1 consecutive failures (a manual retry closes it)" in post["body"]["message"]
        assert all(
            n.startswith("alert target 1 (json://…): alert not delivered (the service refused") for n in rig.notices
        )


async def until_count(items: list, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(items) < count:
        assert time.monotonic() < deadline, f"{len(items)} of {count}: {items}"
        await asyncio.sleep(0.02)


def test_a_real_server_posts_a_failed_job_from_its_config_and_a_reload_reroutes(
    server,  # noqa: F811
    tmp_path,
    isolated_state,
    monkeypatch,
):
    """`python -m tui.server --foreground` with PLAYDECK_CONFIG naming a loopback webhook: a
    failing job is posted; after SIGHUP with a new target the next one goes there; no URL is
    in the server's output or its audit trail."""
    with Webhook() as first, Webhook() as second:
        config = tmp_path / "config.yml"
        config.write_text(json.dumps({"notify": [{"url": first.url("T0KEN-first")}]}))
        monkeypatch.setenv("PLAYDECK_CONFIG", str(config))
        srv = server()
        failing(tmp_path, "unused")  # writes the playbook
        book = str(tmp_path / "validate.yml")
        jobs = job_file(tmp_path, {"name": "nightly", "playbook": book, "limit": "web01,web02"})
        assert srv("POST", "/v1/jobs", {"jobfile": str(jobs), "preflight": False})[0] == 201
        (post,) = first.wait(1, timeout=60)
        assert post["body"]["title"] == "playdeck: nightly failed"
        lines = post["body"]["message"].splitlines()
        assert "status: failed" in lines and f"  web02: {REASON}" in lines
        assert f"server: {socket.gethostname()}" in lines
        (log,) = [line.removeprefix("log: ") for line in lines if line.startswith("log: ")]
        assert Path(log).is_file() and Path(log).is_relative_to(isolated_state)

        config.write_text(json.dumps({"notify": [{"url": second.url("T0KEN-second"), "on": ["failed"]}]}))
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for(lambda: any(e["action"] == "config-reload" for e in audit(isolated_state)), what="the reload")
        again = job_file(tmp_path, {"name": "nightly-2", "playbook": book, "limit": "web01,web02"}, name="again.yml")
        assert srv("POST", "/v1/jobs", {"jobfile": str(again), "preflight": False})[0] == 201
        (post,) = second.wait(1, timeout=60)
        assert post["body"]["title"] == "playdeck: nightly-2 failed"
        assert len(first.posts) == 1
        srv.stop()
    output = srv.proc.stdout.read().decode() if srv.proc.stdout else ""
    trail = (isolated_state / "audit.jsonl").read_text()
    assert "T0KEN" not in output and "T0KEN" not in trail
    assert f":{first.port}" not in output + trail and f":{second.port}" not in output + trail
