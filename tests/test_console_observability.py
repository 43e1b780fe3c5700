"""The console's side of observability on a real server: a config the server refused reaches the
console as one line (and stays until fixed); `I` writes an incident report of what it shows."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import INVENTORY, playbook, run
from tests.console_support import job_named, live_app
from tests.test_console_keys import wait
from tests.test_console_orchestration import notes
from tui.core.planning.spec import Status, spec_for_playbook


def test_a_refused_config_is_said_in_the_console_and_I_writes_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "config.yml"
    config.write_text("max_parallel: 2\n")
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))  # the server the console starts reads it
    spec = spec_for_playbook(playbook("failing_host"), INVENTORY, name="broken-deploy", limit="web02")

    async def main() -> tuple[list[str], Path]:
        app = live_app([spec])
        async with app.run_test(size=(80, 24)) as pilot:
            job = await job_named(pilot, "broken-deploy")
            await wait(pilot, lambda: job.status is Status.FAILED, timeout=60, what="the failure")
            tmp = config.with_suffix(".tmp")
            tmp.write_text("max_parallel: [1]\n")
            tmp.replace(config)
            await wait(pilot, lambda: any("config not reloaded" in n for n in notes(app)), 15, "the notice")
            said = [n for n in notes(app) if "config not reloaded" in n]
            await pilot.press("I")
            await wait(pilot, lambda: any("incident report written" in n for n in notes(app)), 30, "the report")
            line = next(n for n in notes(app) if "incident report written" in n)
            return said, Path(line.split("written: ", 1)[1].strip())

    said, report = run(main())
    assert f"{config}:1: max_parallel" in said[0], said
    assert report.parent == Path(os.environ["PLAYDECK_STATE_DIR"]) / "reports"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    text = report.read_text()
    assert "broken-deploy" in text and "web02" in text and "# playdeck incident report" in text


def test_a_changed_config_file_changes_the_consoles_theme_without_a_restart(tmp_path: Path, monkeypatch):
    """The server takes the changed file and tells the console, which re-reads its own keys: the
    theme changes (no operator choice was remembered), and a theme chosen by hand then wins."""
    config = tmp_path / "config.yml"
    config.write_text("theme: playdeck-dark\n")
    monkeypatch.setenv("PLAYDECK_CONFIG", str(config))

    def write(text: str) -> None:
        tmp = config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(config)

    async def main() -> None:
        app = live_app([])
        async with app.run_test(size=(80, 24)) as pilot:
            await wait(pilot, lambda: app.engine is not None, timeout=60, what="attached")
            assert app.theme == "playdeck-dark"
            write("theme: playdeck-light\n")
            await wait(pilot, lambda: app.theme == "playdeck-light", timeout=15, what="the new theme")
            app.theme = "playdeck-high-contrast"  # the operator's choice (as from the palette)
            await pilot.pause(0.2)
            write("theme: playdeck-dark\nbell: true\n")
            await wait(pilot, lambda: app.config.bell, timeout=15, what="the bell from the file")
            assert app.theme == "playdeck-high-contrast"  # a hand-picked theme is not overridden

    run(main())
