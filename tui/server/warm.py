"""A preflight worker kept warm: Ansible's inventory code imported before the job file arrives.

`playdeck run` pays the import (~0.4 s) on every check; the server keeps one spare worker
that has already paid it, hands it the next submission's jobs, and starts the next spare.
The worker is tui.core.planning.preflight's own (same checks, same answers, same clean-up through
`Check.stop`); only its start moves earlier. A spare whose server dies sees its stdin close
and exits.
"""

from __future__ import annotations

from tui.core.planning.preflight import Check
from tui.core.planning.spec import JobSpec


def _start() -> Check:
    """A preflight worker started now, before its jobs are known: `python -m tui.server.warm`."""
    return Check(module="tui.server.warm")


class Spares:
    """One spare worker at a time; a dead spare (or none) falls back to a fresh start."""

    def __init__(self) -> None:
        self._spare: Check | None = None

    def take(self, specs: list[JobSpec]) -> Check:
        spare, self._spare = self._spare, None
        if spare is None or spare.proc.poll() is not None:
            if spare is not None:
                spare.stop()
            spare = _start()
        check = spare.assign(specs)
        self.refill()
        return check

    def refill(self) -> None:
        if self._spare is None:
            self._spare = _start()

    def close(self) -> None:
        if self._spare is not None:
            self._spare.stop()
            self._spare = None


def _main() -> int:
    """Import what the check needs, then be `python -m tui.core.planning.preflight` (reads its stdin)."""
    import ansible.inventory.manager
    import ansible.parsing.dataloader  # noqa: F401

    from tui.core.planning.preflight import main as check_main

    return check_main()


if __name__ == "__main__":
    raise SystemExit(_main())
