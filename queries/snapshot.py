"""A snapshot of the current ``growth`` view: a cache rebuilt from the log, never the source of truth.

The growth view computes every fact's current value, derived quarters and YoY/QoQ/TTM from the
events on every query; at a million events DuckDB spends more time planning and ranking than the
answer is worth re-deriving. ``metricstore compact`` (and :func:`refresh`) therefore writes the
view's current answer (no ``as_of``, no ``as_recorded``) to ``_snapshots/growth-<sha>.parquet``,
sorted by series, with a manifest naming the log files it was computed from.

A reader uses it only when it is provably the answer the view would give now:

- the SQL that computed it is the SQL installed now (a hash of ``queries/sql``);
- the entities and metrics logs are the files it was computed from;
- every event file it was computed from is still read, itself or through the merged file a
  compaction made of it (the compaction manifests say which), and no other event file is read;
- newer event files may exist if none holds a withdrawal (``supersedes``, which could reach
  across entities): the entities they hold events of are computed from the events, every other
  entity's growth is read from the snapshot (a series of an unchanged entity is read whole).

Otherwise the view is computed from the events as before. Beside the current answer the snapshot
keeps every version of it over publication time (``growth_versions``, with ``valid_from`` and
``valid_to``): an ``as_of`` answer is read from it on the same terms (the rows valid at that date),
composed in the same way with the entities changed since. ``as_recorded`` answers are always
computed. A snapshot whose bytes do not match its manifest's checksum is ignored.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from queries.errors import SqlError
from queries.live import Reading, list_live, local_root, read_listed
from queries.sandbox import MEMORY_ENV, set_memory_limit
from queries.views import files_variable, install, sql_literal, sql_sources
from store import CorruptFile, Store
from store.compaction import CompactionPolicy, merged_sources
from store.log import COMMIT_NAME
from store.verify import sha256_prefix

FOLDER = "_snapshots"
#: Set METRICSTORE_SNAPSHOTS=0 to compute every answer from the events (snapshots are not read).
ENV_SWITCH = "METRICSTORE_SNAPSHOTS"
#: The logs a growth answer depends on.
COVERED = ("events", "entities", "metrics")
#: Rows per row group: a series is a few dozen rows, but smaller groups make every whole-view
#: read slower; with DuckDB's Parquet metadata cache, one series reads one 16k-row group.
ROW_GROUP_ROWS = 16_384
ORDER = "entity, metric, segment, dims, ptype, period_end"


@functools.cache
def sql_version() -> str:
    """A hash of the installed view SQL: a snapshot computed by other SQL is not this view's answer."""
    h = hashlib.sha256()
    for name, text in sql_sources():
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Snapshot:
    """A published snapshot: its file, the two files of every version of it with their checksums
    (proven on first use, see :meth:`Snapshots.kept`), and the log files they were computed from."""

    path: Path
    covers: dict[str, frozenset[str]]
    created_unix: float
    rows: int
    versions: Path | None = None
    versions_sha: str | None = None
    timeline: Path | None = None
    timeline_sha: str | None = None


#: The two files of every version kept beside the current answer ``growth-<sha>.parquet``: the same
#: rows sorted by series (one series as of a date reads its row groups) and by time (the whole view
#: as of a date reads the row groups valid then: the current rows sorted by valid_from, then the
#: replaced ones by valid_to). valid_to is never NULL in them: 9999-12-31 stands for "still valid",
#: so that a reader's ``valid_from <= d AND d < valid_to`` is two comparisons DuckDB pushes into the
#: scan and checks against each row group's statistics.
KINDS = ("versions", "timeline")
STILL_VALID = "DATE '9999-12-31'"


def kept_path(current: Path, kind: str) -> Path:
    """The file of one of :data:`KINDS` kept beside the current answer ``growth-<sha>.parquet``."""
    return current.with_name(current.name.replace(".parquet", f".{kind}.parquet"))


def _folder(store: Store) -> Path | None:
    """The snapshots' folder (None for an object store: snapshots are kept for local stores only)."""
    root = local_root(store)
    return None if root is None else root / FOLDER


