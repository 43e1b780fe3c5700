"""A streaming log tail that renders only the rows on screen, wrapped or not.

Lines arrive already sanitized (only SGR colour codes survive `tui.core.sanitize`),
so `Text.from_ansi` here can only ever produce colours. Rendering is per visible
row with a small cache of rendered lines, so a chatty job costs the same as a quiet one.

Wrapping is a hard fold at the pane's width (as `less` does): a line's row count is
its display width divided by the pane's, so only each line's width is measured when
it arrives (once, whatever the pane's width), and a line is rendered only when one of
its rows is on screen. Row positions are running sums kept in step with the tail:
new lines are appended, lines the tail dropped are sliced off.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import OrderedDict
from itertools import accumulate
from pathlib import Path
from typing import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.core.sanitize import clip, strip_sgr

CACHE_LINES = 400
TAB = 8
NOTICE = -1  # line_at's index for the "older lines are only on disk" line


_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def measure(line: str) -> int:
    """Cells `line` (already sanitized) takes once drawn (clipped, colours removed, tabs expanded)."""
    if len(line) <= 10_000 and line.isascii() and "\t" not in line:
        # the common case, without the sanitizer or a width table: sanitized text has no ESC but SGR's
        return len(_SGR.sub("", line)) if "\x1b" in line else len(line)
    plain = strip_sgr(clip(line))
    if "\t" in plain:
        plain = plain.expandtabs(TAB)
    return cell_len(plain)


class LogView(ScrollView, can_focus=True):
    """Follows the end while you are at the bottom; scroll up and it holds still."""

    DEFAULT_CSS = """
    LogView {
        /* always there, so the wrap width does not change when the log outgrows the pane */
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("G", "follow", "Follow", id="log-follow"),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("slash", "app.search_log", "Search", id="log-search"),
    ]

    follow: reactive[bool] = reactive(True)
    search: reactive[str] = reactive("")
    wrap: reactive[bool] = reactive(True)

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: list[str] = []
        self._lens: list[int] = []  # display width of each line, measured once
        self._first = 0  # absolute number of _lines[0], so cache keys survive the tail moving
        self._total = 0
        self._width = 0  # widest line seen (the scroll width when not wrapping)
        self._fold = 0  # the width rows are folded at; 0 = one row per line
        self._cum: list[int] = [0]  # _cum[i] = first row of line i (relative to _cum[0]); len = lines + 1
        self._notice: Text | None = None
        self._notice_for: tuple[int, object, int] = (0, None, 0)
        self._notice_rows = 1
        self._notice_strip: Strip | None = None
        self._cache: OrderedDict[int, Strip] = OrderedDict()
        self.source: object = None
        self.pager_key = "o"  # the key that opens the full log in a pager (the app may remap it)
        self._base = Style()

    # -- feeding ------------------------------------------------------------
    def show(self, source: object, lines: Sequence[str], total: int) -> None:
        """Show `lines`, the last of `total` lines ever written by `source` (a job)."""
        switched = source is not self.source
        if switched:
            self.source = source
            self._cache.clear()
            self._width = 0
            self.follow = True
            if self.scroll_x:
                self.scroll_to(x=0, animate=False, immediate=True)  # each job starts at its left edge
        first = total - len(lines)
        if not switched and first == self._first and len(lines) == len(self._lines) and self._lines:
            return  # nothing new (a switch to a job with as many lines must still show its own)
        new = list(lines)
        drop = first - self._first
        keep = len(self._lines) - drop
        if switched or drop < 0 or keep < 0 or keep > len(new):  # another job, or a tail that started over
            self._cache.clear()
            lens = [measure(line) for line in new]
            self._cum = [0]
            added = lens
        else:  # the same tail moved on: measure only what arrived
            added = [measure(line) for line in new[keep:]]
            lens = self._lens[drop:] + added
            del self._cum[:drop]
        self._lines, self._lens, self._first, self._total = new, lens, first, max(total, len(new))
        if added:
            self._width = max(self._width, min(max(added), 10_000))
        self._extend_rows(len(lens) - len(added))
        self._update_notice()
        self._resize()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def _rows_of(self, width: int) -> int:
        return max(1, -(-width // self._fold)) if self._fold else 1

    def _extend_rows(self, known: int) -> None:
        """Row sums for lines from `known` on (the ones before are still right)."""
        del self._cum[known + 1 :]
        fold = self._fold
        if fold:
            sums = accumulate((max(1, -(-n // fold)) for n in self._lens[known:]), initial=self._cum[-1])
            next(sums)  # that is the initial value, already there
            self._cum.extend(sums)
        else:
            start = self._cum[-1]
            self._cum.extend(range(start + 1, start + 1 + len(self._lens) - known))

    def _relayout(self) -> bool:
        """Fold at the pane's current width (or not at all); True when that changed anything."""
        width = self.scrollable_content_region.width
        fold = width if self.wrap and width > 0 else 0
        if fold == self._fold:
            return False
        self._fold = fold
        self._cum = [0]
        self._extend_rows(0)
        self._update_notice(force=True)
        self._resize()
        return True

    def _resize(self) -> None:
        rows = self.row_count
        width = self._fold or self._width
        self._set_virtual_size(Size(width, rows))

    def _set_virtual_size(self, size: Size) -> None:
        """Grow the scrollable area without a layout pass of the whole screen.

        Assigning `virtual_size` asks for a layout, which repaints every pane: measured,
        that made up most of the console's CPU while a job streams. Only the scrollbars
        depend on it, so update those (`_scroll_update` is what a layout would call here;
        it asks for a layout itself if a scrollbar appears or disappears).
        """
        if size == self.virtual_size:
            return
        if not self.container_size:  # not laid out yet: let the first layout take it
            self.virtual_size = size
            return
        self.set_reactive(LogView.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    # -- what is shown ------------------------------------------------------
    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def row_count(self) -> int:
        """Screen rows the whole tail takes (with the notice line and wrapping)."""
        return self._head + self._cum[-1] - self._cum[0]

    @property
    def _head(self) -> int:
        return self._notice_rows if self._notice is not None else 0

    @property
    def dropped(self) -> int:
        """Lines of this job no longer in memory (older than the tail): only on disk."""
        return max(0, self._total - len(self._lines))

    @property
    def disk_log(self) -> Path | None:
        """The full log of the job's latest attempt (what the pager key opens)."""
        attempts = getattr(self.source, "attempts", None)
        return Path(attempts[-1].log) if attempts else None

    def _where(self) -> str:
        """Where the dropped lines are, said in one line (a path: untrusted text, sanitized)."""
        path = self.disk_log
        if path is None:
            return "only on disk"
        if len(getattr(self.source, "attempts", ())) > 1:  # older lines may be earlier attempts'
            return (
                f"only on disk, one log per attempt: {strip_sgr(str(path.parent.parent))}/attempt-N/"
                f"{path.name} ({self.pager_key} opens the latest)"
            )
        return f"only on disk: {strip_sgr(str(path))} ({self.pager_key} opens the full log)"

    def search_miss(self, older: bool = False) -> str:
        """What to tell an operator whose search found nothing in memory (a notification line)."""
        what = "no older match" if older else "no match"
        if not self.dropped:
            return what
        return f"{what} in the {len(self._lines)} lines in memory; {self.dropped} earlier lines are {self._where()}"

    def _update_notice(self, force: bool = False) -> None:
        dropped = self.dropped
        if not dropped:
            self._notice = None
            return
        key = (dropped, self.source, len(getattr(self.source, "attempts", ())))
        if not force and self._notice is not None and self._notice_for == key:
            return
        # a path made of job names: text, never markup
        notice = Text(f"… {dropped} earlier lines are {self._where()}", style="dim", end="")
        self._notice, self._notice_for = notice, key
        self._notice_rows = self._rows_of(notice.cell_len)
        self._notice_strip = None

    def plain_lines(self) -> list[str]:
        return [strip_sgr(line) for line in self._lines]

    def row_of(self, index: int) -> int:
        """The screen row (in scroll coordinates) where line `index` of the tail starts."""
        index = max(0, min(index, len(self._lines)))
        return self._head + self._cum[index] - self._cum[0]

    def line_at(self, row: int) -> tuple[int, int]:
        """(line index, row within the line) at scroll row `row`; index NOTICE for the notice."""
        if row < self._head:
            return NOTICE, row
        target = self._cum[0] + row - self._head
        index = bisect_right(self._cum, target) - 1
        return index, target - self._cum[min(index, len(self._cum) - 1)]

    # -- wrapping -----------------------------------------------------------
    def toggle_wrap(self) -> bool:
        """Fold long lines at the pane's width, or not; returns the new state. The line at the
        top of the pane stays there (or the end, while following)."""
        self.wrap = not self.wrap
        return self.wrap

    def watch_wrap(self, wrap: bool) -> None:
        if wrap and self.scroll_x:
            self.scroll_to(x=0, animate=False, immediate=True)
        self._cache.clear()
        self._refold()

    def on_resize(self) -> None:
        self._refold()

    def _refold(self) -> None:
        """Fold again at the current width and wrap setting, keeping the place: the end while
        following, else the line at the top of the pane."""
        top, _ = self.line_at(round(self.scroll_y))
        following = self.follow  # the new height clamps scroll_y, which could look like reaching the end
        if not self._relayout():
            return
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif top != NOTICE:
            self.scroll_to(y=self.row_of(top), animate=False, immediate=True)
        self.refresh()

    # -- following ----------------------------------------------------------
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            self.follow = False
        elif new >= self.max_scroll_y:
            self.follow = True

    def action_follow(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)

    # -- searching ----------------------------------------------------------
    def find(self, needle: str, before: int | None = None) -> int | None:
        """Index of the last line containing `needle` (case-insensitive) above `before`."""
        needle = needle.lower()
        end = len(self._lines) if before is None else before
        for index in range(end - 1, -1, -1):
            if needle in strip_sgr(self._lines[index]).lower():
                return index
        return None

    def jump_to(self, index: int) -> None:
        """Scroll so line `index` starts mid-pane (its first row, wrapped or not)."""
        self.follow = False
        height = self.scrollable_content_region.height or self.size.height
        self.scroll_to(y=max(0, self.row_of(index) - height // 2), animate=False, immediate=True)
        self.refresh()

    def watch_search(self) -> None:
        self._cache.clear()
        self.refresh()

    # -- rendering ----------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        # rich_style walks every ancestor: once per frame, not once per line
        base = self.rich_style
        if base != self._base:
            self._base = base
            self._cache.clear()  # cached lines carry the old background (focus tint, theme)
            self._notice_strip = None
        self._refold()  # a width the pane got without a resize event
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index, sub = self.line_at(scroll_y + y)
        if index != NOTICE and index >= len(self._lines):
            return Strip.blank(width, self._base)
        strip = self._strip(index)
        if self._fold:
            start = sub * self._fold
            return strip.crop_extend(start, start + self._fold, self._base).extend_cell_length(width, self._base)
        return strip.crop_extend(scroll_x, scroll_x + width, self._base)

    def _strip(self, index: int) -> Strip:
        if index == NOTICE:
            if self._notice_strip is None:
                assert self._notice is not None
                self._notice_strip = self._render_text(self._notice)
            return self._notice_strip
        key = self._first + index
        strip = self._cache.get(key)
        if strip is not None:
            self._cache.move_to_end(key)
            return strip
        text = Text.from_ansi(clip(self._lines[index]), no_wrap=True, end="")
        if "\t" in text.plain:
            text.expand_tabs(TAB)  # a raw tab would move the terminal's cursor
        if self.search:
            text.highlight_words([self.search], style=Style(reverse=True), case_sensitive=False)
        strip = self._render_text(text)
        self._cache[key] = strip
        if len(self._cache) > CACHE_LINES:
            self._cache.popitem(last=False)
        return strip

    def _render_text(self, text: Text) -> Strip:
        segments = list(text.render(self.app.console))
        return Strip(Segment.apply_style(segments, self._base), text.cell_len)
