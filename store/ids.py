"""Content-derived ids: SHA-256 over a canonical binary encoding of the identity columns.

An id is the first 128 bits of a SHA-256, written as 32 lowercase hex digits. It depends only on
the values of the identity columns (never on time, run or commit), so the same content yields the
same id on every run, platform and library version: the encoding below is fixed byte for byte and
SHA-256 is a standard (the bulk path hashes in DuckDB, the small path with :mod:`hashlib`; a test
holds the two, and an independent plain-Python rendering of this specification, equal).

Encoding (version 2), over the identity columns in their declared order, split into the
variable-width columns (strings) and the fixed-width ones (dates, numbers, booleans):

- a string value's digest is ``SHA-256(UTF-8 bytes)[:16]``;
- the key record is ``b"metricstore/id/v2"`` followed, for each string column in order, by
  ``0x00`` and 16 zero bytes for NULL, else ``0x01`` and the value's digest;
  ``k = SHA-256(key record)[:16]``;
- the row record is ``k`` followed, for each fixed-width column in order, by ``0x00`` and as many
  zero bytes as the value's width for NULL, else ``0x01`` and the value in little-endian bytes:
  ``date32`` as int32 days since 1970-01-01, integers as int64, timestamps (``date64``,
  durations) as the stored int64 in the column's unit (a table's schema fixes the unit),
  ``float64`` as IEEE-754 binary64 (``-0.0`` as ``0.0``), booleans as one byte 0 or 1;
- ``id = hex(SHA-256(row record)[:16])``.

Every field is tagged and fixed in width, so the encoding is unambiguous ('' and NULL differ,
no separator can be forged). Strings are hashed once per distinct value and key records once per
distinct combination, so the cost per row is one SHA-256 of one 64-byte block (events: 48 bytes).
No value is ever converted to text.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_TAG = b"metricstore/id/v2"
#: Up to this many records are hashed with hashlib in Python; more in DuckDB (parallel, no GIL).
PY_HASH_MAX = 256
#: Rows per Arrow batch handed to DuckDB (DuckDB hashes batches in parallel).
DUCK_CHUNK = 16_384

_LOCK = threading.Lock()
_CON: tuple[int, duckdb.DuckDBPyConnection] | None = None

_NIBBLE = np.zeros(256, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on this process's hashing connection (a forked child opens its own)."""
    global _CON
    with _LOCK:
        if _CON is None or _CON[0] != os.getpid():
            _CON = (os.getpid(), duckdb.connect())
        return _CON[1].cursor()


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str"
    if pa.types.is_date32(t):
        return "date32"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_timestamp(t) or pa.types.is_date64(t) or pa.types.is_duration(t):
        return "ticks"
    if pa.types.is_boolean(t):
        return "bool"
    raise TypeError(f"no content-id encoding for {t}")


_WIDTH = {"date32": 4, "float": 8, "int": 8, "ticks": 8, "bool": 1}


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def hex_to_digests(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """32-hex-digit ids as an (n, 16) uint8 array of their bytes."""
    arr = _array(ids)
    if len(arr) == 0:
        return np.zeros((0, 16), np.uint8)
    fixed = arr.cast(pa.string()).cast(pa.binary(32))
    raw = np.frombuffer(fixed.buffers()[1], np.uint8)[fixed.offset * 32:(fixed.offset + len(fixed)) * 32]
    nib = _NIBBLE[raw.reshape(-1, 32)]
    return np.ascontiguousarray((nib[:, 0::2] << 4) | nib[:, 1::2])


def digests_to_hex(d: np.ndarray) -> pa.Array:
    """(n, 16) uint8 digests as 32-hex-digit strings."""
    n = len(d)
    out = np.empty((n, 32), np.uint8)
    out[:, 0::2] = _HEX[d >> 4]
    out[:, 1::2] = _HEX[d & 15]
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), n, [None, pa.py_buffer(out)])
    return fixed.cast(pa.binary()).cast(pa.string())


def sha_rows_hex(records: np.ndarray) -> pa.Array:
    """SHA-256 of every row of an (n, w) uint8 array, first 16 bytes as 32 hex digits."""
    n, w = records.shape
    if n <= PY_HASH_MAX:
        sha = hashlib.sha256
        buf = records.tobytes()
        return pa.array([sha(buf[i:i + w]).hexdigest()[:32] for i in range(0, n * w, w)], pa.string())
    records = np.ascontiguousarray(records)
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(w), n, [None, pa.py_buffer(records)])
    table = pa.Table.from_batches(pa.table({"b": arr}).to_batches(max_chunksize=DUCK_CHUNK))
    cur = _cursor()
    try:
        cur.register("records", table)
        out = cur.sql("SELECT left(sha256(b), 32) AS h FROM records").to_arrow_table()
    finally:
        cur.close()
    # DuckDB keeps the order of a plain projection over one registered table
    return _array(out.column("h")).cast(pa.string())


def sha_rows(records: np.ndarray) -> np.ndarray:
    """SHA-256 of every row of an (n, w) uint8 array, first 16 bytes: an (n, 16) uint8 array."""
    n, w = records.shape
    if n == 0:
        return np.zeros((0, 16), np.uint8)
    if n <= PY_HASH_MAX:
        sha = hashlib.sha256
        buf = records.tobytes()
        return np.frombuffer(b"".join([sha(buf[i:i + w]).digest()[:16] for i in range(0, n * w, w)]),
                             np.uint8).reshape(n, 16)
    return hex_to_digests(sha_rows_hex(records))


