"""How a commit file is written: the Parquet options, encodings and statistics every committed file
shares, and the writer a stream uses (a background thread hashing the bytes as they are written).

The options are the store's speed and size decisions, each with its reason beside it; a file
written by any of them reads the same in DuckDB, polars, pyarrow and Spark.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per Parquet row group: small enough that a filter on (entity, metric, period) skips most.
ROW_GROUP_ROWS = 32 * 1024

#: Columns whose Parquet statistics serve a filter (row-group pruning in readers and dedup); the
#: long or unique texts, the values and the few-valued labels no query filters on get none.
#: ``supersedes`` has them: it is mostly null, and its null counts let every search for the
#: withdrawals (``supersedes IS NOT NULL``: each computed answer makes one) skip the row groups
#: that hold none (the search took 22 ms over a file of 10 M events without them, 12 ms with).
NO_STATISTICS = frozenset({"value", "value_high", "as_reported", "note", "source_ref",
                           "dims", "unit", "kind", "qualifier", "authority"})
#: Content ids: random over their whole range, so the bounds of a row group of many of them span
#: almost all of it and prune nothing (a probe falls outside the bounds of 32,768 ids once in
#: about 16,000 tries). They get statistics only in a small commit, where the bounds of a few ids
#: do rule most probes out (a single append's dedup tests them); elsewhere they would cost the
#: writer a sixth of its time on the id column (two comparisons of 32 bytes an id).
ID_COLUMNS = frozenset({"event_id", "record_id"})
#: Columns too distinct for a dictionary (an attempt costs a hash per value, then falls back),
#: and the dates (sorted runs of a few distinct days: their plain pages compress about as well).
NO_DICTIONARY = frozenset({"event_id", "record_id", "value", "value_high", "as_reported", "note", "supersedes",
                           "period_start", "period_end", "reported_at", "recorded_at"})
#: Columns written in an encoding other than plain (every reader of Parquet 2.x formats reads them:
#: DuckDB, polars, pyarrow, Spark). The ids' hex digits go in one run, their lengths apart
#: (DELTA_LENGTH_BYTE_ARRAY), not each after its length: zstd then compresses them in a third of
#: the time, a little smaller. The values' bytes go split by their position in the number
#: (BYTE_STREAM_SPLIT): sign and exponent bytes together compress faster and smaller.
ENCODINGS = {"event_id": "DELTA_LENGTH_BYTE_ARRAY", "record_id": "DELTA_LENGTH_BYTE_ARRAY",
             "value": "BYTE_STREAM_SPLIT", "value_high": "BYTE_STREAM_SPLIT"}


#: Values the Parquet writer takes at a time (its default: 1,024). The statistics of a
#: dictionary column are worked out a batch at a time (the values a batch refers to: a hash of
#: its indices, then a look at those): past a few thousand values a batch, that costs a third of
#: what it did, and the writer about 15 % less. A page is still cut once it holds the writer's
#: page size (1 MB); it can now run over it by at most a batch (256 KB of ids).
WRITE_BATCH_ROWS = 8192


def encoded_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its dictionary-written text columns as Arrow dictionaries: the form a large
    batch takes from :func:`store.prepare.prepare` on, so the Parquet writer takes each column's
    dictionary as it is instead of hashing every value again. Files are written without the
    Arrow schema (``store_schema=False``): they read back as plain strings."""
    return pa.schema([
        pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable)
        if pa.types.is_string(f.type) and f.name not in NO_DICTIONARY else f
        for f in schema
    ], metadata=schema.metadata)


def has_statistics(column: str, rows: int | None) -> bool:
    """Whether a committed file of ``rows`` rows (None: a stream, counted as large) has
    statistics for ``column`` (see :data:`NO_STATISTICS` and :data:`ID_COLUMNS`)."""
    return column not in NO_STATISTICS and (column not in ID_COLUMNS or (rows is not None and rows < SMALL_ROWS))


