"""The canonical input format: one fact per row, validated and normalised over whole columns.

Required: ``entity, metric, period, value, unit, reported_at, source`` (or ``period_start`` and
``period_end`` instead of ``period``). Optional: ``segment, dims, kind, qualifier, value_high,
source_ref, note, op, supersedes, authority``.

Text is read in Unicode NFC, keys lower-cased and stripped; entity and metric names are ASCII
(:data:`store.rules.NAME_RULE`); periods and dates before the year 1000 are refused (:data:`MIN_YEAR`).

:func:`normalise` turns a frame of text (from :mod:`ingest.readers`) into a frame of events in the
store's schema and a list of :class:`RowProblem`, one per rejected value. Work per unique value
(unit texts, period labels, dims) is done once in Python; everything per row is vectorised.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from polars._typing import PolarsDataType

from ingest.catalog import Catalog, infer_aggregation
from ingest.errors import BadFile, RowProblem, shown_name
from ingest.readers import MAX_FIELD
from ingest.units import parse_unit
from store import parse_period
from store.errors import clip
from store.rules import METRIC_NAME, QUALIFIED_NAME, polars_checks

REQUIRED = ("entity", "metric", "value", "unit", "reported_at", "source")
OPTIONAL = ("period", "period_start", "period_end", "segment", "dims", "kind", "qualifier",
            "value_high", "source_ref", "note", "op", "supersedes", "authority")
KNOWN = frozenset(REQUIRED + OPTIONAL)

_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
#: Earliest year of a period or publication date: labels have four-digit years (FY0999 would be
#: FY999), and no financial figure is older.
MIN_YEAR = 1000
#: How far past today a ``reported_at`` may lie (time zones; nothing is published next week).
FUTURE_SLACK = dt.timedelta(days=1)


@dataclass
class Normalised:
    """The outcome of normalising one batch."""

    events: pl.DataFrame
    problems: list[RowProblem]
    warnings: list[str] = field(default_factory=list)
    new_metrics: dict[str, str] = field(default_factory=dict)  # inferred metric -> aggregation
    rejected_rows: set[int] = field(default_factory=set)


def canonical_dims(text: str | None) -> str:
    """``'region=cn; band=3000+'`` or a JSON object -> ``'band=3000+;region=cn'`` ('' for none).

    Raises:
        ValueError: not ``key=value`` pairs, or a key given twice.
    """
    if text is None or not text.strip():
        return ""
    t = text.strip()
    pairs: list[tuple[str, str]] = []
    if t.startswith("{"):
        try:
            obj = json.loads(t)
        except json.JSONDecodeError:
            raise ValueError("is not key=value pairs or a JSON object") from None
        if not isinstance(obj, dict):
            raise ValueError("is not a JSON object")
        pairs = [(str(k), str(v)) for k, v in obj.items()]
    else:
        for part in t.split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"{clip(part.strip())!r} is not key=value")
            k, v = part.split("=", 1)
            pairs.append((k, v))
    out: dict[str, str] = {}
    for k, v in pairs:
        key, val = k.strip().lower(), unicodedata.normalize("NFC", v.strip())   # (after JSON's escapes are read)
        if not re.fullmatch(r"[a-z0-9_]+", key) or not val or any(ch in val for ch in ";="):
            raise ValueError(f"{clip(k.strip() + '=' + v.strip())} is not a valid dimension (key: a-z 0-9 _)")
        if key in out:
            raise ValueError(f"dimension {key!r} given twice")
        out[key] = val
    return ";".join(f"{k}={out[k]}" for k in sorted(out))


def _stripped(df: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Each of ``columns`` stripped, with '' as null (a speed-up: the null put in only where a
    column holds an empty text, not a second string pass over every column)."""
    df = df.with_columns([pl.col(c).str.strip_chars() for c in columns])
    blank = _columns_with(df, columns, lambda c: c.str.len_bytes() == 0)
    return df.with_columns([pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in blank])


