"""No process of a job outlives it: fire-and-forget tasks, an engine torn down mid-run, a killed console."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import INVENTORY, ROOT, TEST_PLAYBOOKS, pids_with_cmdline, playbook, run, until
from tui.core.engine import Engine, spec_for_playbook
from tui.core.spec import Status

def test_async_task_left_running_by_ansible_is_ended_with_the_job():
    async def main():
        engine = Engine()
        job = engine.add(spec_for_playbook(TEST_PLAYBOOKS / "async_fire_and_forget.yml", INVENTORY,
                                           limit="cache01", extra_vars={"seconds": 48}))
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
    script.write_text(textwrap.dedent(f"""\
        import asyncio
        from pathlib import Path
        from tui.core.engine import Engine, spec_for_playbook

        async def main():
            engine = Engine()
            for host in ("db01", "db02"):
                engine.add(spec_for_playbook(Path({str(playbook('slow_task'))!r}), Path({str(INVENTORY)!r}),
                                             name=host, limit=host, extra_vars={{"slow_seconds": 51}}))
            await engine.wait_idle()

        asyncio.run(main())
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    deadline = time.monotonic() + 60
    while len(pids_with_cmdline("sleep 51")) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the jobs never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.monotonic() + 10  # "within a few seconds", with room for a loaded CI machine
    while pids_with_cmdline("sleep 51") or pids_with_cmdline("tui.core.supervisor"):
        assert time.monotonic() < gone_by, "job processes outlived the killed console by 10 s"
        time.sleep(0.1)
