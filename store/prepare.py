"""A batch becomes a prepared table: checked, defaults filled, sorted, given its ids; then stamped.

:func:`prepare` is the first step of every append (the checks are :mod:`store.rules`'); a
single event goes through :func:`prepared_row`, the same table from its Python values, and
:func:`stamp` adds the columns a commit sets (``recorded_at``, ``commit_id``) just before the write.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from store.errors import SchemaMismatch
from store.ids import content_id_of, content_ids, dictionary_encode, id_layout, one_array
from store.parquet import SMALL_ROWS, encoded_schema
from store.rules import DEFAULTS, check_columns, check_names, row_violation
from store.schema import EVENT_SCHEMA, IDENTITY_COLUMNS, REQUIRED_INPUT, SCHEMA_VERSION, STORE_SET, TABLES

#: Events are written sorted by these (row groups then prune on a series' filter).
SORT_KEYS = ("entity", "metric", "period_end")


def prepare(batch: pa.Table, *, table: str = "events", run_id: str | None = None,
            encode: bool | None = None) -> pa.Table:
    """Check a batch against the schema, fill defaults and compute ids (no ``recorded_at`` yet).

    Events come out sorted by :data:`SORT_KEYS` (stable: equal keys keep their order).
    With ``encode`` (by default for a batch of at least :data:`SMALL_ROWS` rows), the text
    columns written with a dictionary come out dictionary-encoded (:func:`encoded_schema`):
    the sort, the ids and the Parquet writer then share one encoding."""
    schema, id_col, identity = TABLES[table]
    names = set(batch.column_names)
    forbidden = names & {*STORE_SET, id_col, "recorded_at", "commit_id"}
    if forbidden:
        raise SchemaMismatch(sorted(forbidden)[0], "is set by the store at commit, not by the caller")
    unknown = names - set(schema.names)
    if unknown:
        raise SchemaMismatch(sorted(unknown)[0], f"is not a column of {table}")
    required = REQUIRED_INPUT if table == "events" else tuple(
        f.name for f in schema if not f.nullable and f.name not in (id_col, "recorded_at", "commit_id")
    )
    n = batch.num_rows
    if n == 1 and table == "events" and not encode:
        row = prepared_row(batch, run_id)
        if row is not None:
            return row
    if encode is None:
        encode = n >= SMALL_ROWS
    target = encoded_schema(schema) if encode else schema
    given: dict[str, pa.Array] = {}
    for field in schema:
        if field.name in names:
            col = batch.column(field.name)
            if col.type != field.type:
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaMismatch(field.name, f"cannot be read as {field.type}: {exc}") from exc
            col = one_array(col)
            if field.name in DEFAULTS and table == "events":
                if col.null_count:
                    col = pc.fill_null(col, DEFAULTS[field.name])
                if field.name == "segment":
                    col = pc.if_else(pc.equal(col, ""), DEFAULTS[field.name], col)
            if pa.types.is_dictionary(target.field(field.name).type):
                col = dictionary_encode(col)
            given[field.name] = col
    moved = None       # the caller's row of each position, once sorted
    if table == "events" and n > 1 and all(k in given for k in SORT_KEYS):
        # sorted for pruning before the store's columns exist: fewer columns to move
        order = sort_order([given[k] for k in SORT_KEYS])
        if not np.array_equal(order, np.arange(n)):
            moved = order
            indices = pa.array(order)
            given = {k: v.take(indices) for k, v in given.items()}
    arrays: dict[str, pa.Array] = {}
    filled: set[str] = set()      # columns of one value throughout (the id need not compare them)
    for field in target:
        if field.name in (id_col, "recorded_at", "commit_id"):
            continue
        if field.name in given:
            col = given[field.name]
        elif field.name in required:
            raise SchemaMismatch(field.name, "is required")
        elif field.name == "run_id":
            col = constant_column(run_id, field.type, n)
        elif field.name in DEFAULTS and table == "events":
            col = default_column(DEFAULTS[field.name], field.type, n)
        else:
            col = pa.nulls(n, field.type)
        if field.name not in given:
            filled.add(field.name)
        if not field.nullable and col.null_count:
            raise SchemaMismatch(field.name, f"{col.null_count} row(s) have no value")
        arrays[field.name] = col
    if table == "events":
        check_columns(arrays, given, moved)      # (store.rules: the one place the event rules live)
    else:
        check_names(arrays)     # (an entity's or a metric's record under a name no reader would find)
    out = pa.table(arrays)
    ids = content_ids(out, identity, constant=filled)
    return out.append_column(id_col, ids)


#: What :func:`prepare` makes of an events batch: the stored columns but those set at
#: commit, then the id (the fields as ``pa.table`` infers them: nullable, no metadata).
PREPARED_EVENTS = pa.schema([pa.field(f.name, f.type) for f in EVENT_SCHEMA if f.name not in STORE_SET]
                            + [pa.field("event_id", pa.string())])
_EVENT_TYPES = {f.name: f.type for f in EVENT_SCHEMA}
_EVENT_NOT_NULL = frozenset(f.name for f in EVENT_SCHEMA if not f.nullable)
_EVENT_ID_LAYOUT = id_layout(EVENT_SCHEMA, IDENTITY_COLUMNS)


def prepared_row(batch: pa.Table, run_id: str | None) -> pa.Table | None:
    """:func:`prepare` of a one-row events batch through its Python values: the same table
    (a test holds the two equal) in a fraction of the time, Arrow's cost per call and column
    being most of what preparing a single event costs. None when the row needs the general
    path: a column to cast, or a value the checks refuse (the general path then says which)."""
    for f in batch.schema:
        if f.type != _EVENT_TYPES[f.name]:
            return None
    try:
        given = batch.to_pylist()[0]
    except (ValueError, OverflowError, pa.ArrowException):   # (a date past Python's range)
        return None
    row: dict[str, Any] = {}
    for name in PREPARED_EVENTS.names[:-1]:        # (the last is the id)
        if name not in given:
            v = run_id if name == "run_id" else DEFAULTS.get(name)
        elif (v := given[name]) is None:
            v = DEFAULTS.get(name)                  # (a run_id given as NULL stays NULL)
        elif name == "segment" and v == "":
            v = DEFAULTS[name]
        if v is None and name in _EVENT_NOT_NULL:
            return None
        row[name] = v
    if row_violation(row) is not None:     # (the general path then says which rule, and where)
        return None
    row["event_id"] = content_id_of(row, _EVENT_ID_LAYOUT)
    columns = dict(zip(batch.column_names, batch.columns, strict=True))
    arrays = []
    for f in PREPARED_EVENTS:
        if f.name == "event_id":
            arrays.append(pa.array([row["event_id"]], f.type))
        elif f.name in given and given[f.name] == row[f.name]:      # as given (no default put in)
            arrays.append(one_array(columns[f.name]))
        else:                              # a default, NULL or the run: one of a few values
            arrays.append(default_column(row[f.name], f.type, 1))
    return pa.Table.from_arrays(arrays, schema=PREPARED_EVENTS)


def commit_meta(table: str, recorded_at: dt.datetime, commit_id: str) -> dict[bytes, bytes]:
    return {
        b"metricstore.schema_version": str(SCHEMA_VERSION).encode(),
        b"metricstore.table": table.encode(),
        b"metricstore.commit_id": commit_id.encode(),
        b"metricstore.recorded_at": recorded_at.isoformat().encode(),
    }


def stamp(prepared: pa.Table, table: str, recorded_at: dt.datetime, commit_id: str) -> pa.Table:
    """Add the columns the store sets at commit, in schema order (dictionary-encoded where
    ``prepare`` encoded the batch: see :func:`encoded_schema`)."""
    columns = dict(zip(prepared.column_names, prepared.columns, strict=True))
    schema, names, types = stamped_layout(table, any(pa.types.is_dictionary(c.type) for c in columns.values()))
    n = prepared.num_rows
    columns["recorded_at"] = pa.repeat(pa.scalar(recorded_at, schema.field("recorded_at").type), n)
    columns["commit_id"] = constant_column(commit_id, schema.field("commit_id").type, n)
    ordered = [columns[name] for name in names]
    if [c.type for c in ordered] == types:     # only the nullability flags differ
        return pa.Table.from_arrays(ordered, schema=schema)
    return pa.Table.from_arrays(ordered, names=names).cast(schema)     # events: sorted by prepare


@functools.lru_cache(maxsize=16)
def stamped_layout(table: str, encoded: bool) -> tuple[pa.Schema, list[str], list[pa.DataType]]:
    """A committed table's schema (:func:`encoded_schema` when ``encoded``), its names and types."""
    schema = encoded_schema(TABLES[table][0]) if encoded else TABLES[table][0]
    return schema, schema.names, schema.types


