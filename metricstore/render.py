"""Rendering query results: a table in a terminal, or CSV / JSON / Parquet (every column, raw values).

A *readable* table (``series``, ``sql``; ``--wide`` turns it off) shows what a person reads a series
for: the labels, the value in readable units (``365.9 bn CNY``, ``168.5 m units``, ``12.3 %``), YoY
and QoQ as percentages (points, ``pp``, for ratios), TTM, and flags (derived, approx...). The other
columns are counted below the table.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json", "parquet")

#: Magnitudes spelt as words in a readable value.
MAGNITUDES = ((1e12, "tn"), (1e9, "bn"), (1e6, "m"))
#: Label columns a readable table keeps, in this order.
LABELS = ("entity", "metric", "segment", "dims", "period", "fiscal_period")
#: Columns read as a fraction and shown as a percentage in a readable table.
FRACTIONS = ("share",)


def fmt_value(v: object) -> str:
    """A cell of a wide table: the raw value, compactly."""
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


def human(value: float | None, unit: str | None) -> str:
    """A value in readable units: ``365.9 bn CNY``, ``168.5 m units``, ``66,000 CNY/unit``, ``12.3 %``."""
    if value is None:
        return ""
    if value != value:
        return "NaN"
    if unit == "ratio":
        return percent(value, signed=False)
    for size, word in MAGNITUDES:
        if abs(value) >= size:
            scaled = value / size
            return f"{scaled:,.{2 if abs(scaled) < 10 else 1}f} {word} {unit or ''}".rstrip()
    number = f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:,.4g}"
    return f"{number} {unit or ''}".rstrip()


def signed_text(x: float) -> str:
    """A signed change with one decimal, or two significant digits below 0.1 (``-0.029``, not a
    ``-0.0`` that reads as no change), as the change feed writes them."""
    return f"{x:+.1f}" if abs(x) >= 0.1 or x == 0 else f"{x:+.2g}"


def percent(fraction: float | None, *, signed: bool = True) -> str:
    """A fraction as a percentage with one decimal: ``0.488254`` -> ``+48.8 %``."""
    if fraction is None:
        return ""
    return f"{signed_text(fraction * 100)} %" if signed else f"{fraction * 100:.1f} %"


def change(pct: float | None, diff: float | None, unit: str | None) -> str:
    """A YoY or QoQ cell: the relative change, or for a ratio the change in percentage points."""
    if unit == "ratio":
        return "" if diff is None else f"{signed_text(diff * 100)} pp"
    return percent(pct)


def _flags(row: dict[str, Any]) -> str:
    flags = ["derived"] if row.get("derived") else []
    if (q := row.get("qualifier")) and q != "exact":
        flags.append(q)
    if (q := row.get("prior_qualifier")) and q != "exact":
        flags.append(f"prior {q}")
    return ", ".join(flags)


def _value(row: dict[str, Any]) -> str:
    text = human(row["value"], row.get("unit"))
    if row.get("value_high") is not None:
        text = f"{text} to {human(row['value_high'], row.get('unit'))}"
    return text


#: The readable columns of a table with a ``value``: name -> (columns it reads, the cell).
READABLE: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], str]]] = {
    "value": (("value", "value_high", "unit"), _value),
    "YoY": (("yoy_pct", "yoy_change"), lambda r: change(r.get("yoy_pct"), r.get("yoy_change"), r.get("unit"))),
    "QoQ": (("qoq_pct", "qoq_change"), lambda r: change(r.get("qoq_pct"), r.get("qoq_change"), r.get("unit"))),
    "TTM": (("ttm_value",), lambda r: human(r.get("ttm_value"), r.get("unit"))),
    # a series in another currency: the growth in the reporting currency, and what the rates added
    "YoY reporting": (("yoy_pct_reporting", "original_unit"), lambda r: "" if r.get("yoy_pct_reporting") is None
                      else f"{percent(r['yoy_pct_reporting'])} in {r.get('original_unit')}"),
    "FX effect": (("fx_effect",), lambda r: "" if r.get("fx_effect") is None else f"{r['fx_effect'] * 100:+.1f} pt"),
    "flags": (("derived", "qualifier", "prior_qualifier"), _flags),
}


def readable(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The readable table of ``df`` as text cells, and how many of its columns it leaves out.

    A result without a numeric ``value`` column (a user's own SQL) keeps every column; fractions
    (``*_pct``, ``share``) show as percentages.
    """
    rows = df.to_dicts()
    if "value" not in df.columns or not df["value"].dtype.is_numeric():
        cells = {c: [percent(r[c], signed=c != "share") if _is_fraction(df, c) else fmt_value(r[c]) for r in rows]
                 for c in df.columns}
        return pl.DataFrame(cells, schema=dict.fromkeys(df.columns, pl.String)), 0
    used = {c for c in LABELS if c in df.columns}
    cells = {c: [fmt_value(r[c]) for r in rows] for c in LABELS if c in df.columns}
    for name, (reads, cell) in READABLE.items():
        if any(c in df.columns for c in reads):
            used.update(c for c in reads if c in df.columns)
            cells[name] = [cell(r) for r in rows]
    # a column with nothing in it (no dims, no QoQ, no flags) is left out
    cells = {c: v for c, v in cells.items() if c in ("period", "value") or any(v)}
    return pl.DataFrame(cells, schema=dict.fromkeys(cells, pl.String)), len(set(df.columns) - used)


def _is_fraction(df: pl.DataFrame, column: str) -> bool:
    dtype = df[column].dtype
    return dtype.is_numeric() and not dtype.is_integer() and (column.endswith("_pct") or column in FRACTIONS)


def _table(df: pl.DataFrame, title: str | None, right: set[str], wrap: bool) -> None:
    console = Console(width=max(Console().width, 160) if not sys.stdout.isatty() else None)
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in df.columns:
        keep = not wrap and c not in ("dims", "metric", "segment", "entity", "flags")   # (figures are not folded)
        table.add_column(c, justify="right" if c in right else "left", overflow="fold", no_wrap=keep,
                         min_width=max([len(c), *(len(fmt_value(v)) for v in df[c])]) if keep else None)
    for row in df.iter_rows():
        table.add_row(*(fmt_value(v) for v in row))
    console.print(table)


def render(df: pl.DataFrame, fmt: str = "table", output: Path | None = None, title: str | None = None,
           *, readable_table: bool = False) -> None:
    """Write ``df`` to stdout (or ``output``) in ``fmt``; a ``readable_table`` shows the readable columns."""
    if fmt == "table":
        if readable_table:
            text, hidden = readable(df)
            _table(text, title, {c for c in text.columns if c in READABLE and c != "flags"}
                   | {c for c in df.columns if c in text.columns and df[c].dtype.is_numeric()}, wrap=False)
            more = f"; {hidden} more column(s) with --wide or --format csv|json|parquet" if hidden else ""
        else:
            _table(df, title, {c for c in df.columns if df[c].dtype.is_numeric()}, wrap=True)
            more = ""
        Console(highlight=False).print(f"[dim]{df.height} row(s){more}[/dim]")
        return
    flat = df.with_columns([pl.col(c).cast(pl.List(pl.String)).list.join(",") for c, t in df.schema.items()
                            if isinstance(t, pl.List)]) if fmt == "csv" else df
    if fmt == "csv":
        out = flat.write_csv()
    elif fmt == "json":
        out = df.write_json()
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
        output.write_text(out)
    else:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
