"""A hostile host against the real console: nothing it prints may reach the terminal raw.

Runs `tests/playbooks/hostile.yml` (OSC 0/2 titles, OSC 52 clipboard, OSC 8 links,
CSI erase/cursor moves, DCS, C1 characters, BEL, a `\\r` that hides a command,
invalid UTF-8, a 3 MB line, Rich/Textual markup, hostile task names, failure
messages and host names) in `playdeck JOBFILE` inside tmux, records every byte the
console writes to its terminal (`tmux pipe-pane`), walks the grid, the failure
toast, the results view (`v`) and the whole log, then quits.

Checks the raw bytes (no host payload after an OSC/DCS introducer, no C1, only
valid UTF-8), the screen (the hidden text is shown, made visible: `␛`, `␇`, `␍`,
`<U+009B>`; markup shown literally), tmux itself (pane title and paste buffers
untouched) and that the console survived and exited 0.

tmux runs on a private socket (`-L`) and that server is always killed at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import INVENTORY, ROOT, TEST_PLAYBOOKS, end_leftovers, pids_with_env

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

JOB = "hostile"
WIDTH, HEIGHT = 120, 40
# Each of the host's payloads, exactly as it would reach a terminal if passed through raw.
RAW_PAYLOADS = {
    "OSC 0 title": b"\x1b]0;PWNED",
    "OSC 2 title": b"\x1b]2;PWNED",
    "OSC 52 clipboard": b"\x1b]52;c;cHduZWQ",
    "OSC 8 hyperlink": b"\x1b]8;;http://evil",
    "DCS": b"\x1bPPWNED-DCS",
    "CSI 2J after the host's marker": b"CLEAR-MARK\x1b[2J",
    "CSI cursor up after the host's marker": b"UP-MARK\x1b[5A",
    "BEL after the host's title": b"PWNED-TITLE\x07",
    "BEL after the host's marker": b"BEL-MARK\x07",
    "a CR hiding the host's command": b"--no-preserve-root\rHARMLESS",
    "UTF-8 encoded C1 CSI (U+009B)": b"\xc2\x9b",
    "UTF-8 encoded C1 OSC (U+009D)": b"\xc2\x9d",
}
# Words only the host's payloads contain: none may appear inside any control string.
MARKERS = (b"PWNED", b"evil.invalid", b"cHduZWQ", b"-MARK", b"CLICKME")


class Terminal:
    """The real console in a detached tmux session on a private tmux server, its output recorded."""

    def __init__(self, tmp_path: Path, jobfile: Path):
        self.socket = f"playdeck-hostile-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "console"
        self.socket_path: Path | None = None
        self.state = tmp_path / "console-state"
        self.marker = f"PLAYDECK_STATE_DIR={self.state}"
        self.raw_file = tmp_path / "terminal.raw"
        self.go = tmp_path / "go"  # the console starts only once its output is being recorded
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        console_env = {
            "PLAYDECK_STATE_DIR": str(self.state),
            "PLAYDECK_CONFIG": str(tmp_path / "no-config.yml"),  # defaults: no key map, no bell
            "TMPDIR": str(tmp_path),
            "TERM": "tmux-256color",
            # scrolls jump instead of gliding, so each page read is where the key left it (on a busy
            # machine an animated scroll can pause long enough to look finished)
            "TEXTUAL_ANIMATIONS": "none",
        }
        command = shlex.join(["env", *(f"{k}={v}" for k, v in console_env.items()),
                              sys.executable, "-m", "tui", str(jobfile)])
        go = shlex.quote(str(self.go))
        self.script = (f"while [ ! -e {go} ]; do sleep 0.05; done; "
                       f"cd {shlex.quote(str(ROOT))} && {command}; echo EXIT=$?; sleep 60")

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True,
                              text=True, timeout=10)

    def start(self) -> None:
        result = self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session,
                           "-x", str(WIDTH), "-y", str(HEIGHT), "sh", "-c", self.script)
        assert result.returncode == 0, f"tmux new-session failed: {result.stderr}"
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").stdout.strip())
        # let applications set tmux paste buffers with OSC 52 (the default, "external", ignores
        # them), so a clipboard write that got through would show up in `list-buffers`
        result = self.tmux("set-option", "-s", "set-clipboard", "on")
        assert result.returncode == 0, f"tmux set-clipboard failed: {result.stderr}"
        result = self.tmux("pipe-pane", "-O", "-t", self.session, f"cat >> {shlex.quote(str(self.raw_file))}")
        assert result.returncode == 0, f"tmux pipe-pane failed: {result.stderr}"
        self.go.touch()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session).stdout

    def press(self, *keys: str) -> None:
        for key in keys:
            result = self.tmux("send-keys", "-t", self.session, key)
            assert result.returncode == 0, f"tmux send-keys {key!r} failed: {result.stderr}"

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0,
                 hold: float = 0.0) -> str:
        """The first screen for which `predicate` holds (and keeps holding for `hold` seconds:
        a capture can catch a frame half drawn, so absence needs a second look)."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while True:
            text = self.screen()
            if not predicate(text):
                since = None
            elif hold <= 0 or (since is not None and time.monotonic() - since >= hold):
                return text
            elif since is None:
                since = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last screen:\n{text}")
            time.sleep(0.1)

    def settled(self, before: str | None = None, timeout: float = 10.0) -> str:
        """The screen once it stops changing (an animated scroll has ended).

        With `before`, first wait up to 10 s for the screen to differ from it (a key to take effect).
        """
        previous = self.screen()
        deadline = time.monotonic() + 10.0
        while before is not None and previous == before and time.monotonic() < deadline:
            time.sleep(0.1)
            previous = self.screen()
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.2)
            screen = self.screen()
            if screen == previous or time.monotonic() > deadline:
                return screen
            previous = screen

    def pane_title(self) -> str:
        return self.tmux("display-message", "-p", "-t", self.session, "#{pane_title}").stdout

    def buffers(self) -> str:
        names = self.tmux("list-buffers", "-F", "#{buffer_name}").stdout.split()
        return "\n".join(self.tmux("show-buffer", "-b", name).stdout for name in names)

    def stop_recording(self) -> bytes:
        self.tmux("pipe-pane", "-t", self.session)  # no command: closes the pipe
        time.sleep(0.3)  # let `cat` write what it still holds
        return self.raw_file.read_bytes() if self.raw_file.exists() else b""

    def close(self) -> None:
        """Kill the tmux server; then make sure no process of this console outlives the test."""
        self.tmux("kill-server")
        if self.socket_path is not None and self.socket_path.name == self.socket:
            self.socket_path.unlink(missing_ok=True)
        end_leftovers(lambda: pids_with_env(self.marker))  # only after a failure is anything left


