"""The projector: keeps the projections of the growth view following the log.

Invariant: every manifest published in ``<store>/_projections/`` names the log files it was
computed from (``covers``), and for every entity the rows of the layer that holds it (the newest
delta listing it, else the base) are exactly what the reference SQL (``growth_versions_of`` over
``fact_versions()``, ``queries/sql/35_growth_versions.sql``: the growth rules of
``28_growth_rules.sql`` run at every time their inputs changed) gives for that entity over those
files. A projection may lag the log; readers (:mod:`queries.projections`) compute the
entities that changed since, so no answer does.

:func:`project` runs after a commit (``metricstore ingest``, every scheduled job run and
``metricstore compact`` call it; a library writer may). Each call:

1. lists the live files and takes the newest projection;
2. asks which entities changed since (:meth:`queries.projections.Projections.changed`): those
   with new events, those a withdrawal reaches, those with a new fiscal calendar record or a new
   definition of one of their metrics;
3. computes those entities' growth, every version of it, from the events, and publishes them as a
   new delta layer on top of the previous ones: the cost follows the change, not the store (many
   entities are computed in parts; entities holding most of the events, as a new base).

Layers are merged as an LSM tree merges runs: a delta at least half the size of the one below it
is merged into it, past :data:`MAX_DELTAS` all deltas are merged, and past :data:`FOLD` of the
base's rows (and :data:`FOLD_MIN_ROWS`) they are folded into a new base. Nothing to compute (a compaction merged covered
files) publishes the same layers under the new covers. No projection, a projection of other SQL
(the views changed), or a change that cannot be told: a full rebuild. A writer killed between its
commit and this step leaves the projection behind, never wrong; the next call catches up.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from queries.errors import SqlError
from queries.live import Reading, list_live, read_listed
from queries.projection_folder import clear_dead, hold, prune, publish
from queries.projections import (BY_METRIC, COVERED, LAYER, SOURCES, STILL_VALID, STORED_DERIVED_FROM, Layer,
                                 Projection, Projections, folder_of, sql_literal_list, vouch)
from queries.sandbox import MEMORY_ENV, set_memory_limit
from queries.views import files_variable, install, sql_literal
from store import CorruptFile, MetricStoreError, Store
from store.locks import FileLock, LockHeld
from store.verify import sha256_prefix

#: Up to this many changed entities a step computes them at once; past it, it counts their events
#: first, to compute them in parts of about :data:`PART_EVENTS` events (:meth:`_Session.compute_layer`).
MAX_NARROWED = 1_000
#: Changed entities holding more than this share of the events are computed as every entity: a
#: new base costs about as much, and spares merging a delta that large into the old one.
MOST_EVENTS = 0.5
#: A computation past this many events runs in parts of about this many events each (an entity's
#: events are never split): its memory then follows the part, not the store. Parts of a million
#: spilled to disk on the SEC data sets; of half a million, a 3 M quarter's step took 20% less,
#: a 10 M rebuild as long, and a 1 M one peaked 0.3 GB lower.
PART_EVENTS = 500_000
#: Deltas kept on top of the base before they are merged into one.
MAX_DELTAS = 8
#: Deltas holding more than this share of the base's rows (and more than FOLD_MIN_ROWS) are folded
#: into a new base.
FOLD = 0.25
FOLD_MIN_ROWS = 50_000
#: DuckDB's memory while computing, unless ``$METRICSTORE_MEMORY_LIMIT`` says otherwise; beyond it,
#: it spills to the projections' folder. A rebuild that runs out of it on several threads runs on one.
#: With the process's own (the libraries, the listing) a rebuild at 10 M events stays under 2 GB; a
#: store of the SEC's data sets passes it at tens of millions of numbers (docs/whole-history.md).
MEMORY_LIMIT = "1.5GB"
#: Seconds a projector waits for another one to finish (they run one at a time per store).
LOCK_WAIT_S = 600.0
#: What the projection's SQL (SOURCES) creates for readers and the tests' reference, which no stage of
#: a step reads: creating them (views are bound when created) took 40 of the 175 ms a one-event
#: commit's step took.
NOT_READ = ("events", "entities", "facts", "facts_as_of", "facts_as_recorded", "growth", "growth_as_of",
            "growth_as_recorded", "fact_versions_all", "placed_versions_all", "growth_versions")


def project(store: Store, *, rebuild: bool = False) -> Projection | None:
    """Bring the store's projections up to date with its log; returns the projection published
    (or the current one when nothing changed), None for an object store.

    Args:
        store: the store.
        rebuild: compute every entity from the events (needed only if the projections were
            damaged: a change of the views' SQL rebuilds by itself).

    Raises:
        CorruptFile: ``_projections`` is not a folder.
        SqlError: the growth could not be computed (out of memory, a damaged file): one line.
    """
    folder = folder_of(store)
    if folder is None:
        return None
    _return_freed_memory()
    try:
        folder.mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CorruptFile(folder, "is not a folder, so projections cannot be written there; move it aside "
                                  "(readers meanwhile compute every answer)") from None
    held = folder / f".tmp-{uuid.uuid4().hex}-held"
    with FileLock(folder / ".lock", LOCK_WAIT_S):
        clear_dead(folder)
        finder = Projections(store)
        try:
            return read_listed(store, lambda: hold(list_live(store, COVERED), held),
                               lambda listing: _step(store, finder, folder, listing, rebuild))
        except duckdb.OutOfMemoryException:   # (a computation that failed on several threads ran again on one)
            raise SqlError(f"the growth projection needs more than {_memory_limit()} of memory; set {MEMORY_ENV} "
                           f"higher (say 4GB; default {MEMORY_LIMIT}). Answers meanwhile are computed from the "
                           "events") from None
        except duckdb.Error as exc:
            raise SqlError(f"the growth projection could not be computed: {str(exc).splitlines()[0]}") from None
        finally:
            shutil.rmtree(held, ignore_errors=True)
            prune(folder)


def follow(store: Store) -> None:
    """:func:`project` as a writer's last step after a commit: a failure is logged, never raised
    (readers compute what a projection does not describe; the next writer catches up)."""
    try:
        project(store)
    except (MetricStoreError, LockHeld, OSError) as exc:
        logging.getLogger("metricstore.projections").warning("projections not brought up to date: %s", exc)


def _return_freed_memory() -> None:
    """A speed-up for memory: the Arrow buffers a writer's commit freed in this process go back to
    the system before DuckDB takes its share (Arrow's pool keeps them for reuse: about 150 MB of
    the peak of ingesting a quarter of the SEC's data sets and projecting it in one process)."""
    pa.default_memory_pool().release_unused()


def _step(store: Store, finder: Projections, folder: Path, listing: Reading, rebuild: bool) -> Projection:
    latest = None if rebuild else finder.latest()
    changed = None if latest is None else finder.changed(latest, listing)
    covers = {t: sorted(p.name for p in listing.get(t, [])) for t in COVERED}
    if latest is not None and changed is not None and not changed:
        if all(latest.covers[t] == frozenset(covers[t]) for t in COVERED):
            return latest
        return publish(folder, covers, latest.base, list(latest.deltas))      # a compaction: same answer
    with _Session(store, listing, folder) as s:
        if latest is None or changed is None:
            return publish(folder, covers, s.compute_layer(None), [])
        layer = s.compute_layer(changed)
        if layer.entities is None:              # (most of the events changed: a new base)
            return publish(folder, covers, layer, [])
        base, deltas = _merge(s, latest.base, list(latest.deltas) + [layer])
        return publish(folder, covers, base, deltas)


def _merge(s: _Session, base: Layer, deltas: list[Layer]) -> tuple[Layer, list[Layer]]:
    """The layers after an LSM tree's merges (see the module docstring)."""
    rows = sum(d.rows for d in deltas)
    if rows > FOLD * base.rows and rows > FOLD_MIN_ROWS:
        return s.overlay(base, deltas, None), []
    if len(deltas) > MAX_DELTAS:
        return base, [s.overlay(deltas[0], deltas[1:], _entities(deltas))]
    while len(deltas) >= 2 and deltas[-2].rows <= 2 * deltas[-1].rows:
        deltas = deltas[:-2] + [s.overlay(deltas[-2], deltas[-1:], _entities(deltas[-2:]))]
    return base, deltas


def _entities(layers: list[Layer]) -> frozenset[str]:
    out: set[str] = set()
    for layer in layers:
        out |= layer.entities or set()
    return frozenset(out)


def _memory_limit() -> str:
    """DuckDB's memory limit for a step: ``$METRICSTORE_MEMORY_LIMIT``, else :data:`MEMORY_LIMIT`."""
    return os.environ.get(MEMORY_ENV, "").strip() or MEMORY_LIMIT


def _cache_footers(con: duckdb.DuckDBPyConnection) -> None:
    """A speed-up: every view the step creates reads every log file's footer, once with the cache."""
    con.execute("SET parquet_metadata_cache = true")


def _one_per_place_by_window(con: duckdb.DuckDBPyConnection) -> None:
    """A speed-up (a rebuild about 5% quicker at 1 M events, 7% on the SEC data sets; the same
    rows): DuckDB would plan ``one_per_place``'s ``QUALIFY row_number() = 1`` as an arg_max over
    whole rows, carrying every column through a hash table."""
    try:
        con.execute("SET disabled_optimizers = 'top_n_window_elimination'")
    except duckdb.Error:        # (a DuckDB without that rewrite: nothing to turn off)
        pass


class _Session:
    """A DuckDB connection with the views over one listing, computing into temp table ``computed``
    and writing layers into the projections' folder."""

    def __init__(self, store: Store, listing: Reading, folder: Path) -> None:
        self.store, self.listing, self.folder = store, listing, folder
        self.tag = uuid.uuid4().hex
        self.spill = folder / f".tmp-{self.tag}-spill"
        self.threads = os.cpu_count() or 1
        self.small = False          # a few entities computed: the connection may serve the next step
        con, self.uses = _idle.take(folder)
        con = _limited(con) if con is not None else None
        if con is None:
            con, self.uses = self._connect(), 0
        self.con = con
        self._point()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(config={"threads": self.threads})
        set_memory_limit(con, _memory_limit())
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")      # a writer's last step: its logs get no bar
        _cache_footers(con)
        _one_per_place_by_window(con)
        install(con, self.store, self.listing, only=SOURCES, without=NOT_READ)
        return con

    def _point(self) -> None:
        """Point the connection's views at the listing, and its spill at this step's folder."""
        con = self.con
        con.execute("SET temp_directory = ?", [str(self.spill)])
        for table, files in self.listing.items():
            if files:
                con.execute(f"SET VARIABLE {files_variable(table)} = ?", [[str(p) for p in files]])
            else:
                con.execute(f"RESET VARIABLE {files_variable(table)}")
        con.execute("SET VARIABLE as_of = NULL")
        con.execute("SET VARIABLE as_recorded = NULL")

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        if failed or not self._left():
            self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)
        for p in self.folder.glob(f".tmp-{self.tag}*"):
            p.unlink(missing_ok=True)

    def _left(self) -> bool:
        """Whether the connection was left to the process's next step (:class:`_Idle`): after a
        step of a few entities that ran on every thread and never spilled (a spill cannot move to
        the next step's folder)."""
        return (self.small and self.threads == (os.cpu_count() or 1) and not self.spill.exists()
                and _idle.leave(self.folder, self.con, self.uses + 1))

    def compute(self, entities: frozenset[str] | None) -> None:
        """Temp table ``computed``: every version of the growth of ``entities`` (None: all), with
        ``valid_to`` closed (:data:`STILL_VALID`)."""
        while True:
            try:
                return self._compute(entities)
            except duckdb.OutOfMemoryException:
                # what DuckDB cannot spill is held per thread: one thread needs about half of it
                if self.threads == 1:
                    raise
                self.threads = 1
                self.con.close()
                self.con, self.uses = self._connect(), 0
                self._point()

    def compute_layer(self, entities: frozenset[str] | None) -> Layer:
        """The growth of ``entities`` (None: every entity) written as a layer: computed at once,
        or entity by entity in parts of about :data:`PART_EVENTS` events (:func:`_parts`). When
        ``entities`` hold more than :data:`MOST_EVENTS` of the events, every entity is computed,
        and the layer is a base (its ``entities`` None)."""
        if entities is not None and len(entities) <= MAX_NARROWED:
            return self._compute_few(entities)
        counts = self._counts()
        if entities is not None and sum(counts.get(e, 0) for e in entities) > MOST_EVENTS * sum(counts.values()):
            entities = None
        parts = _parts(counts if entities is None else {e: n for e, n in counts.items() if e in entities})
        if parts is None:
            self.compute(entities)
            return self.write_layer("computed", entities)
        files = []
        for i, part in enumerate(parts):
            self.compute(part)
            files.append(self.folder / f".tmp-{self.tag}-part{i}.parquet")
            self.con.execute(f"COPY computed TO {sql_literal(files[-1])} (FORMAT parquet)")
            self.con.execute("DROP TABLE computed")
        return self.write_layer(f"read_parquet({sql_literal_list(files)})", entities)

    def _compute_few(self, entities: frozenset[str]) -> Layer:
        """A speed-up: a commit's few entities are computed at once, without counting every
        entity's events in the log first (a whole scan of its entity column at every commit)."""
        self.compute(entities)
        self.small = True
        return self.write_layer("computed", entities)

    def _counts(self) -> dict[str, int]:
        """Each entity's events in the listing, in name order."""
        events = self.listing.get("events", [])
        if not events:
            return {}
        return {str(e): int(n) for e, n in self.con.execute(
            f"SELECT entity, count(*) FROM read_parquet({sql_literal_list(events)}, union_by_name = true) "
            "GROUP BY entity ORDER BY entity").fetchall()}

    def _compute(self, entities: frozenset[str] | None) -> None:
        con = self.con
        if entities is not None:
            self._narrow(entities)
        con.execute("CREATE OR REPLACE TEMP TABLE projected_facts AS SELECT * FROM fact_versions()")
        con.execute("CREATE OR REPLACE TEMP TABLE projected_placed AS SELECT * FROM placed_versions('projected_facts')")
        con.execute("DROP TABLE projected_facts")
        keep = "" if entities is None else f" WHERE entity IN (SELECT unnest({_list(entities)}))"
        con.execute("CREATE OR REPLACE TEMP TABLE computed AS SELECT * REPLACE "
                    f"(coalesce(valid_to, {STILL_VALID}) AS valid_to) FROM growth_versions_of('projected_placed'){keep}")
        con.execute("DROP TABLE projected_placed")

    def _narrow(self, entities: frozenset[str]) -> None:
        """Point the session's event log at ``entities``' events and every withdrawal (which can
        name any entity's event), copied to a file of their own: every stage reads only those."""
        events = self.listing.get("events", [])
        target = self.folder / f".tmp-{self.tag}-events.parquet"
        if not events:
            return
        src = f"read_parquet({sql_literal_list(events)}, union_by_name = true)"
        query = f"SELECT * FROM {src} WHERE entity IN (SELECT unnest({_list(entities)}))"
        withdrawing = _withdrawing(self.con, events)
        if withdrawing:
            query += (f" UNION ALL BY NAME SELECT * FROM read_parquet({sql_literal_list(withdrawing)}, "
                      f"union_by_name = true) WHERE supersedes IS NOT NULL "
                      f"AND entity NOT IN (SELECT unnest({_list(entities)}))")
        self.con.execute(f"COPY ({query}) TO {sql_literal(target)} (FORMAT parquet)")
        self.con.execute(f"SET VARIABLE {files_variable('events')} = ?", [[str(target)]])

    def overlay(self, below: Layer, above: list[Layer], entities: frozenset[str] | None) -> Layer:
        """One layer of ``below``'s rows with ``above``'s (newest last) laid over them, entity by entity."""
        parts = []
        hidden: set[str] = set()
        for layer in reversed(above):
            parts.append(self._rows(layer, hidden))
            hidden |= layer.entities or set()
        parts.append(self._rows(below, hidden))
        self.con.execute("CREATE OR REPLACE TEMP TABLE overlaid AS " + " UNION ALL BY NAME ".join(parts))
        return self.write_layer("overlaid", entities)

    @staticmethod
    def _rows(layer: Layer, hidden: set[str]) -> str:
        src = f"SELECT * FROM read_parquet({sql_literal(layer.file)})"
        return src + (f" WHERE entity NOT IN (SELECT unnest({_list(hidden)}))" if hidden else "")

    def write_layer(self, table: str, entities: frozenset[str] | None) -> Layer:
        """Write ``table`` (closed versions: the temp table, or the parts' files read) as a layer's file."""
        tmp = self.folder / f".tmp-{self.tag}-layer.parquet"
        rows = int(self.con.execute(
            f"COPY (SELECT * REPLACE ({STORED_DERIVED_FROM} AS derived_from) FROM {table} "
            f"ORDER BY {BY_METRIC}, valid_from) TO {sql_literal(tmp)} "
            f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
        ).fetchall()[0][0])
        sha = sha256_prefix(tmp)
        path = self.folder / f"{LAYER}-{sha}.parquet"
        os.replace(tmp, path)
        vouch(path, sha)
        return Layer(path, sha, rows, entities)


class _Idle:
    """A speed-up: a step of a few entities leaves its connection, its views created, to the
    process's next step on the same store (creating them took 50 of the 130 ms of a one-event
    commit's step). One connection is kept, for the store written last; it serves
    :data:`REUSES` steps at most, so that the footers it cached of files merged away since are let
    go. Kept per process: a forked one makes its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: tuple[int, Path, duckdb.DuckDBPyConnection, int] | None = None   # pid, folder, con, uses

    def take(self, folder: Path) -> tuple[duckdb.DuckDBPyConnection | None, int]:
        """The connection left for ``folder`` and the steps it served, or (None, 0)."""
        with self.lock:
            if self.held is None or self.held[:2] != (os.getpid(), folder):
                return None, 0
            _, _, con, uses = self.held
            self.held = None
        return con, uses

    def leave(self, folder: Path, con: duckdb.DuckDBPyConnection, uses: int) -> bool:
        """Keep ``con`` for the next step, its temp tables dropped; False when it is not kept."""
        if uses >= REUSES:
            return False
        try:
            for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
                con.execute(f'DROP TABLE "{name}"')      # (the step's own tables: plain names)
        except duckdb.Error:
            return False
        with self.lock:
            if self.held is not None and self.held[0] != os.getpid():
                return False            # (a forked process leaves its parent's connection alone)
            replaced, self.held = self.held, (os.getpid(), folder, con, uses)
        if replaced is not None:
            replaced[2].close()
        return True


def _withdrawing(con: duckdb.DuckDBPyConnection, events: list[Path]) -> list[Path]:
    """A speed-up: the event files holding a withdrawal, each file read for them once per process
    (a file's name is its content's: files are immutable), so that a small step does not read the
    whole log's ``supersedes`` column at every commit (45 of a step's 120 ms at 10 M events, and
    growing with the log)."""
    with _withdrawals_lock:
        unseen = [p for p in events if p.name not in _withdrawals]
    if unseen:
        found = {Path(f).name for (f,) in con.execute(
            f"SELECT DISTINCT filename FROM read_parquet({sql_literal_list(unseen)}, union_by_name = true, "
            "filename = true) WHERE supersedes IS NOT NULL").fetchall()}
        with _withdrawals_lock:
            if len(_withdrawals) > WITHDRAWALS_KEPT:
                _withdrawals.clear()
            _withdrawals.update({p.name: p.name in found for p in unseen})
    with _withdrawals_lock:
        return [p for p in events if _withdrawals.get(p.name, True)]


#: Whether each event file read holds a withdrawal, by file name (:func:`_withdrawing`), and how
#: many are kept.
_withdrawals: dict[str, bool] = {}
_withdrawals_lock = threading.Lock()
WITHDRAWALS_KEPT = 100_000


def _limited(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection | None:
    """A kept connection under the memory limit set now, or None (closed) when it holds more than
    that: a new connection starts under it."""
    try:
        set_memory_limit(con, _memory_limit())
    except duckdb.OutOfMemoryException:
        con.close()
        return None
    return con


_idle = _Idle()
#: Steps a connection serves before it is closed (:class:`_Idle`).
REUSES = 1_000


#: Rows per row group: a series is a few dozen rows, but smaller groups make every whole-view read
#: slower; one series reads one 16k-row group.
ROW_GROUP_ROWS = 16_384
#: zstd's level for layer files: at 1 M events level 1 wrote the layer 13% sooner than DuckDB's
#: default (3), and the file came out no larger and read as fast or faster.
ZSTD_LEVEL = 1


def _parts(counts: dict[str, int]) -> list[frozenset[str]] | None:
    """The entities of ``counts`` (events per entity) in parts of about :data:`PART_EVENTS` events
    each, in name order, or None when they hold fewer (computed at once). A speed-up for memory:
    DuckDB cannot spill every stage of the growth, so computing everything at once needs memory
    that grows with the store, and a part's with the part (an entity's growth reads only its own
    events, every withdrawal, its calendar and the metrics' definitions)."""
    if sum(counts.values()) <= PART_EVENTS:
        return None
    parts: list[set[str]] = [set()]
    held = 0
    for entity, n in counts.items():
        if held and held + n > PART_EVENTS:
            parts.append(set())
            held = 0
        parts[-1].add(entity)
        held += n
    return [frozenset(p) for p in parts]


def _list(names: set[str] | frozenset[str]) -> str:
    """A SQL list literal of entity names (validated names; quoted all the same)."""
    return "[" + ", ".join(sql_literal(n) for n in sorted(names)) + "]::VARCHAR[]"
