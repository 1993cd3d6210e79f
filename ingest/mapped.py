"""Mapped tables: a wide export (one row per period, one column per KPI) read through a mapping file.

A mapping file (TOML) says which entity and source the table is, how to read the period from
columns such as ``year`` and ``quarter``, when the figures were published, and for each KPI column
its metric, unit, segment and kind. The reader turns each non-empty cell into one row of the
canonical format, so validation and normalisation stay in :mod:`ingest.canonical`. See
``data/mappings/tesla_operational_summary.toml`` for the documented example.

Two ways to use one:

- format ``mapped`` (and ``auto``): the mapping is found among the mapping folders
  (``$METRICSTORE_MAPPINGS``, ``:``-separated, default ``data/mappings``) by its ``match`` glob on the
  file name and its columns in the file's header;
- :func:`mapped_format` registers a reader for one mapping file and returns its format name
  (what a job with ``mapping = "..."`` uses).

Every column of the table must be mapped or listed in ``ignore``: a new column in next quarter's
export is an error to look at, not a silent loss.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.config import PROJECT_ROOT, read_toml
from ingest.errors import BadFile, ConfigError, first_line, shown_name
from ingest.readers import READERS, Batch, read_csv, read_parquet, register
from store import parse_period
from store.errors import clip

DEFAULT_FOLDER = PROJECT_ROOT / "data" / "mappings"


class PeriodSpec(BaseModel):
    """Which columns hold the period: a label column, or a year with a quarter, half or month."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    year: str | None = None
    quarter: str | None = None
    half: str | None = None
    month: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> PeriodSpec:
        parts = [p for p in (self.quarter, self.half, self.month) if p]
        if self.column and (self.year or parts):
            raise ValueError("give either column, or year (with quarter, half or month), not both")
        if not self.column and not self.year:
            raise ValueError("needs column (a period label such as 2024Q2) or year")
        if len(parts) > 1:
            raise ValueError("give at most one of quarter, half, month")
        return self

    def columns(self) -> list[str]:
        return [c for c in (self.column, self.year, self.quarter, self.half, self.month) if c]


class ReportedSpec(BaseModel):
    """When the figures became public: a column, a fixed date, or a lag after the period end."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    date: dt.date | None = None
    days_after_period_end: int | None = Field(default=None, ge=0, le=3660)

    @model_validator(mode="after")
    def _exactly_one(self) -> ReportedSpec:
        if sum(x is not None for x in (self.column, self.date, self.days_after_period_end)) != 1:
            raise ValueError("give exactly one of column, date, days_after_period_end")
        return self


class ColumnSpec(BaseModel):
    """One KPI column: the metric it holds and how to read it."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    segment: str = "total"
    dims: str = ""
    kind: Literal["actual", "guidance", "target", "estimate"] = "actual"
    qualifier: Literal["exact", "approx", "at_least", "at_most"] = "exact"
    instant: bool = False  # a stock: the value at the period's end, not over the period


class Mapping(BaseModel):
    """A mapping file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    match: list[str] = Field(default_factory=lambda: ["*"])
    entity: str = Field(min_length=1)
    source: str = Field(min_length=1)
    fiscal_year_end_month: int = Field(default=12, ge=1, le=12)
    period: PeriodSpec
    reported_at: ReportedSpec
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)
    path: Path | None = None

    def matches(self, file: Path, header: list[str]) -> bool:
        """Does this mapping apply to ``file`` with this (lower-cased) header?"""
        if not any(fnmatch.fnmatch(file.name.lower(), m.lower()) for m in self.match):
            return False
        have = set(header)
        return set(self.period.columns()) <= have and any(c in have for c in self.columns)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file.

    Raises:
        ConfigError: the file is missing, not TOML, or breaks the mapping's rules (names the field).
    """
    p = Path(path)
    raw = read_toml(p, missing="mapping file not found")
    raw = _lower_keys(raw)
    try:
        m = Mapping.model_validate({**raw, "path": p})
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(str(p), e["msg"], field=".".join(str(x) for x in e["loc"]) or None) from None
    return m


