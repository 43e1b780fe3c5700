"""Hostile text against the real console: nothing from a host, an inventory or a job file reaches
the terminal raw, wherever the console shows it.

One console session (`tests/tmux_console.Terminal`, every byte it writes recorded with `tmux
pipe-pane`) runs three jobs from one job file:

- `hostile`: `tests/playbooks/hostile.yml`, a host printing OSC 0/2 titles, OSC 52 clipboard
  writes, OSC 8 links, CSI erase/cursor moves, DCS, C1, BEL, a `\\r` hiding a command, invalid
  UTF-8, a 3 MB line, Rich/Textual markup, hostile task names, failure messages and host names;
- a job whose NAME carries OSC 0, OSC 52, C1, BEL and markup, failing on the hosts of a temp
  inventory whose HOST and GROUP names (and a host variable) carry the same;
- a job with another hostile name, still running, for the timeout dialog.

The session visits every place those names are shown: the inventory tree, the host-vars screen
(`x`), the grid, the log title, the results view (`v`), the timeout dialog (`t`), the failure
toasts, the footer (a key that does not apply), the command palette (Ctrl+P), the help (`?`) and
the whole log; then quits. The bytes written while each place was on screen are kept apart, so a
leak names its place. The tests check the raw bytes (no payload after an OSC/DCS/APC introducer, no
bare BEL, no C1, only valid UTF-8), tmux itself (pane title and paste buffers untouched), the screens
(hidden text made visible: `␛`, `␇`, `<U+009B>`; markup shown literally) and a clean exit 0.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import INVENTORY, TEST_PLAYBOOKS
from tests.tmux_console import Terminal, control_strings, needs_tmux
from tui.core.sanitize import strip_sgr

pytestmark = needs_tmux

WIDTH, HEIGHT = 120, 40
HOSTILE_JOB = "hostile"

# YAML double-quoted escapes: \e = ESC, \a = BEL, \u009b / \u009d = C1 CSI / OSC. Ansible keeps every one
# of these in group names (it warns), and in host names as long as there is no `[` (a host range).
GROUP_A = r"[bold]GRP-MARK[/]\e]52;c;R1JQ\a\e]0;PWNED-GRP\a"
GROUP_B = r"[@click=app.quit]GCLICK-MARK[/]\u009b2J\u009d0;PWNED-GRP-C1\a"
HOST_A = r"hA\e]0;PWNED-HOST\e\\\e]52;c;SE9TVA==\a\u009b2J"
HOST_B = r"hB\aBEL-HOST-MARK\e]8;;http://evil.invalid\e\\"
HOST_VAR = r"\e]52;c;VkFS\a[bold]VAR-MARK[/] [@click=app.quit]VCLICK-MARK[/]\u009b"
JOB_FAIL = r"[bold]JOB-MARK[/]\e]0;PWNED-JOB\a\e]52;c;Sk9C\a[@click=app.quit]JCLICK-MARK[/]\u009b"
JOB_SLOW = r"[/]SLOW-MARK\e]0;PWNED-SLOW\a\u009b2J\a"


def unescape(yaml_escaped: str) -> str:
    """The string YAML reads from `"..."` (the names as Ansible and the console get them)."""
    return yaml.safe_load(f'"{yaml_escaped}"')


def visible(yaml_escaped: str) -> str:
    """How the console must show a name: the project's one sanitizer, controls made visible."""
    return strip_sgr(unescape(yaml_escaped))


# Each payload exactly as it would reach a terminal if passed through raw.
RAW_PAYLOADS = {
    "OSC 0 title": b"\x1b]0;PWNED",
    "OSC 2 title": b"\x1b]2;PWNED",
    "OSC 52 clipboard": b"\x1b]52;c;",
    "OSC 8 hyperlink": b"\x1b]8;;http://evil",
    "DCS": b"\x1bPPWNED-DCS",
    "CSI 2J after the host's marker": b"CLEAR-MARK\x1b[2J",
    "CSI cursor up after the host's marker": b"UP-MARK\x1b[5A",
    "BEL after the host's title": b"PWNED-TITLE\x07",
    "BEL after the host's marker": b"BEL-MARK\x07",
    "BEL in a host name": b"hB\x07",
    "BEL in a job name": b"SLOW\x07",
    "a CR hiding the host's command": b"--no-preserve-root\rHARMLESS",
    "UTF-8 encoded C1 CSI (U+009B)": b"\xc2\x9b",
    "UTF-8 encoded C1 OSC (U+009D)": b"\xc2\x9d",
}
# Words only the payloads contain: none may appear inside any control string the console sends.
MARKERS = (b"PWNED", b"evil.invalid", b"cHduZWQ", b"-MARK", b"CLICKME", b"R1JQ", b"SE9TVA", b"VkFS", b"Sk9C")
# What the OSC 52 payloads decode to: none may land in a tmux paste buffer.
CLIPBOARD = ("pwned", "GRP", "HOST", "VAR", "JOB")


