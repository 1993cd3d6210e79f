"""Which ids a store already holds: the dedup of every append.

Two engines answer :meth:`CommittedIds.existing`, chosen by the batch's size (a test holds them
equal on random inputs):

- a small batch (a single append) searches only the row groups whose footer statistics admit one
  of its (entity, metric, period_end), comparing ids as integers against the row groups' ids kept
  in memory (:class:`CommittedIds` owns the footers and those ids: a committed file never changes,
  its checksum is in its name);
- a larger one is a DuckDB semi-join over the files (and row groups) that can hold its ids.

A stream also dedups across its own batches with :class:`IdSet`.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from store.ids import hex_to_words, one_array
from store.layout import EMPTY_COMMIT
from store.parquet import ROW_GROUP_ROWS, has_statistics
from store.schema import TABLES

if TYPE_CHECKING:
    from store.log import Log


class RowGroupBounds(NamedTuple):
    """One row group's footer statistics: least and greatest entity, metric, period_end and id
    (None where the file has none)."""

    rg: int
    entity_lo: Any
    entity_hi: Any
    metric_lo: Any
    metric_hi: Any
    end_lo: Any
    end_hi: Any
    id_lo: Any
    id_hi: Any


#: The columns whose bounds a :class:`RowGroupBounds` holds (the last: the table's id).
BOUND_COLUMNS = ("entity", "metric", "period_end")


class CommittedIds:
    """A store object's dedup caches, each a named field (one store object, one thread at a time).

    Attributes:
        footers: each live committed events file's row-group bounds, by name.
        entity_order: each file's ascending entity bounds (None: not sorted), by name.
        rg_ids: ids of searched row groups as sorted (hi, lo) words, least recently used first.
        rg_rows: how many ids ``rg_ids`` holds (at most :data:`ID_CACHE_ROWS`).
    """

    def __init__(self, log: Log) -> None:
        self.log = log
        self.footers: dict[str, list[RowGroupBounds]] = {}
        self.entity_order: dict[str, tuple[list[str], list[str]] | None] = {}
        self.rg_ids: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.rg_rows = 0
        self.used = False     # (footers read once: a commit then records its own)

    def existing(self, ids: pa.Array | pa.ChunkedArray, table: str, keys: pa.Table | None) -> pa.Array:
        """Which of ``ids`` the log already holds (see :meth:`store.store.Store.existing_ids`)."""
        id_col = TABLES[table].id_column
        if len(ids) == 0:
            return _NO_IDS
        if keys is not None and table == "events" and keys.num_rows <= NARROW_MAX_VALUES:
            return self.existing_pruned(ids, keys, id_col)
        return self.existing_joined(ids, table, keys)

    def existing_joined(self, ids: pa.Array | pa.ChunkedArray, table: str, keys: pa.Table | None) -> pa.Array:
        """The semi-join engine: DuckDB reads the ids of the files that can hold one."""
        id_col = TABLES[table].id_column
        if keys is not None and table == "events" and self.log.backend.keeps_listing:
            files = self.files_admitting(keys)     # (local: footers are cheap to read)
        else:   # (the empty file a new store starts each table with holds no id: not opened)
            files = [str(p) for p in self.log.files(table) if f"-{EMPTY_COMMIT}-" not in p.name]
        if not files:
            return _NO_IDS
        where, params = narrowing(keys) if keys is not None and table == "events" else ("", [])
        cur = self.log.duckdb().cursor()
        try:
            cur.register("candidates", pa.table({"id": ids}))
            found = cur.sql(
                f"SELECT DISTINCT e.{id_col} AS id FROM read_parquet(?, union_by_name=true) e "
                f"SEMI JOIN candidates c ON e.{id_col} = c.id {where}",
                params=[files, *params],
            ).to_arrow_table()
        finally:
            cur.close()
        return found.column("id").combine_chunks().cast(pa.string())

    def files_admitting(self, keys: pa.Table) -> list[str]:
        """The committed events files with a row group whose statistics admit the range of
        ``keys``' entity, metric and period_end: only those can hold one of their ids (the rest,
        empty files included, need not be opened)."""
        footers = self.footers_of("events")
        if not any(groups for _, groups in footers):     # no event stored yet
            return []
        (e_min, e_max), (m_min, m_max), (p_min, p_max) = (key_bounds(keys.column(c)) for c in BOUND_COLUMNS)
        if e_min is None or m_min is None or p_min is None:
            return [str(p) for p in self.log.files("events")]
        out = []
        for name, groups in footers:
            for _, e_lo, e_hi, m_lo, m_hi, p_lo, p_hi, _, _ in groups:
                if ((e_lo is None or (e_lo <= e_max and e_min <= e_hi))
                        and (m_lo is None or (m_lo <= m_max and m_min <= m_hi))
                        and (p_lo is None or (p_lo <= p_max and p_min <= p_hi))):
                    out.append(str(self.log.backend.path("events", name)))
                    break
        return out

    def existing_pruned(self, ids: pa.Array | pa.ChunkedArray, keys: pa.Table, id_col: str) -> pa.Array:
        """The footer-search engine, for a small batch: only the row groups whose statistics admit
        one of the batch's (entity, metric, period_end) are searched, and of those only the id
        column, whose digests stay cached in memory (a committed file never changes)."""
        wanted_hex = one_array(ids)
        w_hi, w_lo = hex_to_words(wanted_hex)
        entities = set(keys.column("entity").to_pylist())
        metrics = set(keys.column("metric").to_pylist())
        ends = keys.column("period_end").to_pylist()
        lo, hi = min(ends), max(ends)
        hex_list = wanted_hex.to_pylist()
        id_lo, id_hi = min(hex_list), max(hex_list)
        hit = np.zeros(len(w_hi), bool)
        # (a file sorted by entity, as every commit and compaction is, is searched for the row
        # groups of the batch's entities by bisection: an append's time hardly grows with the
        # store; the rest are then tested one by one, a metric alone without a generator)
        one_m = next(iter(metrics)) if len(metrics) == 1 else None
        for name, groups in self.footers_of("events"):
            first = groups[0] if len(groups) == 1 else None
            if first is not None and first.id_lo is not None and (id_hi < first.id_lo or id_lo > first.id_hi):
                continue      # (a small commit: its ids' bounds, tested first, rule most probes out)
            admitted = groups_admitting(groups, entities, self.entity_order, name)
            for rg, _, _, m_lo, m_hi, p_lo, p_hi, i_lo, i_hi in admitted:
                if p_lo is not None and (hi < p_lo or lo > p_hi):
                    continue
                if m_lo is not None and not (m_lo <= one_m <= m_hi if one_m is not None
                                             else any(m_lo <= m <= m_hi for m in metrics)):
                    continue
                if i_lo is not None and (id_hi < i_lo or id_lo > i_hi):
                    continue
                got = self.row_group_ids(name, rg, id_col)
                if got is None:               # merged away by a compaction since the listing
                    continue
                hit |= sorted_contains(got[0], got[1], w_hi, w_lo)
        if not hit.any():
            return _NO_IDS
        return pc.unique(pc.filter(wanted_hex.cast(pa.string()), pa.array(hit)))

    def row_group_ids(self, name: str, rg: int, id_col: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The ids of one row group of a committed events file, as sorted (hi, lo) uint64 words
        (kept: least recently used first out, at most :data:`ID_CACHE_ROWS` ids)."""
        cache = self.rg_ids
        got = cache.get((name, rg))
        if got is not None:
            cache.move_to_end((name, rg))
            return got
        try:
            col = pq.ParquetFile(self.log.backend.path("events", name)).read_row_group(rg, columns=[id_col]).column(0)
        except FileNotFoundError:
            return None
        w_hi, w_lo = hex_to_words(col)
        order = np.argsort(w_hi, kind="stable")
        got = (w_hi[order], w_lo[order])
        cache[(name, rg)] = got
        self.rg_rows += len(order)
        while self.rg_rows > ID_CACHE_ROWS and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self.rg_rows -= len(old[0])
        return got

    def footers_of(self, table: str) -> list[tuple[str, list[RowGroupBounds]]]:
        """Per live committed file (by name), each row group's bounds (kept by file name)."""
        self.used = True
        cache = self.footers
        # a merged source's events are all in a file of the same listing: merged sources
        # (thousands, while they wait out their grace period) need not be searched
        listed = self.log.listing(table, locked=True).live   # (an append holds the writers' lock)
        for name in [n for n in listed if n not in cache]:   # (on every append: comprehensions)
            groups = self._read_footer(table, name)
            if groups is not None:
                cache[name] = groups
        out = [(name, cache[name]) for name in listed if name in cache]
        if len(cache) > len(out):     # files merged away: their footers and ids go
            self._forget(set(cache) - set(listed))
        return out

    def _read_footer(self, table: str, name: str) -> list[RowGroupBounds] | None:
        try:
            md = pq.read_metadata(self.log.backend.path(table, name))
        except FileNotFoundError:      # merged away by a compaction since the listing
            return None
        names = [md.schema.column(i).name for i in range(md.num_columns)]
        groups = []
        for rg in range(md.num_row_groups):
            if md.row_group(rg).num_rows == 0:   # (an empty file's one group) holds no id
                continue
            bounds: list[Any] = []
            for col in (*BOUND_COLUMNS, TABLES[table].id_column):
                st = md.row_group(rg).column(names.index(col)).statistics if col in names else None
                bounds += [st.min, st.max] if st is not None and st.has_min_max else [None, None]
            groups.append(RowGroupBounds(rg, *bounds))
        return groups

    def _forget(self, gone: set[str]) -> None:
        for name in gone:
            del self.footers[name]
            self.entity_order.pop(name, None)
        for key in [k for k in self.rg_ids if k[0] in gone]:
            self.rg_rows -= len(self.rg_ids.pop(key)[0])

    def footer_of(self, prepared: pa.Table, table: str) -> list[RowGroupBounds] | None:
        """The footer of a small events commit about to be written, without reading it back (one
        row group: its bounds are the batch's); None when no footer is kept yet, or not one group.
        The caller records it under the published name (:attr:`footers`)."""
        n = prepared.num_rows
        if table != "events" or not self.used or not 0 < n <= ROW_GROUP_ROWS:
            return None
        bounds: list[Any] = []
        for col in (*BOUND_COLUMNS, TABLES[table].id_column):
            bounds += key_bounds(prepared.column(col)) if has_statistics(col, n) else [None, None]
        return [RowGroupBounds(0, *bounds)]


