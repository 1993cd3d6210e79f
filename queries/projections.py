"""Reading the projections of the growth view: which one a query may read, and for which entities.

A projection (written by :mod:`queries.projector`) is a manifest in ``<store>/_projections/``
naming the log files it was computed from (``covers``) and its layers: a *base* holding every
entity's growth, and *deltas* holding the entities recomputed since the base (their rows replace
the base's). A layer is one Parquet file of every version of its rows over publication time,
sorted by metric then entity (:data:`BY_METRIC`): the answer now is its versions still valid
(:data:`STILL_VALID`), the answer as of a date those valid then, and one series, or one metric
across every entity, is a few adjacent row groups.

A reader takes the newest manifest computed by the installed SQL whose files are whole, and asks
which entities changed in the log since it was computed (:meth:`Projections.changed`): events of
theirs in files it has not seen, an event of theirs withdrawn, a new fiscal calendar record, a
new definition of one of their metrics. Those entities are computed from the events; every other
entity is read from the projection. A projection is therefore never read for an entity it does
not describe: it may lag the log, but the answer does not. An answer ``as_recorded`` at a system
time also computes the entities with anything recorded after it (:meth:`Projections.recorded_after`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from queries.live import Reading, local_root
from queries.views import sql_literal, sql_sources
from store import Store
from store.compaction import merged_sources
from store.log import COMMIT_NAME
from store.verify import sha256_prefix

FOLDER = "_projections"
#: Set METRICSTORE_PROJECTIONS=0 to compute every answer from the events (the reference).
ENV_SWITCH = "METRICSTORE_PROJECTIONS"
#: The logs a growth answer depends on.
COVERED = ("events", "entities", "metrics")
#: A layer file is ``<LAYER>-<sha>.parquet``.
LAYER = "layer"
#: How a layer file is laid out: a manifest of another format is not read (the next step rebuilds).
FORMAT = 2
#: Sort order of a layer file: one metric across every entity (a screen, now or as of a date) is a
#: few adjacent row groups, and one series too.
BY_METRIC = "metric, entity, segment, dims, ptype, period_end"
#: ``valid_to`` of a version still valid (never NULL in the files: two comparisons DuckDB checks
#: against each row group's statistics).
STILL_VALID_DATE = dt.date(9999, 12, 31)
STILL_VALID = f"DATE '{STILL_VALID_DATE.isoformat()}'"
#: Every reader keeps the versions valid on one day (:func:`valid_on`); the answer now is the
#: versions valid on the day before :data:`STILL_VALID`, the versions still valid.
NOW_DAY = STILL_VALID_DATE - dt.timedelta(days=1)
#: A reported row's ``derived_from`` is its own event id: the files store NULL in its place (the
#: ids are the largest columns), and every reader puts it back (:data:`DERIVED_FROM`).
STORED_DERIVED_FROM = "CASE WHEN derived_from = [event_id] THEN NULL ELSE derived_from END"
DERIVED_FROM = "CASE WHEN derived_from IS NULL AND event_id IS NOT NULL THEN [event_id] ELSE derived_from END"
#: A layer file's row as the growth view gives it.
VIEW_ROW = f"* EXCLUDE (valid_from, valid_to) REPLACE ({DERIVED_FROM} AS derived_from)"
#: The view SQL a projection is computed by: the logs, the facts and every version of the growth.
SOURCES = ("00_periods.sql", "05_decimals.sql", "10_log.sql", "15_entities_at.sql", "20_facts.sql",
           "28_growth_rules.sql", "30_growth.sql", "35_growth_versions.sql")
#: Beyond this many entities changed since the projection, a whole-view query computes everything.
MAX_RECOMPUTED = 256


def valid_on(day: str) -> str:
    """The SQL condition of a version valid on ``day`` (a SQL date expression; :data:`NOW_DAY`: now)."""
    return f"valid_from <= {day} AND {day} < valid_to"


@functools.cache
def sql_version() -> str:
    """A hash of what computes a projection (the view SQL of :data:`SOURCES`, the projector's own
    statements) and the files' :data:`FORMAT`: a projection computed otherwise is not this view's
    answer. The other views read the growth and are not hashed: editing them rebuilds nothing."""
    h = hashlib.sha256(f"format {FORMAT}\0".encode())
    sources = dict(sql_sources())
    for name in SOURCES:
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    h.update((resources.files("queries") / "projector.py").read_bytes())
    return h.hexdigest()[:16]


def enabled() -> bool:
    """False when ``$METRICSTORE_PROJECTIONS`` (or the older ``$METRICSTORE_SNAPSHOTS``) is 0/false/off."""
    return all(os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")
               for name in (ENV_SWITCH, "METRICSTORE_SNAPSHOTS"))


def folder_of(store: Store) -> Path | None:
    """The projections' folder (None for an object store: projections are kept for local stores)."""
    root = local_root(store)
    return None if root is None else root / FOLDER