def refresh(store: Store) -> Snapshot | None:
    """Compute the current growth view from the live files and publish it as the newest snapshot.

    Returns ``None`` for an object-store root (snapshots are kept for local stores only).
    Older snapshots are deleted once older than the compaction grace period (a reader may
    still be reading one).

    The refresh reads the files it listed through hard links of its own (:func:`_hold`), so a
    compaction that deletes them meanwhile changes nothing for it, however long it runs: at
    10 M events it takes minutes (455-680 s measured, beside a default grace period of 300 s),
    and it would otherwise lose its sources to every compaction that ends in that time. Where
    hard links cannot be made, it reads the files in place, and a file deleted under it is
    listed again and the refresh run again (:func:`queries.live.read_listed`), from the third
    attempt on holding the compactor's lock: at 10 M events no compaction then runs for the
    minutes the refresh takes.

    Raises:
        CorruptFile: ``_snapshots`` is not a folder.
        SqlError: the view could not be computed (out of memory, a damaged file): one line.
        FilesVanished: the files read in place kept being deleted under the refresh.
    """
    folder = _folder(store)
    if folder is None:
        return None
    try:
        folder.mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CorruptFile(folder, "is not a folder, so the growth snapshot cannot be written there; "
                                  "move it aside (readers meanwhile compute every answer)") from None
    tag = uuid.uuid4().hex
    tmp = folder / f".tmp-{tag}.parquet"
    held = folder / f".tmp-{tag}-held"
    limit = os.environ.get(MEMORY_ENV, "").strip() or MEMORY_LIMIT
    threads = [os.cpu_count() or 1]

    def compute(listing: Reading) -> tuple[int, int]:
        while True:
            try:
                return _compute(store, listing, tmp, folder / f".tmp-{tag}-spill", limit, threads[0])
            except duckdb.OutOfMemoryException:
                # what DuckDB cannot spill is held per thread: one thread needs about half of it
                if threads[0] > 1:
                    threads[0] = 1
                    continue
                raise SqlError(f"the growth snapshot needs more than {limit} of memory; set {MEMORY_ENV} higher "
                               f"(say 4GB; default {MEMORY_LIMIT}). The previous snapshot stays, and answers it "
                               f"does not cover are computed from the events") from None

    listed: list[Reading] = []

    def listing() -> Reading:
        listed.append(list_live(store, COVERED))
        return _hold(listed[-1], held)

    try:
        rows, versions = read_listed(store, listing, compute)
    except duckdb.Error as exc:
        raise SqlError(f"the growth snapshot could not be computed: {str(exc).splitlines()[0]}") from None
    finally:
        shutil.rmtree(held, ignore_errors=True)
    sha = sha256_prefix(tmp)
    final = folder / f"growth-{sha}.parquet"
    body: dict[str, object] = {"sql": sql_version(), "file": final.name, "sha256": sha, "rows": int(rows),
                               "versions_rows": int(versions)}
    for kind in KINDS:
        body[f"{kind}_sha256"] = sha256_prefix(kept_path(tmp, kind))
        body[f"{kind}_file"] = kept_path(final, kind).name
        os.replace(kept_path(tmp, kind), kept_path(final, kind))
    os.replace(tmp, final)
    now = time.time()
    body |= {"covers": {t: sorted(p.name for p in files) for t, files in listed[-1].items()},
             "created_at": dt.datetime.now(dt.UTC).isoformat(), "created_unix": now}
    meta_tmp = folder / f".tmp-{tag}.json"
    meta_tmp.write_text(json.dumps(body, indent=1))
    os.replace(meta_tmp, folder / f"growth-{sha}.json")
    _prune(folder, keep=final.name, grace_s=CompactionPolicy.from_env().grace_s, now=now)
    covers = cast("dict[str, list[str]]", body["covers"])
    return Snapshot(final, {t: frozenset(v) for t, v in covers.items()}, now, int(rows),
                    kept_path(final, "versions"), str(body["versions_sha256"]),
                    kept_path(final, "timeline"), str(body["timeline_sha256"]))