def status_of(screen: str, job: str) -> str | None:
    match = re.search(rf"(?m)^.*▎ {re.escape(job)}\s+(\w+)\b", screen)
    return match.group(1) if match else None


def log_lines(screen: str) -> list[str]:
    """The log pane's lines (below its title bar, above the footer), without the scrollbar."""
    lines = screen.splitlines()
    title = next((i for i, line in enumerate(lines) if " · log " in line), None)
    if title is None:
        return []
    return [line[line.find("▎") + 1:].rstrip().rstrip("▁▂▃▄▅▆▇█").rstrip() for line in lines[title + 1:-1]]


def toast_text(screen: str) -> str:
    """The text of the toast (right of its `▌` edge), without spaces, so wrapping does not matter."""
    parts = [line[line.rindex("▌") + 1:] for line in screen.splitlines() if "▌" in line]
    return re.sub(r"[\s▁▂▃▄▅▆▇█]+", "", "".join(parts))  # the log's scrollbar shows right of the toast


def shown_task(screen: str) -> str:
    """The heading of the message the results view shows (the line below its `───` rule)."""
    lines = screen.splitlines()
    rule = next((i for i, line in enumerate(lines) if "█  ─────" in line), None)
    return lines[rule + 1] if rule is not None and rule + 1 < len(lines) else ""