#: Default columns up to this many rows are built once and shared (arrays are immutable): the
#: batches of a stream mostly have one size, a single event's defaults and NULLs one row each.
#: A few short values: at most about 30 MB are kept.
DEFAULT_CACHE_ROWS = 1 << 17


def default_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """An array of ``n`` times a column's default ``value`` (None: NULL)."""
    if n <= DEFAULT_CACHE_ROWS:
        return _default_cached(value, type_, n)
    return constant_column(value, type_, n)


@functools.lru_cache(maxsize=40)
def _default_cached(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    return constant_column(value, type_, n)


def constant_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` times ``value`` (None: nulls) in ``type_``; a dictionary type gets one entry."""
    if pa.types.is_dictionary(type_):
        if value is None:
            return pa.nulls(n, type_)
        return pa.DictionaryArray.from_arrays(_zeros_int32(n), pa.array([value], type_.value_type))
    return pa.repeat(pa.scalar(value, type_), n)


def _zeros_int32(n: int) -> pa.Array:
    return pa.array(np.zeros(n, np.int32))


def sort_order(keys: list[pa.Array]) -> np.ndarray:
    """The stable ascending order of rows by ``keys`` (``pc.sort_indices``' order).

    Each key becomes its rank among the key's distinct values (strings through their
    dictionary, dates as days from the least), and the ranks and the row number are packed
    into one distinct uint64 per row: an unstable (vectorised) sort of those is stable by
    construction. Keys with nulls, other types or too many bits take ``pc.sort_indices``."""
    n = len(keys[0])
    parts: list[tuple[np.ndarray, int]] = []
    for col in keys:
        if col.null_count:
            parts = []
            break
        if pa.types.is_string(col.type) or (pa.types.is_dictionary(col.type)
                                            and pa.types.is_string(col.type.value_type)):
            enc = col if pa.types.is_dictionary(col.type) else dictionary_encode(col)
            rank = np.empty(len(enc.dictionary), np.uint64)
            rank[pc.sort_indices(enc.dictionary).to_numpy()] = np.arange(len(enc.dictionary), dtype=np.uint64)
            parts.append((rank[enc.indices.to_numpy()], len(enc.dictionary)))
        elif pa.types.is_date32(col.type):
            days = col.cast(pa.int32()).to_numpy().astype(np.int64)
            low = int(days.min())
            parts.append(((days - low).astype(np.uint64), int(days.max()) - low + 1))
        else:
            parts = []
            break
    bits = [int(width - 1).bit_length() for _, width in parts]
    if not parts or sum(bits) + int(n - 1).bit_length() > 64:
        plain = [k.cast(k.type.value_type) if pa.types.is_dictionary(k.type) else k for k in keys]
        order = pc.sort_indices(pa.table({str(i): k for i, k in enumerate(plain)}),
                                sort_keys=[(str(i), "ascending") for i in range(len(keys))])
        return cast(np.ndarray, order.to_numpy())
    packed = np.zeros(n, np.uint64)
    for (rank, _), b in zip(parts, bits, strict=True):
        packed = (packed << np.uint64(b)) | rank
    row_bits = int(n - 1).bit_length()
    packed = (packed << np.uint64(row_bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()                      # (a sort of values is quicker than one of their places)
    return (packed & np.uint64((1 << row_bits) - 1)).astype(np.int64)


def value_type(t: pa.DataType) -> pa.DataType:
    """A dictionary type's value type; any other type itself."""
    return t.value_type if pa.types.is_dictionary(t) else t


def first_of_each(table: pa.Table, id_col: str) -> pa.Table:
    """The first row of each id, in the table's order."""
    idx = pa.array(range(table.num_rows), pa.int64())
    keyed = table.append_column("__i", idx)
    firsts = keyed.group_by(id_col, use_threads=False).aggregate([("__i", "min")]).column("__i_min")
    return table.take(pa.array(np.sort(firsts.to_numpy())))   # the rows themselves, not their ranks