@dataclass
class Session:
    """What one walk through the console saw and sent."""

    screens: dict[str, str] = field(default_factory=dict)  # place -> screen text (capture-pane)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # place -> raw byte range while shown
    problems: dict[str, str] = field(default_factory=dict)  # place -> why the walk could not see it
    titles: dict[str, str] = field(default_factory=dict)
    buffers: str = ""
    raw: bytes = b""
    end: str = ""


def inventory_yaml() -> str:
    return f"""\
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  children:
    "{GROUP_A}":
      hosts:
        "{HOST_A}":
          evil_var: "{HOST_VAR}"
    "{GROUP_B}":
      hosts:
        "{HOST_B}": {{}}
"""


def write_inputs(directory: Path) -> list[str]:
    """The console's arguments: the job file, and the hostile inventory for its inventory pane."""
    inventory = directory / "hostile-inventory.yml"
    inventory.write_text(inventory_yaml(), encoding="utf-8")
    fail = directory / "fail.yml"
    fail.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail on every host\n      ansible.builtin.command: 'false'\n",
        encoding="utf-8",
    )
    slow = directory / "slow.yml"
    slow.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: Wait\n      ansible.builtin.command: sleep 300\n",
        encoding="utf-8",
    )
    jobfile = directory / "jobs.yml"
    jobfile.write_text(
        f"""\
inventory: {inventory}
jobs:
  - name: {HOSTILE_JOB}
    playbook: {TEST_PLAYBOOKS / "hostile.yml"}
    inventory: {INVENTORY}
    limit: "~^(cache01|pwned-host.*)$"
  - name: "{JOB_FAIL}"
    playbook: {fail}
  - name: "{JOB_SLOW}"
    playbook: {slow}
""",
        encoding="utf-8",
    )
    return [str(jobfile), "-i", str(inventory)]


# -- reading the screen ---------------------------------------------------------


def flat(text: str) -> str:
    """Screen text without box edges, scrollbars and line breaks, so wrapping does not matter."""
    return re.sub(r"[\s█▌▐▎▊▁▂▃▄▅▆▇▀]+", "", text)


def shows(screen: str, name: str, at_least: int = 12) -> bool:
    """The screen shows the visible form of `name`, or (where a column clips it) its first `at_least`
    characters: markup would have lost its brackets, a raw control its visible stand-in."""
    want = flat(name)
    return flat(screen).find(want[:at_least]) != -1


TITLE = re.compile(r"▎ .* · (queued|running|waiting|successful|failed|timeout|canceled|error)( · |…|$)")


def log_title_line(screen: str) -> str:
    """The log's title bar: ` NAME · STATUS · following · log PATH` (a long name cuts the end off)."""
    return next((line for line in screen.splitlines() if TITLE.search(line)), "")


def log_lines(screen: str) -> list[str]:
    """The log pane's lines (below its title bar, above the footer), without the scrollbar."""
    lines = screen.splitlines()
    title = next((i for i, line in enumerate(lines) if TITLE.search(line)), None)
    if title is None:
        return []
    return [line[line.find("▎") + 1 :].rstrip().rstrip("▁▂▃▄▅▆▇█").rstrip() for line in lines[title + 1 : -1]]


def toast_text(screen: str) -> str:
    """The text of the toasts (right of their `▌` edge), without spaces. They end 2 columns short of
    the right edge, where the log's last column and its scrollbar show: those are cut off."""
    parts = [line[line.rindex("▌") + 1 : WIDTH - 2] for line in screen.splitlines() if "▌" in line]
    return flat("".join(parts))


