"""Ingesting a file too large to hold: a reader's chunks normalised one at a time, one commit.

A reader that returns a :class:`ingest.readers.Batch` with ``chunks`` set (the SEC's financial
statement data sets) hands over a generator of text frames, each in the canonical format with
its ``__row`` numbers. Each chunk is normalised on its own and handed to
:meth:`store.Store.append_stream`, so the file streams through in memory a few chunks deep and
lands as one atomic commit.

Without ``skip_invalid`` a chunk with an invalid row stops the writing: the remaining chunks are
still checked (every problem is reported), then the stream is abandoned and nothing commits.
Entity and metric records are written after the events commit, so a refused file leaves the
store as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa

from ingest.canonical import concept_warning, normalise
from ingest.catalog import Catalog
from ingest.errors import UNREADABLE, BadFile, RowProblem, first_line
from ingest.records import entity_log, entity_records, fiscal_year_ends, metric_records, quarantine
from ingest.reports import FileReport
from ingest.readers import Batch
from store import Store

T = TypeVar("T")
#: The name of the thread that reads the next chunk ahead (:func:`_read_ahead`).
READ_AHEAD = "metricstore-read-ahead"


class _Refused(Exception):
    """Ends the stream handed to ``append_stream`` so that nothing commits."""


def ingest_chunks(store: Store, path: Path, batch: Batch, report: FileReport, *, catalog: Catalog,
                  skip_invalid: bool, run_id: str, today: dt.date | None = None,
                  entity: str | None = None) -> FileReport:
    """Normalise and append ``batch.chunks`` as one commit; fill in and return ``report``."""
    assert batch.chunks is not None
    file = str(path)
    records = batch.entities
    if entity:
        records = [replace(e, entity=entity.strip().lower()) for e in records]
    fye = fiscal_year_ends(store, catalog)
    known = entity_log(store)
    held = dict(zip(known.column("entity").to_pylist(), known.column("fiscal_year_end_month").to_pylist(),
                    strict=True))
    # a record only where it tells the store something: a data set's fiscal year end is a month,
    # so it never replaces a finer record (companyfacts' 52/53-week description) of the same month
    records = [e for e in records if held.get(e.entity) != e.fiscal_year_end_month]
    for e in records:
        fye[e.entity] = e.fiscal_year_end_month
    new_metrics: dict[str, str] = {}
    entities: set[str] = set()
    metrics: set[str] = set()
    problems: list[RowProblem] = []
    rejected_raw: list[pl.DataFrame] = []
    warnings: dict[str, None] = {}

    def events() -> Iterator[pa.Table]:
        for raw in _read_ahead(batch.chunks()):  # type: ignore[misc]
            if entity:
                raw = raw.with_columns(pl.lit(entity.strip().lower(), pl.String).alias("entity"))
            report.rows += raw.height
            try:
                norm = normalise(raw, file, catalog, fye, today=today)
            except UNREADABLE as exc:
                raise BadFile(file, f"cannot be validated: {type(exc).__name__}: "
                                    f"{first_line(exc)}") from None
            chunk_concepts = concept_warning(file, [m for m in norm.new_metrics if ":" in m])
            warnings.update((w, None) for w in norm.warnings if w != chunk_concepts)   # said once, below
            new_metrics.update(norm.new_metrics)
            if norm.problems:
                problems.extend(norm.problems)
                rejected_raw.append(raw.filter(pl.col("__row").is_in(list(norm.rejected_rows))))
            if problems and not skip_invalid:
                continue                      # keep checking, write nothing more
            out = norm.events.drop("__row")
            if out.height:
                entities.update(out["entity"].unique().to_list())
                metrics.update(out["metric"].unique().to_list())
                yield out.to_arrow()
        if problems and not skip_invalid:
            raise _Refused

    try:
        try:
            result = store.append_stream(events(), run_id=run_id)
        except UNREADABLE as exc:
            raise BadFile(file, f"cannot be read: {type(exc).__name__}: "
                                f"{first_line(exc)}") from None
    except BadFile as exc:
        report.error = str(exc)
        return report
    except _Refused:
        result = None
    report.problems = problems
    report.rejected = len({p.row for p in problems})
    namespaced = [m for m in new_metrics if ":" in m]
    if namespaced:
        warnings[concept_warning(file, sorted(namespaced))] = None
    report.warnings = list(warnings) + batch.warnings
    if problems:
        report.quarantine = quarantine(store, pl.concat(rejected_raw, how="diagonal_relaxed"), problems,
                                        run_id, path)
    if result is None:
        return report
    if result.added:
        entity_records(store, catalog, sorted(entities), [e for e in records if e.entity in entities])
        metric_records(store, catalog, sorted(metrics), new_metrics)
    report.added, report.already_present, report.commit_id = result.added, result.already_present, result.commit_id
    return report


def _read_ahead(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, the next one read in a thread while the caller checks this one. A speed-up:
    reading a data sets block and checking the one before it overlap (a quarter about 8% sooner,
    one more chunk held). The reader's error is raised here, at its turn; when the caller stops
    early, the reader finishes its current chunk and is closed."""
    end = object()
    reader = ThreadPoolExecutor(1, thread_name_prefix=READ_AHEAD)
    try:
        ahead = reader.submit(next, chunks, end)
        while (chunk := ahead.result()) is not end:
            ahead = reader.submit(next, chunks, end)
            yield chunk  # type: ignore[misc]
    finally:
        reader.shutdown(wait=True)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
