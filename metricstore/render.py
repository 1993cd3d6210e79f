"""Rendering query results: a rich table in a terminal, or CSV / JSON / Parquet."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json", "parquet")


def fmt_value(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if abs(v) >= 1e4:
            return f"{v:,.0f}" if v == int(v) else f"{v:,.2f}"
        return f"{v:.6g}"
    if isinstance(v, list):
        return ",".join(str(x)[:8] for x in v)
    return str(v)


def render(df: pl.DataFrame, fmt: str = "table", output: Path | None = None, title: str | None = None) -> None:
    """Write ``df`` to stdout (or ``output``) in ``fmt``."""
    if fmt == "table":
        console = Console(width=max(Console().width, 160) if not sys.stdout.isatty() else None)
        table = Table(title=title, show_lines=False, header_style="bold")
        for c in df.columns:
            table.add_column(c, justify="right" if df[c].dtype.is_numeric() else "left", overflow="fold")
        for row in df.iter_rows():
            table.add_row(*(fmt_value(v) for v in row))
        console.print(table)
        console.print(f"[dim]{df.height} row(s)[/dim]")
        return
    flat = df.with_columns([pl.col(c).cast(pl.List(pl.String)).list.join(",") for c, t in df.schema.items()
                            if isinstance(t, pl.List)]) if fmt == "csv" else df
    if fmt == "csv":
        text = flat.write_csv()
    elif fmt == "json":
        text = df.write_json()
    elif fmt == "parquet":
        if output is None:
            if sys.stdout.isatty():
                raise ValueError("--format parquet writes binary: give --output FILE or redirect stdout")
            buf = io.BytesIO()
            df.write_parquet(buf)
            sys.stdout.buffer.write(buf.getvalue())
            return
        df.write_parquet(output)
        return
    else:
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
