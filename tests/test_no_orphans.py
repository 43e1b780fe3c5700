"""No process of a job outlives it: fire-and-forget tasks, an engine torn down mid-run, a killed console."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import INVENTORY, ROOT, TEST_PLAYBOOKS, pids_with_cmdline, pids_with_env, playbook, run, until
from tui.core.engine import Engine
from tui.core.planning.spec import Status, spec_for_playbook


def test_async_task_left_running_by_ansible_is_ended_with_the_job():
    async def main():
        engine = Engine()
        job = engine.add(
            spec_for_playbook(
                TEST_PLAYBOOKS / "async_fire_and_forget.yml", INVENTORY, limit="cache01", extra_vars={"seconds": 48}
            )
        )
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.SUCCESSFUL, job.message
    assert job.hosts["cache01"].changed == 1  # the task did start its background sleep
    assert pids_with_cmdline("sleep 48") == []


def test_engine_task_torn_down_mid_run_ends_the_attempt():
    """If the loop running the engine goes away (a crash in the app), the attempt is still ended."""

    async def main():
        engine = Engine()
        engine.add(spec_for_playbook(playbook("slow_task"), INVENTORY, limit="db02", extra_vars={"slow_seconds": 49}))
        await until(lambda: pids_with_cmdline("sleep 49"), what="the sleep task to start")
        # returning now makes asyncio.run cancel the engine's tasks

    run(main())
    assert pids_with_cmdline("sleep 49") == []


def test_console_killed_with_sigkill_leaves_no_process(tmp_path):
    script = tmp_path / "console.py"
    script.write_text(
        textwrap.dedent(f"""\
        import asyncio
        from pathlib import Path
        from tui.core.engine import Engine
        from tui.core.planning.spec import spec_for_playbook

        async def main():
            engine = Engine()
            for host in ("db01", "db02"):
                engine.add(spec_for_playbook(Path({str(playbook("slow_task"))!r}), Path({str(INVENTORY)!r}),
                                             name=host, limit=host, extra_vars={{"slow_seconds": 51}}))
            await engine.wait_idle()

        asyncio.run(main())
    """)
    )
    state = tmp_path / "killed-console-state"  # only this console's processes carry it
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_STATE_DIR=str(state))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    deadline = time.monotonic() + 60
    while len(pids_with_cmdline("sleep 51")) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the jobs never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.monotonic() + 10  # "within a few seconds", with room for a loaded CI machine
    # this console's processes only: other tests may run supervisors of their own at the same time
    while pids_with_cmdline("sleep 51") or pids_with_env(f"PLAYDECK_STATE_DIR={state}"):
        assert time.monotonic() < gone_by, "job processes outlived the killed console by 10 s"
        time.sleep(0.1)


def test_cancel_while_the_supervisor_is_being_spawned_neither_hangs_nor_leaves_a_process(tmp_path):
    """A crash right after `add()` cancels the attempt's task while it is still starting the
    supervisor: asyncio.run() must return (it hung in Python 3.11's subprocess transport) and
    nothing of the attempt may be left."""
    state = tmp_path / "spawn-cancel-state"
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(f"""\
        import asyncio
        from pathlib import Path
        from tui.core.engine import Engine
        from tui.core.planning.spec import spec_for_playbook

        async def main(turns):
            engine = Engine()
            engine.add(spec_for_playbook(Path({str(playbook("slow_task"))!r}), Path({str(INVENTORY)!r}),
                                         limit="db01", extra_vars={{"slow_seconds": 52}}))
            for _ in range(turns):
                await asyncio.sleep(0)
            raise RuntimeError("crash")

        for turns in range(5):
            try:
                asyncio.run(main(turns))
            except RuntimeError:
                pass
        print("returned")
    """)
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAYDECK_STATE_DIR=str(state))
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert "returned" in result.stdout, result.stderr[-2000:]
    gone_by = time.monotonic() + 10
    while pids_with_env(f"PLAYDECK_STATE_DIR={state}") or pids_with_cmdline("sleep 52"):
        assert time.monotonic() < gone_by, "a process of a cancelled spawn outlived it by 10 s"
        time.sleep(0.1)
