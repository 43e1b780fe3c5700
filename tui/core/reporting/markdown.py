"""The report as GitHub-flavoured Markdown, for pasting into a ticket.

Every string from disk goes through `md()`: one line, controls made visible, colours
dropped, and the characters Markdown would act on escaped, so a hostile job or host
name can neither end a table cell nor become a link, emphasis, code or raw HTML.
"""

from __future__ import annotations

import re

from tui.core.reporting.content import TITLE, Table, summary, tables
from tui.core.reporting.records import clean
from tui.core.reporting.timeline import Report

# backslash first of all (so an escape cannot be undone), then what Markdown and GFM act on
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md(text: object) -> str:
    """Untrusted text as literal Markdown inline text, on one line."""
    escaped = _SPECIAL.sub(r"\\\1", clean(text))
    return "\\" + escaped if escaped.startswith("#") else escaped


def _table(table: Table) -> list[str]:
    lines = [f"## {md(table.title)}", ""]
    if not table.rows:
        return [*lines, md(table.empty), ""]
    lines.append("| " + " | ".join(md(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(md(cell) for cell in row) + " |")
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    lines = [f"# {TITLE}", ""]
    lines += [f"- **{md(label)}:** {md(text)}" for label, text in summary(report)]
    lines.append("")
    for table in tables(report):
        lines += _table(table)
    if report.notes:
        lines += ["## Not read", ""] + [f"- {md(note)}" for note in report.notes] + [""]
    return "\n".join(lines)
