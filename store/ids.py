"""Content-derived ids: SHA-256 over a canonical binary encoding of the identity columns.

An id is the first 128 bits of a SHA-256, written as 32 lowercase hex digits. It depends only on
the values of the identity columns (never on time, run or commit), so the same content yields the
same id on every run, platform and library version: the encoding below is fixed byte for byte and
SHA-256 is a standard (many values are hashed in one call of polars-hash, a few with :mod:`hashlib`;
a test holds the two, and an independent plain-Python rendering of this specification, equal).

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
distinct combination, so the cost per row is one SHA-256 of one 64-byte block (events: 49 bytes).
No value is ever converted to text.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import hashlib
import struct
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

import numpy as np
import polars as pl
import polars_hash as plh
import pyarrow as pa
import pyarrow.compute as pc

ID_TAG = b"metricstore/id/v2"
#: Up to this many values are hashed with hashlib in Python (a call per value, no set-up); more in
#: one call of polars-hash (a fixed cost per call, then cheaper per value, and no GIL).
PY_HASH_MAX = 128
#: Up to this many rows, records are built in plain Python (a single append): the vectorised
#: path's fixed cost per column (encoding, compute calls) is larger than the work itself.
PY_RECORDS_MAX = 16

_NIBBLE = np.zeros(256, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i


@functools.lru_cache(maxsize=256)
def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return "str"                        # dictionary-encoded text: hashed by its values
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


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array (its only chunk as is; several chunks joined)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


#: :func:`dictionary_encode` looks at this many leading values for runs of equal ones ...
RUN_PROBE_ROWS = 4096
#: ... and hashes the runs rather than the values when they hold this many values each on average.
RUN_MIN_LENGTH = 8


def dictionary_encode(arr: pa.Array) -> pa.DictionaryArray:
    """``pc.dictionary_encode(arr)``, the same dictionary and indices, through the runs of equal
    values when its first values come in runs (input grouped or sorted by the column, as
    exports by company usually are): one hash a run instead of one a value, a third to two thirds
    of the time. Otherwise, or with nulls, the plain call (the probe costs about 1 % of it)."""
    n = len(arr)
    if arr.null_count or n < 2 * RUN_PROBE_ROWS or not pa.types.is_string(arr.type):
        return cast(pa.DictionaryArray, pc.dictionary_encode(arr))
    probe = pc.run_end_encode(arr.slice(0, RUN_PROBE_ROWS))
    if len(probe.run_ends) * RUN_MIN_LENGTH > RUN_PROBE_ROWS:
        return cast(pa.DictionaryArray, pc.dictionary_encode(arr))
    runs = pc.run_end_encode(arr)
    enc = pc.dictionary_encode(runs.values)
    lengths = np.diff(runs.run_ends.to_numpy(), prepend=np.int32(0))
    indices = np.repeat(enc.indices.to_numpy(), lengths)
    return pa.DictionaryArray.from_arrays(pa.array(indices), enc.dictionary, safe=False)


def _packed_hex(arr: pa.Array) -> bytes | None:
    """The bytes of 32-hex-digit strings, read at once (``binascii.unhexlify`` over the packed
    characters), or None when some value is not exactly 32 hex digits (or null)."""
    if not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)) or arr.null_count:
        return None
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    if offsets[-1] - offsets[0] != 32 * len(arr) or not (np.diff(offsets) == 32).all():
        return None
    try:   # (unhexlify reads the buffer in place: no copy, no text)
        raw = binascii.unhexlify(memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]])
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 * len(arr) else None


def _few_hex(arr: pa.Array) -> bytes | None:
    """:func:`_packed_hex` of a few strings, read one by one (a single append's ids: numpy's
    cost per call is most of the other way's), or None (then that way decides)."""
    if not pa.types.is_string(arr.type) or arr.null_count:
        return None
    values = arr.to_pylist()
    if any(len(v) != 32 for v in values):
        return None
    try:
        raw = b"".join([bytes.fromhex(v) for v in values])
    except ValueError:
        return None
    return raw if len(raw) == 16 * len(values) else None     # (fromhex skips whitespace)


def hex_to_digests(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """32-hex-digit ids as an (n, 16) uint8 array of their bytes."""
    arr = one_array(ids)
    if len(arr) == 0:
        return np.zeros((0, 16), np.uint8)
    raw = _few_hex(arr) if len(arr) <= PY_RECORDS_MAX else None
    if raw is None:
        raw = _packed_hex(arr)
    if raw is not None:
        return np.frombuffer(raw, np.uint8).reshape(-1, 16)
    fixed = arr.cast(pa.string()).cast(pa.binary(32))
    raw_chars = np.frombuffer(fixed.buffers()[1], np.uint8)[fixed.offset * 32:(fixed.offset + len(fixed)) * 32]
    nib = _NIBBLE[raw_chars.reshape(-1, 32)]
    return np.ascontiguousarray((nib[:, 0::2] << 4) | nib[:, 1::2])


def hex_to_words(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """32-hex-digit ids as two uint64 arrays: their first and last 8 bytes, read big-endian."""
    words = hex_to_digests(ids).view(">u8").astype(np.uint64)
    return words[:, 0].copy(), words[:, 1].copy()


def _sha256_hex(values: pa.Array) -> pa.Array:
    """SHA-256 of each (non-null) value, blob or text, in one call of polars-hash (Rust, the GIL
    released): the first 32 of its 64 hex digits, as strings (cut in polars, where a slice of a
    string is a view: only the 32 digits are copied out). Callers hash their first
    :data:`PY_HASH_MAX` values with hashlib, so ``values`` is never empty."""
    hexed = pl.Series("v", values).to_frame().select(plh.col("v").chash.sha2_256().str.slice(0, 32)).to_series()
    out = hexed.to_arrow(compat_level=pl.CompatLevel.oldest())     # one array, 64-bit offsets
    if out.type != pa.large_string():
        out = out.cast(pa.large_string())
    offsets = np.frombuffer(out.buffers()[1], np.int64)[out.offset:out.offset + len(out) + 1]
    # (each value is at most 32 digits: 32 a value in all means 32 each)
    if out.null_count or len(out) != len(values) or offsets[-1] - offsets[0] != 32 * len(out):
        raise ValueError("sha2_256 gave something other than 32 of 64 hex digits a value")
    return out.cast(pa.string())


def _blobs(records: np.ndarray) -> pa.Array:
    """The rows of an (n, w) uint8 array as n binary values."""
    n, w = records.shape
    offsets = np.arange(0, w * n + 1, w, dtype=np.int32)
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                        pa.py_buffer(np.ascontiguousarray(records))])


def sha_rows_hex(records: np.ndarray) -> pa.Array:
    """SHA-256 of every row of an (n, w) uint8 array, first 16 bytes as 32 hex digits."""
    n, w = records.shape
    if n <= PY_HASH_MAX:
        sha = hashlib.sha256
        buf = records.tobytes()
        return pa.array([sha(buf[i:i + w]).hexdigest()[:32] for i in range(0, n * w, w)], pa.string())
    return _sha256_hex(_blobs(records))


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
    return hex_to_digests(_sha256_hex(_blobs(records)))


def _string_digests(values: pa.Array) -> np.ndarray:
    """SHA-256(UTF-8)[:16] of each (non-null) string."""
    n = len(values)
    if n == 0:
        return np.zeros((0, 16), np.uint8)
    if n <= PY_HASH_MAX:
        sha = hashlib.sha256
        return np.frombuffer(b"".join([sha(v.encode()).digest()[:16] for v in values.to_pylist()]),
                             np.uint8).reshape(n, 16)
    return hex_to_digests(_sha256_hex(values))


_DTYPE = {"date32": "<i4", "float": "<f8", "int": "<i8", "ticks": "<i8", "bool": "u1"}


def _encoded(arr: pa.Array, kind: str) -> pa.Array:
    """A fixed-width column in the Arrow type of its encoding (dates as int32 days, numbers as
    float64 or int64, timestamps and durations as the stored int64 in the column's unit)."""
    if kind == "date32":
        return arr.view(pa.int32())            # (the same 4 bytes a value: no cast, no copy)
    if kind == "float":
        return arr if arr.type == pa.float64() else arr.cast(pa.float64())
    if kind == "int":
        return arr if arr.type == pa.int64() else arr.cast(pa.int64())
    if kind == "ticks":
        return pa.Array.from_buffers(pa.int64(), len(arr), [arr.buffers()[0], arr.buffers()[1]], offset=arr.offset)
    return arr


def _fixed_values(arr: pa.Array, kind: str) -> np.ndarray:
    """A fixed-width column as numpy values in its encoding's type, 0 where NULL."""
    arr = _encoded(arr, kind)
    if arr.null_count:
        arr = pc.fill_null(arr, False if kind == "bool" else 0)
    vals = arr.to_numpy(zero_copy_only=False)
    if kind == "float":
        vals = vals + 0.0                             # -0.0 as 0.0
    return cast(np.ndarray, vals.astype(_DTYPE[kind], copy=False))


def _is_constant(arr: pa.Array) -> bool:
    """Whether every value of a string array is the same (or every one NULL): a look at the
    offsets and one comparison of the packed bytes, cheaper than hashing each value."""
    n = len(arr)
    if arr.null_count:
        return cast(bool, arr.null_count == n)
    if not pa.types.is_string(arr.type):
        return False
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + n + 1]
    width = offsets[1] - offsets[0]
    if offsets[-1] - offsets[-2] != width or not (np.diff(offsets) == width).all():
        return False
    if width == 0:
        return True
    data = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(n, width)
    return bool((data[-1] == data[0]).all() and (data == data[0]).all())


