"""End to end: the real console, in a real terminal (tmux), running real Ansible jobs.

Drives `playdeck JOBFILE` with keys only and checks both the screen and the
process table (through /proc, independently of the app): `c` cancels the
selected job and its processes only, `r` runs it again, `t` gives it a new
timeout (bad input is refused and changes nothing), `q` then `y` stops the jobs and
quits, leaving no job process (the server they ran under stays, idle, for the next console).
Two consoles attached to one server see each other's launch and cancel within a second.

The terminal is `tests.tmux_console.Terminal`: tmux on a private socket (`-L`), so a
user's own tmux is never touched, and that server is always killed at the end.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import INVENTORY, pids_with_cmdline, playbook
from tests.console_support import job_processes
from tests.tmux_console import Terminal, grid_status, needs_tmux

STATUSES = ("queued", "running", "waiting", "successful", "failed", "timeout", "canceled", "error")
SLEEP_A, SLEEP_B = "sleep 61", "sleep 62"  # unique to this test, so /proc tells the two jobs apart

pytestmark = needs_tmux


def status_of(screen: str, job: str) -> str | None:
    """The status word in `job`'s grid row (None when the row is not on screen)."""
    return grid_status(screen, job, STATUSES)


def is_(job: str, status: str) -> Callable[[str], bool]:
    return lambda screen: status_of(screen, job) == status


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def console(tmp_path: Path):
    jobfile = tmp_path / "jobs.yml"
    slow = playbook("slow_task")
    jobfile.write_text(
        f"""\
inventory: {INVENTORY}
max_parallel: 2
jobs:
  - name: long-a
    playbook: {slow}
    limit: db01
    extra_vars: {{slow_seconds: 61}}
  - name: long-b
    playbook: {slow}
    limit: db02
    extra_vars: {{slow_seconds: 62}}
""",
        encoding="utf-8",
    )
    assert not pids_with_cmdline(SLEEP_A) and not pids_with_cmdline(SLEEP_B), "a stray sleep 61/62 is running"
    console = Terminal(tmp_path, [jobfile], size=(100, 30), term="tmux-256color", name="e2e")
    try:
        console.start()
        yield console
    finally:
        console.close()


def test_cancel_retry_timeout_and_quit_in_the_real_console(console: Terminal):
    # both jobs start at once (max_parallel 2); the first row, long-a, is selected
    console.wait_for(
        lambda s: is_("long-a", "running")(s) and is_("long-b", "running")(s), "both jobs to be running", timeout=45
    )
    wait_until(lambda: console.ours(SLEEP_A) and console.ours(SLEEP_B), "both sleep tasks to start", timeout=45)
    first_b = console.ours(SLEEP_B)

    # c: cancels long-a only
    console.press("c")
    screen = console.wait_for(is_("long-a", "canceled"), "long-a to be canceled", timeout=20)
    assert pids_with_cmdline(SLEEP_A) == [], "long-a is shown canceled but its sleep is still alive"
    assert console.ours(SLEEP_B) == first_b, "canceling long-a touched long-b's sleep"
    assert status_of(screen, "long-b") == "running", screen

    # r: runs long-a again
    console.press("r")
    console.wait_for(is_("long-a", "running"), "long-a to run again", timeout=30)
    wait_until(lambda: console.ours(SLEEP_A), "long-a's sleep to start again", timeout=45)

    # t with bad input: refused, says why, the dialog stays; Esc closes it and nothing changed
    console.press("t")
    console.wait_for(lambda s: "New timeout for long-a" in s, "the timeout dialog")
    console.type("soon")
    console.press("Enter")
    screen = console.wait_for(lambda s: "not a duration" in s, "the dialog to refuse 'soon'", timeout=10)
    assert "New timeout for long-a" in screen, f"the dialog closed on bad input:\n{screen}"
    console.press("Escape")
    screen = console.wait_for(lambda s: "New timeout" not in s, "Esc to close the dialog", timeout=10)
    assert status_of(screen, "long-a") == "running", screen
    time.sleep(0.5)  # nothing was set: it must still be running a little later
    assert status_of(console.screen(), "long-a") == "running"
    assert console.ours(SLEEP_A), "the aborted timeout dialog stopped long-a"

    # t 2: long-a times out about two seconds later
    console.press("t")
    console.wait_for(lambda s: "New timeout for long-a" in s, "the timeout dialog")
    console.type("2")
    console.press("Enter")
    confirmed = time.monotonic()
    screen = console.wait_for(is_("long-a", "timeout"), "long-a to time out", timeout=15)
    took = time.monotonic() - confirmed
    assert 1.5 <= took <= 20.0, f"long-a timed out {took:.1f}s after its 2s timeout was set"
    assert pids_with_cmdline(SLEEP_A) == [], "long-a is shown as timed out but its sleep is still alive"
    assert status_of(screen, "long-b") == "running", screen
    assert console.ours(SLEEP_B) == first_b, "long-a's timeout touched long-b"

    # q, y: asks first (long-b still runs: stop, detach or stay), then cancels it and exits 0
    console.press("q")
    console.wait_for(
        lambda s: "still queued or running" in s and "y: stop them" in s and "d: detach" in s,
        "the quit question",
        timeout=10,
    )
    console.press("y")
    console.wait_for(lambda s: "EXIT=0" in s, "the console to exit with status 0", timeout=30)
    assert pids_with_cmdline(SLEEP_A) == [] and pids_with_cmdline(SLEEP_B) == [], "a job's sleep outlived the console"
    assert [p for p in pids_with_cmdline("tui.core.running.supervisor") if p in console.ours()] == [], (
        "an attempt supervisor outlived the console"
    )
    assert console.ours("-m tui") == [], "the console did not exit"
    assert job_processes(console) == [], "a job process outlived the y answer (only the server may stay)"
    assert console.ours("tui.server"), "the server went with the console (it stays for the next one)"


