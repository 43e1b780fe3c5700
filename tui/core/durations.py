"""Durations as operators type them: `300`, `90s`, `5m`, `1h`, `1h30m`."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smh])")


class DurationError(ValueError):
    """Raised with a message fit to show an operator as is."""


def parse_duration(value: object) -> float | None:
    """Seconds for `value`; `None` means "no limit" (0, empty or absent).

    Accepts a non-negative number (seconds) or a string of number+unit parts
    (s, m, h), e.g. "90s", "5m", "1h30m". Anything else raises DurationError.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise DurationError(f"expected seconds or a duration like 90s, 5m, 1h; got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text == "":
            return None
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos = 0
            seconds = 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or pos == 0:
                raise DurationError(
                    f"{value!r} is not a duration: use seconds or a number with s, m or h (90s, 5m, 1h)"
                )
    else:
        raise DurationError(f"expected seconds or a duration like 90s, 5m, 1h; got {type(value).__name__}")
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise DurationError(f"a duration must be 0 or more seconds; got {value!r}")
    return seconds or None


def format_duration(seconds: float | None) -> str:
    """Compact form for tables: 45s, 5m03s, 1h02m; '-' for none."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
