"""The frame of every web page: one HTML document with its style, a navigation bar, and the
escaping and table helpers the pages share.

Every value from the store is escaped here (``esc``) or by the helpers; links are relative
(``root`` is the path back to the site's top), so the static site opens from disk and can be
zipped and handed to a reviewer. No inline event handler is ever written: the one script
(``static/site.js``) attaches its behaviour to ``data-`` attributes.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

__all__ = ["STYLE", "esc", "fmt", "kv", "link", "page", "table", "when"]

STYLE: Final = """
:root{--ink:#1d2733;--muted:#5a6b7d;--line:#d5dde6;--head:#eef2f6;--accent:#1f3b57}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0}
header{background:var(--accent);color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;
align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}header .store{margin-left:auto;
font-weight:400;opacity:.8;font-size:.9em}
main{max-width:1200px;margin:1.2em auto;padding:0 1.2em}
h1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.15em;color:var(--accent);
border-bottom:1px solid var(--line);margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:.92em;margin:.4em 0 1em}
th,td{border:1px solid var(--line);padding:.28em .5em;text-align:left;vertical-align:top}
th{background:var(--head);white-space:nowrap}th[data-sort]{cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:600;
color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;border:1px solid var(--line);padding:.7em;overflow-x:auto}
code,.digest{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
.badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:.85em;
background:var(--head);border:1px solid var(--line)}
.stage{background:#e4f2e8;border-color:#9ccaa9}.failed{color:#b03a2e;font-weight:600}
.muted{color:var(--muted)}.toolbar{display:flex;gap:1em;align-items:center;margin:.5em 0}
.pager a,.pager span{margin-right:.6em}
figure{margin:.5em 0}svg{max-width:100%;height:auto}
.graph a rect{fill:#fff;stroke:var(--accent)}.graph a:hover rect{fill:var(--head)}
.graph .run rect{fill:#fdf6e3;stroke:#b58900}.graph .root rect{stroke-width:2.5}
.graph text{font:12px system-ui,sans-serif;fill:var(--ink)}
.graph path{fill:none;stroke:#8a99aa;stroke-width:1.2}
#compare table{margin-top:.6em}.wide{overflow-x:auto}td{white-space:nowrap}
td:last-child,dd{white-space:normal}
@media print{header,.toolbar,.pager{display:none}main{max-width:none}}
"""


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML (and inside a quoted attribute)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A value as a reviewer reads it: floats with 4 significant digits (and visibly
    floats), ints with separators, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.4g}"
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def when(timestamp: float) -> str:
    """A moment as ``2026-12-05 06:47:12 UTC`` (one line in a table)."""
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def link(href: str, text: Any, *, title: str | None = None) -> str:
    """An ``<a>`` with escaped text (``href`` is built by the site, never from raw data)."""
    tip = f' title="{esc(title)}"' if title else ""
    return f'<a href="{esc(href)}"{tip}>{esc(text)}</a>'


def kv(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already HTML (escape them with :func:`esc`)."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
          table_id: str | None = None, sortable: bool = False,
          row_attributes: Sequence[str] | None = None) -> str:
    """A table; cells are already HTML. ``row_attributes`` adds pre-escaped attributes to
    each ``<tr>`` (for the script's compare and filter)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    sort = " data-sort" if sortable else ""
    head = "".join(f"<th{sort}>{esc(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        extra = f" {row_attributes[index]}" if row_attributes else ""
        body.append(f"<tr{extra}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str, *, root: str, store: str, moment: str | None = None) -> str:
    """A whole HTML document: ``root`` is the relative path to the site's top (``""`` or
    ``"../"``), ``store`` the store's location, ``moment`` set for a point-in-time site."""
    when = f" · as of {esc(moment)}" if moment else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)} · lineage</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{STYLE.strip()}</style></head><body>"
        f"<header>{link(root + 'index.html', 'lineage')}{link(root + 'runs/index.html', 'Runs')}"
        f"{link(root + 'events.html', 'Events')}"
        f"<span class=\"store\">{esc(store)}{when}</span></header>"
        f"<main><h1>{esc(title)}</h1>\n{body}\n</main>"
        f"<script src=\"{esc(root)}static/site.js\"></script></body></html>\n"
    )
