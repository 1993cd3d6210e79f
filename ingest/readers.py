"""Reading input files into a frame of text columns, one row per fact, with their row numbers.

Every reader returns a polars DataFrame whose columns are all text (``None`` for empty) plus
``__row``, the row number a user sees (for CSV the header is row 1). Formats are detected from
the extension, else from the first bytes. Other modules register more formats in ``READERS``
(SEC companyfacts and data sets, ECB rates, mapped tables); :func:`formats` loads the built-in
ones first.
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.catalog import EntityDef
from ingest.errors import BadFile, first_line, shown_name
from ingest.filetypes import head_of, inner_path, is_gzip, open_input, read_input, refuse_binary
from ingest.limits import WIDE_BOMS, read_limited

#: Longest value accepted in any field (a quote can be long; a megabyte is not a quote).
MAX_FIELD = 10_000

@dataclass
class Batch:
    """What a reader returns when it knows more than rows: entity records (name, CIK, fiscal
    year end) that the pipeline writes to the store's entity log before the events. A reader of
    a file too large to hold sets ``chunks`` (``frame`` then stays empty): it yields the rows as
    frames a few at a time, and the pipeline streams them into one commit (``ingest.chunked``)."""

    frame: pl.DataFrame
    entities: list[EntityDef] = field(default_factory=list)
    chunks: Callable[[], Iterator[pl.DataFrame]] | None = None
    warnings: list[str] = field(default_factory=list)   # what the reader set aside, said once


Reader = Callable[[Path], "pl.DataFrame | Batch"]
READERS: dict[str, Reader] = {}
#: (format, sniff) pairs tried in order by ``detect_format``: sniff(path, head) -> bool.
SNIFFERS: list[tuple[str, Callable[[Path, bytes], bool]]] = []


def register(name: str, sniff: Callable[[Path, bytes], bool] | None = None) -> Callable[[Reader], Reader]:
    """Register a reader for ``--format name`` (and for ``auto`` when ``sniff`` says yes)."""
    def deco(fn: Reader) -> Reader:
        READERS[name] = fn
        if sniff is not None:
            SNIFFERS.insert(0, (name, sniff))
        return fn
    return deco


#: The modules of the formats ingest ships, in the order they register (a later sniffer is tried
#: first). They register when imported: :func:`formats` imports them before any lookup.
BUILT_IN = ("ingest.sec", "ingest.fsds", "ingest.ecb")


def formats() -> dict[str, Reader]:
    """Every registered reader by format name, the built-in ones among them."""
    for module in BUILT_IN:
        importlib.import_module(module)
    return READERS


def detect_format(path: Path) -> str:
    """The format of ``path``: registered sniffers first, then extension, then first bytes.

    A gzip-compressed file is looked at decompressed, under its name without ``.gz``; an archive,
    a document or an image is refused, saying what it is."""
    formats()
    head = head_of(path)
    for name, sniff in SNIFFERS:
        if sniff(path, head):
            return name
    ext = inner_path(path).suffix.lower()
    if ext in (".csv", ".tsv", ".txt"):
        return "csv"            # (the reader refuses what is no text, saying what it is)
    if ext in (".json", ".ndjson", ".jsonl"):
        return "json"
    if ext in (".parquet", ".pq"):
        return "parquet"
    if head.startswith(b"PAR1"):
        return "parquet"
    refuse_binary(path, head)
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped[:1] in (b"{", b"["):
        return "json"
    return "csv"


def decode(raw: bytes, file: str) -> str:
    """Bytes to text: UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM; anything else is refused."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: same first bytes
        try:
            return raw.decode("utf-32")
        except UnicodeDecodeError as exc:
            raise BadFile(file, f"not valid UTF-32 text at byte {exc.start}") from None
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BadFile(file, f"not valid UTF-16 text at byte {exc.start}") from None
    if b"\x00" in raw[:_line_end(raw)]:
        raise BadFile(file, "not UTF-8 text: NUL bytes in the first line (UTF-16 or UTF-32 without a byte "
                            "order mark?); save the file as UTF-8", row=1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadFile(file, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                            f"(save the file as UTF-8)", row=line) from None


def _line_end(raw: bytes) -> int:
    end = raw.find(b"\n")
    return len(raw) if end < 0 else end


def utf8_bytes(raw: bytes, file: str) -> bytes:
    """The file's text as UTF-8 bytes without a BOM, checked as :func:`decode` checks it: UTF-8
    input is handed on as read (ASCII needs no decoding at all), other encodings are re-encoded."""
    if raw.startswith(WIDE_BOMS):
        return decode(raw, file).encode("utf-8")
    if not raw.isascii() or b"\x00" in raw[:_line_end(raw)]:
        decode(raw, file)     # checks it (ASCII without NUL bytes needs no check)
    return raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw


def _finish(df: pl.DataFrame, file: str, first_row: int) -> pl.DataFrame:
    names = [c.strip().lower() for c in df.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise BadFile(file, f"column {shown_name(dup)!r} appears twice in the header", row=1)
    df = df.rename(dict(zip(df.columns, names, strict=True)))
    if df.height == 0:
        raise BadFile(file, "has a header but no rows")
    df = df.with_columns(pl.all().cast(pl.String))
    df = _cut_long_cells(df)
    return df.with_row_index("__row", offset=first_row).with_columns(pl.col("__row").cast(pl.Int64))


def _cut_long_cells(df: pl.DataFrame) -> pl.DataFrame:
    """Cells over :data:`MAX_FIELD` characters cut to one more than that: still refused ("field too
    long"), and quarantined truncated, but no check copies megabytes. (Lengths in bytes are read
    without touching the text: a frame with no long cell costs one look per column.)"""
    long = df.select([pl.col(c).str.len_bytes().max().alias(c) for c in df.columns]).row(0)
    cut = [c for c, n in zip(df.columns, long, strict=True) if n is not None and n > MAX_FIELD]
    return df.with_columns([pl.col(c).str.slice(0, MAX_FIELD + 1) for c in cut]) if cut else df


@register("csv")
def read_csv(path: Path) -> pl.DataFrame:
    """A CSV file (comma, or tab for ``.tsv``), UTF-8 with or without BOM, or UTF-16 with BOM,
    plain or gzip-compressed. A field far over :data:`MAX_FIELD` is cut as the file is read
    (:func:`ingest.limits.read_limited`), so its row is refused in bounded memory."""
    file = str(path)
    sep = "\t" if inner_path(path).suffix.lower() == ".tsv" else ","
    raw = read_limited(lambda: open_input(path), sep.encode(), keep=4 * (MAX_FIELD + 1))[0]
    refuse_binary(path, raw[:64])
    if not raw or raw.isspace():
        raise BadFile(file, "is empty (expected a header row and data rows)")
    data = utf8_bytes(raw, file)
    try:
        df = pl.read_csv(data, infer_schema=False, separator=sep, has_header=True,
                         quote_char='"', raise_if_empty=True)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        raise _locate_csv_problem(decode(raw, file), file, sep) or BadFile(file, f"is not valid CSV: {first_line(exc)}") from None
    if len(df.columns) == 1 and sep == "," and "\t" in df.columns[0]:
        raise BadFile(file, "looks tab-separated; name it .tsv or use commas", row=1)
    return _finish(df, file, first_row=2)


def _locate_csv_problem(text: str, file: str, sep: str) -> BadFile | None:
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    try:
        header = next(rows, None)
        if header is None:
            return BadFile(file, "is empty (expected a header row and data rows)")
        for i, row in enumerate(rows, start=2):
            if row and len(row) != len(header):
                return BadFile(file, f"has {len(row)} fields; the header has {len(header)}", row=i)
    except csv.Error as exc:
        return BadFile(file, f"is not valid CSV: {exc}", row=rows.line_num)
    return None


def _scalar(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return ";".join(f"{k}={_scalar(x)}" for k, x in v.items())
    return str(v)


@register("json")
def read_json(path: Path) -> pl.DataFrame:
    """A JSON array of objects, ``{"events": [...]}``, or JSON lines (one object a line)."""
    file = str(path)
    text = decode(read_input(path), file).strip()
    if not text:
        raise BadFile(file, "is empty (expected a JSON array of objects)")

    def no_constants(name: str) -> Any:
        raise BadFile(file, f"{name} is not a number")

    try:
        try:
            doc = json.loads(text, parse_float=str, parse_int=str, parse_constant=no_constants)
        except json.JSONDecodeError:
            doc = [json.loads(line, parse_float=str, parse_int=str, parse_constant=no_constants)
                   for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise BadFile(file, f"is not valid JSON: {exc.msg}", row=exc.lineno) from None
    except RecursionError:
        raise BadFile(file, "is nested too deeply to be a table of facts") from None
    if isinstance(doc, dict):
        lists = [k for k in ("events", "facts", "rows", "data") if isinstance(doc.get(k), list)]
        if not lists:
            raise BadFile(file, "is a JSON object without an 'events' list (expected an array of objects)")
        doc = doc[lists[0]]
    if not isinstance(doc, list):
        raise BadFile(file, "is not a JSON array of objects")
    records: list[dict[str, str | None]] = []
    for i, item in enumerate(doc, start=1):
        if not isinstance(item, dict):
            raise BadFile(file, f"item is a {type(item).__name__}, not an object", row=i)
        rec: dict[str, str | None] = {}
        for k, v in item.items():
            if isinstance(v, list) or (isinstance(v, dict) and str(k).lower() != "dims"):
                raise BadFile(file, f"holds a {type(v).__name__}; only text and numbers are values",
                              row=i, column=str(k))
            rec[str(k)] = _scalar(v)
        records.append(rec)
    if not records:
        raise BadFile(file, "holds no rows")
    columns = list(dict.fromkeys(k for r in records for k in r))
    df = pl.DataFrame({c: [r.get(c) for r in records] for c in columns}, schema={c: pl.String for c in columns})
    return _finish(df, file, first_row=1)


@register("parquet")
def read_parquet(path: Path) -> pl.DataFrame:
    """A Parquet file with the canonical columns (typed or text)."""
    file = str(path)
    try:
        with path.open("rb") as fh:
            gz = is_gzip(fh.read(2))
        if gz:
            with open_input(path) as fh:
                table = pq.read_table(pa.BufferReader(fh.read()))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadFile(file, f"is not a readable Parquet file ({first_line(exc)})") from None
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_nested(col.type) or pa.types.is_dictionary(col.type) and pa.types.is_nested(col.type.value_type):
            raise BadFile(file, f"holds a nested column ({col.type}); only text and numbers are values", column=name)
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            try:
                col = col.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise BadFile(file, "holds bytes that are not UTF-8 text", column=name) from None
        if pa.types.is_floating(col.type):
            cols[name] = pl.Series(name, [None if v is None else repr(v) for v in col.to_pylist()], pl.String)
        else:
            # a column converts to a Series (from_arrow makes DataFrames of tables only)
            cols[name] = (cast(pl.Series, pl.from_arrow(col)).cast(pl.String) if table.num_rows
                          else pl.Series(name, [], pl.String))
    df = pl.DataFrame(cols) if cols else pl.DataFrame()
    if not cols:
        raise BadFile(file, "has no columns")
    return _finish(df, file, first_row=1)
