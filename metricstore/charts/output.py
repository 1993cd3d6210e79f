"""Writing a figure: PNG, SVG or a self-contained HTML page, chosen by the file's extension.

SVG keeps its text as text (``svg.fonttype = none``), so titles, labels and the legend can be
searched, copied and read by a screen reader; HTML inlines that SVG with a table of the figures
drawn, and needs no other file and no network. The file is rendered in memory first, so a failed
render leaves no half-written file behind.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib
import polars as pl
from matplotlib.figure import Figure

from queries import BadArgument

#: The formats by file extension.
FORMATS = {".png": "png", ".svg": "svg", ".html": "html", ".htm": "html"}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 70rem;
        color: #222; padding: 0 1rem; }}
figure {{ margin: 0; }} figure svg {{ width: 100%; height: auto; }}
figcaption {{ color: #555; font-size: .9rem; margin: .3rem 0 1rem; }}
table {{ border-collapse: collapse; font-size: .85rem; margin-bottom: 1.5rem; }}
th, td {{ padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
h2 {{ font-size: 1rem; margin: 1.2rem 0 .4rem; }}
</style>
</head>
<body>
<figure>
{svg}
<figcaption>{caption}</figcaption>
</figure>
{tables}
</body>
</html>
"""


def output_format(path: Path) -> str:
    """``png``, ``svg`` or ``html`` for ``path``'s extension; a :class:`BadArgument` for any other."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadArgument("output", str(path), "must end in .png, .svg or .html (the extension picks the format)")
    return fmt


def render(fig: Figure, fmt: str, *, title: str, caption: str = "",
           tables: dict[str, pl.DataFrame] | None = None, dpi: int = 110) -> bytes:
    """The bytes of ``fig`` in ``fmt``; an HTML page shows ``tables`` (heading -> text cells) below it."""
    if fmt == "png":
        return _save(fig, "png", dpi=dpi, metadata={"Title": title, "Description": caption, "Software": "metricstore"})
    svg = _save(fig, "svg", metadata={"Title": title, "Description": caption, "Date": None})
    if fmt == "svg":
        return svg
    inline = svg.decode("utf-8")
    inline = inline[inline.index("<svg"):]          # no XML declaration or DOCTYPE inside a page
    page = _PAGE.format(title=html.escape(title), svg=inline, caption=html.escape(caption),
                        tables="\n".join(_table(h, df) for h, df in (tables or {}).items() if df.height))
    return page.encode("utf-8")


def write(fig: Figure, path: Path, *, title: str, caption: str = "",
          tables: dict[str, pl.DataFrame] | None = None, dpi: int = 110) -> Path:
    """Render ``fig`` in the format ``path``'s extension names and write it; returns ``path``.

    A path that cannot be written is a :class:`BadArgument` that says why, in one line.
    """
    data = render(fig, output_format(path), title=title, caption=caption, tables=tables, dpi=dpi)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise BadArgument("output", str(path), f"cannot be written ({exc.strerror or exc})") from None
    return path


def _save(fig: Figure, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    # text kept as text; a fixed salt so that the same chart gives the same SVG ids
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "metricstore"}):
        fig.savefig(buf, format=fmt, **kw)
    return buf.getvalue()


#: Columns of the HTML tables that hold figures (right-aligned).
FIGURES = ("value", "YoY", "before", "after", "change")


def _table(heading: str, df: pl.DataFrame) -> str:
    """An HTML table of text cells, the figures' columns right-aligned."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td{' class=num' if c in FIGURES else ''}>{html.escape('' if v is None else str(v))}</td>"
                         for c, v in zip(df.columns, row, strict=True)) + "</tr>\n"
        for row in df.iter_rows())
    return f"<h2>{html.escape(heading)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>"
