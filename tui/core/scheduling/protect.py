"""Protected targets: a run that would touch a protected host asks first.

A job file's `protect:` lists host patterns (names, fnmatch globs, group names, as Ansible
reads a pattern). The preflight resolves which of each job's hosts they cover; a run or
submission touching any needs confirmation (`--yes`, or "yes": true to the server), and is
audited either way. Without a preflight nothing can be resolved, so any `protect:` asks.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from tui.core.sanitize import strip_sgr

#: The server's 409 error for an unconfirmed submission; `playdeck submit` recognises it.
REFUSED = "protected targets need confirmation (yes), nothing was submitted"
#: The same for a retry or run-now of a job whose submission touched protected hosts.
ACTION_REFUSED = "protected targets need confirmation (yes), nothing was run"


def touched(protected: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Only the jobs that touch a protected host: job name -> those hosts."""
    return {name: list(hosts) for name, hosts in protected.items() if hosts}


def lines(found: Mapping[str, Sequence[str]], patterns: Sequence[str]) -> list[str]:
    """One line per job, naming it and the protected hosts it would touch (plain text)."""
    said = ", ".join(strip_sgr(p) for p in patterns)
    return [
        f"job {strip_sgr(name)!r} would touch protected hosts: {', '.join(strip_sgr(h) for h in hosts)} (protect: {said})"
        for name, hosts in found.items()
    ]


def unchecked_lines(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Without a preflight the hosts are unknown: every job may touch a protected one."""
    said = ", ".join(strip_sgr(p) for p in patterns)
    return [
        f"job {strip_sgr(name)!r} may touch protected hosts (protect: {said}; not resolved: the preflight was skipped)"
        for name in names
    ]


def again_line(name: str, hosts: Sequence[str]) -> str:
    """A retry or run-now of a job whose submission touched protected hosts (plain text)."""
    which = ", ".join(strip_sgr(h) for h in hosts) if hosts else "hosts not resolved (no preflight)"
    return f"job {strip_sgr(name)!r} touches protected hosts: {which} (confirmed at submission; confirm again)"
