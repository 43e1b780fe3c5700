"""A playbook that waits for input (vars_prompt, pause) never hangs silently.

Unattended (prompts="fail"), the job fails at once saying how to pass the answer; in the
console (prompts="ask") it waits with `job.prompt` set until answered, canceled or timed out.
Real ansible-playbook on one local host; each run takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, TEST_PLAYBOOKS, pids_with_env, run, until
from tui.core.engine import Engine, EngineError, Job, Prompt
from tui.core.planning.spec import JobSpec, Status
from tui.core.running.procs import MARKER_VAR

VARS = TEST_PLAYBOOKS / "prompt_vars.yml"
PAUSE = TEST_PLAYBOOKS / "prompt_pause.yml"


def spec(name: str, book: Path, **options) -> JobSpec:
    return JobSpec(name=name, inventory=INVENTORY, playbook=book, limit="web01", **options)


def assert_nothing_left(job: Job) -> None:
    for attempt in job.attempts:
        assert pids_with_env(f"{MARKER_VAR}={attempt.marker}") == [], f"processes of {job.name} survived"


def messages(job: Job) -> list[str]:
    """The debug messages of the job's last attempt, from its events on disk."""
    found = []
    for line in job.last.events_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "runner_on_ok" and "msg" in event["event_data"].get("res", {}):
            found.append(event["event_data"]["res"]["msg"])
    return found


def test_unattended_prompts_fail_at_once_and_say_how_to_answer():
    prompted: list[str] = []

    async def main():
        engine = Engine(max_parallel=4)
        engine.subscribe(lambda job, what: prompted.append(job.name) if what == "prompt" else None)
        started = time.monotonic()
        jobs = [
            engine.add(spec("vars", VARS, retries=2, retry_delay=0.1, timeout=60)),
            engine.add(spec("pause", PAUSE, timeout=60)),
            engine.add(spec("timed-pause", PAUSE, extra_vars={"pause_seconds": 1})),
            engine.add(spec("answered", VARS, extra_vars={"release": "4.5.6"})),
        ]
        await engine.wait_idle()
        return jobs, time.monotonic() - started

    (vars_job, pause, timed, answered), took = run(main())
    assert took < 20  # not the 60 s timeout
    assert vars_job.status is Status.FAILED
    assert vars_job.message == (
        'waiting for input: vars_prompt "Release to deploy" (variable release): '
        "pass it as an extra var (-e release=... / extra_vars: in the job file)"
    )
    assert len(vars_job.attempts) == 1  # asking again would only fail again: no automatic retry
    assert pause.status is Status.FAILED
    assert pause.message == (
        'waiting for input: pause "Press enter to go on"; '
        "give the pause a seconds: value or remove it for unattended runs"
    )
    # a pause with seconds ends by itself, and an extra var answers a vars_prompt before it asks
    assert timed.status is Status.SUCCESSFUL, timed.message
    assert answered.status is Status.SUCCESSFUL, answered.message
    assert messages(answered) == ["release is 4.5.6"]
    assert prompted == []  # "fail" never leaves a job waiting
    for job in (vars_job, pause):
        assert job.prompt is None and job.last.status is Status.FAILED
        assert_nothing_left(job)


def ask(book: Path, answer: str | None, **options) -> tuple[Job, list[Prompt | None], Engine]:
    """Run one job with prompts="ask"; answer its first prompt with `answer` (None: cancel it)."""
    seen: list[Prompt | None] = []

    async def main():
        engine = Engine(prompts="ask")
        job = engine.add(spec("asked", book, **options))
        engine.subscribe(lambda j, what: seen.append(j.prompt) if what == "prompt" else None)
        await until(lambda: job.prompt is not None or job.status.finished, what="the prompt")
        assert job.status is Status.RUNNING, job.message
        with pytest.raises(EngineError):
            engine.answer_prompt(job, "two\nlines")
        if answer is None:
            engine.cancel(job)
        else:
            engine.answer_prompt(job, answer)
            with pytest.raises(EngineError, match="not waiting for input"):
                engine.answer_prompt(job, answer)  # answered already
        await engine.wait_idle()
        return job, engine

    job, engine = run(main())
    return job, seen, engine


def test_vars_prompt_waits_and_the_answer_reaches_the_playbook():
    job, seen, engine = ask(VARS, "1.2.3")
    assert seen == [Prompt(kind="vars_prompt", text="Release to deploy", varname="release", private=False), None]
    assert job.status is Status.SUCCESSFUL, job.message
    assert messages(job) == ["release is 1.2.3"]
    audit = [json.loads(line) for line in engine.audit.path.read_text().splitlines()]
    answers = [entry for entry in audit if entry.get("action") == "answer"]
    assert len(answers) == 1 and "1.2.3" not in json.dumps(audit)


def test_private_answer_reaches_the_playbook_and_no_file(isolated_state: Path):
    """A private vars_prompt (getpass) with `confirm: yes`: Ansible asks twice, one answer does for both."""
    secret = "s3cret-4242"
    job, seen, _ = ask(VARS, secret, extra_vars={"prompt_private": True})
    assert seen[0] is not None and seen[0].private and seen[0].varname == "release"
    assert job.status is Status.SUCCESSFUL, job.message
    assert messages(job) == [f"release is {hashlib.sha1(secret.encode()).hexdigest()}"]
    for path in isolated_state.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the private answer is in {path}"


@pytest.mark.parametrize("echo", [True, False])
def test_pause_waits_for_enter_and_goes_on(echo: bool):
    job, seen, _ = ask(PAUSE, "yes" if echo else "", extra_vars={"pause_echo": echo})
    assert seen[0] == Prompt(kind="pause", text="Press enter to go on", varname=None, private=not echo)
    assert job.status is Status.SUCCESSFUL, job.message
    assert messages(job) == [f"went on after [{'yes' if echo else ''}]"]


def test_cancel_at_a_prompt_leaves_nothing():
    job, seen, _ = ask(VARS, None)
    assert job.status is Status.CANCELED
    assert seen[-1] is None and job.prompt is None  # the prompt went with the attempt
    assert_nothing_left(job)


def test_a_timeout_still_ends_a_job_waiting_for_input():
    async def main():
        engine = Engine(prompts="ask")
        job = engine.add(spec("waits", PAUSE, timeout=4))
        await until(lambda: job.prompt is not None or job.status.finished, what="the prompt")
        assert job.status is Status.RUNNING and job.prompt is not None
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.TIMEOUT and job.prompt is None
    assert_nothing_left(job)
