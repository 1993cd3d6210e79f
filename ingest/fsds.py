"""SEC Financial Statement Data Sets: a quarter's zip (``2024q3.zip``) of ``sub.txt``, ``num.txt``,
``tag.txt`` and ``pre.txt``, tab-separated UTF-8, every XBRL number of every filing of the quarter.

Every row of ``num.txt`` with a value becomes one event, on the rules of the companyfacts reader
(:mod:`ingest.sec`), so that a fact reached through both is the same fact:

- ``entity``: the catalog's id for the submission's CIK (``aapl``), else ``cik<n>``; its name and
  fiscal year end (``fye``, a month) from ``sub.txt`` are written as entity records;
- ``metric``: the standard name from ``sec_concepts.toml`` where ``<taxonomy>:<tag>`` is mapped and
  wins its filing's priority, else ``<taxonomy>:<tag>``. The taxonomy is the prefix of ``version``
  (``us-gaap/2009`` -> ``us-gaap``); a custom tag (``version`` is the accession) is kept under the
  filer's own taxonomy, the prefix of its instance document (``aapl-20090627.xml`` -> ``aapl``);
- period: ``period_end`` is ``ddate``, ``period_start`` the first day of the month ``qtrs``
  quarters earlier (``qtrs = 0``: an instant). The SEC rounds both to whole months. A filer whose
  own period ends off the month end (the date its instance document is named after,
  ``aapl-20090627.xml``, or for inline XBRL ``aapl-20240928_htm.xml``) keeps a 52/53-week calendar: its dates are moved to that weekday
  (:func:`_span`), so they are the days companyfacts gives (and the ids the same);
- ``reported_at`` = ``filed``; ``source`` = ``<accession> <form>``; ``source_ref`` = the concept;
- ``unit`` from ``uom`` through companyfacts' unit rules; a ``perShare`` tag (``tag.txt``) in a
  currency is per share (``USD`` -> ``USD/shares``), as companyfacts states it;
- ``segments`` (``Axis=Member;...``) and ``coreg`` become dimensions (``dims``); files from before
  the SEC added ``segments`` (the readme of that era lists ``coreg`` only) are read alike.

A value for a period not yet ended when filed is ``guidance``, as in companyfacts. ``num.txt`` has
one row per (accession, tag, version, ddate, qtrs, uom, segments, coreg), so a filing never holds
two values or a repeat of one fact. A row without a value (an XBRL nil) is not an event: the
reader counts them in a warning.

``num.txt`` is read in blocks (``pyarrow.csv.open_csv``) and parsed once: a first pass over its
blocks decides, from the key columns of mapped tags, which concept takes a standard name, and
keeps the blocks (Arrow, lz4) in a temporary file; the second reads them back and makes the
events, one block at a time. Only ``sub.txt``, the ``perShare`` tags and the keys of mapped rows
are held whole (after the first pass, of the facts two mapped concepts compete for).
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import weakref
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc

from ingest.canonical import per_value
from ingest.catalog import Catalog, EntityDef
from ingest.config import Settings
from ingest.errors import BadFile, first_line
from ingest.readers import Batch, decode, register
from ingest.sec import EARLY_NOTE, _unit, concept_table, filer_record, filing_note, kind_of, metric_names
from store.periods import nominal_end

FORMAT = "sec-fsds"
#: Bytes of ``num.txt`` parsed per block (about 100,000 rows): the memory a chunk takes.
BLOCK_BYTES = 8 << 20
NUM_REQUIRED = ("adsh", "tag", "version", "ddate", "qtrs", "uom", "value")
NUM_COLUMNS = (*NUM_REQUIRED, "segments", "coreg", "footnote")
SUB_REQUIRED = ("adsh", "cik", "name", "form", "filed")
SUB_COLUMNS = (*SUB_REQUIRED, "fye", "fy", "fp", "instance")
#: ``qtrs``: the whole number of quarters a value spans (the SEC's readme: "the count of the number
#: of quarters represented by the data value", 0 for an instant). Most are 0 to 4; filings before
#: 2015 also give inception-to-date values of a development-stage company (5 quarters and more),
#: stored under their dates (``2008-01-01/2009-09-30``). Past a century it is no financial period.
QTRS = r"^\d{1,3}$"
QTRS_MAX = 400
_DATE8 = r"^\d{8}$"


def sniff(path: Path, head: bytes) -> bool:
    """A zip holding ``num.txt`` or ``sub.txt``, or a ``.zip`` too damaged to list (said by the reader)."""
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.rsplit("/", 1)[-1] for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError):
        return path.suffix.lower() == ".zip"
    return bool(names & {"num.txt", "sub.txt"})


def _member(zf: zipfile.ZipFile, name: str) -> str | None:
    return next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == name), None)


def _header(zf: zipfile.ZipFile, member: str, file: str, required: tuple[str, ...]) -> list[str]:
    with zf.open(member) as fh:
        line = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    names = [c.strip().lower() for c in line.split("\t")]
    missing = [c for c in required if c not in names]
    if missing:
        raise BadFile(file, f"has no column {missing[0]!r} (a data sets file has {', '.join(required)})", row=1)
    return names


def _csv(wanted: tuple[str, ...], header: list[str]) -> tuple[
        pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    """Tab-separated, no quoting, every wanted column as text (empty: null)."""
    cols = [c for c in wanted if c in header]
    return (pacsv.ReadOptions(block_size=BLOCK_BYTES),
            pacsv.ParseOptions(delimiter="\t", quote_char=False),
            pacsv.ConvertOptions(column_types={c: pa.string() for c in cols}, include_columns=cols,
                                 strings_can_be_null=True, quoted_strings_can_be_null=False))


def _damaged(file: str, exc: BaseException) -> BadFile:
    if isinstance(exc, (zipfile.BadZipFile, EOFError)):
        return BadFile(file, f"is truncated or damaged: {exc}")
    first = first_line(exc)
    if "UTF8" in first or "UTF-8" in first:
        return BadFile(file, f"is not UTF-8 text ({first})")
    return BadFile(file, f"cannot be read as tab-separated text: {first}")


def _date(text: str) -> dt.date | None:
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 and text.isdigit() else None
    except ValueError:
        return None


def _submissions(zf: zipfile.ZipFile, zfile: str, catalog: Catalog) -> tuple[pl.DataFrame, list[EntityDef]]:
    """``sub.txt``: one row per accession (entity, source, filed, note, custom taxonomy) and the entities."""
    member = _member(zf, "sub.txt")
    file = f"{zfile}/sub.txt"
    if member is None:
        raise BadFile(zfile, "holds no sub.txt (a data sets zip has sub.txt and num.txt)")
    header = _header(zf, member, file, SUB_REQUIRED)
    raw = zf.read(member)
    decode(raw, file)                                       # names the line of a non-UTF-8 byte
    table = pacsv.read_csv(io.BytesIO(raw), *_csv(SUB_COLUMNS, header))
    sub = pl.from_arrow(table)
    assert isinstance(sub, pl.DataFrame)
    sub = sub.with_columns([pl.lit(None, pl.String).alias(c) for c in SUB_COLUMNS if c not in sub.columns])
    sub = sub.with_row_index("__row", offset=2)
    for col in SUB_REQUIRED:
        bad = sub.filter(pl.col(col).is_null())
        if bad.height:
            raise BadFile(file, "is empty", row=int(bad["__row"][0]), column=col)
    bad = sub.filter(~pl.col("cik").str.contains(r"^\d{1,10}$"))
    if bad.height:
        raise BadFile(file, "is not a CIK (digits)", row=int(bad["__row"][0]), column="cik", value=bad["cik"][0])
    dup = sub.filter(pl.col("adsh").is_duplicated())
    if dup.height:
        raise BadFile(file, "appears twice", row=int(dup["__row"][1]), column="adsh", value=dup["adsh"][0])
    filed = {t: _date(t) for t in sub["filed"].unique().to_list()}
    bad = sub.filter(pl.col("filed").replace_strict(filed, default=None, return_dtype=pl.Date).is_null())
    if bad.height:
        raise BadFile(file, "is not a date (YYYYMMDD)", row=int(bad["__row"][0]), column="filed", value=bad["filed"][0])

    records: dict[str, EntityDef] = {}
    ids: dict[str, str] = {}
    for r in sub.sort("filed").iter_rows(named=True):        # the latest filing's name and year end win
        cik = str(int(r["cik"]))
        record = filer_record(catalog, cik, r["name"].strip(), *_fiscal_year_end(r["fye"]))
        ids[cik] = record.entity
        records[record.entity] = record
    prefix = pl.col("instance").str.to_lowercase().str.extract(r"^([a-z][a-z0-9\-]*?)-", 1)
    out = sub.select(
        "adsh",
        pl.col("cik").cast(pl.Int64).cast(pl.String).replace_strict(ids, default=None).alias("entity"),
        (pl.col("adsh") + " " + pl.col("form").str.strip_chars()).alias("source"),
        pl.col("filed").str.strptime(pl.Date, "%Y%m%d").cast(pl.String).alias("reported_at"),
        filing_note().alias("__sub_note"),
        pl.coalesce(prefix, pl.lit("cik") + pl.col("cik").str.strip_chars_start("0")).alias("__custom"),
        pl.col("instance").str.extract(r"-(\d{8})(?:_htm)?\.xml$", 1).alias("__exact"),
    )
    return out, list(records.values())


def _fiscal_year_end(fye: str | None) -> tuple[int | None, str | None]:
    """``'0930'`` -> (9, '--09-30'); the SEC rounds it to a month end already."""
    if not fye or len(fye.strip()) != 4 or not fye.strip().isdigit():
        return None, None
    try:
        d = dt.date(2000, int(fye[:2]), int(fye[2:]))
    except ValueError:
        return None, None
    return nominal_end(d).month, f"--{d:%m-%d}"


def _per_share(zf: zipfile.ZipFile, zfile: str) -> pl.DataFrame:
    """(tag, version) of the ``perShare`` tags of ``tag.txt`` (none when it is absent)."""
    empty = pl.DataFrame(schema={"tag": pl.String, "version": pl.String, "__per_share": pl.Boolean})
    member = _member(zf, "tag.txt")
    if member is None:
        return empty
    file = f"{zfile}/tag.txt"
    header = _header(zf, member, file, ("tag", "version", "datatype"))
    parts = []
    with zf.open(member) as fh:
        for block in pacsv.open_csv(fh, *_csv(("tag", "version", "datatype"), header)):
            df = pl.from_arrow(block)
            assert isinstance(df, pl.DataFrame)
            parts.append(df.filter(pl.col("datatype") == "perShare").select("tag", "version"))
    if not parts:
        return empty
    return pl.concat(parts).unique().with_columns(pl.lit(True).alias("__per_share"))


def _blocks(zf: zipfile.ZipFile, member: str, wanted: tuple[str, ...], header: list[str],
            file: str) -> Iterator[pa.RecordBatch]:
    """``num.txt`` a block at a time as Arrow, all text, the columns of ``wanted`` it has."""
    try:
        with zf.open(member) as fh:
            yield from pacsv.open_csv(fh, *_csv(wanted, header))
    except (zipfile.BadZipFile, EOFError, pa.ArrowException, OSError, UnicodeError) as exc:
        raise _damaged(file, exc) from None


def _frame(block: pa.RecordBatch, wanted: tuple[str, ...]) -> pl.DataFrame:
    """A block as polars, with every column of ``wanted`` (null where the file has none)."""
    df = pl.from_arrow(block)
    assert isinstance(df, pl.DataFrame)
    return df.with_columns([pl.lit(None, pl.String).alias(c) for c in wanted if c not in df.columns])


def _spooled(spool: IO[bytes]) -> Iterator[pa.RecordBatch]:
    """The blocks pass one kept (:func:`_winners`), read back in order."""
    if spool.seek(0, io.SEEK_END) == 0:          # (a num.txt of its header alone)
        return
    spool.seek(0)
    yield from ipc.open_stream(spool)


def _qname(df: pl.DataFrame, taxonomy_from: str) -> pl.Expr:
    """``<taxonomy>:<tag>``: the prefix of a standard ``version``, else the filer's own (``taxonomy_from``).
    The prefix is cut once per distinct ``version`` (a speed-up: a quarter has a few hundred)."""
    version = pl.col("version")
    prefix = per_value(df, "version", pl.when(version.str.contains("/"))
                       .then(version.str.split("/").list.first().str.to_lowercase()))
    return pl.coalesce(prefix, pl.col(taxonomy_from)) + ":" + pl.col("tag")


_KEY = ["std", "adsh", "ddate", "qtrs", "uom", "segments", "coreg"]


def _compact(df: pl.DataFrame) -> pl.DataFrame:
    """A speed-up for memory: ``df``'s text as categories, four bytes a value instead of a string
    (the rows kept till the end of pass one held 2.4 GB at 35 M numbers). It is also the rows' own
    copy: a filtered polars string column is a view that keeps its whole block alive."""
    return df.with_columns(pl.col(pl.String).cast(pl.Categorical))


def _mapped_tags(mapping: pl.DataFrame) -> pa.Array:
    """Every tag a row of a mapped concept can have: what follows any ``:`` of a concept's name
    (``<taxonomy>:<tag>``, whatever either holds)."""
    names = mapping["qname"].to_list()
    return pa.array(sorted({q.split(":", i)[-1] for q in names for i in range(1, q.count(":") + 1)}), pa.string())


def _winners(zf: zipfile.ZipFile, member: str, header: list[str], file: str,
             mapping: pl.DataFrame, spool: IO[bytes]) -> pl.DataFrame:
    """Pass one: per filing, period, unit and dims, the priority of the best mapped concept.

    Each block read is also written to ``spool`` (Arrow, lz4) for pass two: reading it back costs
    a small part of parsing ``num.txt`` again (a speed-up: the text is parsed once)."""
    parts = []
    writer: ipc.RecordBatchStreamWriter | None = None
    tags = _mapped_tags(mapping)
    for block in _blocks(zf, member, NUM_COLUMNS, header, file):
        if writer is None:
            writer = ipc.new_stream(spool, block.schema, options=ipc.IpcWriteOptions(compression="lz4"))
        writer.write_batch(block)
        # (only a row whose tag a mapped concept ends with can be mapped: those few are converted;
        # a row without a value is no event, so it takes no name from a concept that has one)
        block = block.filter(pc.and_(pc.is_in(block.column("tag"), value_set=tags), pc.is_valid(block.column("value"))))
        df = _frame(block, NUM_COLUMNS).select(*_KEY[1:], "tag", "version")
        df = df.filter(pl.col("version").str.contains("/"))
        df = df.with_columns(_qname(df, "version").alias("qname"))
        parts.append(_compact(df.join(mapping, on="qname", how="inner").select(*_KEY, "prio", "qname")))
    if writer is not None:
        writer.close()
    if not parts:
        return pl.DataFrame(schema={**{k: pl.String for k in _KEY}, "__best": pl.Int64, "__best_name": pl.String})
    hits = pl.concat(parts)
    # a fact of one mapped concept alone is its own winner (no ``__best``: not shadowed), so only
    # the facts two concepts compete for are kept, a few hundredths of the rows held till the end
    return (hits.sort("prio").group_by(_KEY).agg(pl.col("prio").first().alias("__best"),
                                                  pl.col("qname").first().alias("__best_name"), pl.len().alias("__n"))
            .filter(pl.col("__n") > 1).drop("__n").with_columns(pl.col(pl.Categorical).cast(pl.String)))


def _dims(segments: str | None, coreg: str | None, unit_dims: str) -> str:
    """``Axis=Member;...`` and the co-registrant as ``key=value`` dims (keys a-z 0-9 _)."""
    out: dict[str, str] = {}

    def put(key: str, value: str) -> None:
        key = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in key.strip().lower()) or "member"
        value = value.strip().replace(";", "_").replace("=", "_")
        if not value:
            return
        k, n = key, 1
        while k in out:
            n += 1
            k = f"{key}_{n}"
        out[k] = value

    for part in (segments or "").split(";"):
        if part.strip():
            axis, _, member = part.partition("=")
            put(axis if member else "member", member or axis)
    if coreg:
        put("coreg", coreg)
    if unit_dims:
        put(*unit_dims.split("=", 1))
    return ";".join(f"{k}={out[k]}" for k in sorted(out))


def _span(ddate: str, qtrs: str, exact: str | None) -> tuple[str, str]:
    """(start, end) of ``qtrs`` quarters to ``ddate`` (month ends), on the filer's own week calendar.

    A filer whose own period ends off the month end (its instance document is named after
    2009-06-27, a Saturday, where ``ddate`` says 2009-06-30) keeps a 52/53-week calendar: each of
    its period ends is that weekday, on the same side of the month end (Apple: the last Saturday
    of the month), and each period starts the day after the previous one ends.
    """
    end = _date(ddate)
    assert end is not None
    month = end.year * 12 + end.month - 3 * int(qtrs)              # its 1st: the day after the month end before
    before = dt.date(month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    own = _date(exact or "")
    if own is not None and nominal_end(own) != own and nominal_end(own).day >= 28:
        before, end = _on_weekday(before, own), _on_weekday(end, own)
    start = end if qtrs == "0" else before + dt.timedelta(days=1)
    return start.isoformat(), end.isoformat()


def _on_weekday(month_end: dt.date, own: dt.date) -> dt.date:
    """``month_end`` moved to ``own``'s weekday: the last one of its month when ``own`` falls
    before its month end, else the first one after."""
    if own <= nominal_end(own):
        return month_end - dt.timedelta(days=(month_end.weekday() - own.weekday()) % 7)
    return month_end + dt.timedelta(days=(own.weekday() - month_end.weekday()) % 7 or 7)


def _lookup(df: pl.DataFrame, cols: list[str], fn: object, out: list[str]) -> pl.DataFrame:
    """``fn`` applied once per distinct value of ``cols``, joined back on them."""
    keys = df.select(cols).unique()
    values = [fn(*row) for row in keys.iter_rows()]  # type: ignore[operator]
    res = keys.with_columns([pl.Series(name, [v[i] if isinstance(v, tuple) else v for v in values], pl.String)
                             for i, name in enumerate(out)])
    return df.join(res, on=cols, how="left", nulls_equal=True)


def _of_block(winners: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """The winners of the block's filings: a join hashes its right side, and the whole table
    (growing with the zip) hashed once a block made a zip's time grow with its square."""
    return winners.filter(pl.col("adsh").is_in(df["adsh"].unique().implode()))


