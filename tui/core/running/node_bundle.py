"""What an attempt on a node takes with it: the playbook's directory and the inventory as one
archive (the node unpacks it into a private work dir, node_side.py), and the vault password a
local file held, turned into an in-memory secret (never a file on the node)."""

from __future__ import annotations

import base64
import io
import os
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import Any

BUNDLE_MAX = 64 * 1024 * 1024  # compressed
SKIP_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".mypy_cache", ".pytest_cache"})


class NodeError(Exception):
    """The attempt cannot be sent to its node; the message says why."""


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _Bundle:
    """A tar.gz of directory trees with every symlink replaced by what it points to: a role linked
    from elsewhere must reach the node, and the node's safe unpack refuses links out of the bundle."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w:gz", compresslevel=6)

    def add(self, path: Path, arcname: str, ancestors: frozenset[Path] = frozenset()) -> None:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return  # a dangling or looping link: nothing to send
        if real.is_dir():
            if real in ancestors:
                return  # a link to a directory above it: it would never end
            self.tar.addfile(_plain(self.tar.gettarinfo(real, arcname)))
            for entry in sorted(os.listdir(real)):
                if entry not in SKIP_NAMES:
                    self.add(real / entry, f"{arcname}/{entry}", ancestors | {real})
        elif real.is_file():
            with open(real, "rb") as fh:
                self.tar.addfile(_plain(self.tar.gettarinfo(real, arcname)), fh)
            if self.buf.tell() > BUNDLE_MAX:
                raise NodeError(
                    f"the playbook's directory and inventory are over the {BUNDLE_MAX // 2**20} MB "
                    "(compressed) sent to a node"
                )
        # sockets, fifos and devices are not sent

    def close(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def build_bundle(kwargs: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The playbook's directory and the inventory (with its group_vars/host_vars) as a base64 tar.gz,
    and the kwargs' paths relative to it. An inventory that is no path (`a,b,`) is left as it is."""
    bundle = _Bundle()
    paths: dict[str, str] = {}
    project = kwargs.get("project_dir")
    if project:
        bundle.add(Path(project), "project")
        paths["project_dir"] = "project"
    playbook = kwargs.get("playbook")
    if playbook:
        try:
            paths["playbook"] = "project/" + Path(playbook).relative_to(project or "/nonexistent").as_posix()
        except ValueError:
            bundle.add(Path(playbook), f"playbook/{Path(playbook).name}")
            paths["playbook"] = f"playbook/{Path(playbook).name}"
    inventory = Path(str(kwargs.get("inventory") or ""))
    if kwargs.get("inventory") and inventory.exists():
        bundle.add(inventory, f"inventory/{inventory.name}")
        paths["inventory"] = f"inventory/{inventory.name}"
        for sub in ("group_vars", "host_vars") if inventory.is_file() else ():
            bundle.add(inventory.parent / sub, f"inventory/{sub}")
    return base64.b64encode(bundle.close()).decode("ascii"), paths


def vault_file_to_secret(kwargs: dict[str, Any], secrets: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A --vault-password-file is a file here: read it (or run it, if executable, as Ansible does)
    and send the password as the "vault" secret, in memory only, never as a file on the node."""
    words = shlex.split(kwargs.get("cmdline") or "")
    if "--vault-password-file" not in words:
        return kwargs, secrets
    at = words.index("--vault-password-file")
    path = Path(words[at + 1]) if at + 1 < len(words) else None
    del words[at : at + 2]
    if path is None:
        raise NodeError("--vault-password-file without a file")
    try:
        if os.access(path, os.X_OK) and path.is_file():
            run = subprocess.run([str(path)], capture_output=True, timeout=60, stdin=subprocess.DEVNULL, check=True)
            password = run.stdout.decode().strip()
        else:
            password = path.read_text().strip()
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as exc:
        raise NodeError(f"cannot read the vault password file {path}: {exc}") from None
    kwargs = {**kwargs, "cmdline": " ".join(shlex.quote(w) for w in words)}
    if not kwargs["cmdline"]:
        del kwargs["cmdline"]
    return kwargs, {**secrets, "vault": secrets.get("vault") or password}
