"""A job's chain as `parent (status) -> child [on condition: held] status` lines, for its detail.

One line per edge, so a chain reads the same whichever end is selected: the selected job's
parents first (in its `after` order), then its children. Each line fits the width it is
given: the two names share what the fixed words leave and are clipped with an ellipsis,
never wrapped off-screen at 80x24. A skipped child's message (which names the parent) goes
on the line under it. Every name and message is untrusted text: `Text.append`, never markup.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from tui.client.remote import RemoteEngine, RemoteJob
from tui.core.planning.spec import Status
from tui.core.sanitize import strip_sgr
from tui.core.scheduling.chains import holds

# lines under the header: at 80x24 the dialog has 22 rows, and title 1 + hosts <= 4 + tasks <= 6 +
# message >= 4 + hint 1 leave 6 (the header and 5); a taller screen has room for more
MAX_LINES = 5
MAX_LINES_TALL = 8  # from 30 rows
MIN_NAME = 8  # cells a name keeps however long the rest of its line is
HEADER = "Chain (parent -> child)"


def clip(text: str, cells: int, bold: bool = False) -> Text:
    """`text` in at most `cells` cells, an ellipsis where it was cut; the selected job's name bold."""
    out = Text(text, style="bold" if bold else "")
    if cell_len(text) > cells:
        out.truncate(max(1, cells), overflow="ellipsis")
    return out


def one_line(text: str) -> str:
    """A name as one line of plain text (control characters made visible, newlines too)."""
    return strip_sgr(text).replace("\n", "\u240a").replace("\t", " ")


def condition_label(condition: str) -> str:
    return "always" if condition == "always" else f"on {condition}"


def verdict(condition: str, parent: RemoteJob | None) -> str:
    """Whether the condition held: only a parent that has ended can say."""
    if parent is None:
        return "unknown"
    if parent.status is Status.SKIPPED:
        return "not held"  # a skipped parent never ran: its children are skipped too
    if not parent.status.finished:
        return "pending"
    return "held" if holds(condition, parent.status) else "not held"


def edge(
    parent_name: str, parent: RemoteJob | None, condition: str, child: RemoteJob, selected: int, width: int
) -> Text:
    """One `parent (status) -> child [on condition: verdict] status` line within `width` cells."""
    parent_status = parent.status.value if parent is not None else "not found"
    held = verdict(condition, parent)
    middle = f" ({parent_status}) -> "
    tail = f" [{condition_label(condition)}: {held}] {child.status.value}"
    names = [one_line(parent_name), one_line(child.name)]
    budget = max(2 * MIN_NAME, width - cell_len(middle) - cell_len(tail))
    # the shorter name keeps what it needs; the longer one gets the rest
    short = min(cell_len(names[0]), cell_len(names[1]), budget // 2)
    caps = [budget - short, budget - short]
    caps[0 if cell_len(names[0]) <= cell_len(names[1]) else 1] = short
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append_text(clip(names[0], caps[0], bold=parent is not None and parent.id == selected))
    line.append(middle)
    line.append_text(clip(names[1], caps[1], bold=child.id == selected))
    line.append(f" [{condition_label(condition)}: ")
    line.append(held, style="bold" if held == "not held" else "")
    line.append(f"] {child.status.value}")
    line.truncate(width, overflow="ellipsis")
    return line


def note(text: str, width: int) -> Text:
    """A skipped job's message under its edge, indented and dim."""
    line = Text("    ", style="dim", no_wrap=True, overflow="ellipsis")
    line.append(one_line(text))
    line.truncate(width, overflow="ellipsis")
    return line


def chain_lines(engine: RemoteEngine, job: RemoteJob, width: int, most: int = MAX_LINES) -> list[Text]:
    """The section's lines (header first, then at most `most`) for `job`; [] when it has no
    parent and no child. Lines beyond `most` are counted on the last one."""
    parents = engine.parents_of(job)
    children = engine.children_of(job)
    if not parents and not children:
        return []
    body: list[tuple[Text, bool]] = []  # (line, is an edge): notes are not counted as edges
    for name, condition, parent in parents:
        body.append((edge(name, parent, condition, job, job.id, width), True))
    if job.status is Status.SKIPPED and parents and job.message:
        body.append((note(job.message, width), False))
    for child, condition in children:
        body.append((edge(job.name, job, condition, child, job.id, width), True))
        if child.status is Status.SKIPPED and child.message:
            body.append((note(child.message, width), False))
    lines = [line for line, _ in body]
    if len(body) > most:
        hidden = sum(1 for _, is_edge in body[most - 1 :] if is_edge)
        lines = [*lines[: most - 1], Text(f"… {hidden} more in this chain", style="dim")]
    return [Text(HEADER, style="bold", no_wrap=True, overflow="ellipsis"), *lines]


def parents_label(engine: RemoteEngine | None, job: RemoteJob, most: int = 2) -> str:
    """`after deploy (failed)` (plain text, control characters visible) for the log pane's title:
    the first `most` parents with their current status, `+N` for the rest; "" without parents."""
    parents = engine.parents_of(job) if engine is not None else []
    if not parents:
        return ""
    shown = [
        f"{one_line(name)} ({parent.status.value if parent is not None else 'not found'})"
        for name, _condition, parent in parents[:most]
    ]
    more = f" +{len(parents) - most}" if len(parents) > most else ""
    return "after " + ", ".join(shown) + more


class ChainView(Widget):
    """The chain section of a job's detail; hidden for a job with no chain. `update()` redraws it
    when the mirror's jobs have moved on (its lines are rebuilt from them)."""

    DEFAULT_CSS = """
    ChainView { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, engine: RemoteEngine | None, job: RemoteJob, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.job = job
        self._shown: tuple[str, ...] = ()

    def lines(self, width: int | None = None) -> list[Text]:
        if self.engine is None:
            return []
        most = MAX_LINES_TALL if self.app.size.height >= 30 else MAX_LINES
        return chain_lines(self.engine, self.job, width or self.content_size.width or 76, most)

    @property
    def text(self) -> str:
        """The section as plain text at its current width (for people and tests)."""
        return "\n".join(line.plain for line in self.lines())

    def on_mount(self) -> None:
        self.update()

    def update(self) -> None:
        """Redraw (and re-measure) only when a line changed: it is polled while the dialog is open."""
        shown = tuple(line.plain for line in self.lines())
        self.display = bool(shown)
        if shown != self._shown:
            self._shown = shown
            self.refresh(layout=True)

    def render(self) -> Text:
        return Text("\n", no_wrap=True).join(self.lines())
