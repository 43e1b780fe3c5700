"""A real OpenSSH server on 127.0.0.1, for tests that run Ansible over ssh.

Use it with `from tests.sshd import sshd` in a test module. The `sshd` fixture
(module scope) is `start_sshd` in a temp dir: it generates a host key and a
client key pair there, writes an sshd_config and runs `/usr/sbin/sshd -D` on a
free loopback port. Everything it started (the listener and every
per-connection sshd with whatever runs under it) is killed at teardown
(`SshServer.stop()`). Outside pytest (the benches): `with start_sshd(dir) as server:`.

The server only ever listens on 127.0.0.1, and the inventories it writes only
point there. We run as root, so the "remote" user is root on this machine and
the remote Python is `sys.executable`.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.conftest import _read  # one /proc reader for every test and bench

SSHD = "/usr/sbin/sshd"  # sshd refuses to re-exec itself unless started by absolute path
SSH_KEYGEN = "ssh-keygen"
HOST = "127.0.0.1"
COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def keygen(path: Path, comment: str = "playdeck-test") -> Path:
    """A fresh ed25519 key pair at `path` (and `path`.pub), without a passphrase."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


def control_name(port: int, user: str, host: str = HOST) -> str:
    """The file name Ansible gives the ControlMaster socket for host, port and user.

    Same hash as `ansible.plugins.connection.ssh.Connection._create_control_path`;
    the directory varies (Ansible's default ~/.ansible/cp, or whatever
    ANSIBLE_SSH_CONTROL_PATH_DIR says), the name does not. The master's
    command line is `ssh: <dir>/<this name> [mux]`, and every ssh client
    using it has `ControlPath=<dir>/<this name>` on its command line.
    """
    import hashlib

    return hashlib.sha1(f"{host}-{port}-{user}".encode()).hexdigest()[:10]


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        if not stat:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    children = _ppid_map()
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.append(child)
                stack.append(child)
    return found


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    key: Path  # the client's private key, authorized on this server
    directory: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def sessions(self) -> list[int]:
        """Every process below the listener: per-connection sshds and what runs under them."""
        return descendants(self.pid)

    def session_sshds(self) -> list[int]:
        """The per-connection sshd processes (`sshd: root@notty`, `sshd: root@pts/N`), not the listener."""
        return [pid for pid in descendants(self.pid) if _read(f"/proc/{pid}/cmdline").startswith(b"sshd:")]

    def drop_sessions(self) -> list[int]:
        """Simulate the host going away for every open session: SIGKILL everything below the listener."""
        pids = self.sessions()
        _kill(pids, signal.SIGSTOP)  # freeze first, so no one reacts to a sibling's death halfway
        _kill(pids)
        return pids

    def control_name(self) -> str:
        return control_name(self.port, self.user, self.host)

    def known_hosts(self, path: Path) -> Path:
        """A known_hosts file at `path` holding this server's host key (for clients that check it)."""
        kind, key = (self.directory / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        path.write_text(f"[{self.host}]:{self.port} {kind} {key}\n")
        return path

    def stop(self) -> None:
        """Kill the sessions first (frozen, so none forks or re-parents halfway), then the listener."""
        for _ in range(3):
            pids = self.sessions()
            if not pids:
                break
            _kill(pids, signal.SIGSTOP)
            _kill(pids)
            time.sleep(0.05)
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> SshServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def inventory(self, tmp_path: Path, hosts: dict[str, dict[str, Any] | None], name: str = "ssh_hosts.yml") -> Path:
        """A YAML inventory where each host is reached over ssh on this server.

        `hosts` maps an inventory name to host vars that override the defaults
        (e.g. {"ansible_user": "nobody"} or {"ansible_ssh_private_key_file": other_key}).
        """
        defaults = {
            "ansible_connection": "ssh",
            "ansible_host": self.host,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": COMMON_ARGS,
            "ansible_python_interpreter": sys.executable,
        }
        data = {"all": {"hosts": {host: {**defaults, **(extra or {})} for host, extra in hosts.items()}}}
        for host in data["all"]["hosts"].values():  # never anything but loopback
            assert host["ansible_host"] in ("127.0.0.1", "localhost"), host["ansible_host"]
        path = Path(tmp_path) / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"sshd exited with {proc.returncode}: {log.read_text(errors='replace') if log.exists() else ''}"
            )
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as conn:
                conn.settimeout(2.0)
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not accept on {HOST}:{port} within {timeout}s")


def start_sshd(directory: Path) -> SshServer:
    """A fresh host key and client key pair in `directory`, an sshd_config there and
    `/usr/sbin/sshd -D` on a free loopback port, accepting; the caller calls `stop()`
    (or uses the server as a context manager). Raises RuntimeError if sshd does not come up."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = directory / "ssh_host_ed25519_key"
    client_key = directory / "client_key"
    keygen(host_key, "playdeck-test-host")
    keygen(client_key, "playdeck-test-client")
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "client_key.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    log = directory / "sshd.log"
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {HOST}",
                f"HostKey {host_key}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "LogLevel VERBOSE",
                "MaxStartups 50:30:100",
                "MaxSessions 50",
                "UseDNS no",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    # sshd insists on its privilege separation directory (normally made by the service unit)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PLAYDECK_ATTEMPT"}
    proc = subprocess.Popen(
        [SSHD, "-D", "-f", str(config), "-E", str(log)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = SshServer(
        host=HOST, port=port, user=getpass.getuser(), key=client_key, directory=directory, log=log, process=proc
    )
    try:
        _wait_for_port(proc, port, log)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if not os.path.exists(SSHD):
        pytest.skip("openssh-server not installed")
    with start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