@functools.lru_cache(maxsize=4096)
def _string_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()[:16]


_NULL_STRING = bytes(17)
_PACK = {"date32": struct.Struct("<Bi"), "float": struct.Struct("<Bd"), "int": struct.Struct("<Bq"),
         "ticks": struct.Struct("<Bq"), "bool": struct.Struct("<BB")}


def _fixed_pylist(arr: pa.Array, kind: str) -> list[int | float | bool | None]:
    """A fixed-width column as Python numbers in its encoding (see :func:`_fixed_values`)."""
    return cast("list[int | float | bool | None]", _encoded(arr, kind).to_pylist())


def _row_records_small(table: pa.Table, cols: list[str], kinds: dict[str, str]) -> np.ndarray:
    """:func:`row_records` for a few rows, value by value (the same bytes; a test holds them equal)."""
    strs = [one_array(table.column(c)).to_pylist() for c in cols if kinds[c] == "str"]
    fixed = [(_fixed_pylist(one_array(table.column(c)), kinds[c]), kinds[c]) for c in cols if kinds[c] != "str"]
    return np.frombuffer(b"".join(_records(strs, fixed, table.num_rows)), np.uint8).reshape(table.num_rows, -1)


def _records(strs: list[list[str | None]], fixed: list[tuple[list[int | float | bool | None], str]],
             n: int) -> list[bytes]:
    """The row records of ``n`` rows from Python values: the string columns' values, and the
    fixed-width columns' values in their encoding (dates as days) with each one's kind."""
    sha = hashlib.sha256
    out = []
    for i in range(n):
        key = [ID_TAG]
        for texts in strs:
            t = texts[i]
            key.append(_NULL_STRING if t is None else b"\x01" + _string_digest(t))
        rec = [sha(b"".join(key)).digest()[:16]]
        for values, kind in fixed:
            v = values[i]
            pack = _PACK[kind]
            rec.append(bytes(pack.size) if v is None else pack.pack(1, v + 0.0 if kind == "float" else v))  # -0.0 as 0.0
        out.append(b"".join(rec))
    return out