def write_options(schema: pa.Schema, rows: int | None = None) -> dict[str, Any]:
    """The Parquet writer options of every committed file: zstd, page checksums (CRC32 of every
    page, checked by readers that verify them), statistics, dictionaries and :data:`ENCODINGS`
    where they help (no dictionaries in a small commit, which compaction rewrites; neither
    compression nor other encodings in a tiny one; statistics of the ids only in a small one).
    ``rows`` unknown (a stream) counts as large.

    A schema with dictionary columns (:func:`encoded_schema`) is written without the Arrow
    schema, so they read back as plain strings; its metadata then goes in with
    ``add_key_value_metadata`` (:func:`write_file`)."""
    names = schema.names
    small = rows is not None and rows < SMALL_ROWS
    tiny = rows is not None and rows < TINY_ROWS
    return {
        "compression": "none" if tiny else "zstd",
        "write_statistics": [c for c in names if has_statistics(c, rows)],
        "use_dictionary": False if small else [c for c in names if c not in NO_DICTIONARY],
        "column_encoding": {} if tiny else {c: e for c, e in ENCODINGS.items() if c in names},
        "write_page_checksum": True,
        "write_batch_size": WRITE_BATCH_ROWS,
        "store_schema": not any(pa.types.is_dictionary(t) for t in schema.types),
    }


def write_file(data: pa.Table, where: Any, options: dict[str, Any]) -> None:
    """``data`` as one Parquet file (a path or a stream), its schema's metadata included
    whether or not the Arrow schema is stored."""
    with pq.ParquetWriter(where, data.schema, **options) as writer:
        writer.write_table(data, row_group_size=ROW_GROUP_ROWS)
        if unstored := unstored_metadata(data.schema, options):
            writer.add_key_value_metadata(unstored)


def unstored_metadata(schema: pa.Schema, options: dict[str, Any]) -> dict[str, str]:
    """The schema's metadata, as text, that the file must be given itself: all of it when the
    file is written without the Arrow schema (which would carry it), else none."""
    if options["store_schema"] or not schema.metadata:
        return {}
    return {k.decode(): v.decode() for k, v in schema.metadata.items()}


#: A commit of fewer rows is written without dictionaries (they cost more than they save).
SMALL_ROWS = 1024
#: A commit of fewer rows is not compressed either (a codec's setup per column costs more than
#: the bytes it saves); compaction rewrites such files compressed.
TINY_ROWS = 64


class HashingSink(io.RawIOBase):
    """A file opened for writing that computes the SHA-256 of what is written to it, so a
    finished file's checksum needs no second read."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.fh = open(path, "xb")  # noqa: SIM115 - closed by close()
        self.sha = hashlib.sha256()
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.fh.write(view)
        self.pos += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        if not self.closed:
            self.fh.close()
        super().close()


#: Bytes the stream's Parquet writer gathers before handing them to the hashing file.
SINK_BUFFER = 4 << 20


class BackgroundWriter:
    """Writes tables as row groups of one Parquet file in a thread; ``close`` waits for it and
    returns the file's SHA-256.

    At most one table waits while another is written. An error in the thread is raised by the
    next ``write`` or by ``close``; the file is then unfinished (the caller deletes it).
    """

    def __init__(self, path: Path, schema: pa.Schema, options: dict[str, Any]) -> None:
        self.path, self.schema, self.options = path, schema, options
        self.sink: HashingSink | None = None
        self.stream: pa.NativeFile | None = None
        self.writer: pq.ParquetWriter | None = None
        self.error: BaseException | None = None
        self.queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._run, name="metricstore-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue                          # drain: the caller learns of the error and stops
            try:
                if self.writer is None:
                    self.sink = HashingSink(self.path)
                    # the writer's many small writes (a few per page) gather in a native buffer:
                    # Python (and the GIL) sees one write of SINK_BUFFER bytes at a time
                    self.stream = pa.BufferedOutputStream(pa.PythonFile(self.sink, mode="w"), SINK_BUFFER)
                    self.writer = pq.ParquetWriter(self.stream, self.schema, **self.options)
                self.writer.write_table(item, row_group_size=ROW_GROUP_ROWS)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc

    def write(self, table: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(table)

    def close(self, metadata: dict[str, str]) -> str | None:
        """Finish the file; its SHA-256 (None when nothing was written)."""
        self.queue.put(None)
        self.thread.join()
        try:
            if self.writer is not None:
                if self.error is None:
                    self.writer.add_key_value_metadata({**unstored_metadata(self.schema, self.options), **metadata})
                self.writer.close()
        finally:
            try:
                if self.stream is not None:
                    self.stream.close()           # the buffer's last bytes, into the hashing file
            finally:
                if self.sink is not None:
                    self.sink.close()
        if self.error is not None:
            raise self.error
        return self.sink.sha.hexdigest() if self.sink is not None else None