#: Layer files whose bytes matched their checksum, by path, with the size and mtime they had then:
#: shared by every reader and projector of the process, so a file is hashed once (a base is
#: hundreds of MB at a million events, and a projector reads the manifest at every commit).
_PROVEN: dict[str, tuple[int, int, str]] = {}


def vouch(path: Path, sha: str) -> None:
    """Record ``path`` as matching ``sha`` as it is now (checked, or just written by this process)."""
    st = path.stat()
    _PROVEN[str(path)] = (st.st_size, st.st_mtime_ns, sha)


@dataclass(frozen=True)
class Layer:
    """One layer's file, its checksum, its rows, and the entities it holds (None: all)."""

    file: Path
    sha: str
    rows: int
    entities: frozenset[str] | None = None

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.file.name, "sha256": self.sha, "rows": self.rows}
        if self.entities is not None:
            out["entities"] = sorted(self.entities)
        return out

    @staticmethod
    def of(body: dict[str, Any], folder: Path) -> Layer:
        """The layer a manifest describes (raises KeyError, TypeError or ValueError when it is not one)."""
        entities = body.get("entities")
        return Layer(folder / str(body["file"]), str(body["sha256"]), int(body.get("rows", 0)),
                     None if entities is None else frozenset(str(e) for e in entities))


@dataclass(frozen=True)
class Projection:
    """A published projection: its manifest, the log files it covers, its base and delta layers."""

    manifest: Path
    covers: dict[str, frozenset[str]]
    created_unix: float
    base: Layer
    deltas: tuple[Layer, ...] = ()

    def layer_of(self, entity: str) -> Layer:
        """The layer holding ``entity``'s rows: the newest delta listing it, else the base."""
        for layer in reversed(self.deltas):
            if entity in (layer.entities or ()):
                return layer
        return self.base

    @property
    def layers(self) -> list[Layer]:
        """Base first, newest delta last."""
        return [self.base, *self.deltas]

    def hidden(self) -> list[frozenset[str]]:
        """For each of :attr:`layers`, the entities a newer layer holds (its rows for them are replaced)."""
        out: list[frozenset[str]] = []
        above: set[str] = set()
        for layer in reversed(self.layers):
            out.append(frozenset(above))
            above |= layer.entities or set()
        return out[::-1]


@dataclass(frozen=True)
class Usable:
    """A projection a query may read: every entity's growth but ``changed``'s, whose inputs
    changed since it was computed."""

    projection: Projection
    changed: frozenset[str]


