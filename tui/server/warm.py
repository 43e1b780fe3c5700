"""A preflight worker kept warm: Ansible's inventory code imported before the job file arrives.

`playdeck run` pays the import (~0.4 s) on every check; the server keeps one spare worker
that has already paid it, hands it the next submission's jobs, and starts the next spare.
The worker is tui.core.preflight's own (same checks, same answers, same clean-up through
`Check.stop`); only its start moves earlier. A spare whose server dies sees its stdin close
and exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tui.core.preflight import Check
from tui.core.spec import JobSpec


class WarmCheck(Check):
    """A `Check` whose process is started before its jobs are known."""

    def __init__(self) -> None:
        self.specs: list[JobSpec] = []
        env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1")
        env.pop("ANSIBLE_FORCE_COLOR", None)
        package_root = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.server.warm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.data = b""

    def assign(self, specs: list[JobSpec]) -> WarmCheck:
        """These jobs are what this worker checks (the request `Check.__init__` would build)."""
        self.specs = list(specs)
        request = [
            {"name": s.name, "inventory": str(s.inventory), "limit": s.limit or (s.module and "all")}
            for s in self.specs
        ]
        self.data = json.dumps(request).encode()
        return self


class Spares:
    """One spare worker at a time; a dead spare (or none) falls back to a fresh start."""

    def __init__(self) -> None:
        self._spare: WarmCheck | None = None

    def take(self, specs: list[JobSpec]) -> Check:
        spare, self._spare = self._spare, None
        if spare is None or spare.proc.poll() is not None:
            if spare is not None:
                spare.stop()
            spare = WarmCheck()
        check = spare.assign(specs)
        self.refill()
        return check

    def refill(self) -> None:
        if self._spare is None:
            self._spare = WarmCheck()

    def close(self) -> None:
        if self._spare is not None:
            self._spare.stop()
            self._spare = None


def _main() -> int:
    """Import what the check needs, then be `python -m tui.core.preflight` (reads its stdin)."""
    import ansible.inventory.manager
    import ansible.parsing.dataloader  # noqa: F401

    from tui.core.preflight import _main as check_main

    return check_main()


if __name__ == "__main__":
    raise SystemExit(_main())