def _nfc(df: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Text in Unicode NFC (``e`` + U+0301 becomes U+00E9), as case and spaces are normalised:
    two spellings of one name are one key. Only columns holding non-ASCII text are touched
    (a speed-up: most batches are ASCII throughout, and NFC leaves ASCII as it is)."""
    # (a non-ASCII character is more than one byte: comparing lengths is quicker than a regex)
    touched = _columns_with(df, columns, lambda c: c.str.len_bytes() != c.str.len_chars())
    return df.with_columns([pl.col(c).str.normalize("NFC") for c in touched]) if touched else df


def _long_columns(df: pl.DataFrame, columns: list[str]) -> list[str]:
    """The columns that may hold a field over :data:`MAX_FIELD` characters: those with one over
    that many bytes (a speed-up: a character is at least a byte, and bytes are counted without
    decoding)."""
    return _columns_with(df, columns, lambda c: c.str.len_bytes() > MAX_FIELD)


def _columns_with(df: pl.DataFrame, columns: Sequence[str], test: Callable[[pl.Expr], pl.Expr]) -> list[str]:
    """The columns of ``columns`` where ``test`` holds in some row (every column in one pass)."""
    hits = df.select([test(pl.col(c)).any().alias(c) for c in columns]).row(0)
    return [c for c, hit in zip(columns, hits, strict=True) if hit]


def per_value(df: pl.DataFrame, column: str, expr: pl.Expr) -> pl.Expr:
    """``expr``, an expression of ``column`` alone that keeps a null null, worked out once per
    distinct value of the column and mapped back onto the rows (a speed-up: a regex or a parse
    once per metric name or date, not once per row)."""
    values = df.get_column(column).unique().drop_nulls()
    return pl.col(column).replace_strict(values, pl.DataFrame(values).select(expr).to_series(), default=None)


def _uncatalogued(rows: pl.DataFrame, uncatalogued: pl.Expr, file: str) -> tuple[list[str], dict[str, str]]:
    """Warnings for the accepted rows' metrics the catalog does not know (``uncatalogued``, a test
    of the metric alone), and their inferred aggregations. A speed-up: the test and the inference
    run once per metric and once per (unit, instant), not once per row."""
    warnings: list[str] = []
    found = (rows.group_by("metric").agg(pl.col("__base").first(),
                                         (pl.col("__start") == pl.col("__end")).all().alias("inst"),
                                         pl.col("__row").min())
             .filter(uncatalogued).sort("__row"))
    kinds = found.select("__base", "inst").unique()
    kinds = kinds.with_columns(pl.Series("agg", [infer_aggregation(base or "", bool(inst))
                                                 for base, inst in kinds.iter_rows()], pl.String))
    found = found.join(kinds, on=["__base", "inst"], how="left", nulls_equal=True, maintain_order="left")
    new_metrics = dict(zip(found["metric"].to_list(), found["agg"].to_list(), strict=True))
    # raw XBRL concepts are many and expected: one warning for them all
    namespaced = [m for m in new_metrics if ":" in m]
    for m, agg, row in found.filter(~pl.col("metric").str.contains(":", literal=True)).select(
            "metric", "agg", "__row").iter_rows():
        warnings.append(f"{file}:{row}: metric {clip(m)!r} is not in the catalog; accepted as {agg} (inferred)")
    if namespaced:
        warnings.append(concept_warning(file, namespaced))
    return warnings, new_metrics


def concept_warning(file: str, concepts: list[str]) -> str:
    """The one warning for a file's raw concept metrics (``us-gaap:...``) the catalog does not know."""
    return (f"{file}: {len(concepts)} concept metric(s) not in the catalog kept under their own "
            f"names, aggregation inferred (e.g. {', '.join(concepts[:3])})")


def _lookup(values: pl.Series, fn: Callable[[Any], Any], key: str,
            out: dict[str, PolarsDataType], err: str) -> pl.DataFrame:
    """Apply ``fn`` to each unique value once: a frame of the value (column ``key``), what
    ``fn`` gave (a column of ``out``, or a tuple of them; null where it failed) and the error
    text (column ``err``), to join on ``key``."""
    keys: list[Any] = []
    oks: list[tuple[Any, ...]] = []
    errs: list[str | None] = []
    none = (None,) * len(out)
    for v in values.unique().to_list():
        keys.append(v)
        try:
            got = fn(v)
            oks.append(got if len(out) > 1 else (got,))
            errs.append(None)
        except ValueError as exc:
            oks.append(none)
            errs.append(str(exc))
    columns = {key: keys, **{name: [o[i] for o in oks] for i, name in enumerate(out)}, err: errs}
    return pl.DataFrame(columns, schema={key: values.dtype, **out, err: pl.String})