def _events(df: pl.DataFrame, file: str, sub: pl.DataFrame, winners: pl.DataFrame, mapping: pl.DataFrame,
            per_share: pl.DataFrame, aliases: dict[str, str]) -> pl.DataFrame:
    """One block of ``num.txt`` (with ``__row``) -> canonical text rows; a bad value raises BadFile."""
    df = df.join(sub, on="adsh", how="left")

    def refuse(mask: pl.Expr, column: str, reason: str) -> None:
        bad = df.filter(mask)
        if bad.height:
            raise BadFile(file, reason, row=int(bad["__row"][0]), column=column, value=bad[column][0])

    refuse(pl.col("entity").is_null(), "adsh", "is not an accession of sub.txt")
    refuse(pl.col("tag").is_null() | pl.col("version").is_null(), "tag", "is empty")
    refuse(pl.col("uom").is_null(), "uom", "is empty")
    whole = pl.col("qtrs").str.contains(QTRS).fill_null(False)
    refuse(~whole | (whole & (pl.col("qtrs").cast(pl.Int32, strict=False) > QTRS_MAX)), "qtrs",
           f"is not a number of quarters (a whole number, 0 for an instant, at most {QTRS_MAX})")
    dates = {t: _date(t) for t in df["ddate"].drop_nulls().unique().to_list()}
    refuse(pl.col("ddate").replace_strict(dates, default=None, return_dtype=pl.Date).is_null(), "ddate",
           "is not a date (YYYYMMDD)")

    df = df.with_columns(_qname(df, "__custom").alias("qname")).join(mapping, on="qname", how="left")
    df = df.join(_of_block(winners, df), on=_KEY, how="left", nulls_equal=True)
    df = df.with_columns(metric_names(pl.col("__best_name")))
    df = df.join(per_share, on=["tag", "version"], how="left")
    per = pl.col("__per_share").fill_null(False) & ~pl.col("uom").str.contains("/")
    df = df.with_columns(pl.when(per).then(pl.col("uom") + "/shares").otherwise(pl.col("uom")).alias("__ukey"))
    df = _lookup(df, ["__ukey"], lambda k: _unit(k, aliases)[:2], ["unit", "__udims"])
    df = _lookup(df, ["segments", "coreg", "__udims"], _dims, ["dims"])
    df = _lookup(df, ["ddate", "qtrs", "__exact"], _span, ["period_start", "period_end"])
    early = pl.col("reported_at") < pl.col("period_end")
    return df.select(
        "entity", "metric", "period_start", "period_end", "value", "unit", "dims",
        kind_of(early),
        pl.lit("exact").alias("qualifier"), pl.lit("primary").alias("authority"),
        "reported_at", "source", pl.col("qname").alias("source_ref"),
        pl.concat_str([pl.col("__sub_note"), pl.col("__n_shadow"), pl.when(early).then(pl.lit(EARLY_NOTE)),
                       pl.when(pl.col("footnote").is_not_null()).then(pl.lit("footnote: ") + pl.col("footnote"))],
                      separator="; ", ignore_nulls=True).alias("note"),
        "__row",
    )