def _string_digests(values: pa.Array) -> np.ndarray:
    """SHA-256(UTF-8)[:16] of each (non-null) string."""
    n = len(values)
    if n == 0:
        return np.zeros((0, 16), np.uint8)
    if n <= PY_HASH_MAX:
        sha = hashlib.sha256
        return np.frombuffer(b"".join([sha(v.encode()).digest()[:16] for v in values.to_pylist()]),
                             np.uint8).reshape(n, 16)
    cur = _cursor()
    try:
        cur.register("vals", pa.Table.from_batches(
            pa.table({"s": values.cast(pa.string())}).to_batches(max_chunksize=DUCK_CHUNK)))
        out = cur.sql("SELECT left(sha256(s), 32) AS h FROM vals").to_arrow_table()
    finally:
        cur.close()
    return hex_to_digests(out.column("h"))


_DTYPE = {"date32": "<i4", "float": "<f8", "int": "<i8", "ticks": "<i8", "bool": "u1"}


def _fixed_values(arr: pa.Array, kind: str) -> np.ndarray:
    """A fixed-width column as numpy values in its encoding's type, 0 where NULL."""
    if kind == "date32":
        arr = arr.cast(pa.int32())
    elif kind == "float":
        arr = arr.cast(pa.float64())
    elif kind == "int":
        arr = arr.cast(pa.int64())
    elif kind == "ticks":                             # the stored integer, in the column's unit
        arr = pa.Array.from_buffers(pa.int64(), len(arr), [arr.buffers()[0], arr.buffers()[1]], offset=arr.offset)
    if arr.null_count:
        arr = pc.fill_null(arr, False if kind == "bool" else 0)
    vals = arr.to_numpy(zero_copy_only=False)
    if kind == "float":
        vals = vals + 0.0                             # -0.0 as 0.0
    return vals.astype(_DTYPE[kind], copy=False)


def row_records(table: pa.Table, identity: Iterable[str]) -> np.ndarray:
    """The row record of every row (see the module's docstring): an (n, w) uint8 array."""
    cols = list(identity)
    n = table.num_rows
    kinds = {c: _kind(table.schema.field(c).type) for c in cols}
    strs = [c for c in cols if kinds[c] == "str"]
    fixed = [c for c in cols if kinds[c] != "str"]
    # -- the key record, hashed once per distinct combination of string values --------------
    tag = np.frombuffer(ID_TAG, np.uint8)
    codes: list[np.ndarray] = []
    tables: list[np.ndarray] = []
    for c in strs:
        enc = pc.dictionary_encode(_array(table.column(c)))
        digs = _string_digests(enc.dictionary)
        tagged = np.zeros((len(digs) + 1, 17), np.uint8)     # row 0: NULL
        tagged[1:, 0] = 1
        tagged[1:, 1:] = digs
        codes.append(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1)
        tables.append(tagged)
    key = np.zeros(n, np.int64)
    bound = 1
    for code, tagged in zip(codes, tables, strict=True):
        card = len(tagged)
        if bound * card >= 1 << 62:
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            bound = int(key.max()) + 1 if n else 1
        key = key * card + code
        bound *= card
    if n:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        first, inverse = np.zeros(0, np.int64), np.zeros(0, np.int64)
    krec = np.empty((max(len(first), 1), len(tag) + 17 * len(strs)), np.uint8)
    krec[:, :len(tag)] = tag
    for j, (code, tagged) in enumerate(zip(codes, tables, strict=True)):
        krec[:len(first), len(tag) + 17 * j:len(tag) + 17 * (j + 1)] = tagged[code[first]]
    kdig = sha_rows(krec[:len(first)]) if n else np.zeros((0, 16), np.uint8)
    # -- the row record: the key digest and the fixed-width values ---------------------------
    fields: list[tuple[str, str]] = [("k", "V16")]
    for j, c in enumerate(fixed):
        fields += [(f"t{j}", "u1"), (f"v{j}", _DTYPE[kinds[c]])]
    rec = np.empty(n, np.dtype(fields))               # packed: every byte is assigned below
    rec["k"] = np.ascontiguousarray(kdig[inverse]).view("V16").reshape(-1)
    for j, c in enumerate(fixed):
        arr = _array(table.column(c))
        rec[f"t{j}"] = pc.is_valid(arr).to_numpy(zero_copy_only=False) if arr.null_count else 1
        rec[f"v{j}"] = _fixed_values(arr, kinds[c])
    return rec.view(np.uint8).reshape(n, rec.dtype.itemsize)


def content_digests(table: pa.Table, identity: Iterable[str]) -> np.ndarray:
    """The content-derived id of every row as an (n, 16) uint8 array (see the module's docstring)."""
    return sha_rows(row_records(table, identity))


def content_ids(table: pa.Table, identity: Iterable[str]) -> pa.Array:
    """The content-derived id of every row: 32 hex digits (see the module's docstring)."""
    return sha_rows_hex(row_records(table, identity))