def dialog_text(screen: str) -> str:
    """The text inside a dialog (between its `█` edges), wrapped lines joined by one space."""
    parts = [line[line.index("█") + 1 : line.rindex("█")] for line in screen.splitlines() if line.count("█") >= 2]
    return re.sub(r"\s+", " ", " ".join(parts))


# -- the walk -------------------------------------------------------------------


class Walk:
    """Visits the places one by one; a place that cannot be reached is noted, and the walk goes on."""

    def __init__(self, terminal: Terminal, session: Session):
        self.t = terminal
        self.s = session

    def escape(self) -> None:
        """Esc alone: a key sent right after it would arrive as Alt+key."""
        self.t.press("Escape")
        time.sleep(0.4)

    def place(self, name: str, action) -> None:
        start = len(self.t.raw())
        try:
            screen = action()
            if screen is not None:
                self.s.screens[name] = screen
        except AssertionError as exc:
            self.s.problems[name] = str(exc)[:3000]
            self.escape()
        self.s.spans[name] = (start, len(self.t.raw()))
        self.s.titles[name] = self.t.pane_title()

    def seen(self, place: str, predicate, what: str, timeout: float) -> str:
        """The screen once `predicate` holds and, if within 5 s more, once it shows every name SHOWN
        expects of `place` (a capture can catch a frame half drawn; a name never shown is left to
        the test that checks it)."""
        screen = self.t.wait_for(predicate, what, timeout=timeout)
        try:
            return self.t.wait_for(lambda s_: predicate(s_) and all_shown(place, s_), f"{place}: every name", timeout=5)
        except AssertionError:
            return screen

    def grid_then(self, job_prefix: str) -> None:
        """Focus the grid and put its cursor on the job whose visible name starts with `job_prefix`."""
        self.escape()
        self.t.press("Home")
        for _ in range(4):
            if flat(job_prefix)[:10] in flat(log_title_line(self.t.settled())):
                return
            self.t.press("Down")
        raise AssertionError(f"could not select the job {job_prefix!r} in the grid:\n{self.t.screen()}")