SLEEP_C = "sleep 66"


def adhoc_status(screen: str) -> str | None:
    """The status word of the ad-hoc job's grid row (its name is cut to the column: `adhoc-command-s…`)."""
    match = re.search(rf"(?m)▎ ?adhoc-command-s\S*\s+({'|'.join(STATUSES)})\b", screen)
    return match.group(1) if match else None


def attached(screen: str) -> bool:
    """The console is attached (its status bar says so until then) and has drawn its hosts."""
    return "hosts.yml" in screen and "no jobs yet" in screen and "not attached" not in screen


def console_pid(term: Terminal) -> int:
    """The console of this terminal: the `-m tui` child of its pane's shell (a terminal started
    with another's state dir carries that one's marker, so `ours` cannot tell them apart)."""
    shell = term.pane_pid()
    for pid in pids_with_cmdline("-m tui"):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == shell:
            return pid
    raise AssertionError(f"no console under the pane's shell {shell}")


def audit_pids(audit: list[dict], request: str, job: str) -> list[int]:
    """The pids of the clients whose `request` about `job` the server audited."""
    return sorted(
        e["args"]["client_pid"]
        for e in audit
        if e["action"] == "client"
        and e["args"].get("request") == request
        and job in (e["job"], *e["args"].get("jobs", ()))
    )


def first_seen(terminals: dict[str, Terminal], predicate: Callable[[str], bool], what: str, timeout: float = 30.0):
    """When each terminal first showed a screen for which `predicate` holds (monotonic seconds),
    the screens polled in turn, as fast as tmux answers."""
    seen: dict[str, float] = {}
    screens: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(terminals):
        for name, term in terminals.items():
            if name not in seen:
                screens[name] = term.screen()
                if predicate(screens[name]):
                    seen[name] = time.monotonic()
        if time.monotonic() > deadline:
            shown = "\n".join(f"--- {n} ---\n{screens.get(n, '')}" for n in terminals if n not in seen)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{shown}")
        time.sleep(0.02)
    return seen


def test_two_consoles_see_each_others_launch_and_cancel_within_a_second(tmp_path: Path):
    """Two consoles attached to one server (the second started with the first's state dir, as an
    operator's second terminal would): an ad-hoc command launched in one shows in the other, and a
    cancel in the other shows in the first, each within a second of its own console showing it."""
    assert not pids_with_cmdline(SLEEP_C), "a stray sleep 66 is running"
    one = Terminal(tmp_path, ["-i", INVENTORY], size=(100, 30), term="tmux-256color", name="one")
    two = Terminal(
        tmp_path,
        ["-i", INVENTORY],
        size=(100, 30),
        term="tmux-256color",
        name="two",
        env={"PLAYDECK_STATE_DIR": str(one.state)},
    )
    both = {"one": one, "two": two}
    job = "adhoc-command-sleep"
    try:
        one.start()
        one.wait_for(attached, "the first console, attached", timeout=60)
        two.start()
        two.wait_for(attached, "the second console, attached", timeout=60)
        assert len(one.ours("tui.server")) == 1, "the second console started a server of its own"
        assert len(one.ours("-m tui")) == 2

        # launch in the first console: `a`, hosts, (the module's default, command), its arguments, Enter
        one.press("a")
        one.wait_for(lambda s: "Ad-hoc command" in s, "the ad-hoc dialog")
        time.sleep(0.5)  # its focus set, before keys are typed into it
        one.type("db01")
        one.wait_for(lambda s: re.search(r"█ +▌?db01 ", s), "the hosts typed")
        one.press("Tab")
        time.sleep(0.3)
        one.press("Tab")
        time.sleep(0.3)
        one.type(SLEEP_C)
        one.wait_for(lambda s: re.search(rf"█ +▌?{SLEEP_C} ", s), "the arguments typed in their own field")
        one.press("Enter")
        seen = first_seen(both, lambda s: adhoc_status(s) is not None, "the launched job in both consoles")
        assert abs(seen["two"] - seen["one"]) <= 1.0, f"the launch showed {seen['two'] - seen['one']:.2f}s apart"
        wait_until(lambda: one.ours(SLEEP_C), "the job's sleep to start", timeout=60)
        first_sleep = one.ours(SLEEP_C)
        for term in (one, two):
            term.wait_for(lambda s: adhoc_status(s) == "running", "the job running", timeout=30)

        # cancel in the second console (its only job, selected once shown)
        two.wait_for(lambda s: f"{job} · running" in s, "the job selected in the second console", timeout=10)
        two.press("c")
        seen = first_seen(both, lambda s: adhoc_status(s) == "canceled", "the cancel in both consoles")
        assert abs(seen["one"] - seen["two"]) <= 1.0, f"the cancel showed {seen['one'] - seen['two']:.2f}s apart"
        assert pids_with_cmdline(SLEEP_C) == [] and not set(first_sleep) & set(one.ours()), "the sleep outlived it"

        # each action is audited with the console that asked for it
        consoles = {term: [console_pid(term)] for term in (one, two)}
        audit = [json.loads(line) for line in (one.state / "audit.jsonl").read_text().splitlines()]
        assert audit_pids(audit, "submit", job) == consoles[one], audit
        assert audit_pids(audit, "cancel", job) == consoles[two], audit

        for term in (one, two):  # nothing unfinished: q quits at once
            term.press("q")
            assert term.exit_status() == 0
    finally:
        two.close()
        one.close()
