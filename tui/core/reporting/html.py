"""The report as one self-contained HTML page: inline CSS, no script, no external link.

Every string from disk goes through `html.escape` (after the sanitizer makes controls
visible), and a Content-Security-Policy forbids anything but the inline style, so even
a mistake here could not load or run anything.
"""

from __future__ import annotations

import html

from tui.core.reporting.content import TITLE, Table, summary, tables
from tui.core.reporting.records import PROBLEM, clean
from tui.core.reporting.timeline import Report

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1f2328; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tr:nth-child(even) td { background: #fbfbfc; }
td { overflow-wrap: anywhere; }
.bad { color: #b42318; font-weight: 600; } .good { color: #1a7f37; } .other { color: #6e5b00; }
"""
_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def esc(text: object) -> str:
    return html.escape(clean(text), quote=True)


def _status_class(status: str) -> str:
    """A class from a fixed set, never from the text itself."""
    if status in PROBLEM:
        return "bad"
    return "good" if status == "successful" else "other"


def _table(table: Table) -> list[str]:
    out = [f"<h2>{esc(table.title)}</h2>"]
    if not table.rows:
        return [*out, f"<p>{esc(table.empty)}</p>"]
    status = table.headers.index("Status") if "Status" in table.headers else -1
    out.append("<table>")
    out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.headers) + "</tr>")
    for row in table.rows:
        cells = [
            f'<td class="{_status_class(cell)}">{esc(cell)}</td>' if i == status else f"<td>{esc(cell)}</td>"
            for i, cell in enumerate(row)
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def render_html(report: Report) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        f"<title>{esc(TITLE)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(TITLE)}</h1>",
        "<dl>",
    ]
    out += [f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>" for label, text in summary(report)]
    out.append("</dl>")
    for table in tables(report):
        out += _table(table)
    if report.notes:
        out += ["<h2>Not read</h2>", "<ul>", *(f"<li>{esc(note)}</li>" for note in report.notes), "</ul>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