def _hold(listing: Reading, folder: Path) -> Reading:
    """The files of ``listing`` as hard links in ``folder`` (same names), which a compaction's
    deletion of the originals does not reach: a long refresh reads what it listed. ``listing``
    itself, read in place, where a link cannot be made (a file deleted since the listing: the
    read then fails and lists again; a filesystem without hard links)."""
    shutil.rmtree(folder, ignore_errors=True)
    out: Reading = {}
    try:
        for table, files in listing.items():
            (folder / table).mkdir(parents=True)
            out[table] = []
            for path in files:
                os.link(path, folder / table / path.name)
                out[table].append(folder / table / path.name)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return listing
    return out


#: DuckDB's memory while computing the whole view, unless ``$METRICSTORE_MEMORY_LIMIT`` says
#: otherwise; beyond it, it spills to the snapshot folder. A refresh that runs out of it with
#: several threads runs again on one.
MEMORY_LIMIT = "2GB"


def _compute(store: Store, listing: Reading, tmp: Path, spill: Path, limit: str,
             threads: int) -> tuple[int, int]:
    """Write the growth view over exactly the ``listing`` files to ``tmp`` and every version of it
    beside it (:data:`KINDS`); returns the rows of the view and of its versions.

    The versions are computed in the three stages of ``35_growth_versions.sql``, on ``threads``
    threads, each into a temporary table DuckDB spills past ``limit``; the current answer is the versions
    still valid (a test holds them equal to the view computed from the events)."""
    con = duckdb.connect(config={"threads": threads})
    try:
        set_memory_limit(con, limit)
        con.execute("SET temp_directory = ?", [str(spill)])
        con.execute("SET preserve_insertion_order = false")
        install(con, store, listing)
        for table, files in listing.items():
            if files:
                con.execute(f"SET VARIABLE {files_variable(table)} = ?", [[str(p) for p in files]])
        con.execute("SET VARIABLE as_of = NULL")
        con.execute("SET VARIABLE as_recorded = NULL")
        con.execute("CREATE TEMP TABLE snapshot_facts AS SELECT * FROM fact_versions()")
        con.execute("CREATE TEMP TABLE snapshot_placed AS SELECT * FROM placed_versions('snapshot_facts')")
        con.execute("DROP TABLE snapshot_facts")
        con.execute("CREATE TEMP TABLE snapshot_growth AS SELECT * FROM growth_versions_of('snapshot_placed')")
        con.execute("DROP TABLE snapshot_placed")

        def copy(select: str, path: Path) -> int:
            return int(con.execute(f"COPY ({select}) TO {sql_literal(path)} (FORMAT parquet, COMPRESSION zstd, "
                                   f"ROW_GROUP_SIZE {ROW_GROUP_ROWS})").fetchall()[0][0])

        closed = f"SELECT * FROM (SELECT * REPLACE (coalesce(valid_to, {STILL_VALID}) AS valid_to) FROM snapshot_growth)"
        versions = copy(f"{closed} ORDER BY {ORDER}, valid_from", kept_path(tmp, "versions"))
        copy(f"{closed} ORDER BY valid_to = {STILL_VALID} DESC, "
             f"CASE WHEN valid_to = {STILL_VALID} THEN valid_from ELSE valid_to END", kept_path(tmp, "timeline"))
        rows = copy(f"SELECT * EXCLUDE (valid_from, valid_to) FROM snapshot_growth WHERE valid_to IS NULL "
                    f"ORDER BY {ORDER}", tmp)
        return rows, versions
    except BaseException:
        for path in (tmp, *(kept_path(tmp, kind) for kind in KINDS)):
            path.unlink(missing_ok=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _entity_bounds(metadata: pq.FileMetaData) -> tuple[list[str], list[str]] | None:
    """Each row group's lowest and highest entity, in file order, or None unless every row group
    has both and they ascend (the file is sorted by entity: a lookup is a bisection)."""
    column = metadata.schema.names.index("entity") if "entity" in metadata.schema.names else None
    if column is None:
        return None
    lows: list[str] = []
    highs: list[str] = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min, str) or not isinstance(stats.max, str):
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    if any(a > b for a, b in zip(lows, highs, strict=True)) or lows != sorted(lows) or highs != sorted(highs):
        return None
    return lows, highs


