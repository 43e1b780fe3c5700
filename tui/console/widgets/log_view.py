"""A streaming log tail that renders only the lines on screen.

Lines arrive already sanitized (only SGR colour codes survive `tui.core.sanitize`),
so `Text.from_ansi` here can only ever produce colours. Rendering is per visible
line with a small cache, so a chatty job costs the same as a quiet one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

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


class LogView(ScrollView, can_focus=True):
    """Follows the end while you are at the bottom; scroll up and it holds still."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("G", "follow", "Follow", id="log-follow"),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("slash", "app.search_log", "Search", id="log-search"),
    ]

    follow: reactive[bool] = reactive(True)
    search: reactive[str] = reactive("")

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: list[str] = []
        self._first = 0  # absolute number of _lines[0], so cache keys survive the tail moving
        self._width = 0
        self._cache: OrderedDict[int, Strip] = OrderedDict()
        self.source: object = None
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
        first = total - len(lines)
        if not switched and first == self._first and len(lines) == len(self._lines) and self._lines:
            return  # nothing new (a switch to a job with as many lines must still show its own)
        self._lines = list(lines)
        self._first = first
        for line in self._lines[-200:]:
            self._width = max(self._width, min(len(line), 10_000))
        self._set_virtual_size(Size(self._width, len(self._lines)))
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

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

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def plain_lines(self) -> list[str]:
        return [strip_sgr(line) for line in self._lines]

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
        self.follow = False
        self.scroll_to(y=max(0, index - self.size.height // 2), animate=False)
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
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self._lines):
            return Strip.blank(width, self._base)
        strip = self._strip(index)
        return strip.crop_extend(scroll_x, scroll_x + width, self._base)

    def _strip(self, index: int) -> Strip:
        key = self._first + index
        strip = self._cache.get(key)
        if strip is not None:
            self._cache.move_to_end(key)
            return strip
        text = Text.from_ansi(clip(self._lines[index]), no_wrap=True, end="")
        if self.search:
            text.highlight_words([self.search], style=Style(reverse=True), case_sensitive=False)
        segments = list(text.render(self.app.console))
        strip = Strip(Segment.apply_style(segments, self._base), text.cell_len)
        self._cache[key] = strip
        if len(self._cache) > CACHE_LINES:
            self._cache.popitem(last=False)
        return strip