_EPOCH = dt.date(1970, 1, 1)


IdLayout = tuple[list[str], list[tuple[str, str]]]


def content_id_of(row: Mapping[str, Any], layout: IdLayout) -> str:
    """The content id of one row given as Python values (as ``to_pylist`` gives them: dates as
    :class:`datetime.date`), ``layout`` being :func:`id_layout` of its schema: what
    :func:`content_ids` gives for the same row in Arrow, without Arrow's cost per column (a
    test holds the two equal)."""
    str_cols, fixed_cols = layout
    strs = [[row[c]] for c in str_cols]
    fixed = [([(row[c] - _EPOCH).days if kind == "date32" and row[c] is not None else row[c]], kind)
             for c, kind in fixed_cols]
    return hashlib.sha256(_records(strs, fixed, 1)[0]).hexdigest()[:32]


def id_layout(schema: pa.Schema, identity: Iterable[str]) -> IdLayout:
    """What :func:`content_id_of` needs to know of a schema: the string identity columns, then
    the fixed-width ones with their kinds. Dates, numbers, booleans and strings only (a
    timestamp's encoding needs its unit)."""
    identity = list(identity)
    kinds = {c: _kind(schema.field(c).type) for c in identity}
    if "ticks" in kinds.values():
        raise TypeError("no Python-value encoding for a timestamp or duration")
    return [c for c in identity if kinds[c] == "str"], [(c, k) for c, k in kinds.items() if k != "str"]