def _prune(folder: Path, *, keep: str, grace_s: float, now: float) -> None:
    """Delete snapshots replaced more than ``grace_s`` ago, and abandoned temporary files."""
    for entry in os.scandir(folder):
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if entry.name.startswith(".tmp-"):      # a refresh that died
            if age > 3600 and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)
            elif age > 3600:
                Path(entry.path).unlink(missing_ok=True)
        elif entry.name.endswith(".json") and entry.name != keep.replace(".parquet", ".json") and age > grace_s:
            Path(entry.path).unlink(missing_ok=True)     # the manifest first: no reader picks it now
            Path(entry.path[: -len(".json")] + ".parquet").unlink(missing_ok=True)
            for kind in KINDS:
                Path(entry.path[: -len(".json")] + f".{kind}.parquet").unlink(missing_ok=True)


@dataclass(frozen=True)
class Usable:
    """A snapshot a query may read: every entity's growth but ``changed``'s, whose events changed
    since it was computed."""

    snapshot: Snapshot
    changed: frozenset[str]


#: Beyond this many entities changed since the snapshot, the whole view is computed instead.
MAX_RECOMPUTED = 256


class Snapshots:
    """Finds the snapshot a query may read, for one store, in one process.

    Manifests are parsed once (the folder listing is reused while its mtime is unchanged), a
    snapshot's bytes are checked against its manifest once, and what each event file holds
    (entities, withdrawals) is read once: committed files never change.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listing: tuple[int, Snapshot | None] | None = None
        self._proven: dict[str, tuple[int, int]] = {}
        self._reach: dict[str, tuple[frozenset[str], bool]] = {}
        self._row_groups: dict[str, tuple[pq.FileMetaData, tuple[list[str], list[str]] | None]] = {}
        self._lock = threading.Lock()

    def latest(self) -> Snapshot | None:
        """The newest snapshot computed by this SQL, whole on disk, or None."""
        folder = _folder(self.store)
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

    def _newest(self, folder: Path) -> Snapshot | None:
        bodies = []
        try:
            entries = list(os.scandir(folder))
        except OSError:                 # gone, or not a folder: no snapshot (answers are computed)
            return None
        for entry in entries:
            if entry.name.startswith("growth-") and entry.name.endswith(".json"):
                try:
                    body = json.loads(Path(entry.path).read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(body, dict) and body.get("sql") == sql_version():
                    bodies.append(body)
        for body in sorted(bodies, key=lambda b: float(b.get("created_unix", 0)), reverse=True):
            path = folder / str(body.get("file"))
            if self._whole(path, str(body.get("sha256"))):
                covers = {t: frozenset(body.get("covers", {}).get(t, ())) for t in COVERED}
                kept = {kind: (folder / str(body[f"{kind}_file"]) if f"{kind}_file" in body else None,
                               str(body.get(f"{kind}_sha256"))) for kind in KINDS}
                return Snapshot(path, covers, float(body["created_unix"]), int(body.get("rows", 0)),
                                *kept["versions"], *kept["timeline"])
        return None

    def kept(self, snap: Snapshot, kind: str) -> Path | None:
        """The file of every version of ``snap``'s answer (by series, or by time: :data:`KINDS`),
        once proven whole (else None: the answer is computed)."""
        path, sha = (snap.versions, snap.versions_sha) if kind == "versions" else (snap.timeline, snap.timeline_sha)
        if path is None or sha is None:
            return None
        with self._lock:
            return path if self._whole(path, sha) else None

    def rows_of(self, path: Path, entity: str) -> pa.Table | None:
        """Every row of ``entity`` in a snapshot file sorted by series, read from only the row
        groups whose statistics admit it (the footer is parsed once per file), or None when the
        file is gone or its statistics cannot tell (the caller then asks DuckDB)."""
        with self._lock:
            index = self._row_groups.get(str(path))
            if index is None:
                try:
                    metadata = pq.read_metadata(path)
                except OSError:
                    return None
                index = (metadata, _entity_bounds(metadata))
                if len(self._row_groups) > 4:           # older snapshots: replaced, soon deleted
                    self._row_groups.clear()
                self._row_groups[str(path)] = index
        metadata, bounds = index
        if bounds is None:
            return None
        lows, highs = bounds
        groups = list(range(bisect.bisect_left(highs, entity), bisect.bisect_right(lows, entity)))
        try:
            return pq.ParquetFile(path, metadata=metadata).read_row_groups(groups)
        except OSError:       # replaced and deleted since (its grace period over)
            return None

    def _whole(self, path: Path, sha: str) -> bool:
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            if self._proven.get(str(path)) != key:
                if sha256_prefix(path) != sha:
                    return False
                self._proven[str(path)] = key
        except OSError:
            return False
        return True

    def usable(self, live: dict[str, list[Path]], *, whole_view: bool = True) -> Usable | None:
        """The snapshot that answers the current growth view over the ``live`` files, with the
        entities whose events it has not seen (their growth must be computed), or None when the
        whole view must be computed. A query over the whole view lists those entities, so past
        :data:`MAX_RECOMPUTED` of them it computes everything; one series (``whole_view=False``)
        only asks whether its own entity is among them."""
        limit = MAX_RECOMPUTED if whole_view else None
        snap = self.latest()
        if snap is None:
            return None
        for table in ("entities", "metrics"):
            if {p.name for p in live.get(table, [])} != snap.covers[table]:
                return None
        extra = self._unseen([p.name for p in live.get("events", [])], snap.covers["events"])
        if extra is None:
            return None
        changed: set[str] = set()
        for path in live["events"]:
            if path.name in extra:
                reach = self._reach_of(path)
                if reach is None or reach[1]:       # unreadable, or a withdrawal: it could be anyone's
                    return None
                changed |= reach[0]
                if limit is not None and len(changed) > limit:
                    return None
        return Usable(snap, frozenset(changed))

    def _unseen(self, names: list[str], covers: frozenset[str]) -> set[str] | None:
        """The live files (``names``) holding events the snapshot has not seen, or None when one of
        the snapshot's files is unaccounted for (neither live nor merged into a live file made of
        the snapshot's files only, as far as the kept compaction manifests tell)."""
        live = set(names)
        extra = live - covers
        if not extra and covers <= live:
            return set()
        sources = merged_sources(self.store, "events")
        seen: set[str] = set()

        def leaves(name: str, depth: int = 0) -> set[str] | None:
            if name in covers:
                return {name}
            m = COMMIT_NAME.match(name)
            parts = sources.get(m["commit"]) if m else None
            if parts is None or depth > 64:
                return None
            out: set[str] = set()
            for part in parts:
                got = leaves(part, depth + 1)
                if got is None:
                    return None
                out |= got
            return out

        uncovered: set[str] = set()
        for name in extra:
            got = leaves(name)
            if got is None:
                uncovered.add(name)
            else:
                seen |= got
        if not covers <= (live & covers) | seen:
            return None
        return uncovered

    def _reach_of(self, path: Path) -> tuple[frozenset[str], bool] | None:
        """The entities an event file holds events of, and whether it holds a withdrawal
        (``supersedes``, which can reach any entity's events); None if it cannot be read."""
        hit = self._reach.get(path.name)
        if hit is None:
            try:
                t = pq.read_table(path, columns=["entity", "supersedes"])
            except (OSError, KeyError, ValueError):
                return None
            hit = (frozenset(t.column("entity").unique().to_pylist()),
                   t.column("supersedes").null_count < t.num_rows)
            self._reach[path.name] = hit
        return hit