def walk(t: Terminal) -> Session:
    s = Session()
    w = Walk(t, s)
    fail_name, slow_name = visible(JOB_FAIL), visible(JOB_SLOW)

    place = "toast of the hostile-named job"
    w.place(
        place,
        lambda: w.seen(
            place,
            lambda s_: shows(toast_text(s_), fail_name, 20),
            "the hostile-named job to fail, and its toast",
            timeout=90,
        ),
    )
    # the hostile host's job fails a few seconds later; its toast is gone 8 s after: catch it now
    w.place(
        "toast of the hostile host",
        lambda: t.wait_for(lambda s_: "TOAST-MARKUP" in toast_text(s_), "the hostile job's toast", timeout=150),
    )
    w.place(
        "grid",
        lambda: w.seen(
            "grid", lambda s_: "SLOW-MARK" in s_ and "JOB-MARK" in s_, "both hostile job names in the grid", timeout=20
        ),
    )
    w.place(
        "inventory tree",
        lambda: w.seen(
            "inventory tree",
            lambda s_: "GRP-MARK" in s_ and "hB" in s_,
            "the hostile groups and hosts in the tree",
            timeout=30,
        ),
    )

    def host_vars() -> str:
        t.press("i")  # the tree, cursor on its root: all, then the first group, then its host
        time.sleep(0.3)
        t.press("Down", "Down")
        t.settled()
        t.press("x")
        screen = w.seen("host vars", lambda s_: "VAR-MARK" in s_, "the host-vars screen of the hostile host", 15)
        t.press("Escape")
        t.settled(before=screen)
        return screen

    w.place("host vars", host_vars)

    def launch_dialogs() -> str:
        """Space selects the hostile host (still under the tree's cursor): it becomes the limit that
        the ad-hoc and new-job dialogs offer, in their input fields."""
        t.press("space")
        time.sleep(0.3)
        screens = []
        for key, title in (("a", "Ad-hoc command"), ("n", "extra vars: k=v")):  # (the footer says "New job")
            t.press(key)
            screens.append(w.seen("launch dialogs", lambda s_: title in s_, f"the {title} dialog", timeout=10))
            w.escape()
            t.wait_for(lambda s_: title not in s_, f"the {title} dialog to close", timeout=10)
        t.press("space")  # unselected again
        return "\n".join(screens)

    w.place("launch dialogs", launch_dialogs)

    def log_title() -> str:
        w.grid_then(fail_name)
        return w.seen("log title", lambda s_: "JOB-MARK" in log_title_line(s_), "the job's log title", 10)

    w.place("log title", log_title)

    def results() -> str:
        t.press("v")
        screen = w.seen(
            "results view",
            lambda s_: "outcome" in s_ and "Fail on every host" in s_,
            "the results view of the hostile-named job",
            timeout=15,
        )
        t.press("Escape")
        t.wait_for(lambda s_: "outcome" not in s_, "the results view to close", timeout=10, hold=0.3)
        return screen

    w.place("results view", results)

    def timeout_dialog() -> str:
        w.grid_then(slow_name)
        t.press("t")
        screen = w.seen("timeout dialog", lambda s_: "New timeout for" in s_, "the timeout dialog", timeout=10)
        t.press("Escape")
        t.wait_for(lambda s_: "New timeout for" not in s_, "the timeout dialog to close", timeout=10, hold=0.3)
        return screen

    w.place("timeout dialog", timeout_dialog)

    def footer() -> str:
        before = t.settled()
        t.press("f")  # retry failed: does not apply to a running job, and says why
        return t.settled(before=before, timeout=3)

    w.place("footer, and a key that does not apply", footer)

    def palette() -> str:
        t.press("C-p")
        t.wait_for(lambda s_: "Search for commands" in s_ or "Timeout" in s_, "the command palette", timeout=10)
        t.type("time")
        screen = t.settled(timeout=3)
        t.press("Escape")
        t.settled(before=screen)
        return screen

    w.place("command palette", palette)

    def help_screen() -> str:
        t.press("?")
        screen = t.wait_for(lambda s_: "cancel-job" in s_, "the help", timeout=10)
        t.press("Escape")
        t.settled(before=screen)
        return screen

    w.place("help", help_screen)

    hostile_walk(t, w)

    def quit_console() -> str:
        w.escape()
        t.press("q")
        screen = t.wait_for(lambda s_: "EXIT=" in s_ or "y: stop them" in s_, "the console to quit or ask", timeout=20)
        if "EXIT=" not in screen:
            t.press("y")  # stop the slow job cleanly, then quit
        return t.wait_for(lambda s_: "EXIT=" in s_, "the console to exit", timeout=60)

    w.place("quit", quit_console)
    s.end = s.screens.get("quit", "")
    s.titles["after exit"] = t.pane_title()
    s.buffers = t.buffers()
    s.raw = t.stop_recording()
    with open(t.raw_file.with_suffix(".screens"), "w", encoding="utf-8") as dump:  # for a failure's post-mortem
        for name, text in {**s.screens, **{f"PROBLEM {k}": v for k, v in s.problems.items()}}.items():
            dump.write(f"--- {name} ---\n{text}\n")
    return s


def hostile_walk(t: Terminal, w: Walk) -> None:
    """The host `hostile`: its results, then its whole log, page by page."""

    def results() -> str:
        w.grid_then(HOSTILE_JOB)
        t.wait_for(lambda s_: "job failed" not in s_, "the toasts to go", timeout=30, hold=1.0)
        t.press("v")
        screen = t.wait_for(
            lambda s_: "outcome" in s_ and "FAIL-MARK" in s_, "the results view and the failure message", timeout=20
        )
        t.press("Escape")
        t.wait_for(lambda s_: "outcome" not in s_, "the results view to close", timeout=20, hold=0.5)
        return screen

    w.place("results of the hostile host", results)

    def log() -> str:
        t.press("Enter")
        t.wait_for(lambda s_: "G Follow" in s_.splitlines()[-1], "the log to have the focus", timeout=20)
        # one screen line per log line (the 3 MB line would otherwise fill pages of identical x's)
        t.press("w")
        if "do not wrap" not in t.wait_for(
            lambda s_: "lines do not wrap" in s_ or "lines wrap" in s_, "w to say how lines wrap", timeout=10
        ):
            t.press("w")
            t.wait_for(lambda s_: "lines do not wrap" in s_, "w to stop wrapping", timeout=10)
        t.wait_for(lambda s_: "wrap" not in toast_text(s_), "its toast to go", timeout=20, hold=0.5)
        end = log_lines(t.settled())
        t.press("g")
        t.wait_for(  # the top: its first line, or the notice of what is only on disk
            lambda s_: "── attempt 1" in s_ or "earlier lines are only on disk" in s_,
            "g to reach the top of the log",
            timeout=20,
        )
        pages = [screen := t.settled()]
        for _ in range(40):
            if log_lines(screen) == end:
                break
            t.press("PageDown")
            try:  # one page at a time: wait for this key before the next, however slow the console is
                t.wait_for(lambda s_: log_lines(s_) != log_lines(screen), "PageDown to scroll", timeout=20)
            except AssertionError:
                break  # nothing more to scroll
            pages.append(screen := t.settled())
        t.press("G")
        return "\n".join(pages)

    w.place("log of the hostile host", log)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("hostile")
    terminal = Terminal(
        directory, write_inputs(directory), size=(WIDTH, HEIGHT), term="tmux-256color", record=True, name="hostile"
    )
    terminal.start()
    try:
        yield walk(terminal)
    finally:
        terminal.close()


