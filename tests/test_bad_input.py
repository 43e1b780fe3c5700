"""Bad input gets a clear message, loses nothing, and leaves other jobs running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS, run
from tui.core.engine import Engine
from tui.core.planning.spec import Status, spec_for_playbook


def playdeck(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=120)


def job_file(tmp_path: Path, inventory: Path, limit: str | None = None, book: str = "health_check.yml") -> Path:
    path = tmp_path / "jobs.yml"
    path.write_text(
        textwrap.dedent(f"""\
        inventory: {inventory}
        jobs:
          - name: checked
            playbook: {PLAYBOOKS / book if "/" not in book else book}
    """)
        + (f"    limit: {limit}\n" if limit else "")
    )
    return path


def assert_rejected(out: subprocess.CompletedProcess[str], state: Path, *expected: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "nothing was run" in out.stderr
    for text in expected:
        assert text in out.stderr, out.stderr
    assert not (state / "runs").exists()


def test_malformed_ini_inventory_is_an_error_not_an_empty_success(tmp_path):
    bad = tmp_path / "hosts.ini"
    bad.write_text("[web\nweb01 ansible_connection=local\n")
    state = tmp_path / "state"
    out = playdeck("run", str(job_file(tmp_path, bad)), "--state-dir", str(state))
    assert_rejected(out, state, str(bad), "Failed to parse inventory")


def test_inventory_script_that_fails(tmp_path):
    script = tmp_path / "inventory.sh"
    script.write_text("#!/bin/sh\necho 'cmdb unreachable' >&2\nexit 1\n")
    script.chmod(0o755)
    state = tmp_path / "state"
    out = playdeck("run", str(job_file(tmp_path, script)), "--state-dir", str(state))
    assert_rejected(out, state, str(script), "non-zero exit code")


def test_playbook_syntax_error_names_the_line(tmp_path):
    book = tmp_path / "broken.yml"
    book.write_text("- hosts: all\n  tasks:\n    - name: x\n      debug: {msg: [unclosed\n")
    state = tmp_path / "state"
    out = playdeck("run", str(job_file(tmp_path, INVENTORY, book=str(book))), "--state-dir", str(state))
    assert_rejected(out, state, f"{book}:", "playbook YAML syntax error")


def test_limit_that_matches_no_host(tmp_path):
    state = tmp_path / "state"
    out = playdeck("run", str(job_file(tmp_path, INVENTORY, limit="web99")), "--state-dir", str(state))
    assert_rejected(out, state, "limit 'web99' matches no host")


def test_engine_reports_a_limit_matching_nothing_while_other_jobs_keep_going():
    """The console has no preflight: the job itself must say what is wrong, and others run on."""

    async def main():
        engine = Engine()
        wrong = engine.add(spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, name="wrong", limit="web99"))
        right = engine.add(spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, name="right", limit="cache01"))
        await engine.wait_idle()
        return wrong, right

    wrong, right = run(main())
    assert wrong.status is Status.FAILED
    assert "Could not match supplied host pattern" in wrong.message
    assert right.status is Status.SUCCESSFUL


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_log_disk_full_mid_run_ends_that_job_as_error_and_the_engine_goes_on(tiny_disk):
    filler = tiny_disk / "filler"
    with open(filler, "wb") as fh:  # leave a little room: enough to start, not enough for chatty output
        fh.write(b"\0" * (1024 * 1024 - 200 * 1024))

    async def main():
        engine = Engine(tiny_disk / "state")
        chatty = engine.add(
            spec_for_playbook(PLAYBOOKS / "chatty.yml", INVENTORY, limit="lb01", extra_vars={"chatty_lines": 3000})
        )
        await engine.wait_idle()
        filler.unlink()  # the operator frees space; the same engine runs the next job fine
        after = engine.add(spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, name="after", limit="cache01"))
        await engine.wait_idle()
        return chatty, after

    chatty, after = run(main())
    assert chatty.status is Status.ERROR
    assert "cannot write" in chatty.message and "No space left" in chatty.message
    assert after.status is Status.SUCCESSFUL
    record = json.loads(next((tiny_disk / "state" / "runs").glob("*/after/job.json")).read_text())
    assert record["status"] == "successful"
    assert os.path.getsize(after.last.log) > 0


# --- the ssh control socket directory: a predictable name must not be someone else's -------------


@pytest.fixture
def runtime_dir(monkeypatch):
    """A short private XDG_RUNTIME_DIR (socket paths must stay short, pytest's tmp_path is long)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="pdrt", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", path)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_control_dir_lives_in_a_private_per_user_directory(runtime_dir):
    import shutil
    import stat

    from tui.core.running import procs

    path = Path(procs.control_dir("attempt-1"))
    base = runtime_dir / "playdeck"
    assert path.parent == base and path.name.startswith("pd-cp-")
    assert path == Path(procs.control_dir("attempt-1"))  # derivable again, by the console after a crash
    info = base.lstat()
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    # the supervisor's contract: remove, then make the attempt's own dir
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, 0o700)
    # room for ssh's socket name and the temporary suffix it binds first (AF_UNIX: 107 bytes)
    assert len(str(path)) + 1 + 40 + 17 <= 107