def _lower_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """Column names are matched lower-cased, as the readers lower-case the header."""
    out = dict(raw)
    cols = out.get("columns")
    if isinstance(cols, dict):
        out["columns"] = {str(k).lower(): v for k, v in cols.items()}
    ignore = out.get("ignore")
    if isinstance(ignore, list):
        out["ignore"] = [str(x).lower() for x in ignore]
    period = out.get("period")
    if isinstance(period, dict):
        out["period"] = {k: str(v).lower() for k, v in period.items()}
    reported = out.get("reported_at")
    if isinstance(reported, dict) and "column" in reported:
        out["reported_at"] = {**reported, "column": str(reported["column"]).lower()}
    return out


def mapping_folders() -> list[Path]:
    env = os.environ.get("METRICSTORE_MAPPINGS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [DEFAULT_FOLDER]


def known_mappings() -> list[Mapping]:
    """Every mapping file in the mapping folders (a malformed one raises :class:`ConfigError`)."""
    out: list[Mapping] = []
    for folder in mapping_folders():
        if folder.is_dir():
            out.extend(load_mapping(p) for p in sorted(folder.glob("*.toml")))
    return out


def _header(path: Path, head: bytes) -> list[str]:
    if head.startswith(b"PAR1") or path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
            return [c.lower() for c in pq.read_schema(path).names]
        except Exception:  # noqa: BLE001 - not a Parquet file we can read: no mapping applies
            return []
    line = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    return [c.strip().strip('"').strip().lower() for c in line.split(sep)]


def find_mapping(path: Path, head: bytes | None = None) -> Mapping | None:
    """The first known mapping that applies to ``path``."""
    if head is None:
        with path.open("rb") as fh:
            head = fh.read(4096)
    header = _header(path, head)
    return next((m for m in known_mappings() if m.matches(path, header)), None)


def _sniff(path: Path, head: bytes) -> bool:
    try:
        return find_mapping(path, head) is not None
    except ConfigError as exc:
        raise BadFile(str(path), f"cannot look for a mapping: {exc}") from None


def read_wide(path: Path) -> pl.DataFrame:
    """A wide table as text columns with ``__row``: CSV/TSV, Parquet, or Excel (first sheet)."""
    ext = path.suffix.lower()
    if ext in (".parquet", ".pq"):
        return _frame(read_parquet(path))
    if ext in (".xlsx", ".xls", ".xlsm"):
        try:
            df = pl.read_excel(path, infer_schema_length=0)
        except ModuleNotFoundError:
            raise BadFile(str(path), "reading Excel needs the 'fastexcel' package (pip install fastexcel), "
                                     "or export the sheet as CSV") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a bad file
            raise BadFile(str(path), f"is not a readable Excel workbook ({first_line(exc)})") from None
        df = df.rename({c: str(c).strip().lower() for c in df.columns}).with_columns(pl.all().cast(pl.String))
        return df.with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
    return _frame(read_csv(path))


def _frame(out: pl.DataFrame | Batch) -> pl.DataFrame:
    return out.frame if isinstance(out, Batch) else out


_Q = re.compile(r"^(?:q)?([1-4])$", re.I)
_H = re.compile(r"^(?:h)?([12])$", re.I)


def _label(spec: PeriodSpec, row: dict[str, str | None]) -> str | None:
    if spec.column:
        return (row.get(spec.column) or "").strip() or None
    year = (row.get(spec.year or "") or "").strip()
    if not year:
        return None
    year = year.split(".")[0]
    if spec.quarter:
        q = (row.get(spec.quarter) or "").strip().split(".")[0]
        mq = _Q.match(q)
        return f"{year}Q{mq.group(1)}" if mq else f"{year}Q{q}"
    if spec.half:
        h = (row.get(spec.half) or "").strip()
        mh = _H.match(h)
        return f"{year}H{mh.group(1)}" if mh else f"{year}H{h}"
    if spec.month:
        mo = (row.get(spec.month) or "").strip().split(".")[0]
        return f"{year}-{int(mo):02d}" if mo.isdigit() else f"{year}-{mo}"
    return f"FY{year}"


def apply_mapping(mapping: Mapping, wide: pl.DataFrame, file: str) -> pl.DataFrame:
    """Turn a wide table into canonical rows (text columns and ``__row``) through ``mapping``.

    Raises:
        BadFile: a mapped column is missing, or a column is neither mapped nor ignored.
    """
    cols = [c for c in wide.columns if c != "__row"]
    needed = set(mapping.period.columns()) | set(mapping.columns)
    if mapping.reported_at.column:
        needed.add(mapping.reported_at.column)
    missing = sorted(c for c in needed if c not in cols)
    if missing:
        raise BadFile(file, f"column {missing[0]!r} of mapping {mapping.name!r} is not in the file", row=1)
    stray = [c for c in cols if c not in needed and c not in mapping.ignore]
    if stray:
        raise BadFile(file, f"column {shown_name(stray[0])!r} is not in mapping {mapping.name!r} "
                            f"(map it under [columns] or list it in ignore)", row=1, column=stray[0])
    out: dict[str, list[str | None]] = {k: [] for k in (
        "entity", "metric", "segment", "dims", "period", "value", "unit", "kind", "qualifier",
        "reported_at", "source", "source_ref", "note")}
    rows: list[int] = []
    for row in wide.iter_rows(named=True):
        label = _label(mapping.period, row)
        if label is None:
            continue
        try:
            period = parse_period(label, mapping.fiscal_year_end_month)
        except ValueError as exc:
            raise BadFile(file, f"period {clip(label)!r} cannot be read: {clip(str(exc))}", row=row["__row"]) from None
        if mapping.reported_at.column:
            reported = (row.get(mapping.reported_at.column) or "").strip() or None
        elif mapping.reported_at.date:
            reported = mapping.reported_at.date.isoformat()
        else:
            reported = (period.end + dt.timedelta(days=mapping.reported_at.days_after_period_end or 0)).isoformat()
        for col, spec in mapping.columns.items():
            cell = row.get(col)
            if cell is None or not cell.strip():
                continue  # no figure for this period
            out["entity"].append(mapping.entity)
            out["metric"].append(spec.metric)
            out["segment"].append(spec.segment)
            out["dims"].append(spec.dims)
            out["period"].append(period.end.isoformat() if spec.instant else label)
            out["value"].append(cell.strip())
            out["unit"].append(spec.unit)
            out["kind"].append(spec.kind)
            out["qualifier"].append(spec.qualifier)
            out["reported_at"].append(reported)
            out["source"].append(mapping.source)
            # The reference names the figure, not the file: the same figure in next quarter's
            # export (another file name, another row) is the same event, not a second one.
            out["source_ref"].append(f"{mapping.name}:{label}:{col}")
            out["note"].append(f"{Path(file).name}:{row['__row']} column {col}")
            rows.append(int(row["__row"]))
    if not rows:
        raise BadFile(file, f"holds no figures for mapping {mapping.name!r}")
    df = pl.DataFrame(out, schema={k: pl.String for k in out})
    return df.with_columns(pl.Series("__row", rows, pl.Int64))


def read_with(mapping: Mapping, path: Path) -> pl.DataFrame:
    """Read ``path`` through ``mapping`` into canonical rows."""
    return apply_mapping(mapping, read_wide(path), str(path))


@register("mapped", sniff=_sniff)
def read_mapped(path: Path) -> pl.DataFrame:
    """A wide table whose mapping is found in the mapping folders (by file name and header)."""
    try:
        mapping = find_mapping(path)
    except ConfigError as exc:
        raise BadFile(str(path), f"cannot look for a mapping: {exc}") from None
    except OSError as exc:
        raise BadFile(str(path), f"cannot be read: {exc.strerror}") from None
    if mapping is None:
        folders = ", ".join(str(f) for f in mapping_folders())
        raise BadFile(str(path), f"no mapping in {folders} matches this file's name and columns")
    return read_with(mapping, path)


def mapped_format(mapping_path: str | Path) -> str:
    """Register a reader for one mapping file; returns its format name for ``ingest_file(fmt=...)``.

    Example:
        >>> fmt = mapped_format("data/mappings/tesla_operational_summary.toml")   # doctest: +SKIP
        >>> ingest_file(store, "tesla.csv", catalog=catalog, fmt=fmt)              # doctest: +SKIP
    """
    path = Path(mapping_path).absolute()
    mapping = load_mapping(path)
    name = f"mapped:{path}"

    def reader(p: Path) -> pl.DataFrame:
        return read_with(mapping, p)

    READERS[name] = reader
    return name