class Projections:
    """Finds the projection a query may read, for one store, in one process.

    Manifests are parsed once (the folder is listed again when its mtime changes), a file's
    bytes are checked against its manifest once, and what each committed file holds (entities,
    withdrawals, metrics) is read once: committed files never change.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listing: tuple[int, Projection | None] | None = None
        self._reach: dict[tuple[str, str, frozenset[str] | None], tuple[frozenset[str], tuple[str, ...]]] = {}
        self._entities: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], frozenset[str]] = {}
        self._later: dict[tuple[str, str, dt.datetime], tuple[frozenset[str], tuple[str, ...]]] = {}
        self._recorded: dict[str, dt.datetime | None] = {}
        self._lock = threading.Lock()

    def latest(self) -> Projection | None:
        """The newest projection computed by this SQL, whole on disk, or None."""
        folder = folder_of(self.store)
        if folder is None or not enabled():
            return None
        try:
            stamp = os.stat(folder).st_mtime_ns
        except OSError:
            return None
        with self._lock:
            if self._listing is not None and self._listing[0] == stamp and time.time_ns() - stamp > 10**8:
                return self._listing[1]
            found = self._newest(folder)
            self._listing = (stamp, found)
            return found

    def _newest(self, folder: Path) -> Projection | None:
        try:
            names = sorted((e.name for e in os.scandir(folder) if e.name.startswith("projection-")
                            and e.name.endswith(".json")), reverse=True)
        except OSError:                 # gone, or not a folder: answers are computed
            return None
        for name in names:              # names sort by creation time
            try:
                body = json.loads((folder / name).read_text())
                if not isinstance(body, dict) or body.get("sql") != sql_version():
                    continue
                found = Projection(folder / name, {t: frozenset(body["covers"].get(t, ())) for t in COVERED},
                                   float(body["created_unix"]), Layer.of(body["base"], folder),
                                   tuple(Layer.of(d, folder) for d in body.get("deltas", [])))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if all(self._whole(layer.file, layer.sha) for layer in found.layers):
                return found
        return None

    @staticmethod
    def _whole(path: Path, sha: str) -> bool:
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns, sha)
            if _PROVEN.get(str(path)) != key:
                if sha256_prefix(path) != sha:
                    return False
                vouch(path, sha)
        except OSError:
            return False
        return True

    def usable(self, live: Reading, *, whole_view: bool = True, as_recorded: dt.datetime | None = None) -> Usable | None:
        """The projection that answers the growth view over the ``live`` files, with the entities
        it does not describe (computed instead), or None when the whole view must be computed. A
        whole-view query past :data:`MAX_RECOMPUTED` changed entities computes everything.

        With ``as_recorded`` (system time, tz-aware), the entities whose inputs were recorded
        after it are computed too (:meth:`recorded_after`): for every other entity the store had
        recorded all it holds by then, so its answer then is its answer now."""
        found = self.latest()
        return None if found is None else self.usable_of(found, live, whole_view=whole_view, as_recorded=as_recorded)

    def usable_of(self, found: Projection, live: Reading, *, whole_view: bool = True,
                  as_recorded: dt.datetime | None = None) -> Usable | None:
        """:meth:`usable` of a projection taken earlier (Spark opens its files before it lists the logs)."""
        changed = self.changed(found, live)
        if changed is not None and as_recorded is not None:
            later = self.recorded_after(live, as_recorded)
            changed = None if later is None else changed | later
        if changed is None or (whole_view and len(changed) > MAX_RECOMPUTED):
            return None
        return Usable(found, changed)

    def recorded_after(self, live: Reading, t: dt.datetime) -> frozenset[str] | None:
        """The entities whose growth as recorded at ``t`` may differ from their growth now, or None
        when a file cannot be read: those with events or entity records recorded after ``t``, and
        those whose events a withdrawal recorded after ``t`` names. (The metric definitions are
        read as of now at every system time: a later one changes no answer at ``t`` alone.)"""
        out: set[str] = set()
        withdrawn: set[str] = set()
        for table in ("events", "entities"):
            for path in live.get(table, []):
                held = self._recorded_after(table, path, t)
                if held is None:
                    return None
                out.update(held[0])
                withdrawn.update(held[1])
        if withdrawn:
            out |= self._reached(live.get("events", []), sorted(withdrawn), [])
        return frozenset(out)

    def _recorded_after(self, table: str, path: Path, t: dt.datetime) -> tuple[frozenset[str], tuple[str, ...]] | None:
        """What of a committed file was recorded after ``t``: its entities, and the event ids its
        withdrawals name (kept per file and time; a file whose footer says it was all recorded by
        then is not read)."""
        key = (table, path.name, t)
        hit = self._later.get(key)
        if hit is not None:
            return hit
        try:
            latest = self._latest_recorded(path)
            if latest is not None and latest <= t:
                hit = (frozenset(), ())
            else:
                cols = ["entity", "supersedes"] if table == "events" else ["entity"]
                hit = _touched(table, pq.read_table(path, columns=cols, filters=[("recorded_at", ">", t)]))
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
            return None
        with self._lock:
            if len(self._later) > 4096:
                self._later.clear()
            self._later[key] = hit
        return hit

    def _latest_recorded(self, path: Path) -> dt.datetime | None:
        """The file's latest ``recorded_at`` by its footer's statistics (None when they cannot tell),
        kept per file: a committed file never changes, and each system time asked reads it."""
        if str(path) in self._recorded:
            return self._recorded[str(path)]
        latest = _latest_in_footer(path)
        with self._lock:
            if len(self._recorded) > 4096:
                self._recorded.clear()
            self._recorded[str(path)] = latest
        return latest

    def changed(self, found: Projection, live: Reading) -> frozenset[str] | None:
        """The entities whose growth over ``live`` may differ from ``found``'s, or None when that
        cannot be told (a file it covers is neither live nor merged into a live file, or a new
        file cannot be read): the entities with events in files it has not seen, those whose
        events a new withdrawal names, those with a new entity record, and those with events of a
        metric with a new definition."""
        out: set[str] = set()
        withdrawn: set[str] = set()
        metrics: set[str] = set()
        for table in COVERED:
            files = live.get(table, [])
            extra = self._unseen(table, [p.name for p in files], found.covers[table])
            if extra is None:
                return None
            for path in files:
                if path.name not in extra:
                    continue
                held = self._holds(table, path, extra[path.name])
                if held is None:
                    return None
                keys, ids = held
                (metrics if table == "metrics" else out).update(keys)
                withdrawn.update(ids)
        if withdrawn or metrics:
            out |= self._reached(live.get("events", []), sorted(withdrawn), sorted(metrics))
        return frozenset(out)

    def _reached(self, events: list[Path], ids: list[str], metrics: list[str]) -> frozenset[str]:
        """:meth:`_entities_of`, kept per listing: committed files never change, and a reader asks
        at every query until the next projection step."""
        key = (tuple(p.name for p in events), tuple(ids), tuple(metrics))
        with self._lock:
            hit = self._entities.get(key)
        if hit is None:
            hit = frozenset(self._entities_of(events, ids, metrics))
            with self._lock:
                if len(self._entities) > 8:
                    self._entities.clear()
                self._entities[key] = hit
        return hit

    def _unseen(self, table: str, names: list[str], covers: frozenset[str]) -> dict[str, frozenset[str] | None] | None:
        """The live files (``names``) holding rows the projection has not seen, each with the
        commits of those rows (None: the whole file), or None when one of the files it covers is
        unaccounted for (neither live nor merged, as far as the kept compaction manifests tell,
        into a live file). A live file merged from covered files and from commits made after the
        projection (an automatic compaction runs before the writer's projection step) holds
        unseen rows of those commits only."""
        live = set(names)
        extra = live - covers
        if not extra and covers <= live:
            return {}
        sources = merged_sources(self.store, table)
        seen: set[str] = set()

        def leaves(name: str, depth: int = 0) -> tuple[set[str], set[str]] | None:
            """The covered files a file was merged from, and the commits of its other sources."""
            if name in covers:
                return {name}, set()
            m = COMMIT_NAME.match(name)
            if m is None or depth > 64:
                return None
            parts = sources.get(m["commit"])
            if parts is None:       # a commit of its own (checked against the merged rows' commits)
                return set(), {m["commit"]}
            out: tuple[set[str], set[str]] = (set(), set())
            for part in parts:
                got = leaves(part, depth + 1)
                if got is None:
                    return None
                out[0].update(got[0])
                out[1].update(got[1])
            return out

        unseen: dict[str, frozenset[str] | None] = {}
        for name in extra:
            got = leaves(name)
            if got is None or not got[0]:   # new rows only, or a merge of sources that cannot be told
                unseen[name] = None
                continue
            seen |= got[0]
            if got[1]:
                unseen[name] = frozenset(got[1])
        if not covers <= (live & covers) | seen:
            return None
        return unseen

    def _holds(self, table: str, path: Path, commits: frozenset[str] | None = None
               ) -> tuple[frozenset[str], tuple[str, ...]] | None:
        """What a committed file changes: the entities (or, for ``metrics``, the metrics) it holds
        rows of, and the event ids its withdrawals name; with ``commits``, of its rows of those
        commits only. None if it cannot be read, or when one of ``commits`` has no row there (a
        source that was itself a merge, whose manifest is gone: what it holds cannot be told)."""
        hit = self._reach.get((table, path.name, commits))
        if hit is None:
            key = "metric" if table == "metrics" else "entity"
            try:
                cols = [key, "supersedes"] if table == "events" else [key]
                if commits is None:
                    rows = pq.read_table(path, columns=cols)
                else:
                    rows = pq.read_table(path, columns=[*cols, "commit_id"],
                                         filters=[("commit_id", "in", sorted(commits))])
                    if set(rows.column("commit_id").unique().to_pylist()) != commits:
                        return None
                hit = _touched(table, rows)
            except (OSError, KeyError, ValueError, pa.ArrowException):
                return None
            self._reach[(table, path.name, commits)] = hit
        return hit

    @staticmethod
    def _entities_of(events: list[Path], ids: list[str], metrics: list[str]) -> set[str]:
        """The entities of the events named ``ids``, and those with events of ``metrics``."""
        if not events:
            return set()
        con = duckdb.connect()
        try:
            rows = con.execute(
                f"SELECT DISTINCT entity FROM read_parquet({sql_literal_list(events)}, union_by_name = true) "
                "WHERE list_contains(?, event_id) OR list_contains(?, metric)", [ids, metrics]).fetchall()
        finally:
            con.close()
        return {str(r[0]) for r in rows}


def _touched(table: str, rows: pa.Table) -> tuple[frozenset[str], tuple[str, ...]]:
    """What rows of a committed file change: their entities (their metrics, in the ``metrics``
    log) and the event ids their withdrawals name."""
    key = "metric" if table == "metrics" else "entity"
    ids: tuple[str, ...] = ()
    if table == "events" and rows.column("supersedes").null_count < rows.num_rows:
        ids = tuple(v for v in rows.column("supersedes").unique().to_pylist() if v is not None)
    return frozenset(rows.column(key).unique().to_pylist()), ids


def _latest_in_footer(path: Path) -> dt.datetime | None:
    """A file's latest ``recorded_at`` by its footer's statistics (None when they cannot tell)."""
    metadata = pq.read_metadata(path)
    names = metadata.schema.names
    if "recorded_at" not in names:
        return None
    column = names.index("recorded_at")
    latest: dt.datetime | None = None
    for i in range(metadata.num_row_groups):
        if metadata.row_group(i).num_rows == 0:
            continue
        stats = metadata.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.max, dt.datetime):
            return None
        high = stats.max if stats.max.tzinfo else stats.max.replace(tzinfo=dt.UTC)
        latest = high if latest is None or high > latest else latest
    return latest


def sql_literal_list(paths: list[Path]) -> str:
    """A SQL list literal of file paths the store chose."""
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"