def dialog_text(screen: str) -> str:
    """The text inside the results dialog (between its `█` edges), wrapped lines joined by one space."""
    parts = [line[line.index("█") + 1:line.rindex("█")] for line in screen.splitlines() if line.count("█") >= 2]
    return re.sub(r"\s+", " ", " ".join(parts))


def host_rows(screen: str) -> list[str]:
    """The rows of the results view's host table, as on screen."""
    lines = screen.splitlines()
    start = next((i for i, line in enumerate(lines) if re.search(r"█\s+host\s+ok\s+changed\s+failed", line)), None)
    if start is None:
        return []
    rows = []
    for line in lines[start + 1:]:
        inside = line[line.find("█") + 1:line.rfind("█")] if line.count("█") >= 2 else ""
        if not inside.strip(" ▁▂▃▄▅▆▇█▉▊▋▌▍▎▏") or re.search(r"\boutcome\s+host\b", inside):
            break
        rows.append(line)
    return rows


def control_strings(raw: bytes) -> list[tuple[int, bytes]]:
    """Every OSC, DCS, APC, PM and SOS in the stream: (offset, body up to its terminator)."""
    found = []
    for match in re.finditer(rb"\x1b[\]P_^X]", raw):
        start = match.end()
        end = len(raw)
        for terminator in (b"\x07", b"\x1b\\"):
            at = raw.find(terminator, start)
            if at != -1:
                end = min(end, at)
        found.append((match.start(), raw[start:min(end, start + 4096)]))
    return found


@pytest.fixture
def terminal(tmp_path: Path):
    jobfile = tmp_path / "jobs.yml"
    jobfile.write_text(f"""\
inventory: {INVENTORY}
jobs:
  - name: {JOB}
    playbook: {TEST_PLAYBOOKS / 'hostile.yml'}
    limit: "~^(cache01|pwned-host.*)$"
""", encoding="utf-8")
    term = Terminal(tmp_path, jobfile)
    term.start()
    try:
        yield term
    finally:
        term.close()