def row_records(table: pa.Table, identity: Iterable[str], constant: Collection[str] = ()) -> np.ndarray:
    """The row record of every row (see the module's docstring): an (n, w) uint8 array.

    ``constant`` names string columns the caller knows to hold one value (or NULL) throughout;
    they are not compared row by row (the result is the same either way)."""
    cols = list(identity)
    n = table.num_rows
    kinds = {c: _kind(table.schema.field(c).type) for c in cols}
    if 0 < n <= PY_RECORDS_MAX:
        return _row_records_small(table, cols, kinds)
    strs = [c for c in cols if kinds[c] == "str"]
    fixed = [c for c in cols if kinds[c] != "str"]
    # -- the key record, hashed once per distinct combination of string values --------------
    tag = np.frombuffer(ID_TAG, np.uint8)
    codes: list[np.ndarray] = []
    tables: list[np.ndarray] = []
    for c in strs:
        arr = one_array(table.column(c))
        if pa.types.is_dictionary(arr.type):                 # encoded already (Store.prepare)
            one = c in constant or (len(arr.dictionary) == 1 and not arr.null_count)
            enc = arr.slice(0, 1) if n and one else arr
        elif n and (c in constant or _is_constant(arr)):     # (defaults, absent columns): one value, no dictionary
            enc = pc.dictionary_encode(arr.slice(0, 1))
        else:
            enc = dictionary_encode(arr)
        digs = _string_digests(enc.dictionary)
        tagged = np.zeros((len(digs) + 1, 17), np.uint8)     # row 0: NULL
        tagged[1:, 0] = 1
        tagged[1:, 1:] = digs
        indices = pc.fill_null(enc.indices, -1) if enc.indices.null_count else enc.indices
        code = np.add(indices.to_numpy(zero_copy_only=False), 1, dtype=np.int64)
        codes.append(code if len(code) == n else np.broadcast_to(code, n))
        tables.append(tagged)
    key = np.zeros(n, np.int64)
    bound = 1
    for code, tagged in zip(codes, tables, strict=True):
        if code.strides == (0,):           # a constant adds nothing to tell the rows apart
            continue
        card = len(tagged)
        if bound * card >= 1 << 62:
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            bound = int(key.max()) + 1 if n else 1
        key = key * card + code
        bound *= card
    if n and bound <= 16 * n + 65_536:   # few possible keys: a table over them, no sort
        present = np.zeros(bound, bool)
        present[key] = True
        distinct = np.flatnonzero(present)
        rank = np.empty(bound, np.int64)            # each present key's place among them
        rank[distinct] = np.arange(len(distinct))
        inverse = rank[key]
        first = np.empty(len(distinct), np.int64)   # a row of each key (any: they agree)
        first[inverse] = np.arange(n)
    elif n:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        first, inverse = np.zeros(0, np.int64), np.zeros(0, np.int64)
    # (rows moved as whole void items: numpy copies those far faster than (m, 17) byte slices)
    krec = np.empty(len(first), np.dtype([("tag", f"V{len(tag)}"), *((f"s{j}", "V17") for j in range(len(strs)))]))
    krec["tag"] = tag.view(f"V{len(tag)}")[0]
    for j, (code, tagged) in enumerate(zip(codes, tables, strict=True)):
        krec[f"s{j}"] = tagged.view("V17").reshape(-1)[code[first]]
    kdig = sha_rows(krec.view(np.uint8).reshape(len(first), krec.dtype.itemsize))
    # -- the row record: the key digest and the fixed-width values ---------------------------
    fields: list[tuple[str, str]] = [("k", "V16")]
    for j, c in enumerate(fixed):
        fields += [(f"t{j}", "u1"), (f"v{j}", _DTYPE[kinds[c]])]
    rec = np.empty(n, np.dtype(fields))               # packed: every byte is assigned below
    rec["k"] = np.ascontiguousarray(kdig).view("V16").reshape(-1)[inverse]
    for j, c in enumerate(fixed):
        arr = one_array(table.column(c))
        if arr.null_count == n:           # NULL throughout (a range's high end, mostly): all zero
            rec[f"t{j}"] = 0
            rec[f"v{j}"] = 0
            continue
        rec[f"t{j}"] = pc.is_valid(arr).to_numpy(zero_copy_only=False) if arr.null_count else 1
        rec[f"v{j}"] = _fixed_values(arr, kinds[c])
    return rec.view(np.uint8).reshape(n, rec.dtype.itemsize)


def content_ids(table: pa.Table, identity: Iterable[str], constant: Collection[str] = ()) -> pa.Array:
    """The content-derived id of every row: 32 hex digits (see the module's docstring).

    ``constant``: string columns known to hold one value throughout (see :func:`row_records`)."""
    return sha_rows_hex(row_records(table, identity, constant))
