"""Snapshots pin the whole screen at 80x24 and 160x48, in the dark and the light theme.

Live jobs never draw the same screen twice (times, ordering of events), so these
show a fixed set of finished jobs as the server describes them (tests/console_support.py),
on the real sample inventory; the keys tests cover the live behaviour.
Update after an intended change with `python -m pytest tests/test_console_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from tests.conftest import INVENTORY, PLAYBOOKS
from tests.console_support import FrozenSession, show_frozen_jobs
from tui.console.app import PlaydeckApp


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("theme", ["playdeck-dark", "playdeck-light"])
def test_console_screen(snap_compare, size, theme):
    app = PlaydeckApp(session=FrozenSession(), inventory=INVENTORY, playbook_dirs=[PLAYBOOKS], theme=theme)
    assert snap_compare(app, terminal_size=size, run_before=show_frozen_jobs)