@pytest.mark.parametrize("attack", ["symlink", "foreign owner", "group writable", "a file"])
def test_control_dir_refuses_a_base_someone_else_prepared(runtime_dir, tmp_path, attack):
    from tui.core.running import procs

    base = runtime_dir / "playdeck"
    target = tmp_path / "elsewhere"
    target.mkdir()
    if attack == "symlink":
        base.symlink_to(target)
    elif attack == "a file":
        base.write_text("")
    else:
        base.mkdir(0o700)
        if attack == "foreign owner":
            if os.getuid() != 0:
                pytest.skip("only root can give a directory away")
            os.chown(base, 65534, 65534)
        else:
            base.chmod(0o770)
    with pytest.raises(procs.UnsafeDirError) as raised:
        procs.control_dir("attempt-1")
    assert str(base) in str(raised.value) and "refusing" in str(raised.value)
    assert list(target.iterdir()) == []
    # finding an attempt's processes never fails on it
    assert procs.of_attempt("attempt-1") == set()


def test_a_job_refuses_to_run_with_a_hijacked_control_base(runtime_dir, tmp_path):
    """End to end: the attempt ends as an error that says why, and nothing is made in the target."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (runtime_dir / "playdeck").symlink_to(elsewhere)

    async def main():
        engine = Engine()
        job = engine.add(spec_for_playbook(PLAYBOOKS / "health_check.yml", INVENTORY, limit="cache01"))
        await engine.wait_idle()
        return job

    job = run(main())
    assert job.status is Status.ERROR
    assert f"refusing the ssh control socket directory {runtime_dir / 'playdeck'}: it is a symlink" in job.message
    assert list(elsewhere.iterdir()) == []


def test_control_base_falls_back_to_a_short_path_when_tmpdir_is_long(monkeypatch, tmp_path):
    from tui.core.running import procs

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / ("x" * 80)))
    (tmp_path / ("x" * 80)).mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches TMPDIR
    assert procs.control_base() == f"/tmp/playdeck-{os.getuid()}"


# --- the sample playbooks never write through a symlink planted in their demo directory ----------


@pytest.mark.parametrize(
    ("book", "planted"), [("deploy.yml", "playdeck-demo"), ("failing_host.yml", "playdeck-demo/web01")]
)
def test_sample_playbook_refuses_a_symlinked_demo_directory(tmp_path, book, planted):
    """Another user pre-creates $TMPDIR/playdeck-demo (or a host's dir in it) as a symlink to
    somewhere else: the job fails saying so, and nothing is written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / planted  # conftest points TMPDIR at tmp_path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere)
    summary = tmp_path / "out.json"
    out = playdeck("run", str(PLAYBOOKS / book), "-i", str(INVENTORY), "-l", "web01", "--json", str(summary))
    assert out.returncode == 1, out.stderr
    (job,) = json.loads(summary.read_text())["jobs"]
    assert job["status"] == "failed" and job["hosts"]["web01"]["failed"] == 1
    log = Path(job["attempts"][0]["log"]).read_text()
    assert f"refusing to write under {link}: it is a symlink" in log
    assert list(elsewhere.iterdir()) == []
