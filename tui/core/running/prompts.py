"""Watching a playbook's prompts and typing answers into its pty (for supervisor.py).

A playbook under ansible-runner runs in a pty, where `vars_prompt` and an untimed `pause`
wait forever for input; the supervisor tells the console when that happens (a "prompt"
message) and types the answer it sends back (an "input" command). Answers are never logged.
"""

from __future__ import annotations

import os
import termios
import threading
import time
from typing import Any

from tui.core.sanitize import strip_sgr

PAUSE_ACTIONS = frozenset({"pause", "ansible.builtin.pause", "ansible.legacy.pause"})
HIDDEN = " (output is hidden)"  # what Ansible appends to a pause prompt with `echo: false`
READY_WAIT = 10.0  # how long an answer waits for the prompt to be really reading
SETTLE = 0.1  # after pause has set the tty raw, before typing: it flushes pending input right after


class PromptWatch:
    """Tells when ansible-playbook waits for input, and types an answer into its pty.

    A pty makes `vars_prompt` and `pause` (without seconds/minutes) wait forever. Both are
    seen in events: `playbook_on_vars_prompt` comes just before Ansible asks; a waiting pause
    shows as a `verbose` event "[task]\nprompt:" in a pause task that did not first say
    "Pausing for N seconds" (a timed pause prints the same prompt, but ends by itself).
    Typing too early loses the answer (pause flushes the tty's input after going raw, getpass
    flushes before writing its prompt), so an answer waits until the prompt is really reading.
    """

    def __init__(self, emit: Any):
        self.emit = emit
        self.lock = threading.Lock()
        self.fd: int | None = None  # the pty master of ansible-playbook, once it runs
        self.output = ""  # raw pty output since the open prompt began (a short tail)
        self.prompt: dict[str, Any] | None = None
        self.timed_pause = False
        self.listening = False  # keep raw output only once the playbook has prompted: most never do

    def attach(self, child: Any, fd: int) -> None:
        """Called with pexpect's spawn as ansible-runner starts ansible-playbook: see its raw output."""
        if self.fd is not None:
            return
        self.fd = fd
        original = child._log

        def log(data: Any, direction: str) -> None:
            original(data, direction)  # ansible-runner parses events here, which may open a prompt
            if self.listening and direction == "read" and isinstance(data, str):
                with self.lock:
                    self.output = (self.output + data)[-4096:]

        child._log = log

    def on_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        data = event.get("event_data") or {}
        if name == "playbook_on_task_start":
            self.timed_pause = False
        elif name == "playbook_on_vars_prompt":
            varname = str(data.get("varname") or "")
            self.begin(
                "vars_prompt",
                str(data.get("prompt") or f"input for {varname}"),
                varname or None,
                bool(data.get("private", True)),
                confirm=bool(data.get("confirm")),
            )
        elif name == "verbose" and data.get("task_action") in PAUSE_ACTIONS:
            text = strip_sgr(event.get("stdout") or "").replace("\r\n", "\n").replace("\r", "")
            if text.lstrip().startswith("Pausing for "):
                self.timed_pause = True
            elif (
                not self.timed_pause and text.lstrip().startswith("[") and "\n" in text and text.rstrip().endswith(":")
            ):
                last = text.rstrip()[:-1].rsplit("\n", 1)[-1]
                private = last.endswith(HIDDEN)
                self.begin("pause", last[: -len(HIDDEN)] if private else last, None, private)

    def begin(self, kind: str, text: str, varname: str | None, private: bool, confirm: bool = False) -> None:
        prompt = {"kind": kind, "text": text, "varname": varname, "private": private}
        with self.lock:
            self.prompt = {**prompt, "confirm": confirm}  # `confirm: yes` asks twice; one answer does for both
            self.output = ""
            self.listening = True
        self.emit({"t": "prompt", **prompt})

    def answer(self, text: str) -> None:
        """Type `text` and Enter at the open prompt (in a thread: it may wait for the prompt to read)."""
        with self.lock:
            prompt, self.prompt = self.prompt, None
        if prompt is not None and self.fd is not None:
            threading.Thread(target=self._type, args=(prompt, text), name="answer", daemon=True).start()

    def _type(self, prompt: dict[str, Any], text: str) -> None:
        for asked in [prompt["text"]] + ([f"confirm {prompt['text']}"] if prompt.get("confirm") else []):
            deadline = time.monotonic() + READY_WAIT
            while not self._reading(prompt, asked) and time.monotonic() < deadline:
                time.sleep(0.02)
            if prompt["kind"] == "pause":
                time.sleep(SETTLE)
            with self.lock:
                self.output = ""
            try:
                os.write(self.fd, (text + "\r").encode("utf-8", "replace"))  # type: ignore[arg-type]
            except OSError:
                return  # ansible-playbook is gone: nothing to answer

    def _reading(self, prompt: dict[str, Any], asked: str) -> bool:
        if prompt["kind"] == "vars_prompt":  # input()/getpass write the prompt once they read
            with self.lock:  # the tty turned a multi-line prompt's newlines into CRLF
                return asked.replace("\r\n", "\n") in self.output.replace("\r\n", "\n")
        if self.fd is None:
            return True  # no pty yet: nothing to wait for
        try:  # on Linux the master's termios are the slave's: pause sets it raw, and echo back on if shown
            lflag = termios.tcgetattr(self.fd)[3]
        except (OSError, termios.error):
            return True
        return not lflag & termios.ICANON and (prompt["private"] or bool(lflag & termios.ECHO))