_NO_IDS = pa.nulls(0, pa.string())    # (arrays are immutable: one serves every search that finds none;
#                                         pa.array([]) would import pandas, where installed, to test its argument)

#: Ids of committed row groups a store keeps in memory for the dedup of small appends (16 bytes each).
ID_CACHE_ROWS = 2_000_000

#: Up to this many distinct entities (metrics) in a batch, the dedup search names them one by one.
NARROW_MAX_VALUES = 64


def narrowing(keys: pa.Table) -> tuple[str, list[object]]:
    """A WHERE clause on entity, metric and period_end that every row of ``keys`` satisfies."""
    clauses: list[str] = []
    params: list[object] = []
    for col in ("entity", "metric"):
        values = pc.unique(keys.column(col)).to_pylist()
        if len(values) <= NARROW_MAX_VALUES:
            clauses.append(f"e.{col} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    bounds = pc.min_max(keys.column("period_end"))
    clauses.append("e.period_end BETWEEN ? AND ?")
    params.extend([bounds["min"].as_py(), bounds["max"].as_py()])
    return "WHERE " + " AND ".join(clauses), params


#: Up to this many values, :func:`key_bounds` compares them in Python.
KEY_BOUNDS_PY_MAX = 16


def key_bounds(col: pa.Array | pa.ChunkedArray) -> tuple[Any, Any]:
    """The least and greatest value of a column (dictionary-encoded or not), as Python values."""
    col = one_array(col)
    if len(col) <= KEY_BOUNDS_PY_MAX:    # (a single append's: a compute call costs more than this)
        values = [v for v in col.to_pylist() if v is not None]
        return (min(values), max(values)) if values else (None, None)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary.take(pc.unique(col.indices.filter(pc.is_valid(col.indices))))
    mm = pc.min_max(col)
    return mm["min"].as_py(), mm["max"].as_py()


def groups_admitting(groups: list[RowGroupBounds], entities: set[str],
                      by_entity: dict[str, tuple[list[str], list[str]] | None], name: str) -> list[RowGroupBounds]:
    """The row groups of one file (:meth:`CommittedIds.footers`) whose entity bounds admit one of
    ``entities``. When the groups' least and greatest entities both ascend (a file sorted by
    entity), two bisections an entity find them; otherwise each group is tested.
    ``by_entity`` caches each file's ascending bounds (None: not sorted) by its name."""
    if name not in by_entity:
        lows, highs = [g.entity_lo for g in groups], [g.entity_hi for g in groups]
        ascending = (None not in lows and None not in highs
                     and all(a <= b for a, b in zip(lows, lows[1:])) and all(a <= b for a, b in zip(highs, highs[1:])))
        by_entity[name] = (lows, highs) if ascending else None
    sorted_bounds = by_entity[name]
    if sorted_bounds is None:
        return [g for g in groups if g.entity_lo is None or any(g.entity_lo <= e <= g.entity_hi for e in entities)]
    lows, highs = sorted_bounds
    if len(entities) == 1:
        e = next(iter(entities))   # groups from the first ending at or after e to the last starting at or before it
        return groups[bisect.bisect_left(highs, e):bisect.bisect_right(lows, e)]
    picked = sorted({i for e in entities for i in range(bisect.bisect_left(highs, e), bisect.bisect_right(lows, e))})
    return [groups[i] for i in picked]


def order_by(hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``hi`` (uint64), and ``hi`` sorted. The row numbers ride in the low
    bits of the values while they are sorted (quicker than arg-sorting them); where two values
    differ only in those bits the result is checked and arg-sorted instead."""
    row_bits = int(len(hi) - 1).bit_length()
    if len(hi) < 2 or row_bits > 32:
        order = np.argsort(hi, kind="stable")
        return order, hi[order]
    low = np.uint64((1 << row_bits) - 1)
    packed = (hi & ~low) | np.arange(len(hi), dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.intp)
    s_hi = hi[order]
    if (s_hi[1:] < s_hi[:-1]).any():
        order = np.argsort(hi, kind="stable")
        s_hi = hi[order]
    return order, s_hi


def sorted_contains(l_hi: np.ndarray, l_lo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Which (hi, lo) pairs are among the pairs (l_hi, l_lo), sorted by hi."""
    hit = np.zeros(len(hi), dtype=bool)
    if not len(l_hi) or not len(hi):
        return hit
    if len(hi) == 1:                  # (a single append's: numpy's cost per call is most of it)
        at, h, lo0 = int(np.searchsorted(l_hi, hi[0])), hi[0], lo[0]
        while at < len(l_hi) and l_hi[at] == h:
            if l_lo[at] == lo0:
                hit[0] = True
                break
            at += 1
        return hit
    pos = np.searchsorted(l_hi, hi)
    todo = np.flatnonzero(pos < len(l_hi))
    while len(todo):                  # walk the (almost always single) entries sharing hi
        p = pos[todo]
        same = l_hi[p] == hi[todo]
        todo, p = todo[same], p[same]
        hit[todo[l_lo[p] == lo[todo]]] = True
        pos[todo] += 1
        todo = todo[pos[todo] < len(l_hi)]
    return hit


#: A run of the stream's id set is merged with the next no further than this many ids: past it a
#: merge moves more memory than the searches it saves cost (the filter keeps searches rare).
ID_RUN_MAX = 1 << 21
#: The id set's filter: from 2^24 bits (2 MB, its pages touched as used) up to 2^32 bits (512 MB).
ID_FILTER_BITS = (24, 32)
#: Bits of the filter an id, at least (at most twice as many: the filter is a power of two), up
#: to 134 M ids. One new id in 30 to 60 is then searched for in the runs: a search reads a few
#: runs of up to 16 MB, far more than marking and testing a bit costs.
ID_FILTER_DENSITY = 32


class IdSet:
    """The ids a stream has written so far: pairs of uint64 (an id's first and last 8 bytes).

    Runs of pairs sorted by hi, merged like a log-structured tree up to :data:`ID_RUN_MAX` ids a
    run, and a filter: a bitmap over the top bits of hi, 32 to 64 bits an id. A clear bit proves an
    id absent, so only the few ids whose bit is set are searched for in the runs.

    20 to 24 bytes an id and no Python object per id: a 10 M-event stream dedups across its
    batches in about 200-240 MB, with integer searches instead of string ones.
    """

    def __init__(self) -> None:
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = 0
        self.bits = ID_FILTER_BITS[0]
        self.filter = np.zeros(1 << (self.bits - 3), np.uint8)

    @staticmethod
    def keys(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        return hex_to_words(ids)

    def _bits_of(self, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each id's filter bit: the byte that holds it and the bit's mask in that byte."""
        slot = hi >> np.uint64(64 - self.bits)
        return (slot >> np.uint64(3)).astype(np.intp), np.uint8(1) << (slot & np.uint64(7)).astype(np.uint8)

    def _mark(self, hi: np.ndarray) -> None:
        """Set the filter bits of ``hi`` (sorted): a gather, an OR and a scatter, then the few ids
        that share a byte with their neighbour again one by one (the scatter kept one of their
        bits). On a warm 64 MB filter a sixth of ``np.bitwise_or.at``'s time over them all; in
        the stream, where the filter is cold, about 15 % less."""
        byte, mask = self._bits_of(hi)
        marked = self.filter[byte]
        marked |= mask
        self.filter[byte] = marked
        same = byte[1:] == byte[:-1]          # (sorted: a shared byte is a neighbour's)
        if same.any():
            shared = np.zeros(len(byte), bool)
            shared[1:] = same
            shared[:-1] |= same
            again = np.flatnonzero(shared)
            np.bitwise_or.at(self.filter, byte[again], mask[again])

    def contains_sorted(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Which pairs, sorted by ``hi``, the set holds."""
        found = np.zeros(len(hi), dtype=bool)
        if not self.count or not len(hi):
            return found
        byte, mask = self._bits_of(hi)
        maybe = np.flatnonzero(self.filter[byte] & mask)
        if len(maybe):
            m_hi, m_lo = hi[maybe], lo[maybe]          # (still sorted by hi)
            hit = np.zeros(len(maybe), dtype=bool)
            for l_hi, l_lo in self.levels:
                hit |= sorted_contains(l_hi, l_lo, m_hi, m_lo)
            found[maybe] = hit
        return found

    def add_sorted(self, hi: np.ndarray, lo: np.ndarray) -> None:
        """Add pairs sorted by ``hi`` (the search walks equal his)."""
        self.count += len(hi)
        bits = min(max(ID_FILTER_BITS[0], int(ID_FILTER_DENSITY * self.count - 1).bit_length()), ID_FILTER_BITS[1])
        if bits > self.bits:                  # a larger filter: every id marked again
            self.bits, self.filter = bits, np.zeros(1 << (bits - 3), np.uint8)
            for l_hi, _ in self.levels:
                self._mark(l_hi)
        self._mark(hi)
        while self.levels and len(self.levels[-1][0]) <= len(hi) and len(self.levels[-1][0]) + len(hi) <= ID_RUN_MAX:
            o_hi, o_lo = self.levels.pop()
            hi, lo = np.concatenate([o_hi, hi]), np.concatenate([o_lo, lo])
            order = np.argsort(hi, kind="stable")   # two sorted runs: a linear merge
            hi, lo = hi[order], lo[order]
        self.levels.append((hi, lo))
