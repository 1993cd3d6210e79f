"""Ingest runs: read files, normalise them, append them to the store, report what happened.

Each file is one batch: without ``skip_invalid`` a file with any invalid row commits nothing;
with it, the valid rows commit. Either way every rejected row is reported and written, with its
reasons, to ``<store>/quarantine/``. Every event a run writes carries the run's id. A row whose
``supersedes`` names no known event of its own fact is rejected like any invalid row
(:mod:`ingest.supersedes`); rows repeating another row of the file are counted as duplicates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import polars as pl

from ingest.canonical import normalise
from ingest.catalog import Catalog
from ingest.chunked import ingest_chunks
from ingest.errors import UNREADABLE, BadFile, first_line
from ingest.readers import Batch, detect_format, formats
from ingest.records import entity_records, fiscal_year_ends, metric_records, quarantine
from ingest.reports import FileReport, RunReport, new_run_id
from ingest.supersedes import check_supersedes
from store import Store
from store.schema import IDENTITY_COLUMNS


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
        readers = formats()
        if report.format not in readers:
            raise BadFile(str(path), f"unknown format {report.format!r} (one of {', '.join(sorted(readers))})")
        try:
            out = readers[report.format](path)
        except UNREADABLE as exc:  # a parser gave up on input no check foresaw: one line, never a traceback
            raise BadFile(str(path), f"cannot be read as {report.format}: {type(exc).__name__}: "
                                     f"{first_line(exc)}") from None
    except BadFile as exc:
        report.error = str(exc)
        return report
    batch = out if isinstance(out, Batch) else Batch(out)
    if batch.chunks is not None:    # a file read in chunks streams into one commit
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
    report.problems, report.warnings = problems, batch.warnings + norm.warnings
    report.rejected = len(bad)
    if problems:
        report.quarantine = quarantine(store, raw, problems, run_id, path)
        if not skip_invalid:
            return report
    events = norm.events.filter(~pl.col("__row").is_in(list(bad))).drop("__row")
    if events.height == 0:
        return report
    entity_records(store, catalog, events["entity"].unique().to_list(), batch.entities)
    metric_records(store, catalog, events["metric"].unique().to_list(), norm.new_metrics)
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
