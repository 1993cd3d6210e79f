"""Ingest runs: read files, normalise them, append them to the store, report what happened.

Each file is one batch: without ``skip_invalid`` a file with any invalid row commits nothing;
with it, the valid rows commit. Either way every rejected row is reported and written, with its
reasons, to ``<store>/quarantine/``. Every event a run writes carries the run's id. A row whose
``supersedes`` names no known event of its own fact is rejected like any invalid row
(:mod:`ingest.supersedes`); rows repeating another row of the file are counted as duplicates.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa

from ingest.canonical import NAME, NAME_RULE, normalise
from ingest.catalog import Catalog, EntityDef
from ingest.errors import BadFile, IngestError, RowProblem, clip, first_line
from ingest.readers import READERS, Batch, detect_format
from ingest.supersedes import check_supersedes
from store import Store
from store.schema import IDENTITY_COLUMNS

#: What a parser raises on input nobody foresaw; turned into a BadFile naming the file.
UNREADABLE = (pl.exceptions.PolarsError, pa.ArrowException, RecursionError, UnicodeError, OverflowError)


@dataclass
class FileReport:
    """What ingesting one file did."""

    file: str
    format: str = ""
    rows: int = 0
    added: int = 0
    already_present: int = 0
    duplicates: int = 0          # rows repeating an earlier row of the same file (not stored twice)
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    commit_id: str | None = None
    quarantine: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rejected == 0

    def summary(self) -> str:
        if self.error:   # the file's one line (``problems`` lists rejected rows only), its name once
            return f"{self.file}: rejected: {self.error.removeprefix(self.file + ': ')}"
        dups = ("" if not self.duplicates else "1 duplicate within the file, " if self.duplicates == 1
                else f"{self.duplicates} duplicates within the file, ")
        return (f"{self.file}: {self.added} added, {dups}{self.already_present} already present, "
                f"{self.rejected} rejected")


@dataclass
class RunReport:
    """What one ingest run did, file by file."""

    run_id: str
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def already_present(self) -> int:
        return sum(f.already_present for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def summary(self) -> str:
        dups = f"{self.duplicates} duplicate row(s) within files, " if self.duplicates else ""
        return (f"{self.added} events added, {dups}{self.already_present} already present, "
                f"{self.rejected} rejected ({len(self.files)} file(s), run {self.run_id})")


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]


def entity_log(store: Store) -> pa.Table:
    """The store's entity records, oldest first (by ``recorded_at``, then ``record_id``): read in
    this order, the last record of an entity is its latest, as the ``entities`` view picks it."""
    return store.read("entities").sort_by([("recorded_at", "ascending"), ("record_id", "ascending")])


def fiscal_year_ends(store: Store, catalog: Catalog) -> dict[str, int]:
    """Fiscal year end month per entity: the store's latest record, else the catalog's."""
    fye = {e.entity: e.fiscal_year_end_month for e in catalog.entities.values()}
    table = entity_log(store)
    for entity, month in zip(table.column("entity").to_pylist(),
                             table.column("fiscal_year_end_month").to_pylist(), strict=True):
        if month:
            fye[entity] = int(month)
    return fye


def _entity_records(store: Store, catalog: Catalog, entities: list[str],
                    given: list[EntityDef]) -> None:
    known = set(store.read("entities").column("entity").to_pylist())
    rows = [e for e in given]
    for name in entities:
        if name not in known and name in catalog.entities and all(g.entity != name for g in given):
            rows.append(catalog.entities[name])
    if not rows:
        return
    store.append(pa.table({
        "entity": [e.entity for e in rows],
        "name": [e.name for e in rows],
        "cik": [e.cik for e in rows],
        "ticker": [e.ticker for e in rows],
        "fiscal_year_end_month": pa.array([e.fiscal_year_end_month for e in rows], pa.int8()),
        "fiscal_year_end": [e.fiscal_year_end for e in rows],
        "source": ["catalog" if e in catalog.entities.values() else "ingest" for e in rows],
    }), table="entities")


def set_entity(store: Store, entity: EntityDef, *, source: str = "user") -> bool:
    """Record what the store knows of an entity (name, identifiers, fiscal year end).

    The latest record wins in the ``entities`` view; set the fiscal year end before ingesting
    figures labelled on that calendar (``FY2024`` is parsed with it).

    Returns:
        True when a new record was written, False when the store already held exactly this one.

    Raises:
        IngestError: the id is not a valid name (the rule ingest checks rows against).
    """
    if not re.fullmatch(NAME, entity.entity):
        raise IngestError(f"entity {clip(entity.entity)!r} {NAME_RULE}")
    result = store.append(pa.table({
        "entity": [entity.entity], "name": [entity.name], "cik": [entity.cik], "ticker": [entity.ticker],
        "fiscal_year_end_month": pa.array([entity.fiscal_year_end_month], pa.int8()),
        "fiscal_year_end": pa.array([None], pa.string()), "source": [source],
    }), table="entities")
    return result.added > 0


def _metric_records(store: Store, catalog: Catalog, metrics: list[str], inferred: dict[str, str]) -> None:
    """Record the definition of each metric the store has none of, and a new one where the
    catalog now defines a metric otherwise than the store's latest record (a corrected
    aggregation takes effect from the next ingest; the old record stays in the log)."""
    held = store.read("metrics").sort_by([("recorded_at", "ascending"), ("record_id", "ascending")])
    known = {r["metric"]: (r["aggregation"], r["description"], r["inferred"])
             for r in held.select(["metric", "aggregation", "description", "inferred"]).to_pylist()}
    rows: list[tuple[str, str, str | None, bool]] = []
    for m in metrics:
        if m in catalog.metrics:
            d = catalog.metrics[m]
            if known.get(m) != (d.aggregation, d.description, False):
                rows.append((m, d.aggregation, d.description, False))
        elif m in inferred and m not in known:
            rows.append((m, inferred[m], None, True))
    if rows:
        store.append(pa.table({
            "metric": [r[0] for r in rows], "aggregation": [r[1] for r in rows],
            "description": [r[2] for r in rows], "inferred": [r[3] for r in rows],
        }), table="metrics")


def _quarantine(store: Store, raw: pl.DataFrame, problems: list[RowProblem], run_id: str, path: Path) -> Path:
    """Write the rejected rows, as read, with their reasons, inside the store."""
    folder = store.root / "quarantine"
    folder.mkdir(exist_ok=True)
    reasons = (pl.DataFrame({"__row": [p.row for p in problems],
                             "_problem": [f"{p.column}: {p.reason}" for p in problems]})
               .group_by("__row", maintain_order=True).agg(pl.col("_problem").str.join("; ")))
    out = raw.join(reasons, on="__row", how="inner").rename({"__row": "_row"})
    target = folder / f"{run_id}-{path.name}.rejected.csv"
    out.write_csv(target)
    return cast(Path, target)   # on an object store, an ObjectPath (its URI), answering as a Path


def ingest_file(store: Store, path: str | Path, *, catalog: Catalog, fmt: str = "auto",
                skip_invalid: bool = False, run_id: str | None = None,
                today: dt.date | None = None, entity: str | None = None) -> FileReport:
    """Ingest one file as one batch.

    Args:
        store: the store to append to.
        path: the input file.
        catalog: metric names and aggregations, entities, source authority.
        fmt: ``auto`` or a registered format (``csv``, ``json``, ``parquet``, ...).
        skip_invalid: commit the valid rows of a file that has invalid ones.
        run_id: the ingest run this belongs to (a new one when None).
        entity: write every row (and the reader's entity record) under this entity id instead.

    Returns:
        A :class:`FileReport`; a file that cannot be read at all has ``error`` set and commits nothing.
    """
    path = Path(path)
    run_id = run_id or new_run_id()
    report = FileReport(str(path))
    try:
        if path.is_dir():
            raise BadFile(str(path), "is a directory; give the files in it (for example "
                                     f"{path / '*.csv'})")
        if not path.is_file():
            raise BadFile(str(path), "no such file" if not path.exists() else "is not a regular file")
        report.format = detect_format(path) if fmt == "auto" else fmt
        if report.format not in READERS:
            raise BadFile(str(path), f"unknown format {report.format!r} (one of {', '.join(sorted(READERS))})")
        try:
            out = READERS[report.format](path)
        except UNREADABLE as exc:  # a parser gave up on input no check foresaw: one line, never a traceback
            raise BadFile(str(path), f"cannot be read as {report.format}: {type(exc).__name__}: "
                                     f"{first_line(exc)}") from None
    except BadFile as exc:
        report.error = str(exc)
        return report
    batch = out if isinstance(out, Batch) else Batch(out)
    if batch.chunks is not None:    # a file read in chunks streams into one commit
        from ingest.chunked import ingest_chunks     # (it builds on this module's helpers)
        return ingest_chunks(store, path, batch, report, catalog=catalog, skip_invalid=skip_invalid,
                             run_id=run_id, today=today, entity=entity)
    if entity:
        batch = Batch(batch.frame.with_columns(pl.lit(entity.strip().lower(), pl.String).alias("entity")),
                      [replace(e, entity=entity.strip().lower()) for e in batch.entities])
    raw = batch.frame
    report.rows = raw.height
    fye = fiscal_year_ends(store, catalog)
    for e in batch.entities:
        fye[e.entity] = e.fiscal_year_end_month
    try:
        try:
            norm = normalise(raw, str(path), catalog, fye, today=today)
        except UNREADABLE as exc:
            raise BadFile(str(path), f"cannot be validated: {type(exc).__name__}: "
                                     f"{first_line(exc)}") from None
    except BadFile as exc:
        report.error = str(exc)
        return report
    withdrawals = check_supersedes(store, norm.events, fye, str(path))
    problems = sorted(norm.problems + withdrawals, key=lambda p: p.row)
    bad = norm.rejected_rows | {p.row for p in withdrawals}
    report.problems, report.warnings = problems, norm.warnings
    report.rejected = len(bad)
    if problems:
        report.quarantine = _quarantine(store, raw, problems, run_id, path)
        if not skip_invalid:
            return report
    events = norm.events.filter(~pl.col("__row").is_in(list(bad))).drop("__row")
    if events.height == 0:
        return report
    _entity_records(store, catalog, events["entity"].unique().to_list(), batch.entities)
    _metric_records(store, catalog, events["metric"].unique().to_list(), norm.new_metrics)
    result = store.append(events.to_arrow(), run_id=run_id)
    report.added, report.commit_id = result.added, result.commit_id
    if result.already_present:   # (only then can rows repeat each other: most batches skip the look)
        report.duplicates = events.height - events.select(IDENTITY_COLUMNS).unique().height
    report.already_present = result.already_present - report.duplicates
    return report


def ingest_paths(store: Store, paths: list[str | Path], *, catalog: Catalog, fmt: str = "auto",
                 skip_invalid: bool = False, run_id: str | None = None,
                 entity: str | None = None) -> RunReport:
    """Ingest several files in one run, each file its own batch (``entity`` overrides the files')."""
    run = RunReport(run_id or new_run_id())
    for p in paths:
        run.files.append(ingest_file(store, p, catalog=catalog, fmt=fmt, skip_invalid=skip_invalid,
                                     run_id=run.run_id, entity=entity))
    return run
