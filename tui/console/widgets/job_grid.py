"""The job grid: one row per job, live, sortable, filterable.

A Line-API widget rather than a DataTable: DataTable drops its whole render cache
on every cell update, so with a few jobs streaming it re-rendered every visible
cell four times a second (measured: 40 % of the console's CPU). Here a row is
rendered once per change of what it shows, and only its line is repainted.

Every cell is a `Text`, never a `str` parsed as markup: job names, limits and
task names can come from anyone.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.core.durations import format_duration
from tui.core.engine import Job
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr

COLUMNS = (  # key, header; the operator's questions first, so 80 columns answer them
    ("name", "job"),
    ("status", "status"),
    ("ok", "ok"),
    ("changed", "chg"),
    ("failed", "fail"),
    ("unreachable", "unr"),
    ("elapsed", "elapsed"),
    ("timeout", "t/o left"),
    ("task", "current task"),
    ("attempt", "att"),
    ("playbook", "playbook"),
    ("targets", "targets"),
    ("started", "started"),
)
KEYS = [key for key, _ in COLUMNS]
SORTS: tuple[tuple[str, Callable[[Job], object]], ...] = (  # this run's jobs before earlier runs'
    ("file order", lambda j: (j.history, j.id)),
    ("name", lambda j: j.name),
    ("status", lambda j: (j.status.value, j.id)),
    ("most failed", lambda j: (-(j.results.totals().failed + j.results.totals().unreachable), j.id)),
    ("longest running", lambda j: (-(j.elapsed() or 0.0), j.id)),
)
STATUS_FALLBACK = {  # theme attribute per status, when a theme has no `status-*` variables
    Status.QUEUED: "foreground",
    Status.RUNNING: "primary",
    Status.WAITING: "warning",
    Status.SUCCESSFUL: "success",
    Status.FAILED: "error",
    Status.TIMEOUT: "warning",
    Status.CANCELED: "secondary",
    Status.ERROR: "error",
    Status.INTERRUPTED: "warning",
    Status.BLOCKED: "foreground",  # waits for its parents (or a host): not a problem in itself
    Status.SKIPPED: "secondary",
    Status.SCHEDULED: "foreground",  # waits for its next run (the message says when)
}
WIDTHS = {
    "name": 16,
    "status": 11,
    "ok": 4,
    "changed": 3,
    "failed": 4,
    "unreachable": 3,
    "elapsed": 7,
    "timeout": 8,
    "task": 24,
    "attempt": 3,
    "playbook": 18,
    "targets": 14,
    "started": 11,
}
PAD = 1  # blank cells either side of each column, as DataTable had
ROW_CACHE = 500
NEEDS_INPUT = "needs input"  # a running job waiting at a vars_prompt or pause (fits the 11-wide status column)
EARLIER = "earlier"  # what a row from an earlier run says, in the t/o-left column (a colour alone is not enough)
assert max(len(s.value) for s in Status) <= WIDTHS["status"], "a status word would be cut"


def plain(value: object) -> Text:
    return Text(strip_sgr(str(value)), no_wrap=True, overflow="ellipsis")


def _next_run(job: Job) -> str:
    """`next 4m12s` for a scheduled job; `paused` (or `-`) when no run is coming."""
    schedule = getattr(job, "schedule", None) or {}
    when: datetime | None = getattr(job, "next_run", None)
    if when is None:
        return "paused" if schedule.get("paused") else "-"
    now = datetime.now(when.tzinfo) if when.tzinfo is not None else datetime.now()
    return f"next {format_duration(max(0.0, (when - now).total_seconds()))}"


def node_of(job: Job) -> str | None:
    """The execution node a job runs on (its name), None for here: a server's JOB dict says
    "node" (the console's RemoteJob keeps it in `data`), an engine's job has it in its spec."""
    data = getattr(job, "data", None)
    if isinstance(data, dict):
        node = data.get("node")
        return node if isinstance(node, str) and node else None
    spec_node = getattr(job.spec, "node", None)
    return getattr(spec_node, "name", None)


def _target(job: Job) -> str:
    """The playbook column: what it runs, and `@node` where it runs when that is not here."""
    node = node_of(job)
    return f"{job.spec.target} @{node}" if node else job.spec.target


def _look(cell: Text) -> tuple[object, ...]:
    """Everything about a cell that reaches the screen."""
    return cell.plain, str(cell.style), tuple(cell.spans)


def _in_cursor(cell: Text) -> Text:
    """A cell as drawn on the cursor row: in the cursor's own colours, attributes kept.

    A status colour (or dim) on the block cursor's background can fall far below a readable
    contrast; the theme guarantees only the cursor's foreground against its background.
    The word itself still says the status.
    """
    style = cell.style if isinstance(cell.style, Style) else Style.parse(cell.style or "")
    for span in cell.spans:  # cells here are single-styled; a span's attributes still count
        span_style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        style += span_style
    keep = Style(
        bold=style.bold, italic=style.italic, underline=style.underline, reverse=style.reverse, strike=style.strike
    )
    return Text(cell.plain, style=keep, no_wrap=True, overflow="ellipsis")


class JobGrid(ScrollView, can_focus=True):
    """Header fixed on line 0; the cursor row is the selected job."""

    DEFAULT_CSS = """
    JobGrid {
        background: $surface;
        color: $foreground;
        & > .job-grid--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .job-grid--header { background: ansi_bright_blue; color: ansi_default; }
        & > .job-grid--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .job-grid--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    COMPONENT_CLASSES = {"job-grid--header", "job-grid--cursor"}
    BINDINGS = [
        Binding("enter", "app.focus_log", "Log", id="focus-log", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("home", "cursor_first", "First", show=False),
        Binding("end", "cursor_last", "Last", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("s", "cycle_sort", "Sort", id="sort-jobs", show=False),
    ]

    class Selected(Message):
        """The highlighted job changed (or was re-shown after a rebuild)."""

        def __init__(self, job_id: int | None):
            super().__init__()
            self.job_id = job_id

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.jobs: list[Job] = []
        self.filter_text = ""
        self.sort_index = 0
        self.selected_id: int | None = None
        self.cursor = 0
        self.updates = 0  # rows whose look changed and were repainted: what a tick cost
        self._shown: list[int] = []
        self._cells: dict[int, list[Text]] = {}
        self._looks: dict[int, tuple[object, ...]] = {}
        self._strips: dict[tuple[object, ...], Strip] = {}
        self._header: Strip | None = None
        self._styles_key: tuple[object, ...] = ()
        self._base = Style()
        self._width = sum(WIDTHS[k] + 2 * PAD for k in KEYS)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        self.virtual_size = Size(self._width, 1)

    def _restyle(self) -> None:
        """Status colours come from the theme: recolour every row in the new one (the cached
        strips of the old theme go in _check_styles)."""
        for job in self.jobs:
            self.update_job(job)
        self.refresh()

    # -- what is shown ------------------------------------------------------
    def visible_jobs(self) -> list[Job]:
        needle = self.filter_text.lower()
        jobs = [j for j in self.jobs if not needle or needle in self._haystack(j)]
        return sorted(jobs, key=SORTS[self.sort_index][1])

    @staticmethod
    def _haystack(job: Job) -> str:
        words = (
            job.name,
            _target(job),
            job.limit or "all",
            job.status.value,
            EARLIER if job.history else "",
            NEEDS_INPUT if job.prompt is not None else "",
        )
        return " ".join(words).lower()

    @property
    def row_count(self) -> int:
        return len(self._shown)

    def row_cells(self, job_id: int) -> list[Text]:
        """What the row of job `job_id` shows, one Text per column of COLUMNS."""
        return self._cells[job_id]

    def rebuild(self) -> None:
        """Re-list the rows (after a filter, a sort or a new job), keeping the selected job."""
        jobs = self.visible_jobs()
        ids = [j.id for j in jobs]
        if ids == self._shown:
            for job in jobs:
                self.update_job(job)
            if self.selected_id in ids and ids.index(self.selected_id) != self.cursor:
                self._move(ids.index(self.selected_id))  # selected by id from outside: follow it
            return
        self._shown = ids
        for job in jobs:
            self._cells[job.id] = cells = self._row(job)
            self._looks[job.id] = tuple(_look(c) for c in cells)
        self.virtual_size = Size(self._width, len(ids) + 1)
        if self.selected_id in ids:
            self.cursor = ids.index(self.selected_id)
        else:
            self.cursor = 0
            self.selected_id = ids[0] if ids else None
        self._scroll_to_cursor()
        # a row added to a grid whose scrollbars then change: look again once laid out
        self.call_after_refresh(self._scroll_to_cursor)
        self.refresh()
        self.post_message(self.Selected(self.selected_id))

    def update_job(self, job: Job) -> None:
        if job.id not in self._cells:
            return
        cells = self._row(job)
        look = tuple(_look(c) for c in cells)
        if look != self._looks.get(job.id):
            self._cells[job.id], self._looks[job.id] = cells, look
            self.updates += 1
            self._repaint(job.id)

    def tick_clocks(self) -> None:
        """Elapsed and time-left move every second for running jobs; nothing else needs touching."""
        for job in self.jobs:
            if job.status in (Status.RUNNING, Status.SCHEDULED):
                self.update_job(job)

    def _repaint(self, job_id: int) -> None:
        """Repaint the one line that shows `job_id`, if it is on screen."""
        try:
            index = self._shown.index(job_id)
        except ValueError:
            return
        y = index + 1 - round(self.scroll_y)
        if 1 <= y <= self.visible_rows:
            self.refresh(Region(0, y, self.size.width, 1))

    def _status_style(self, status: Status) -> Style:
        theme = self.app.current_theme
        fallback = STATUS_FALLBACK.get(status, "foreground")  # a status this console does not know yet
        colour = theme.variables.get(f"status-{status.value}") or getattr(theme, fallback, None)
        bold = status in (Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.INTERRUPTED)
        try:
            return Style(color=colour, bold=bold) if colour else Style(bold=bold)
        except Exception:  # an odd colour in a user theme: keep the word, lose the colour
            return Style(bold=bold)

    def _status_cell(self, job: Job) -> Text:
        """The engine's word; a running job stopped at a prompt says so, since it will not move on its own."""
        if job.status is Status.RUNNING and job.prompt is not None:
            return Text(NEEDS_INPUT, style=self._status_style(Status.WAITING) + Style(bold=True))
        return Text(job.status.value, style=self._status_style(job.status))

    def _row(self, job: Job) -> list[Text]:
        totals = job.results.totals()
        last = job.last
        started = last.started.strftime("%m-%d %H:%M" if job.history else "%H:%M:%S") if last is not None else "-"
        if job.history:
            left = EARLIER  # an earlier run's job: no timeout applies, and this is where it is said
        elif job.status is Status.RUNNING:
            left = format_duration(job.timeout_remaining())
        elif job.status is Status.WAITING and job.retry_at is not None:
            left = f"retry {format_duration(max(0.0, job.retry_at - time.monotonic()))}"
        elif job.status is Status.SCHEDULED:  # a cron job between its runs: when it runs next
            left = _next_run(job)
        else:
            left = format_duration(job.timeout) if not job.status.finished else "-"
        task = job.results.task if job.status is Status.RUNNING else (job.message or "")
        failed = Text(str(totals.failed), style="bold" if totals.failed else "")
        unreachable = Text(str(totals.unreachable), style="bold" if totals.unreachable else "")
        name = plain(job.name)
        timing = plain(left)
        if job.history:
            name.stylize("dim")
            timing.stylize("italic")
        return [
            name,
            self._status_cell(job),
            plain(totals.ok),
            plain(totals.changed),
            failed,
            unreachable,
            plain(format_duration(job.elapsed())),
            timing,
            plain(task),
            plain(last.number if last else 0),
            plain(_target(job)),
            plain(job.limit or "all"),
            plain(started),
        ]

    # -- rendering ----------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        self._base = self.rich_style  # it walks every ancestor: once per frame, not once per line
        self._check_styles()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = round(self.scroll_x)
        if y == 0:
            if self._header is None:
                self._header = self._strip(
                    [Text(h) for _, h in COLUMNS], self.get_component_rich_style("job-grid--header")
                )
            return self._header.crop_extend(scroll_x, scroll_x + width, self._base)
        index = round(self.scroll_y) + y - 1
        if not 0 <= index < len(self._shown):
            return Strip.blank(width, self._base)
        job_id = self._shown[index]
        on_cursor = index == self.cursor
        key = (job_id, on_cursor, self._looks[job_id])
        strip = self._strips.get(key)
        if strip is None:
            cells = self._cells[job_id]
            if on_cursor:
                style = self._base + self.get_component_rich_style("job-grid--cursor")
                cells = [_in_cursor(cell) for cell in cells]
            else:
                style = self._base
            strip = self._strip(cells, style)
            if len(self._strips) >= ROW_CACHE:
                self._strips.clear()
            self._strips[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self._base)

    def _strip(self, cells: list[Text], style: Style) -> Strip:
        line = Text(no_wrap=True, end="")
        for key, cell in zip(KEYS, cells):
            cell = cell.copy()
            cell.truncate(WIDTHS[key], overflow="ellipsis", pad=True)
            line.append(" " * PAD)
            line.append_text(cell)
            line.append(" " * PAD)
        segments = Segment.apply_style(line.render(self.app.console), style)
        return Strip(segments, line.cell_len)

    def _check_styles(self) -> None:
        """Focus and theme change the header and cursor styles: cached rows drawn in the old ones go."""
        key = (self.has_focus, self.app.theme, self.app.current_theme.dark)
        if key != self._styles_key:
            self._styles_key = key
            self._strips.clear()
            self._header = None

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- the cursor -----------------------------------------------------------
    def _move(self, index: int) -> None:
        if not self._shown:
            return
        index = max(0, min(index, len(self._shown) - 1))
        if index == self.cursor and self.selected_id == self._shown[index]:
            return
        old = self.cursor
        self.cursor = index
        self.selected_id = self._shown[index]
        self._scroll_to_cursor()
        for row in (old, index):
            if 0 <= row < len(self._shown):
                self._repaint(self._shown[row])
        self.post_message(self.Selected(self.selected_id))

    @property
    def visible_rows(self) -> int:
        """Job rows fully on screen: below the header, above the horizontal scrollbar.

        `size` includes the rows a horizontal scrollbar covers; the scrollable region does not.
        """
        return max(1, self.scrollable_content_region.height - 1)

    def cursor_on_screen(self) -> bool:
        """Whether the selected row is drawn whole (not under the header or a scrollbar)."""
        top = round(self.scroll_y)
        return not self._shown or top <= self.cursor < top + self.visible_rows

    def _scroll_to_cursor(self) -> None:
        rows = self.visible_rows
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
            self.refresh()
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, immediate=True)
            self.refresh()

    def on_resize(self) -> None:
        """A smaller pane (a filter line shown, a terminal resized) must not hide the selected row."""
        self._scroll_to_cursor()
        self.call_after_refresh(self._scroll_to_cursor)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_cursor_first(self) -> None:
        self._move(0)

    def action_cursor_last(self) -> None:
        self._move(len(self._shown) - 1)

    def action_page_up(self) -> None:
        self._move(self.cursor - max(1, self.visible_rows - 1))

    def action_page_down(self) -> None:
        self._move(self.cursor + max(1, self.visible_rows - 1))

    def on_click(self, event: events.Click) -> None:
        if 1 <= event.y <= self.visible_rows:
            self._move(round(self.scroll_y) + event.y - 1)

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.rebuild()
        self.notify(f"Jobs sorted by {SORTS[self.sort_index][0]}", timeout=2, markup=False)
