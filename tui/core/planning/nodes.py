"""Execution nodes: hosts reached over plain OpenSSH where a job's supervisor runs instead of here.

A job file (or the config) names them:

    nodes:
      dc2:
        ssh: ops@bastion-dc2.example   # user@host
        port: 22                       # optional
        identity: ~/.ssh/id_ed25519    # optional
        known_hosts: ~/.ssh/known_hosts  # optional; host keys are always checked
        python: /opt/playdeck/bin/python # a Python with the same playdeck version on the node
        capacity: 4                    # jobs at once on that node

and a job's `node: dc2` runs it there. The transport is tui/core/running/node_link.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Node:
    name: str
    ssh: str  # user@host (or host): passed to ssh as the destination, never through a shell
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None  # None: the user's ssh config decides (host keys still checked)
    python: str = "python3"
    capacity: int = 1

    def describe(self) -> str:
        """For messages: the node's name and where it is (no secrets in either)."""
        return f"node {self.name} ({self.ssh}{f':{self.port}' if self.port else ''})"