def _chunks(path: Path, spool: IO[bytes], sub: pl.DataFrame, winners: pl.DataFrame,
            mapping: pl.DataFrame, per_share: pl.DataFrame, aliases: dict[str, str],
            warnings: list[str]) -> Iterator[pl.DataFrame]:
    file = f"{path}/num.txt"
    first, nil = 2, 0
    for block in _spooled(spool):
        df = _frame(block, NUM_COLUMNS)
        df = df.with_row_index("__row", offset=first).with_columns(pl.col("__row").cast(pl.Int64))
        first += df.height
        valued = df.filter(pl.col("value").is_not_null())
        nil += df.height - valued.height
        if valued.height:
            yield _events(valued, file, sub, winners, mapping, per_share, aliases)
    if nil:
        warnings.append(f"{file}: {nil} row(s) without a value (XBRL nil) are not events")


@register(FORMAT, sniff=sniff)
def read_fsds(path: Path, catalog: Catalog | None = None) -> Batch:
    """Read a data sets quarter: ``sub.txt`` and the tags now, ``num.txt`` as chunks when ingested."""
    zfile = str(path)
    catalog = catalog or Catalog.load(Settings().catalog)
    mapping, aliases = concept_table(catalog)
    try:
        with zipfile.ZipFile(path) as zf:
            member = _member(zf, "num.txt")
            if member is None:
                raise BadFile(zfile, "holds no num.txt (a data sets zip has sub.txt and num.txt)")
            sub, entities = _submissions(zf, zfile, catalog)
            per_share = _per_share(zf, zfile)
            header = _header(zf, member, f"{zfile}/num.txt", NUM_REQUIRED)
            spool = tempfile.TemporaryFile(prefix="metricstore-fsds-")
            try:
                winners = _winners(zf, member, header, f"{zfile}/num.txt", mapping, spool)
            except BaseException:
                spool.close()
                raise
    except (zipfile.BadZipFile, EOFError, pa.ArrowException, OSError) as exc:
        raise _damaged(zfile, exc) from None
    warnings: list[str] = []
    batch = Batch(pl.DataFrame(), entities,
                  chunks=partial(_chunks, path, spool, sub, winners, mapping, per_share, aliases, warnings),
                  warnings=warnings)
    weakref.finalize(batch, spool.close)        # (its chunks read the spool: it lives as long)
    return batch
