import pytest

from tui.core.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [
        (300, 300.0),
        ("300", 300.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1.5m", 90.0),
        (" 2M ", 120.0),
        (2.5, 2.5),
    ],
)
def test_accepts_seconds_and_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [0, "0", "", None, "0s"])
def test_zero_or_empty_means_no_timeout(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize("text", ["abc", "5x", "-3", -3, "m5", "5m x", True, [5], "1h-2m"])
def test_rejects_with_a_message(text):
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value)


def test_format():
    assert format_duration(None) == "-"
    assert format_duration(45) == "45s"
    assert format_duration(303) == "5m03s"
    assert format_duration(3720) == "1h02m"
