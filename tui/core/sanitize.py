"""Neutralise untrusted host output before it reaches the operator's terminal.

Ansible output comes from hosts we do not trust: a compromised host can print
escape sequences that retitle the terminal, write the clipboard (OSC 52), plant
hyperlinks (OSC 8), move the cursor or erase the screen, or use ``\\r``, backspace
and bidi overrides to hide what it really printed. Everything here makes such
bytes *visible* instead of dropping them, so an operator sees that something
odd happened and the hidden text stays readable. Only SGR colour sequences
(``ESC [ digits/;/: m``) pass through raw, because Ansible colours its output.

Visible forms:
  * ESC that does not start a kept SGR -> ``␛`` (U+241B); the characters after it
    stay as plain text (harmless without the ESC).
  * other C0 controls -> Control Pictures U+2400+code (BEL -> ``␇``, BS -> ``␈``,
    CR -> ``␍``, NUL -> ``␀``); DEL -> ``␡``.
  * ``\\r`` (or a run of them) right before ``\\n`` or at the end of the text is
    dropped: that is a line ending. Any other ``\\r`` -> ``␍``.
  * C1 controls U+0080-U+009F and the Unicode Bidi_Control characters (U+061C,
    U+200E/F, U+202A-E, U+2066-9) -> ASCII ``<U+XXXX>`` (e.g. ``<U+009B>``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["decode", "sanitize", "strip_sgr", "clip"]

# A kept SGR: ESC [ params m, params only digits ; : (no private-mode ?, no
# intermediates). 64 chars bound what we pass raw to the terminal's parser.
_SGR_BODY = r"\x1b\[[0-9;:]{0,64}m"
_SGR = re.compile(_SGR_BODY)
_SGR_MAX = 2 + 64 + 1

# Every character that needs a look: C0 except \t \n, DEL, C1, bidi controls.
_BAD_CLASS = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
_BAD = re.compile(_BAD_CLASS)
# One pass: group 1 = SGR to keep, group 2 = a run of CRs, else replace.
# The leading lookahead lets the regex engine skip ordinary characters quickly
# (about 3x faster on an 80-char coloured line than the bare alternation).
# CR runs are matched whole and judged in _visible: a lookahead like
# `\r+(?=\n|\Z)` would be quadratic on a long run of CRs (hostile or not).
_SLOW = re.compile(rf"(?={_BAD_CLASS})(?:({_SGR_BODY})|(\r+)|{_BAD_CLASS})")


def _build_table() -> dict[str, str]:
    """Visible stand-in for every character in _BAD_CLASS, built once at import."""
    table = {chr(c): chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
    table["\x7f"] = "\u2421"
    for c in [*range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        table[chr(c)] = f"<U+{c:04X}>"
    return table


_TABLE = _build_table()  # covers exactly _BAD_CLASS (tests check every code point)


def _visible(match: re.Match[str]) -> str:
    kind = match.lastindex
    if kind == 1:
        return match.group()
    if kind == 2:  # CRs ending a line are line endings; others hide text
        end, text = match.end(), match.string
        return "" if end == len(text) or text[end] == "\n" else "\u240d" * (end - match.start())
    return _TABLE[match.group()]


def decode(data: bytes) -> str:
    """Bytes from a host -> str; invalid UTF-8 never raises (use errors='replace').

    A host that prints broken UTF-8 must not crash the reader; bad bytes become
    U+FFFD. Note a lone 0x9B byte (8-bit CSI) is invalid UTF-8, so it ends up
    as U+FFFD here; UTF-8-encoded C1 (``c2 9b``) decodes to U+009B and is made
    visible by sanitize().
    """
    return data.decode("utf-8", errors="replace")


def sanitize(text: str) -> str:
    """The one sanitizer, applied where host text enters the console.

    Keeps printable text, ``\\n``, ``\\t`` and SGR colours; makes every other
    control visible (see the module docstring) so nothing can take over the
    terminal or hide text. Idempotent: sanitize(sanitize(x)) == sanitize(x).
    Lines without any control character are returned as-is after one regex search.
    """
    if _BAD.search(text) is None:
        return text
    # Ansible's usual line: SGR colours and pty \r\n endings, nothing else. Checking that with
    # three passes in C is about twice as fast as the per-match callback of the general case.
    usual = text.replace("\r\n", "\n")
    if _BAD.search(_SGR.sub("", usual)) is None:
        return usual
    return _SLOW.sub(_visible, text)


def strip_sgr(text: str) -> str:
    """sanitize() output without the SGR codes: plain text for search, filters,
    notifications, tables.

    Sanitizes first (a no-op on already-sanitized text) so even raw host text
    passed here by mistake cannot carry a control character through.
    """
    text = sanitize(text)
    if "\x1b" not in text:
        return text
    return _SGR.sub("", text)


def clip(text: str, limit: int = 10_000) -> str:
    """Display-side guard for multi-megabyte lines.

    Keeps the first `limit` characters and appends `` … [N more characters]``
    (N = characters not shown), so one runaway line cannot stall rendering.
    Never cuts inside an SGR sequence: if the cut falls inside ``ESC[...m``,
    cut before the ESC. If the kept part holds any SGR, a reset ``ESC[0m`` is
    added before the marker so the marker is not painted in the line's colour.
    The full line stays in the log on disk; this is for display only.
    """
    limit = max(limit, 0)
    if len(text) <= limit:
        return text
    cut = limit
    esc = text.rfind("\x1b", max(0, limit - _SGR_MAX + 1), limit)
    if esc != -1:
        match = _SGR.match(text, esc)
        if match is not None and match.end() > limit:
            cut = esc
    head = text[:cut]
    reset = "\x1b[0m" if "\x1b" in head else ""
    return f"{head}{reset} … [{len(text) - cut} more characters]"


def remember_real_names(real: dict[str, str], message: dict[str, Any]) -> None:
    """Before sanitizing, note each host name the sanitizer will change, so a retry can target it."""
    data = message.get("event_data") or {}
    names = [data.get("host")]
    for key in ("failures", "dark", "ok", "changed", "processed"):
        if isinstance(data.get(key), dict):
            names.extend(data[key])
    for name in names:
        if isinstance(name, str):
            clean = sanitize(name)
            if clean != name:
                real[clean] = name


def sanitized(value: Any) -> Any:
    """Every string in an event, cleaned by the one sanitizer (only SGR colours survive)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        # keys too: playbook_on_stats is keyed by host name, and a host can name itself
        return {sanitized(key) if isinstance(key, str) else key: sanitized(item) for key, item in value.items()}
    if isinstance(value, list):
        return [sanitized(item) for item in value]
    return value