# -- the checks -----------------------------------------------------------------


def raw_problems(raw: bytes) -> list[str]:
    """Everything in a byte stream that only a hostile payload could have put there."""
    problems: list[str] = []

    def context(offset: int) -> bytes:
        return raw[max(0, offset - 80) : offset + 80]

    for name, payload in RAW_PAYLOADS.items():
        if payload in raw:
            problems.append(f"raw {name} ({raw.count(payload)}x), e.g. {context(raw.index(payload))!r}")
    carrying = [(offset, body) for offset, body in control_strings(raw) if any(m in body for m in MARKERS)]
    if carrying:
        offset, body = carrying[0]
        problems.append(
            f"{len(carrying)} OSC/DCS/APC strings carry a payload, first at byte {offset}: "
            f"{body[:120]!r} in {context(offset)!r}"
        )
    try:
        text = raw.decode("utf-8")  # a raw 0x9b (8-bit CSI) or any invalid byte fails here
    except UnicodeDecodeError as exc:
        problems.append(f"invalid UTF-8 (raw 8-bit controls?) at byte {exc.start}: {context(exc.start)!r}")
    else:
        c1 = sorted({f"U+{ord(c):04X}" for c in re.findall(r"[\x80-\x9f]", text)})
        if c1:
            problems.append(f"C1 control characters reached the terminal: {c1}")
    for offset in (m.start() for m in re.finditer(rb"\x07", raw)):  # a BEL only ever ends the console's own OSC
        before = raw[max(0, offset - 4096) : offset]
        if before.rfind(b"\x1b]") <= max(before.rfind(b"\x07"), before.rfind(b"\x1b\\")):
            problems.append(f"a bare BEL at byte {offset}: {context(offset)!r}")
            break
    return problems


PLACES = (
    "toast of the hostile-named job",
    "toast of the hostile host",
    "grid",
    "inventory tree",
    "host vars",
    "launch dialogs",
    "log title",
    "results view",
    "timeout dialog",
    "footer, and a key that does not apply",
    "command palette",
    "help",
    "results of the hostile host",
    "log of the hostile host",
    "quit",
)


@pytest.mark.parametrize("place", PLACES)
def test_no_payload_reaches_the_terminal_raw(session: Session, place: str):
    """The bytes written while `place` was on screen carry no payload; the walk reached it."""
    assert place not in session.problems, f"the walk could not see {place}: {session.problems[place]}"
    start, end = session.spans[place]
    problems = raw_problems(session.raw[start:end])
    assert not problems, f"{place}: hostile text got through:\n- " + "\n- ".join(problems)


def test_the_whole_session_is_clean_and_exits_0(session: Session):
    assert len(session.raw) > 10_000, f"recorded only {len(session.raw)} bytes: is pipe-pane working?"
    problems = raw_problems(session.raw)
    for when, title in session.titles.items():
        if "PWNED" in title:
            problems.append(f"the terminal was retitled ({when}): pane_title = {title!r}")
    if any(word in session.buffers for word in CLIPBOARD):
        problems.append(f"the clipboard was written (tmux paste buffers: {session.buffers!r})")
    assert not problems, "hostile text got through:\n- " + "\n- ".join(problems)
    assert "EXIT=0" in session.end, f"the console did not exit with status 0:\n{session.end}"
    assert "Traceback" not in session.end and "MarkupError" not in session.end, session.end


