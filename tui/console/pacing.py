"""How often the console redraws: every quarter second while it stays within its CPU budget,
stretching to once a second while output floods in (the jobs, not the console, should have
the CPU of a busy bastion), and back again after. Mixed into `PlaydeckApp`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.console.app import PlaydeckApp

REFRESH_SECONDS = 0.25  # the redraw interval while the console is within its CPU budget
SLOWEST_REFRESH = 1.0  # the longest it stretches to when output floods in
CPU_BUDGET = 0.03  # of one core: on a saturated bastion every cycle the console takes, the jobs lose


class RedrawPacing:
    """For `PlaydeckApp`: the refresh loop and its governor."""

    def _frame(self: PlaydeckApp) -> None:
        """The refresh loop: draw, judge the CPU spent, come back after the current interval."""
        if self._hung_up:
            return
        self._tick()
        self._govern()
        self.set_timer(self.refresh_interval, self._frame)

    def _govern(self: PlaydeckApp) -> None:
        """Draw less often while the console spends more than its CPU budget, and speed up again after.

        Drawing a streaming log costs the same per frame whatever arrived, so under a
        flood of output the frame rate is what bounds the console's CPU; keys are
        answered at once either way (they redraw what they change themselves).
        """
        wall, cpu = time.monotonic(), time.process_time()
        if self._governed_at is None:
            self._governed_at = (wall, cpu)
            return
        elapsed = wall - self._governed_at[0]
        if elapsed < 1.0:
            return
        share = (cpu - self._governed_at[1]) / elapsed
        self._governed_at = (wall, cpu)
        if share > CPU_BUDGET:
            self.refresh_interval = min(SLOWEST_REFRESH, self.refresh_interval * 1.5)
        elif share < CPU_BUDGET / 2:
            self.refresh_interval = max(REFRESH_SECONDS, self.refresh_interval / 1.5)
