"""Per-host and per-task results of one job; opens on the first failure, its message already shown.

Laid out for 80x24 first: the dialog fits 80 columns, the two tables take only the rows
they need (up to a cap), and the rest goes to the message, which wraps and scrolls
with PageUp/PageDown from the task list (or Tab into it, then the arrows), so a
failed host's whole reason can be read without a mouse.

Every host name, task name and message is untrusted: `strip_sgr` and `Text`, never markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.client.remote import RemoteJob as Job
from tui.console.widgets.chain_view import ChainView
from tui.core.running.results import COUNT_NAMES, TaskResult
from tui.core.sanitize import strip_sgr

ORDER = {"failed": 0, "unreachable": 1, "ignored": 2, "changed": 3, "ok": 4, "skipped": 5}
# one line inside the dialog at 80 columns (76 cells): a second line would cost the message a row
HINT = "↑↓ task · PgUp/PgDn scroll the message · Tab focus · Esc closes · o full log"


class MessageBox(VerticalScroll, can_focus=True):
    """The selected task's whole message, wrapped; scrolls with the arrows once focused."""

    BINDINGS = [
        Binding("j", "scroll_down", show=False),
        Binding("k", "scroll_up", show=False),
    ]


class ResultsScreen(ModalScreen[None]):
    # ids and classes of its own: the console's stylesheet sizes `.dialog`s for short forms
    DEFAULT_CSS = """
    ResultsScreen { align: center middle; }
    ResultsScreen > #results-box {
        width: 100%; max-width: 120;
        height: 100%; max-height: 40;
        padding: 0 1;
        border: thick $primary;
        background: $surface;
    }
    #results-box > #results-title { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    /* parent -> child lines, only for a job in a chain (ChainView caps them to the screen's height);
       the task list gives up a row or two for them so the message and the hint keep theirs at 80x24 */
    #results-box.chained > #results-tasks { max-height: 22%; }
    /* the tables take the rows they need up to a cap (they scroll); the message gets the rest */
    #results-box > #results-hosts { height: auto; max-height: 20%; min-height: 2; }
    #results-box > #results-tasks { height: auto; max-height: 30%; min-height: 2; }
    #results-box > #results-message {
        height: 1fr; min-height: 4;
        border-top: solid $panel;
        scrollbar-size-vertical: 1;
    }
    #results-box > #results-message:focus { border-top: solid $primary; }
    #results-message > #task-message { width: 1fr; height: auto; }
    #results-box > #results-hint { height: auto; color: $foreground-muted; }
    """

    BINDINGS = [
        Binding("escape,q,v", "close", "Close"),
        Binding("j", "cursor('down')", show=False),
        Binding("k", "cursor('up')", show=False),
        # the task list would page itself; the message is what an operator needs to page
        Binding("pageup", "message('up')", "Scroll message up", show=False, priority=True),
        Binding("pagedown", "message('down')", "Scroll message down", show=False, priority=True),
    ]

    def __init__(self, job: Job, tasks: list[TaskResult], dropped: int = 0):
        """`tasks`: the last attempt's task results, as the server gave them when asked."""
        super().__init__()
        self.job = job
        self.dropped = dropped
        # failures first, then in the order they happened
        self.tasks: list[TaskResult] = sorted(tasks, key=lambda t: ORDER.get(t.outcome, 9))

    def compose(self) -> ComposeResult:
        attempt = self.job.last
        title = f"{self.job.name}: {self.job.status.value}"
        if attempt is not None:
            title += f" · attempt {attempt.number}" + (f" · limit {attempt.limit}" if attempt.limit else "")
        with Vertical(id="results-box"):
            yield Static(Text(strip_sgr(title), style="bold", no_wrap=True, overflow="ellipsis"), id="results-title")
            yield ChainView(getattr(self.app, "engine", None), self.job, id="results-chain")
            hosts: DataTable[Text] = DataTable(id="results-hosts", cursor_type="none", show_cursor=False)
            yield hosts
            tasks: DataTable[Text] = DataTable(id="results-tasks", cursor_type="row")
            yield tasks
            with MessageBox(id="results-message"):
                yield Static(id="task-message")
            dropped = self.dropped
            more = (
                f" · {dropped} more results in {strip_sgr(str(self.job.last.events_log))}"
                if dropped and self.job.last
                else ""
            )
            yield Static(Text(HINT + more), id="results-hint")

    def on_mount(self) -> None:
        hosts = self.query_one("#results-hosts", DataTable)
        hosts.add_column(Text("host"), key="host")
        for name in COUNT_NAMES:
            hosts.add_column(Text(name), key=name)
        # hosts that failed or were unreachable first: at 80x24 only a few rows show
        for host, counts in sorted(self.job.hosts.items(), key=lambda item: not item[1].needs_retry):
            style = "bold" if counts.needs_retry else ""
            hosts.add_row(
                Text(strip_sgr(host)[:40], style=style), *(Text(str(getattr(counts, n))) for n in COUNT_NAMES)
            )
        tasks = self.query_one("#results-tasks", DataTable)
        for key in ("outcome", "host", "task", "message"):
            tasks.add_column(Text(key), key=key)
        for task in self.tasks:
            first_line = strip_sgr(task.message).strip().splitlines()[0] if task.message.strip() else ""
            tasks.add_row(
                Text(task.outcome, style="bold" if task.outcome in ("failed", "unreachable") else ""),
                Text(strip_sgr(task.host)[:40]),
                Text(strip_sgr(task.task)[:60]),
                Text(first_line[:120]),
            )
        tasks.focus()
        self._show(0)
        # the mirror's jobs move on while the dialog is open (a child starts, ends or is skipped)
        chain = self.query_one(ChainView)
        self.query_one("#results-box").set_class(bool(chain.text), "chained")
        self.set_interval(0.5, chain.update)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "results-tasks":
            self._show(event.cursor_row)

    def _show(self, row: int) -> None:
        box = self.query_one("#task-message", Static)
        if not self.tasks:
            box.update(
                Text(
                    "No task results yet."
                    if not self.job.status.finished
                    else f"No task results: {strip_sgr(self.job.message) or 'see the log'}"
                )
            )
            return
        task = self.tasks[min(row, len(self.tasks) - 1)]
        text = Text()
        text.append(f"{task.outcome}: [{strip_sgr(task.host)}] {strip_sgr(task.task)}\n", style="bold")
        text.append(strip_sgr(task.message) or "(no message)")
        box.update(text)
        self.query_one(MessageBox).scroll_home(animate=False)

    @property
    def chain_text(self) -> str:
        """The chain section's lines as plain text ("" for a job with no chain)."""
        return self.query_one(ChainView).text

    @property
    def message_text(self) -> str:
        """What the message area holds (all of it, not only what is on screen)."""
        return str(self.query_one("#task-message", Static).render())

    def action_cursor(self, direction: str) -> None:
        tasks = self.query_one("#results-tasks", DataTable)
        tasks.action_cursor_down() if direction == "down" else tasks.action_cursor_up()

    def action_message(self, direction: str) -> None:
        box = self.query_one(MessageBox)
        box.scroll_page_down(animate=False) if direction == "down" else box.scroll_page_up(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
