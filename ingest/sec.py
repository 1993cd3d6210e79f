"""SEC EDGAR XBRL companyfacts (``data.sec.gov/api/xbrl/companyfacts/CIK##########.json``).

Every fact of every taxonomy (us-gaap, ifrs-full, dei, srt, ...) becomes one canonical row, hence
one event; nothing is dropped:

- ``entity``: ``--entity`` if given, else the catalog's id for the CIK (``aapl``), else ``cik<n>``;
- ``metric``: the standard name from ``data/catalog/sec_concepts.toml`` where the concept is mapped
  and wins its filing's priority, else the concept itself (``us-gaap:SalesRevenueNet``);
- ``period_start``/``period_end`` from ``start``/``end`` (an instant when ``start`` is absent);
  periods are labelled later from their dates on the entity's fiscal calendar, never from the
  row's ``fy``/``fp`` (those describe the filing, not the period);
- ``reported_at`` = ``filed``; ``source`` = ``<accession> <form>``; ``source_ref`` = the concept;
  ``note`` keeps ``fy``, ``fp`` and ``frame`` for lineage (not part of the event's identity, so a
  newer snapshot whose frames moved adds nothing for facts already held).

Three kinds of row need a decision, made here so that the canonical validation never rejects
a real filing:

- a value for a period that had not ended when it was filed (a subsequent-event disclosure, a
  quarter still running) is not an ``actual``; it becomes ``kind = 'guidance'`` (the company's own
  figure for an unfinished period) with a note;
- a later filing that repeats an earlier figure rounded (4,130,162,000 shown as 4,130,000,000)
  is ``qualifier = 'approx'``, so it never hides the exact figure (an approximation never wins
  over an exact figure of the same authority);
- one filing giving two different values for the same concept, period and unit: both are kept;
  the second and later values (in file order) get the source ``<accession> <form> #2`` and a note,
  so that the batch's conflict check does not reject them; the facts view then picks one of them
  deterministically (same publication and recording time: the larger event id), and ``history``
  shows both.

Every row of the file is one event, so the event count equals the file's fact count. A row
identical to an earlier one (same concept, unit, period, value and accession; SEC files
occasionally repeat a fact) would get the same content-derived id, so the repeat's
``source_ref`` says ``#repeat2``: it is a second statement of the same figure in the same filing,
shown by ``history`` and changing no current value. Ids stay stable across snapshots.

The fiscal year end is read from ``dei:CurrentFiscalYearEndDate`` when the file has it, else from
the latest annual (350-380 day) period of the latest annual report, and is written as an entity
record, so 52/53-week years (Apple's last Saturday of September) label correctly.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from ingest.catalog import Catalog, EntityDef
from ingest.config import Settings
from ingest.errors import BadFile, CatalogError
from ingest.filetypes import read_input
from ingest.readers import Batch, register
from ingest.units import parse_unit
from store.errors import clip
from store.periods import nominal_end

FORMAT = "sec-companyfacts"
MAPPING_FILE = "sec_concepts.toml"
ANNUAL_FORMS = ("10-K", "10-K/A", "20-F", "20-F/A", "40-F", "40-F/A", "10-KT", "10-KT/A")
#: Least number of trailing zeros for a value to count as a rounded re-report (thousands).
MIN_ROUNDING_ZEROS = 3
#: The note on a value for a period that had not ended when it was filed (kept as guidance).
EARLY_NOTE = "filed before the period ended: kept as guidance, not an actual"


def sniff(path: Path, head: bytes) -> bool:
    """A companyfacts file: a JSON object whose first keys include ``cik`` and ``facts``."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text[:1] == b"{" and b'"cik"' in text and (b'"facts"' in text or b'"entityName"' in text)


@cache
def _mapping(catalog_root: str) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
    """concept -> (metric, priority) and unit key -> unit text, from ``sec_concepts.toml``."""
    path = Path(catalog_root) / MAPPING_FILE
    if not path.is_file():
        return {}, {}
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    concepts: dict[str, tuple[str, int]] = {}
    for metric, names in doc.get("metrics", {}).items():
        for prio, concept in enumerate(names):
            if concept in concepts:
                raise CatalogError(f"{path}: {concept} is mapped to both {concepts[concept][0]} and {metric}")
            concepts[concept] = (metric, prio)
    return concepts, {str(k): str(v) for k, v in doc.get("units", {}).items()}


def _unit(key: str, aliases: dict[str, str]) -> tuple[str, str, str]:
    """An XBRL unit key -> (unit text our parser reads, dims, base unit). Unknown keys stay apart by dims."""
    text = aliases.get(key, key)
    try:
        return text, "", parse_unit(text).base
    except ValueError:
        pass
    safe = "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in key)
    if "/" in key:
        num = key.split("/", 1)[0]
        try:
            return f"{num}/unit", f"xbrl_unit={safe}", parse_unit(num).base + "/unit"
        except ValueError:
            pass
    return "units", f"xbrl_unit={safe}", "units"


# -- the rules the data sets reader (ingest.fsds) shares, so that a fact read through both is one ----

def concept_table(catalog: Catalog) -> tuple[pl.DataFrame, dict[str, str]]:
    """``sec_concepts.toml`` as a frame to join on (``qname``; ``std``, its standard name; ``prio``,
    0 the first choice), and the unit aliases."""
    concepts, aliases = _mapping(str(catalog.root) if catalog.root else "")
    frame = pl.DataFrame({"qname": list(concepts), "std": [m for m, _ in concepts.values()],
                          "prio": [p for _, p in concepts.values()]},
                         schema={"qname": pl.String, "std": pl.String, "prio": pl.Int64})
    return frame, aliases


def metric_names(best_name: pl.Expr) -> list[pl.Expr]:
    """``metric`` and ``__n_shadow`` of rows joined to :func:`concept_table`, with ``__best`` the best
    priority of a mapped concept of the same filing and fact: the winner takes the standard name; a
    mapped concept that lost keeps its own, with a note naming the winner (``best_name``)."""
    shadowed = pl.col("std").is_not_null() & (pl.col("prio") > pl.col("__best"))
    return [pl.when(pl.col("std").is_null() | shadowed).then(pl.col("qname")).otherwise(pl.col("std")).alias("metric"),
            pl.when(shadowed).then(pl.lit("shadowed by ") + best_name + pl.lit(" in the same filing"))
            .alias("__n_shadow")]


def kind_of(early: pl.Expr) -> pl.Expr:
    """A value filed before its period ended is ``guidance`` (noted :data:`EARLY_NOTE`), else ``actual``."""
    return pl.when(early).then(pl.lit("guidance")).otherwise(pl.lit("actual")).alias("kind")


def filing_note(fy: str = "fy", fp: str = "fp") -> pl.Expr:
    """``fy=2024 fp=Q3``: the filing's own fiscal year and period, kept for lineage."""
    return pl.concat_str([pl.lit("fy="), pl.col(fy).fill_null("?"), pl.lit(" fp="), pl.col(fp).fill_null("?")])


def filer_id(catalog: Catalog, cik: str) -> str:
    """The entity id of a CIK: the catalog's (``aapl``), else ``cik<n>``."""
    known = catalog.entity_by_cik(cik)
    return known.entity if known else f"cik{cik}"


def filer_record(catalog: Catalog, cik: str, name: str, month: int | None, description: str | None) -> EntityDef:
    """A filer's entity record: the catalog's id, name and ticker where it knows the CIK, else the
    filed name; the fiscal year end month read from the filings, else the catalog's, else 12."""
    known = catalog.entity_by_cik(cik)
    return EntityDef(filer_id(catalog, cik), (known.name if known and known.name else None) or name or None,
                     known.ticker if known else None, cik,
                     month or (known.fiscal_year_end_month if known else 12), description)


def _flatten(doc: dict[str, Any], file: str) -> pl.DataFrame:
    cols: dict[str, list[Any]] = {k: [] for k in (
        "taxonomy", "concept", "unit_key", "start", "end", "val", "accn", "fy", "fp", "form", "filed", "frame")}
    facts = doc.get("facts")
    if not isinstance(facts, dict):
        raise BadFile(file, "is not SEC companyfacts: no 'facts' object")
    for taxonomy, concepts in facts.items():
        if not isinstance(concepts, dict):
            raise BadFile(file, f"facts.{clip(taxonomy)} is not an object of concepts")
        for concept, body in concepts.items():
            units = body.get("units") if isinstance(body, dict) else None
            if not isinstance(units, dict):
                raise BadFile(file, f"{clip(f'{taxonomy}:{concept}')} has no 'units' object")
            for unit_key, rows in units.items():
                if not isinstance(rows, list):
                    raise BadFile(file, f"{clip(f'{taxonomy}:{concept}')} unit {clip(unit_key)} is not a list of facts")
                for r in rows:
                    if not isinstance(r, dict):
                        raise BadFile(file, f"{clip(f'{taxonomy}:{concept}')} holds a fact that is not an object")
                    cols["taxonomy"].append(taxonomy)
                    cols["concept"].append(concept)
                    cols["unit_key"].append(unit_key)
                    for k in ("start", "end", "val", "accn", "fy", "fp", "form", "filed", "frame"):
                        v = r.get(k)
                        cols[k].append(None if v is None else str(v))
    if not cols["val"]:
        raise BadFile(file, "holds no facts")
    return pl.DataFrame(cols, schema={k: pl.String for k in cols})


def _cik(doc: dict[str, Any], file: str) -> str:
    raw = str(doc.get("cik", "")).strip()
    if not raw.isdigit():
        raise BadFile(file, f"'cik' {clip(str(raw))!r} is not a number")
    return str(int(raw))


def fiscal_year_end(df: pl.DataFrame) -> tuple[int | None, str | None]:
    """(month, description) of the fiscal year end, from the filings themselves.

    ``dei:CurrentFiscalYearEndDate`` (``--09-28``) when present; else the end of the latest annual
    period (350-380 days) that an annual report covers as its own fiscal year (``fp == 'FY'``,
    the latest end in that filing). The description says whether years are 52/53 weeks.
    """
    dei = df.filter((pl.col("taxonomy") == "dei") & (pl.col("concept") == "CurrentFiscalYearEndDate"))
    dates = df.filter(pl.col("start").is_not_null()).with_columns(
        pl.col("start").str.to_date(strict=False).alias("s"), pl.col("end").str.to_date(strict=False).alias("e"))
    year_long = pl.col("form").is_in(ANNUAL_FORMS) & ((pl.col("e") - pl.col("s")).dt.total_days() + 1).is_between(350, 380)
    annual = dates.filter(year_long & (pl.col("fp") == "FY"))
    if annual.height == 0:  # a file without fp: any year-long period of an annual report
        annual = dates.filter(year_long)
    annual = annual.filter(pl.col("e") == pl.col("e").max().over("accn"))
    weeks = ""
    if annual.height:
        days = ((annual["e"] - annual["s"]).dt.total_days() + 1).unique().to_list()
        if any(d in (364, 371) for d in days):
            weeks = f" (52/53 weeks, ending on a {annual['e'].max().strftime('%A')})"  # type: ignore[union-attr]
    if dei.height:
        text = str(dei.sort("filed")["val"][-1]).strip()
        try:
            md = dt.date.fromisoformat("2001-" + text.lstrip("-"))
            return nominal_end(md).month, f"--{md:%m-%d}{weeks}"
        except ValueError:
            pass
    if not annual.height:
        return None, None
    latest = annual.sort(["filed", "e"])["e"][-1]
    return nominal_end(latest).month, f"--{latest:%m-%d}{weeks}"


@register(FORMAT, sniff=sniff)
def read_companyfacts(path: Path, catalog: Catalog | None = None) -> Batch:
    """Read a companyfacts JSON file into canonical rows and the entity's record."""
    file = str(path)
    try:
        doc = json.loads(read_input(path), parse_float=str, parse_int=str)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadFile(file, f"is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "facts" not in doc:
        raise BadFile(file, "is not SEC companyfacts (a JSON object with 'cik' and 'facts')")
    catalog = catalog or Catalog.load(Settings().catalog)
    mapping, unit_aliases = concept_table(catalog)
    cik = _cik(doc, file)
    entity = filer_id(catalog, cik)
    df = _flatten(doc, file)
    for col in ("end", "val", "accn", "filed", "form"):
        missing = df.filter(pl.col(col).is_null())
        if missing.height:
            r = missing.row(0, named=True)
            raise BadFile(file, f"{clip(str(r['taxonomy']) + ':' + str(r['concept']))}: a fact has no '{col}'")

    df = df.with_row_index("__i").with_columns(
        (pl.col("taxonomy") + ":" + pl.col("concept")).alias("qname"),
        pl.col("val").cast(pl.Float64, strict=False).alias("__v"),
    )
    # -- metric names: mapped concepts, the highest priority of a filing's period wins --------
    df = df.join(mapping, on="qname", how="left")
    grp = ["std", "accn", "start", "end", "unit_key"]
    df = df.with_columns(pl.col("prio").min().over(grp).alias("__best"))
    df = df.with_columns(metric_names(pl.col("qname").filter(pl.col("prio") == pl.col("__best")).first().over(grp)))
    # -- units ---------------------------------------------------------------------------------
    keys = df["unit_key"].unique().to_list()
    pairs = [_unit(k, unit_aliases) for k in keys]
    units = pl.DataFrame({"unit_key": keys, "unit": [p[0] for p in pairs], "dims": [p[1] for p in pairs],
                          "__base": [p[2] for p in pairs]},
                         schema={"unit_key": pl.String, "unit": pl.String, "dims": pl.String, "__base": pl.String})
    df = df.join(units, on="unit_key", how="left")
    # -- two values for one concept, period and unit in one filing -------------------------------
    # (keyed by the stored unit, so two unit keys that normalise alike never collide in the batch)
    fact = ["qname", "__base", "dims", "start", "end", "accn"]
    df = df.with_columns(pl.col("val").rank("dense").over(fact).alias("__k"),
                         pl.col("__i").min().over(fact + ["val"]).alias("__first_i"))
    df = df.with_columns(pl.col("__first_i").rank("dense").over(fact).cast(pl.Int64).alias("__dup"),
                         pl.col("__i").rank("ordinal").over(fact + ["val"]).cast(pl.Int64).alias("__rep"))
    # -- rounded re-reports of a figure filed earlier ---------------------------------------------
    df = _mark_rounded(df)
    # -- kind: a period not yet ended when filed is not an actual ---------------------------------
    early = pl.col("filed") < pl.col("end")
    df = df.with_columns(
        kind_of(early),
        pl.concat_str([
            filing_note(),
            pl.when(pl.col("frame").is_not_null()).then(pl.lit("frame=") + pl.col("frame")),
            pl.col("__n_shadow"),
            pl.when(early).then(pl.lit(EARLY_NOTE)),
            pl.when(pl.col("__dup") > 1).then(pl.lit("another value of this concept and period is in the same filing")),
            pl.when(pl.col("__rep") > 1).then(pl.lit("repeats an identical fact of the same filing")),
            pl.col("__n_round"),
        ], separator="; ", ignore_nulls=True).alias("note"),
        (pl.col("accn") + " " + pl.col("form")
         + pl.when(pl.col("__dup") > 1).then(pl.lit(" #") + pl.col("__dup").cast(pl.String)).otherwise(pl.lit("")))
        .alias("source"),
    )
    out = df.sort("__i").select(
        pl.lit(entity).alias("entity"), pl.col("metric"),
        pl.coalesce("start", "end").alias("period_start"), pl.col("end").alias("period_end"),
        pl.col("val").alias("value"), pl.col("unit"), pl.col("dims"), pl.col("kind"),
        pl.col("qualifier"), pl.lit("primary").alias("authority"),
        pl.col("filed").alias("reported_at"), pl.col("source"),
        (pl.col("qname") + pl.when(pl.col("__rep") > 1).then(pl.lit(" #repeat") + pl.col("__rep").cast(pl.String))
         .otherwise(pl.lit(""))).alias("source_ref"),
        pl.col("note"),
        (pl.col("__i") + 1).cast(pl.Int64).alias("__row"),
    )
    month, description = fiscal_year_end(df)
    return Batch(out, entities=[filer_record(catalog, cik, str(doc.get("entityName") or ""), month, description)])


def _mark_rounded(df: pl.DataFrame) -> pl.DataFrame:
    """``qualifier``: 'approx' for a value that repeats a figure filed earlier, rounded.

    A value with at least three trailing zeros that differs from an earlier-filed value of the
    same concept, unit and period, but equals it rounded to those zeros, is a rounding re-report.
    """
    key = ["qname", "unit_key", "start", "end"]
    v = df.select("__i", *key, "filed", "__v").filter(pl.col("__v").is_not_null() & pl.col("__v").is_finite())
    ints = v.filter((pl.col("__v") == pl.col("__v").round(0)) & (pl.col("__v").abs() < 1e17))
    zeros = pl.lit(0)
    for k in range(MIN_ROUNDING_ZEROS, 13):
        zeros = pl.when((pl.col("__v") % (10.0 ** k)) == 0).then(pl.lit(k)).otherwise(zeros)
    cand = ints.with_columns(zeros.alias("__z")).filter((pl.col("__z") >= MIN_ROUNDING_ZEROS) & (pl.col("__v") != 0))
    if cand.height == 0:
        return df.with_columns(pl.lit("exact").alias("qualifier"), pl.lit(None, pl.String).alias("__n_round"))
    earlier = v.select(*key, pl.col("filed").alias("e_filed"), pl.col("__v").alias("e_v"))
    hits = (cand.join(earlier, on=key, how="inner", nulls_equal=True)
            .filter((pl.col("e_filed") < pl.col("filed")) & (pl.col("e_v") != pl.col("__v"))
                    & (((pl.col("e_v") / (10.0 ** pl.col("__z"))).round(0) * (10.0 ** pl.col("__z"))) == pl.col("__v")))
            .group_by("__i").agg(pl.col("e_v").first(), pl.col("e_filed").min()))
    hits = hits.with_columns(
        (pl.lit("rounded re-report of ") + pl.col("e_v").cast(pl.Int64).cast(pl.String)
         + pl.lit(" filed ") + pl.col("e_filed")).alias("__n_round"))
    df = df.join(hits.select("__i", "__n_round"), on="__i", how="left")
    return df.with_columns(pl.when(pl.col("__n_round").is_not_null()).then(pl.lit("approx"))
                           .otherwise(pl.lit("exact")).alias("qualifier"))