def _parse_key(key: str) -> tuple[dt.date | None, dt.date | None]:
    """``'FY2024|9'`` (a period label and its entity's fiscal year end month) -> (start, end)."""
    label, f = key.rsplit("|", 1)
    if not label:
        return None, None
    p = parse_period(label, int(f))
    return p.start, p.end


def _labelled_periods(df: pl.DataFrame, fye: dict[str, int]) -> pl.DataFrame:
    """``df`` with the dates of each row's period label (``__p_start``, ``__p_end``) and why a
    label is refused (``__p_err``), each label parsed once per fiscal year end. A batch without
    labels gives nulls at once (a speed-up: readers that give dates, as the SEC data sets do)."""
    if df["period"].null_count() == df.height:
        return df.with_columns(pl.lit(None, pl.Date).alias("__p_start"), pl.lit(None, pl.Date).alias("__p_end"),
                               pl.lit(None, pl.String).alias("__p_err"))
    df = df.with_columns(pl.col("entity").replace_strict(fye, default=12, return_dtype=pl.Int64).alias("__fye"))
    df = df.with_columns((pl.col("period").fill_null("") + "|" + pl.col("__fye").cast(pl.String)).alias("__pkey"))
    periods = _lookup(df["__pkey"], _parse_key, "__pkey", {"__p_start": pl.Date, "__p_end": pl.Date}, "__p_err")
    return df.join(periods, on="__pkey", how="left")