# what each place must show, made visible (markup literally, controls as ␛ ␇ <U+009B>); the number is how
# many characters fit where a column or pane clips the name
SHOWN = {
    "grid": [(JOB_FAIL, 15), (JOB_SLOW, 15)],
    "inventory tree": [(GROUP_A, 17), (GROUP_B, 17), (HOST_A, 12), (HOST_B, 12)],
    "host vars": [(HOST_A, 30)],
    "log title": [(JOB_FAIL, 80)],
    "results view": [(JOB_FAIL, 60), (HOST_A, 30), (HOST_B, 30)],
    "timeout dialog": [(JOB_SLOW, 40)],
    "footer, and a key that does not apply": [(JOB_SLOW, 30)],
    "launch dialogs": [(HOST_A, 30)],
    "toast of the hostile-named job": [(JOB_FAIL, 80), (HOST_A, 30)],
}


def in_toast(place: str) -> bool:
    return place.startswith("toast") or "does not apply" in place  # that one says why in a toast


def all_shown(place: str, screen: str) -> bool:
    if in_toast(place):
        screen = toast_text(screen)  # the toast covers the log's right side: read it alone
    return all(shows(screen, visible(name), length) for name, length in SHOWN.get(place, ()))


@pytest.mark.parametrize("place", sorted(SHOWN))
def test_names_are_shown_made_visible(session: Session, place: str):
    assert place in session.screens, f"the walk could not see {place}: {session.problems.get(place)}"
    screen = session.screens[place]
    if in_toast(place):
        screen = toast_text(screen)
    for name, length in SHOWN[place]:
        assert shows(screen, visible(name), length), f"{place} does not show {visible(name)[:length]!r}\n{screen}"
    if place == "host vars":  # a value may be shown made visible or YAML-escaped (\e, \a): both are safe
        for literal in ("[bold]VAR-MARK[/]", "[@click=app.quit]VCLICK-MARK[/]"):
            assert literal in screen, f"host vars do not show the markup {literal!r} literally:\n{screen}"


def test_the_hostile_host_is_shown_made_visible(session: Session):
    """The host's own output: in the log every hidden sequence is shown, in the results its failure."""
    log = session.screens.get("log of the hostile host", "")
    problems = [
        f"not visible in the log: {want!r}"
        for want in (
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
            "TASK [Markup [@click=app.quit]CLICK[/] [bold red]MARKUP[/] [/] [link=x]]",  # markup, literally
            "BADUTF8-MARK",  # invalid UTF-8 (Ansible shows it as "?"): the line is there
            "(item=HUGE-MARK␛]0;PWNED-HUGE␇xxxxxxxx",  # the 3 MB line, its start
            "FAIL-MARK ␛]52;c;cHduZWQ=␇",  # the failure message
            "pwned-host␛]0;PWNED-TOAST␛\\␛]52;c;cHduZWQ=␛\\[bold red]TOAST-MARKUP[/]",  # a host named by the host
        )
        if flat(want) not in flat(log)
    ]  # the log wraps long lines: compare without the breaks
    results = dialog_text(session.screens.get("results of the hostile host", ""))
    for want in (
        "FAIL-MARK ␛]52;c;cHduZWQ=␇␛]0;PWNED-TITLE-FAIL␇ [@click=app.quit]CLICK[/] [bold red]MARKUP[/] [/] [link=x]",
        "pwned-host␛]0;PWNED-TOAST␛\\␛]52;c;cHduZW",
    ):
        if want not in results:
            problems.append(f"not visible in the results view: {want!r}")
    evil_host = "pwned-host␛]0;PWNED-TOAST␛\\␛]52;c;cHduZWQ=␛\\[bold red]TOAST-MARKUP[/]"
    if flat(f"hostile: failed. 2 hosts failed (cache01, {evil_host})") not in toast_text(
        session.screens.get("toast of the hostile host", "")
    ):
        problems.append("the hostile host's failure toast does not name both hosts, made visible")
    assert not problems, (
        "\n".join(problems)
        + "\n\n"
        + "\n".join(f"--- {k} ---\n{v}" for k, v in session.screens.items() if "hostile host" in k)
    )
