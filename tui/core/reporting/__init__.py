"""Incident reports (`playdeck report`): a timeline of job status changes and operator actions,
failed hosts with their reasons, durations, retries and log paths, as Markdown or HTML.

`build_report` reads the state dir (read only: it works beside a running server);
`render` turns a report into text. The console and the CLI share both.
"""

from __future__ import annotations

from tui.core.reporting.html import render_html
from tui.core.reporting.markdown import render_markdown
from tui.core.reporting.timeline import Report, ReportError, build_report

FORMATS = ("md", "html")

__all__ = ["FORMATS", "Report", "ReportError", "build_report", "render"]


def render(report: Report, fmt: str = "md") -> str:
    """The report as `md` (Markdown) or `html` (one self-contained page)."""
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}: one of {', '.join(FORMATS)}")