def test_hostile_host_output_never_reaches_the_terminal_raw(terminal: Terminal):
    screens: dict[str, str] = {}

    # the job fails (the `fail` task); its toast names the failed hosts, one named by the host
    screens["grid"] = terminal.wait_for(lambda s: status_of(s, JOB) == "failed", "the job to fail", timeout=120)
    screens["toast"] = terminal.wait_for(lambda s: "TOAST-MARKUP" in toast_text(s), "the failure toast", timeout=10)
    titles = {"after the failure": terminal.pane_title()}
    # the toast covers part of the log and of the results view: read those once it is gone
    terminal.wait_for(lambda s: "job failed" not in s, "the failure toast to go", timeout=30, hold=1.0)

    # v: the results view, opened on the first failure with its message shown
    hint = "↑↓ pick a task"  # only the results view shows it
    terminal.press("v")
    screens["results"] = terminal.wait_for(lambda s: hint in s and "FAIL-MARK" in s,
                                           "the results view and the failure message", timeout=20)
    screen = screens["results"]
    for _ in range(8):  # down, one task at a time, to the ignored one whose stdout hides a command behind a \r
        terminal.press("Down")
        screen = terminal.wait_for(lambda s, before=shown_task(screen): shown_task(s) != before,
                                   "Down to show the next task's message", timeout=20)
        if "RES-MARK" in screen:
            break
    screens["results, hostile stdout"] = screen
    terminal.press("Escape")
    terminal.wait_for(lambda s: hint not in s, "the results view to close", timeout=20, hold=0.5)

    # Enter: the log (it follows the end); walk it from the top (g) to that end, page by page
    terminal.press("Enter")
    terminal.wait_for(lambda s: "G Follow" in s.splitlines()[-1], "the log to have the focus", timeout=20)
    end = log_lines(terminal.settled())
    terminal.press("g")
    terminal.wait_for(lambda s: "── attempt 1" in s, "g to reach the top of the log", timeout=20)
    screens["log top"] = screen = terminal.settled()
    for page in range(40):
        if log_lines(screen) == end:
            break
        terminal.press("PageDown")
        try:  # one page at a time: wait for this key before the next, however slow the console is
            terminal.wait_for(lambda s: log_lines(s) != log_lines(screen), "PageDown to scroll", timeout=20)
        except AssertionError:
            break  # nothing more to scroll
        screens[f"log page {page + 1}"] = screen = terminal.settled()
    terminal.press("G")
    following = terminal.wait_for(lambda s: "· following ·" in s, "G to follow the end again", timeout=20)
    terminal.press("PageUp")
    screens["log end, one page up"] = terminal.settled(before=following)
    titles["after the log"] = terminal.pane_title()

    # q (y if it asks): exits 0; the malformed markup did not crash it
    terminal.press("q")
    screen = terminal.wait_for(lambda s: "EXIT=" in s or "y: yes" in s, "the console to quit or ask", timeout=20)
    if "EXIT=" not in screen:
        terminal.press("y")
    screen = terminal.wait_for(lambda s: "EXIT=" in s, "the console to exit", timeout=30)
    titles["after exit"] = terminal.pane_title()
    raw = terminal.stop_recording()
    seen = "\n".join(f"--- {name} ---\n{text}" for name, text in screens.items())

    assert "EXIT=0" in screen, f"the console did not exit with status 0:\n{screen}"
    assert "Traceback" not in screen and "MarkupError" not in screen, screen
    assert len(raw) > 10_000, f"recorded only {len(raw)} bytes of terminal output: is pipe-pane working?"
    problems: list[str] = []  # every finding at once: one hostile run shows many things

    def context(offset: int) -> bytes:
        return raw[max(0, offset - 80):offset + 80]

    # -- raw bytes: no payload reached the terminal ----------------------------
    for name, payload in RAW_PAYLOADS.items():
        if payload in raw:
            problems.append(f"raw {name} ({raw.count(payload)}x), e.g. {context(raw.index(payload))!r}")
    osc52 = raw.find(b"\x1b]52")
    if osc52 != -1:
        problems.append(f"an OSC 52 (clipboard write) reached the terminal: {context(osc52)!r}")
    carrying = [(offset, body) for offset, body in control_strings(raw) if any(m in body for m in MARKERS)]
    if carrying:
        offset, body = carrying[0]
        problems.append(f"{len(carrying)} OSC/DCS/APC strings carry the host's payload, first at byte {offset}: "
                        f"{body[:120]!r} in {context(offset)!r}")
    try:
        text = raw.decode("utf-8")  # a raw 0x9b (8-bit CSI) or any invalid byte fails here
    except UnicodeDecodeError as exc:
        problems.append(f"invalid UTF-8 (raw 8-bit controls?) at byte {exc.start}: {context(exc.start)!r}")
    else:
        c1 = sorted({f"U+{ord(c):04X}" for c in re.findall(r"[\x80-\x9f]", text)})
        if c1:
            problems.append(f"C1 control characters reached the terminal: {c1}")
    for offset in (m.start() for m in re.finditer(rb"\x07", raw)):  # a BEL only ever ends the console's own OSC
        before = raw[max(0, offset - 4096):offset]
        if before.rfind(b"\x1b]") <= max(before.rfind(b"\x07"), before.rfind(b"\x1b\\")):
            problems.append(f"a bare BEL at byte {offset}: {context(offset)!r}")
            break

    # -- tmux: title and paste buffers untouched -------------------------------
    for when, title in titles.items():
        if "PWNED" in title:
            problems.append(f"the host retitled the terminal ({when}): pane_title = {title!r}")
    buffers = terminal.buffers()
    if "pwned" in buffers:
        problems.append(f"the host wrote the clipboard (tmux paste buffers: {buffers!r})")

    # -- the screen: hidden text is shown, made visible ------------------------
    log = "\n".join(text for name, text in screens.items() if name.startswith("log"))
    for visible in (
        "␛]0;PWNED-TITLE␇",  # OSC 0 from the command's output (a loop item label)
        "␛]2;PWNED-TITLE2␛\\",  # OSC 2 ended by ST
        "␛]52;c;cHduZWQ=␇",  # the clipboard write
        "␛]8;;http://evil.invalid␛\\CLICKME",  # the hyperlink
        "CLEAR-MARK␛[2J␛[H",  # erase screen, cursor home
        "UP-MARK␛[5A",  # cursor up
        "␛PPWNED-DCS",  # DCS
        "BEL-MARK␇␇",
        "C1-MARK <U+009B> <U+009D>",  # UTF-8 encoded C1, made visible
        "TASK [Title ␛]0;PWNED-TITLE-NAME␇",  # a task name templated from the payload
        "rm -rf / --no-preserve-root␍HARMLESS-NAME",  # the \r trick in a task name: both halves shown
        "rm -rf / --no-preserve-root␍HARMLESS",  # ... and in the failure message Ansible prints
        "TASK [Markup [@click=app.quit]CLICK[/] [bold red]MARKUP[/] [/] [link=x]]",  # markup, literally
        "(item=[@click=app.quit]CLICK[/] [bold red]MARKUP[/] [/] [link=x])",
        "BADUTF8-MARK",  # invalid UTF-8 (Ansible shows it as "?"): the line is there
        "(item=HUGE-MARK␛]0;PWNED-HUGE␇xxxxxxxx",  # the 3 MB line, its start
        "FAIL-MARK ␛]52;c;cHduZWQ=␇",  # the failure message
        "pwned-host␛]0;PWNED-TOAST␛\\␛]52;c;cHduZWQ=␛\\[bold red]TOAST-MARKUP[/]",  # a host named by the host
    ):
        if visible not in log:
            problems.append(f"not visible in the log: {visible!r}")

    # the results view: the failure message, the \r trick, the host's own name, escapes visible, markup literal
    results = dialog_text(screens["results"]) + " " + dialog_text(screens["results, hostile stdout"])
    evil_host = "pwned-host␛]0;PWNED-TOAST␛\\␛]52;c;cHduZWQ=␛\\[bold red]TOAST-MARKUP[/]"
    for visible in ("FAIL-MARK ␛]52;c;cHduZWQ=␇␛]0;PWNED-TITLE-FAIL␇ [@click=app.quit]CLICK[/] [bold red]MARKUP[/] "
                    "[/] [link=x] rm -rf / --no-preserve-root",
                    "␛]0;PWNED-TITLE-RES␇ RES-MARK [@click=app.quit]CLICK[/] rm -rf / --no-preserve-root␍HARMLESS",
                    "] Fail [@click=app.quit]CLICK[/] [bold red]MARKUP[/] [/] [link=x]", f"failed {evil_host} Fail"):
        if visible not in results:
            problems.append(f"not visible in the results view: {visible!r}")
    # its host table lists that host once, as shown everywhere else, with its failure (ok, changed, failed: 0 0 1)
    rows = host_rows(screens["results"])
    named = [row for row in rows if "pwned-host" in row]
    if len(named) != 1 or not re.search(re.escape(evil_host) + r"\s+0\s+0\s+1\s", named[0]):
        problems.append("the results view's host table should list the host-named host once, as shown elsewhere "
                        "and with failed=1; its rows:\n" + "\n".join(rows))

    # the toast names that host too, escapes visible, markup literal
    want = re.sub(r"\s+", "", f"hostile: failed. 2 hosts failed (cache01, {evil_host})")
    if want not in toast_text(screens["toast"]):
        problems.append(f"the failure toast does not show {want!r}; it shows {toast_text(screens['toast'])!r}")

    assert not problems, ("hostile host output got through:\n- " + "\n- ".join(problems)
                          + f"\n\nscreens:\n{seen}")
