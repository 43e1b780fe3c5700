"""Per-host and per-task results of one job; opens on the first failure, its message already shown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.core.engine import Job
from tui.core.results import COUNT_NAMES, TaskResult
from tui.core.sanitize import strip_sgr

ORDER = {"failed": 0, "unreachable": 1, "ignored": 2, "changed": 3, "ok": 4, "skipped": 5}


class ResultsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,v", "close", "Close"),
        Binding("j", "cursor('down')", show=False),
        Binding("k", "cursor('up')", show=False),
    ]

    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        results = job.results
        # failures first, then in the order they happened
        self.tasks: list[TaskResult] = sorted(results.tasks, key=lambda t: ORDER.get(t.outcome, 9))

    def compose(self) -> ComposeResult:
        attempt = self.job.last
        title = f"{self.job.name}: {self.job.status.value}"
        if attempt is not None:
            title += f" · attempt {attempt.number}" + (f" · limit {attempt.limit}" if attempt.limit else "")
        with Vertical(classes="dialog wide tall"):
            yield Static(Text(strip_sgr(title), style="bold"), classes="title")
            hosts: DataTable[Text] = DataTable(id="host-results", cursor_type="none", show_cursor=False)
            yield hosts
            tasks: DataTable[Text] = DataTable(id="task-results", cursor_type="row")
            yield tasks
            with VerticalScroll(id="message-box"):
                yield Static(id="task-message")
            dropped = self.job.results.dropped
            more = f" · {dropped} more results in {self.job.last.events_log}" if dropped and self.job.last else ""
            yield Static(Text(f"↑↓ pick a task · Esc closes · full output: Enter on the grid{more}"), classes="hint")

    def on_mount(self) -> None:
        hosts = self.query_one("#host-results", DataTable)
        hosts.add_column(Text("host"), key="host")
        for name in COUNT_NAMES:
            hosts.add_column(Text(name), key=name)
        for host, counts in self.job.hosts.items():
            style = "bold" if counts.needs_retry else ""
            hosts.add_row(Text(host, style=style), *(Text(str(getattr(counts, n))) for n in COUNT_NAMES))
        tasks = self.query_one("#task-results", DataTable)
        for key in ("outcome", "host", "task", "message"):
            tasks.add_column(Text(key), key=key)
        for task in self.tasks:
            first_line = strip_sgr(task.message).strip().splitlines()[0] if task.message.strip() else ""
            tasks.add_row(Text(task.outcome, style="bold" if task.outcome in ("failed", "unreachable") else ""),
                          Text(task.host), Text(strip_sgr(task.task)), Text(first_line[:120]))
        tasks.focus()
        self._show(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "task-results":
            self._show(event.cursor_row)

    def _show(self, row: int) -> None:
        box = self.query_one("#task-message", Static)
        if not self.tasks:
            box.update(Text("No task results yet." if not self.job.status.finished else
                            f"No task results: {strip_sgr(self.job.message) or 'see the log'}"))
            return
        task = self.tasks[min(row, len(self.tasks) - 1)]
        text = Text(f"{task.outcome}: [{task.host}] {strip_sgr(task.task)}\n", style="bold")
        text.append(strip_sgr(task.message) or "(no message)")
        box.update(text)

    def action_cursor(self, direction: str) -> None:
        tasks = self.query_one("#task-results", DataTable)
        tasks.action_cursor_down() if direction == "down" else tasks.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)