def normalise(df: pl.DataFrame, file: str, catalog: Catalog, fye: dict[str, int],
              today: dt.date | None = None) -> Normalised:
    """Validate and normalise a batch in the canonical format.

    Args:
        df: text columns and ``__row`` (from a reader).
        file: the file name used in messages.
        catalog: metric aliases and aggregations, source authority.
        fye: fiscal year end month per entity (default 12).
        today: for the check that nothing is reported in the future.

    Raises:
        BadFile: a required column is missing or an unknown column is present.
    """
    today = today or dt.date.today()
    cols = [c for c in df.columns if c != "__row"]
    unknown = [c for c in cols if c not in KNOWN]
    if unknown:
        raise BadFile(file, f"unknown column {shown_name(unknown[0])!r} (expected {', '.join(REQUIRED)}, "
                            f"period or period_start/period_end, and optionally {', '.join(OPTIONAL[3:])})", row=1)
    for c in REQUIRED:
        if c not in cols:
            raise BadFile(file, f"required column {c!r} is missing", row=1)
    if "period" not in cols and not {"period_start", "period_end"} <= set(cols):
        raise BadFile(file, "needs a 'period' column or both 'period_start' and 'period_end'", row=1)
    df = df.with_columns([pl.lit(None, pl.String).alias(c) for c in OPTIONAL if c not in cols])

    probs: list[pl.DataFrame] = []
    # checks on one state of the frame (frames are immutable: a check sees the frame as it was
    # when flagged), each state's checks run as one pass; only a check that fails selects its rows
    pending: list[tuple[pl.Expr, str, pl.Expr | str, pl.Expr | None]] = []
    checked = df                  # the frame the pending checks were flagged on

    def run_checks() -> None:
        if not pending:
            return
        frame = checked
        failed = frame.select([p[0].fill_null(False).any().alias(str(i)) for i, p in enumerate(pending)]).row(0)
        for (mask, column, reason, value), bad in zip(pending, failed, strict=True):
            if bad:
                probs.append(frame.filter(mask.fill_null(False)).select(
                    pl.col("__row"), pl.lit(column).alias("column"),
                    (value if value is not None else pl.col(column)).cast(pl.String).alias("value"),
                    (pl.lit(reason) if isinstance(reason, str) else reason).cast(pl.String).alias("reason"),
                ))
        pending.clear()

    def flag(mask: pl.Expr, column: str, reason: pl.Expr | str, value: pl.Expr | None = None) -> None:
        nonlocal checked
        if pending and checked is not df:
            run_checks()
        checked = df
        pending.append((mask, column, reason, value))

    # -- size and presence -----------------------------------------------------------------
    for c in _long_columns(df, cols):
        flag(pl.col(c).str.len_chars() > MAX_FIELD, c, f"field too long (limit {MAX_FIELD:,} characters)",
             pl.col(c).str.slice(0, 40) + "...")
    df = _stripped(df, REQUIRED + OPTIONAL)
    df = _nfc(df, REQUIRED + OPTIONAL)

    def lower(c: str) -> pl.Expr:   # (once per value: these columns hold a few distinct values)
        return per_value(df, c, pl.col(c).str.to_lowercase())

    df = df.with_columns(
        lower("op").fill_null("assert"),
        lower("kind").fill_null("actual"),
        lower("qualifier"),
        lower("authority"),
        lower("entity"),
        per_value(df, "metric", pl.when(pl.col("metric").str.contains(QUALIFIED_NAME)).then(pl.col("metric"))
                  .otherwise(pl.col("metric").str.to_lowercase())).alias("metric"),
        lower("segment").fill_null("total"),
    )
    df = df.with_columns(
        pl.when(pl.col("qualifier").is_null() & pl.col("value_high").is_not_null()).then(pl.lit("range"))
        .otherwise(pl.col("qualifier").fill_null("exact")).alias("qualifier")
    )
    for c in ("entity", "metric", "unit", "reported_at", "source"):
        flag(pl.col(c).is_null(), c, "is required")
    flag(pl.col("value").is_null() & (pl.col("op") != "retract"), "value", "is required")
    named = pl.col("metric").str.contains(METRIC_NAME)
    flag(pl.col("supersedes").is_not_null() & ~pl.col("supersedes").str.contains(r"^[0-9a-f]{32}$"),
         "supersedes", "is not an event id (32 hex digits)")

    # -- metric names ----------------------------------------------------------------------
    df = df.with_columns(pl.col("metric").replace(catalog.aliases).alias("metric"))

    # -- numbers ---------------------------------------------------------------------------
    def number(col: str) -> tuple[pl.Expr, pl.Expr]:
        v = pl.col(col)
        if not df.select(v.str.contains_any(["(", ","]).any()).item():
            return v, v.str.contains(_NUMBER)      # no parentheses, no thousands: as written
        paren = v.str.contains(r"^\(.*\)$").fill_null(False)
        inner = pl.when(paren).then(v.str.slice(1, v.str.len_chars() - 2).str.strip_chars()).otherwise(v)
        inner = pl.when(inner.str.contains(_THOUSANDS)).then(inner.str.replace_all(",", "")).otherwise(inner)
        ok = inner.str.contains(_NUMBER) & ~(paren & inner.str.contains(r"^[+-]"))
        text = pl.when(paren).then(pl.lit("-") + inner).otherwise(inner)
        return text, ok

    vtext, vok = number("value")
    htext, hok = number("value_high")
    df = df.with_columns(vtext.alias("__v"), vok.alias("__vok"), htext.alias("__h"), hok.alias("__hok"))
    flag(pl.col("value").is_not_null() & ~pl.col("__vok"), "value",
         "is not a number (use '.' for decimals; '1,234.5' and '(12)' are read as 1234.5 and -12)")
    flag(pl.col("value_high").is_not_null() & ~pl.col("__hok"), "value_high", "is not a number")

    # -- units -----------------------------------------------------------------------------
    units = _lookup(df["unit"].drop_nulls(), lambda u: (lambda p: (p.base, p.exponent))(parse_unit(u)),
                    "unit", {"__base": pl.String, "__exp": pl.Int64}, "__unit_err")
    df = df.join(units, on="unit", how="left")
    flag(pl.col("__unit_err").is_not_null(), "unit", pl.col("__unit_err"))

    def scaled(text: str, ok: str) -> pl.Expr:
        if not df.select((pl.col(ok) & pl.col(text).str.contains("[eE]")).any()).item():
            # no exponent written: the unit's is the number's (exact: the text is parsed once)
            return (pl.col(text) + pl.lit("e") + pl.col("__exp").cast(pl.String)).cast(pl.Float64, strict=False)
        mant = pl.col(text).str.extract(r"^([+-]?[\d.]+)", 1)
        exp = pl.col(text).str.extract(r"[eE]([+-]?\d+)$", 1).cast(pl.Int64).fill_null(0) + pl.col("__exp")
        return (mant + pl.lit("e") + exp.cast(pl.String)).cast(pl.Float64, strict=False)

    def plus_zero(v: pl.Expr) -> pl.Expr:   # -0.0 (written "-0", "(0)") is stored as 0
        return pl.when(v == 0).then(pl.lit(0.0)).otherwise(v)

    df = df.with_columns(
        plus_zero(pl.when(pl.col("__vok")).then(scaled("__v", "__vok"))).alias("__value"),
        plus_zero(pl.when(pl.col("__hok")).then(scaled("__h", "__hok"))).alias("__value_high"),
    )
    for c, src in (("__value", "value"), ("__value_high", "value_high")):
        flag(pl.col(c).is_not_null() & ~pl.col(c).is_finite(), src, "is out of range")
    flag(pl.col("value_high").is_not_null() & (pl.col("qualifier") != "range"), "value_high",
         "is only for qualifier 'range'")
    flag(pl.col("__value_high").is_not_null() & pl.col("__value").is_not_null()
         & (pl.col("__value_high") < pl.col("__value")), "value_high", "is below value")

    # -- dims ------------------------------------------------------------------------------
    dims = _lookup(df["dims"].fill_null(""), canonical_dims, "dims", {"__dims": pl.String}, "__dims_err")
    df = df.with_columns(pl.col("dims").fill_null("")).join(dims, on="dims", how="left")
    flag(pl.col("__dims_err").is_not_null(), "dims", pl.col("__dims_err"))

    # -- periods ---------------------------------------------------------------------------
    df = _labelled_periods(df, fye)
    flag(pl.col("__p_err").is_not_null(), "period", pl.col("__p_err").str.replace(r"^'.*?' ", ""))
    both = pl.col("period").is_not_null() & (pl.col("period_start").is_not_null() | pl.col("period_end").is_not_null())
    flag(both, "period", "give either period or period_start/period_end, not both")
    neither = pl.col("period").is_null() & (pl.col("period_start").is_null() | pl.col("period_end").is_null())
    flag(neither, "period", "is required (or both period_start and period_end)")
    for c in ("period_start", "period_end", "reported_at"):
        parsed = pl.when(pl.col(c).str.contains(_DATE)).then(pl.col(c).str.to_date("%Y-%m-%d", strict=False))
        df = df.with_columns(per_value(df, c, parsed).alias(f"__{c}"))
        flag(pl.col(c).is_not_null() & pl.col(f"__{c}").is_null(), c, "is not a date (YYYY-MM-DD)")
    df = df.with_columns(   # a period label read, else the dates given (a label that failed is flagged)
        pl.coalesce("__p_start", "__period_start").alias("__start"),
        pl.coalesce("__p_end", "__period_end").alias("__end"),
    )
    # the event rules as the store states them (store.rules): names, allowed values, period order, a range's high end
    for mask, column, reason in polars_checks({"period_start": "__start", "period_end": "__end",
                                               "value_high": "value_high"}, each=lambda c, e: per_value(df, c, e)):
        flag(mask, column, reason)
    too_old = f"is before the year {MIN_YEAR} (period labels have four-digit years)"
    flag(pl.col("period").is_not_null() & (pl.col("__p_start").dt.year() < MIN_YEAR), "period", too_old)
    for c in ("period_start", "period_end", "reported_at"):
        flag(pl.col(f"__{c}").dt.year() < MIN_YEAR, c, too_old)
    flag((pl.col("kind") == "actual") & (pl.col("__reported_at") < pl.col("__end")), "reported_at",
         pl.lit("an actual cannot be reported before its period ends (") + pl.col("__end").cast(pl.String) + ")")
    flag(pl.col("__reported_at") > pl.lit(today + FUTURE_SLACK), "reported_at", "is in the future")

    # -- authority -------------------------------------------------------------------------
    auth = _lookup(df["source"].drop_nulls(), catalog.authority_of, "source", {"__auth": pl.String}, "__auth_err")
    df = df.join(auth, on="source", how="left")
    df = df.with_columns(pl.coalesce("authority", "__auth").alias("authority"))

    # -- metrics the catalog does not know (warned of below, for the rows accepted) ----------
    uncatalogued = pl.col("metric").is_not_null() & named & ~pl.col("metric").is_in(list(catalog.metrics))
    if catalog.strict:
        flag(uncatalogued, "metric", "is not in the catalog (strict catalog)")

    run_checks()

    # -- conflicts within the batch --------------------------------------------------------
    key = ["entity", "metric", "segment", "__dims", "__start", "__end", "kind", "__base", "source",
           "__reported_at", "op"]
    clean = df.filter(pl.col("__value").is_not_null() & pl.col("__start").is_not_null())
    # grouped first by a hash of the key (one column, not eleven): equal keys hash alike, so a
    # batch with no hash group of two values has no conflict (nearly every batch); a group that
    # has one is looked at by the key itself
    by_hash = pl.DataFrame({"k": clean.select(key).hash_rows(), "v": clean["__value"]})
    if by_hash.group_by("k").agg(pl.col("v").n_unique() > 1)["v"].any():
        conflicts = (
            clean.group_by(key).agg(pl.col("__value").n_unique().alias("n"), pl.col("__row"))
            .filter(pl.col("n") > 1).explode("__row").select("__row")
        )
    else:
        conflicts = clean.clear().select("__row")
    if conflicts.height:
        # each row names another of its group: the first, or for the first itself the second
        rows = pl.col("__row").sort()
        first = clean.join(conflicts, on="__row").group_by(key).agg(rows.first().alias("__first"),
                                                                    rows.get(1).alias("__second"))
        flagged = clean.join(conflicts, on="__row").join(first, on=key, nulls_equal=True)
        other = pl.when(pl.col("__row") == pl.col("__first")).then(pl.col("__second")).otherwise(pl.col("__first"))
        probs.append(flagged.select(
            "__row", pl.lit("value").alias("column"), pl.col("value"),
            (pl.lit("conflicts with row ") + other.cast(pl.String)
             + pl.lit(" of this batch: the same fact, source and date with another value")).alias("reason")))

    problems_df = (pl.concat(probs) if probs else
                   pl.DataFrame(schema={"__row": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}))
    problems_df = problems_df.unique(maintain_order=True).sort("__row", maintain_order=True)
    problems = [RowProblem(file, r, c, v, why) for r, c, v, why in problems_df.iter_rows()]
    bad_rows = set(problems_df["__row"].to_list())

    good = df.filter(~pl.col("__row").is_in(list(bad_rows))) if bad_rows else df   # (no copy when all are good)
    warnings, new_metrics = _uncatalogued(good.select("metric", "__base", "__start", "__end", "__row"),
                                          uncatalogued, file)
    as_reported = pl.concat_str([pl.col("value").fill_null(""), pl.col("unit").fill_null("")], separator=" ")
    events = good.select(
        pl.col("op"), pl.col("entity"), pl.col("metric"), pl.col("segment"),
        pl.col("__dims").alias("dims"), pl.col("__start").alias("period_start"),
        pl.col("__end").alias("period_end"), pl.col("__value").alias("value"),
        pl.col("__value_high").alias("value_high"), pl.col("__base").alias("unit"),
        pl.col("kind"), pl.col("qualifier"), pl.col("authority"),
        pl.col("__reported_at").alias("reported_at"), pl.col("source"), pl.col("source_ref"),
        as_reported.alias("as_reported"), pl.col("note"), pl.col("supersedes"), pl.col("__row"),
    )
    return Normalised(events, problems, warnings, new_metrics, bad_rows)
