"""The job grid: one row per job, live, sortable, filterable.

Every cell is a `Text`, never a `str`: DataTable parses `str` cells as markup,
and job names, limits and task names can come from anyone.
"""

from __future__ import annotations

import time
from typing import Callable

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui.core.durations import format_duration
from tui.core.engine import Job
from tui.core.sanitize import strip_sgr
from tui.core.spec import Status

COLUMNS = (  # key, header; the operator's questions first, so 80 columns answer them
    ("name", "job"), ("status", "status"), ("ok", "ok"), ("changed", "chg"), ("failed", "fail"),
    ("unreachable", "unr"), ("elapsed", "elapsed"), ("timeout", "t/o left"), ("task", "current task"),
    ("attempt", "att"), ("playbook", "playbook"), ("targets", "targets"), ("started", "started"),
)
SORTS: tuple[tuple[str, Callable[[Job], object]], ...] = (  # this run's jobs before earlier runs'
    ("file order", lambda j: (j.history, j.id)),
    ("name", lambda j: j.name),
    ("status", lambda j: (j.status.value, j.id)),
    ("most failed", lambda j: (-(j.results.totals().failed + j.results.totals().unreachable), j.id)),
    ("longest running", lambda j: (-(j.elapsed() or 0.0), j.id)),
)
STATUS_FALLBACK = {  # theme attribute per status, when a theme has no `status-*` variables
    Status.QUEUED: "foreground", Status.RUNNING: "primary", Status.WAITING: "warning",
    Status.SUCCESSFUL: "success", Status.FAILED: "error", Status.TIMEOUT: "warning",
    Status.CANCELED: "secondary", Status.ERROR: "error", Status.INTERRUPTED: "warning",
}
WIDTHS = {"name": 16, "status": 10, "task": 24, "playbook": 18, "targets": 14}


def plain(value: object) -> Text:
    return Text(strip_sgr(str(value)), no_wrap=True, overflow="ellipsis")


def _look(cell: Text) -> tuple[object, ...]:
    """Everything about a cell that reaches the screen."""
    return cell.plain, str(cell.style), tuple(cell.spans)


class JobGrid(DataTable[Text]):
    BINDINGS = [
        Binding("enter", "app.focus_log", "Log", id="focus-log", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("s", "cycle_sort", "Sort", id="sort-jobs", show=False),
    ]

    class Selected(Message):
        """The highlighted job changed (or was re-shown after a rebuild)."""

        def __init__(self, job_id: int | None):
            super().__init__()
            self.job_id = job_id

    def __init__(self, **kwargs: object):
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.jobs: list[Job] = []
        self.filter_text = ""
        self.sort_index = 0
        self.selected_id: int | None = None
        self._shown: list[int] = []
        # what each cell shows now: DataTable drops its whole render cache on any update_cell,
        # so a cell is only handed over when what it shows really changed
        self._drawn: dict[tuple[str, str], tuple[object, ...]] = {}

    def on_mount(self) -> None:
        for key, header in COLUMNS:
            self.add_column(Text(header), key=key, width=WIDTHS.get(key))
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def _restyle(self) -> None:
        """Status colours come from the theme: repaint every row in the new one."""
        for job in self.jobs:
            self.update_job(job)

    # -- what is shown ------------------------------------------------------
    def visible_jobs(self) -> list[Job]:
        needle = self.filter_text.lower()
        jobs = [j for j in self.jobs if not needle or needle in self._haystack(j)]
        return sorted(jobs, key=SORTS[self.sort_index][1])

    @staticmethod
    def _haystack(job: Job) -> str:
        return " ".join((job.name, job.spec.target, job.limit or "all", job.status.value)).lower()

    def rebuild(self) -> None:
        """Re-list the rows (after a filter, a sort or a new job), keeping the selected job."""
        jobs = self.visible_jobs()
        ids = [j.id for j in jobs]
        if ids == self._shown:
            for job in jobs:
                self.update_job(job)
            return
        self.clear()
        self._drawn.clear()
        for job in jobs:
            cells = self._cells(job)
            row = str(job.id)
            self.add_row(*cells, key=row)
            for (key, _), cell in zip(COLUMNS, cells):
                self._drawn[row, key] = _look(cell)
        self._shown = ids
        if self.selected_id in ids:
            self.move_cursor(row=ids.index(self.selected_id), animate=False)
        elif ids:
            self.move_cursor(row=0, animate=False)
            self.selected_id = ids[0]
        else:
            self.selected_id = None
        self.post_message(self.Selected(self.selected_id))

    def update_job(self, job: Job) -> None:
        if job.id not in self._shown:
            return
        row = str(job.id)
        for (key, _), cell in zip(COLUMNS, self._cells(job)):
            self._set(row, key, cell)

    def _set(self, row: str, key: str, cell: Text) -> None:
        look = _look(cell)
        if self._drawn.get((row, key)) != look:
            self._drawn[row, key] = look
            self.update_cell(row, key, cell)

    def tick_clocks(self) -> None:
        """Elapsed and time-left move every second for running jobs; nothing else needs touching."""
        for job in self.jobs:
            if job.status is Status.RUNNING and job.id in self._shown:
                self._set(str(job.id), "elapsed", plain(format_duration(job.elapsed())))
                self._set(str(job.id), "timeout", plain(format_duration(job.timeout_remaining())))

    def _status_style(self, status: Status) -> Style:
        theme = self.app.current_theme
        colour = theme.variables.get(f"status-{status.value}") or getattr(theme, STATUS_FALLBACK[status], None)
        bold = status in (Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.INTERRUPTED)
        try:
            return Style(color=colour, bold=bold) if colour else Style(bold=bold)
        except Exception:  # an odd colour in a user theme: keep the word, lose the colour
            return Style(bold=bold)

    def _cells(self, job: Job) -> list[Text]:
        totals = job.results.totals()
        last = job.last
        started = last.started.strftime("%m-%d %H:%M" if job.history else "%H:%M:%S") if last is not None else "-"
        if job.status is Status.RUNNING:
            left = format_duration(job.timeout_remaining())
        elif job.status is Status.WAITING and job.retry_at is not None:
            left = f"retry {format_duration(max(0.0, job.retry_at - time.monotonic()))}"
        else:
            left = format_duration(job.timeout) if not job.status.finished else "-"
        task = job.results.task if job.status is Status.RUNNING else (job.message or "")
        failed = Text(str(totals.failed), style="bold" if totals.failed else "")
        unreachable = Text(str(totals.unreachable), style="bold" if totals.unreachable else "")
        name = plain(job.name)
        if job.history:
            name.stylize("dim")
        return [
            name, Text(job.status.value, style=self._status_style(job.status)),
            plain(totals.ok), plain(totals.changed), failed, unreachable,
            plain(format_duration(job.elapsed())), plain(left), plain(task),
            plain(last.number if last else 0), plain(job.spec.target), plain(job.limit or "all"), plain(started),
        ]

    # -- selection and keys -------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value
        self.selected_id = int(key) if key is not None else None
        self.post_message(self.Selected(self.selected_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.rebuild()
        self.notify(f"Jobs sorted by {SORTS[self.sort_index][0]}", timeout=2, markup=False)

