"""Per-host results built from events agree with Ansible's own PLAY RECAP."""

from __future__ import annotations

import json

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, run
from tui.core.engine import Engine
from tui.core.planning.spec import Status, spec_for_playbook
from tui.core.running.results import COUNT_NAMES, ResultTracker


def test_counts_from_events_match_play_recap():
    async def main():
        engine = Engine()
        job = engine.add(spec_for_playbook(TEST_PLAYBOOKS / "recap_mix.yml", INVENTORY, limit="web01,cache01"))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.SUCCESSFUL, job.message
    events = [json.loads(line) for line in job.last.events_log.read_text().splitlines()]
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]

    # what the engine reports once stats arrived is exactly Ansible's recap
    for host in ("web01", "cache01"):
        counts = job.hosts[host].as_dict()
        assert counts == {
            "ok": stats["ok"][host],
            "changed": stats["changed"][host],
            "failed": stats["failures"].get(host, 0),
            "unreachable": stats["dark"].get(host, 0),
            "skipped": stats["skipped"][host],
            "rescued": stats["rescued"][host],
            "ignored": stats["ignored"][host],
        }
        assert counts["ignored"] == 1 and counts["rescued"] == 1 and counts["skipped"] == 1

    # what a killed run (no stats event) would show: the same, except that a failure later
    # rescued cannot be told apart from a plain failure until the stats say so
    partial = ResultTracker()
    for event in events:
        if event["event"] != "playbook_on_stats":
            partial.feed(event)
    for host in ("web01", "cache01"):
        expected = job.hosts[host].as_dict()
        expected["failed"], expected["rescued"] = expected["rescued"], 0
        assert partial.hosts[host].as_dict() == expected
    failed = [t for t in partial.tasks if t.outcome == "failed"]
    assert {t.host for t in failed} == {"web01", "cache01"} and failed[0].message == "rescue me"


def test_current_play_and_task_follow_the_events():
    tracker = ResultTracker()
    tracker.feed({"event": "playbook_on_play_start", "event_data": {"play": "Deploy"}})
    tracker.feed({"event": "playbook_on_task_start", "event_data": {"task": "Copy config"}})
    assert (tracker.play, tracker.task) == ("Deploy", "Copy config")
    tracker.feed(
        {
            "event": "runner_on_unreachable",
            "event_data": {"host": "h", "task": "Copy config", "res": {"msg": "Connection refused"}},
        }
    )
    assert tracker.hosts["h"].unreachable == 1 and tracker.failed_hosts() == ["h"]
    assert tracker.tasks[-1].message == "Connection refused"
    assert set(tracker.totals().as_dict()) == set(COUNT_NAMES)


def test_task_results_are_bounded_and_keep_failures():
    from tui.core.running.results import MAX_TASK_RESULTS

    tracker = ResultTracker()
    for n in range(MAX_TASK_RESULTS * 3):
        tracker.feed({"event": "runner_on_ok", "event_data": {"host": f"h{n % 7}", "task": f"t{n}", "res": {}}})
    tracker.feed({"event": "runner_on_failed", "event_data": {"host": "h1", "task": "boom", "res": {"msg": "bad"}}})
    assert len(tracker.tasks) == MAX_TASK_RESULTS // 2 + 1
    assert tracker.tasks[-1].outcome == "failed" and tracker.tasks[-1].message == "bad"
    assert tracker.dropped == MAX_TASK_RESULTS * 3 - MAX_TASK_RESULTS // 2
    assert sum(c.ok for c in tracker.hosts.values()) == MAX_TASK_RESULTS * 3  # counts are never dropped


def test_a_failed_loop_says_which_item_failed_and_why():
    """Ansible's msg for a looped task is a summary; the results view must show the item's reason."""

    async def main():
        engine = Engine()
        job = engine.add(spec_for_playbook(TEST_PLAYBOOKS / "loop_item_fails.yml", INVENTORY, limit="web01"))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.FAILED, job.message
    (failure,) = [t for t in job.results.tasks if t.outcome == "failed"]
    assert failure.message.startswith("One or more items failed")
    assert "item postgres: postgres is down: connection refused on port 5432" in failure.message
    assert "nginx" not in failure.message and "redis" not in failure.message  # only the items that failed
