"""Hostile host output must never reach the terminal raw, and must stay visible."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.color import Color
from rich.text import Text

from tui.core.sanitize import clip, decode, sanitize, strip_sgr

SGR = re.compile(r"\x1b\[[0-9;:]{0,64}m")
C1 = {chr(c) for c in range(0x80, 0xA0)}
BIDI = {chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def unsafe_chars(out: str) -> list[str]:
    """Characters that could drive a terminal, outside the SGR sequences we keep."""
    rest = SGR.sub("", out)
    return [ch for ch in rest if (ord(ch) < 0x20 and ch not in "\t\n") or ch == "\x7f" or ch in C1 or ch in BIDI]


def assert_safe(out: str) -> None:
    assert unsafe_chars(out) == [], repr(out)


# --- hostile sequences: gone raw, still visible --------------------------------


@pytest.mark.parametrize(
    "raw, visible",
    [
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),  # OSC 0 title, BEL-terminated
        ("\x1b]2;x\x1b\\", "␛]2;x␛\\"),  # OSC 2 title, ST-terminated
        (
            "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
            "␛]8;;http://evil.example/␛\\click␛]8;;␛\\",
        ),  # OSC 8 hyperlink
        ("\x1b]52;c;cm0gLXJmIC8K\x07", "␛]52;c;cm0gLXJmIC8K␇"),  # OSC 52 clipboard write
        ("\x1b[2J", "␛[2J"),  # erase screen
        ("\x1b[H", "␛[H"),  # cursor home
        ("ok\x1b[1Ahidden", "ok␛[1Ahidden"),  # cursor up
        ("\x1b[2Kgone", "␛[2Kgone"),  # erase line
        ("\x1bPq#0;2;0;0;0\x1b\\", "␛Pq#0;2;0;0;0␛\\"),  # DCS (sixel)
        ("\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\", "␛_apc␛\\␛^pm␛\\␛Xsos␛\\"),
        ("\x1bc", "␛c"),  # full reset
        ("\x9b2J", "<U+009B>2J"),  # 8-bit CSI
        ("\x9d0;t\x9c", "<U+009D>0;t<U+009C>"),  # 8-bit OSC / ST
        ("a\x00b", "a␀b"),  # NUL
        ("\x7f", "␡"),
    ],
)
def test_hostile_sequences_are_made_visible(raw: str, visible: str) -> None:
    out = sanitize(raw)
    assert out == visible
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert_safe(out)


def test_osc_title_text_stays_readable() -> None:
    out = sanitize("before\x1b]0;pwned\x07after")
    assert "pwned" in out and out.startswith("before") and out.endswith("after")


def test_carriage_return_overwrite_keeps_hidden_command_visible() -> None:
    out = sanitize("rm -rf /\rok")
    assert "\r" not in out
    assert "rm -rf /" in out and "ok" in out
    assert out == "rm -rf /␍ok"


def test_line_ending_carriage_returns_are_dropped() -> None:
    assert sanitize("a\r\nb\r\n") == "a\nb\n"
    assert sanitize("progress\r") == "progress"
    assert sanitize("a\r\r\nb") == "a\nb"
    assert sanitize("\r") == ""
    assert sanitize("a\r\r") == "a"
    assert sanitize("a\r\rb\r") == "a␍␍b"


def test_long_carriage_return_run_is_linear_time() -> None:
    # A backtracking `\r+(?=\n|$)` pattern takes minutes on this; it must take milliseconds.
    started = time.perf_counter()
    out = sanitize("\r" * 200_000 + "x")
    assert out == "␍" * 200_000 + "x"
    assert time.perf_counter() - started < 2.0


def test_backspace_trick_stays_visible() -> None:
    out = sanitize("safe\x08\x08\x08\x08evil")
    assert "\x08" not in out
    assert out == "safe␈␈␈␈evil"


def test_bidi_override_is_made_visible() -> None:
    out = sanitize("invoice\u202excod.exe")
    assert "\u202e" not in out
    assert out == "invoice<U+202E>xcod.exe"
    assert sanitize("\u2066x\u2069\u200e\u200f") == "<U+2066>x<U+2069><U+200E><U+200F>"


def test_plain_text_tabs_newlines_and_unicode_unchanged() -> None:
    for text in ["", 'ok: [web01] => {"changed": false}', "a\tb\nc", "héllo ✓ 日本 🚀", "␛ literal"]:
        assert sanitize(text) == text


# --- SGR colours are kept ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\x1b[0;32mok\x1b[0m",
        "\x1b[38;5;196mred\x1b[0m",
        "\x1b[38:2:1:2:3mtruecolour\x1b[m",
        "\x1b[1;31mfatal: [db01]: FAILED!\x1b[0m\n",
    ],
)
def test_sgr_colours_are_kept_exactly(text: str) -> None:
    assert sanitize(text) == text


def test_sgr_with_junk_params_is_not_kept_raw() -> None:
    out = sanitize("\x1b[31;?mx")
    assert out == "␛[31;?mx"
    assert "\x1b" not in out


def test_over_long_sgr_is_not_kept_raw() -> None:
    assert sanitize("\x1b[" + "1" * 64 + "m") == "\x1b[" + "1" * 64 + "m"
    assert "\x1b" not in sanitize("\x1b[" + "1" * 65 + "m")


def test_every_code_point_is_handled() -> None:
    # The replacement table must cover every character the sanitizer looks at.
    for code in range(0x30000):
        out = sanitize(chr(code))
        assert_safe(out)


# --- strip_sgr ------------------------------------------------------------------


def test_strip_sgr_gives_plain_text() -> None:
    assert strip_sgr("\x1b[0;33mchanged: [web01]\x1b[0m") == "changed: [web01]"
    assert strip_sgr("plain") == "plain"
    out = strip_sgr("\x1b[32mok\x1b]0;pwned\x07")
    assert out == "ok␛]0;pwned␇"
    assert "\x1b" not in out


# --- decode ---------------------------------------------------------------------


def test_decode_never_raises_on_invalid_utf8() -> None:
    assert decode(b"ok \xff\xfe bad") == "ok \ufffd\ufffd bad"
    assert decode(b"\x9b2J") == "\ufffd2J"  # lone 8-bit CSI is invalid UTF-8
    assert decode("héllo".encode()) == "héllo"
    assert sanitize(decode(b"\xc2\x9b2J")) == "<U+009B>2J"  # UTF-8-encoded C1


# --- clip -----------------------------------------------------------------------


def test_clip_bounds_a_huge_line() -> None:
    line = "x" * 5_000_000
    out = clip(line)
    assert len(out) < 10_100
    assert out.startswith("x" * 10_000)
    assert out.endswith(" … [4990000 more characters]")


def test_clip_leaves_short_lines_alone() -> None:
    assert clip("short") == "short"
    assert clip("x" * 10, limit=10) == "x" * 10


def test_clip_never_splits_an_sgr() -> None:
    sgr = "\x1b[38;5;196m"
    text = "a" * 95 + sgr + "b" * 1000
    for limit in range(90, 120):
        out = clip(text, limit=limit)
        head = out[: out.index(" … [")]
        # every ESC left must start a complete SGR
        assert SGR.sub("", head).count("\x1b") == 0, (limit, repr(head))
        if 95 < limit < 95 + len(sgr):
            assert head == "a" * 95
            assert out.endswith(f" … [{len(text) - 95} more characters]")
    out = clip(text, limit=95 + len(sgr) + 3)
    assert out.startswith("a" * 95 + sgr + "bbb\x1b[0m")


# --- property tests -----------------------------------------------------------

hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            list(
                "\x1b[]();:?0123456789mPX^_\\c\r\n\t\x07\x08\x00\x7f\x9b\x9c\x9d"
                "\u202a\u202e\u2066\u2069\u200e\u200f\u061c␛␍"
            )
        ),
        st.characters(),
    )
)


@settings(max_examples=500)
@given(hostile_text)
def test_property_no_controls_survive_and_idempotent(text: str) -> None:
    out = sanitize(text)
    assert_safe(out)
    assert sanitize(out) == out
    assert "\x1b" not in strip_sgr(text)
    assert strip_sgr(text) == strip_sgr(out)


ansible_like = st.lists(
    st.one_of(
        st.sampled_from(["\x1b[0;32m", "\x1b[0m", "\x1b[1;31m", "\x1b[", "\r\n", "\r", "\n", "\x1b]0;x\x07", "\x9b"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    )
).map("".join)


@settings(max_examples=500)
@given(st.one_of(hostile_text, ansible_like))
def test_property_fast_path_agrees_with_the_general_rule(text: str) -> None:
    import tui.core.sanitize as impl

    general = impl._SLOW.sub(impl._visible, text)  # what sanitize() did before it had a fast path
    assert sanitize(text) == general


@settings(max_examples=300)
@given(hostile_text)
def test_property_nothing_printable_is_dropped(text: str) -> None:
    kept = [ch for ch in text if not unsafe_chars(ch) and ch != "\r"]
    rest = iter(sanitize(text))
    assert all(ch in rest for ch in kept)  # printable input is a subsequence of the output


@settings(max_examples=200)
@given(hostile_text)
def test_property_rich_can_render_sanitized_output(text: str) -> None:
    plain = Text.from_ansi(sanitize(text)).plain
    assert [ch for ch in plain if ord(ch) < 0x20 and ch not in "\t\n"] == []


# --- what the console actually renders ---------------------------------------


def test_rich_renders_sanitized_output_with_colour_and_no_controls() -> None:
    raw = "\x1b[32mok: [web01]\x1b[0m \x1b]0;pwned\x07\x1b[2J\rX\x9b1A"
    text = Text.from_ansi(sanitize(raw))
    assert unsafe_chars(text.plain) == [] and "\x1b" not in text.plain
    assert text.plain == "ok: [web01] ␛]0;pwned␇␛[2J␍X<U+009B>1A"
    # Rich decodes ESC[32m as standard colour number 2, i.e. "green".
    green = Color.parse("green").number
    coloured = [span for span in text.spans if span.style.color is not None and span.style.color.number == green]
    assert [text.plain[span.start : span.end] for span in coloured] == ["ok: [web01]"]
