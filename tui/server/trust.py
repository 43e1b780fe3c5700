"""Who is on the other end of a connection, as the kernel says (SO_PEERCRED).

Headers are what the client claims (its login, SUDO_USER, SSH address); the
peer's uid and pid come from the kernel and are the only thing trusted.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket | None) -> Peer | None:
    """The peer's credentials, or None when they cannot be read (not a Unix socket, closed)."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)
    except OSError:
        return None
    pid, uid, gid = UCRED.unpack(raw)
    return Peer(pid, uid, gid)


def trusted(peer: Peer | None) -> bool:
    """Only our own uid is served; unknown credentials are refused too."""
    return peer is not None and peer.uid == os.getuid()


def identity(headers: Any, peer: Peer | None) -> dict[str, Any]:
    """What the audit records about the client: its claims, plus the kernel's pid and uid."""
    return {
        "client_user": str(headers.get("X-Playdeck-User", ""))[:200],
        "client_sudo_user": str(headers.get("X-Playdeck-Sudo-User", ""))[:200],
        "client_ssh": str(headers.get("X-Playdeck-SSH-Client", ""))[:200],
        "client_pid": peer.pid if peer else None,
        "client_uid": peer.uid if peer else None,
    }
