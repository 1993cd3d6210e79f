"""The bulk path (``Store.append_stream``) and the shortcuts it takes: each gives what the plain
computation gives (the same rows, ids, order and dedup), only cheaper."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from store import SchemaMismatch, Store
from store import ids as ids_mod
from store.ids import content_ids, hex_to_digests, hex_to_words, row_records, sha_rows, sha_rows_hex
from store import dedup, parquet
from store import prepare as prepare_mod
from store import store as store_mod
from store.dedup import IdSet as _IdSet
from store.dedup import order_by as _order_by
from store.prepare import sort_order as _sort_order
from store.schema import EVENT_SCHEMA, IDENTITY_COLUMNS
from store.verify import verify


def rows(n: int, seed: int, entities: tuple[str, ...] = ("acme", "beta", "gamma")) -> pa.Table:
    """Up to ``n`` distinct events in no particular order (another seed repeats some of them)."""
    rnd = random.Random(seed)
    picks = list(dict.fromkeys(
        (rnd.choice(entities), rnd.choice(["revenue", "net_income", "eps"]), rnd.randint(2010, 2024),
         float(rnd.randint(0, 50)), rnd.choice(["s1", "s2"])) for _ in range(n)))
    n = len(picks)
    return pa.table({
        "entity": [p[0] for p in picks],
        "metric": [p[1] for p in picks],
        "period_start": [dt.date(p[2], 1, 1) for p in picks],
        "period_end": [dt.date(p[2], 12, 31) for p in picks],
        "value": [p[3] for p in picks],
        "unit": ["USD"] * n,
        "reported_at": [dt.date(p[2] + 1, 3, 1) for p in picks],
        "source": [p[4] for p in picks],
    })


def stored(store: Store) -> list[dict[str, object]]:
    cols = [c for c in store.read().column_names if c not in ("recorded_at", "commit_id")]
    return sorted(store.read().select(cols).to_pylist(), key=lambda r: str(r["event_id"]))


def test_a_stream_stores_what_one_append_of_its_rows_stores(tmp_path_factory: pytest.TempPathFactory) -> None:
    batches = [rows(400, seed) for seed in range(4)]
    one = Store.create(tmp_path_factory.mktemp("one"))
    stream = Store.create(tmp_path_factory.mktemp("stream"))
    appended = [one.append(b) for b in batches]
    b = stream.append_stream(iter(batches))
    assert (b.added, b.already_present) == (sum(a.added for a in appended), sum(a.already_present for a in appended))
    assert b.already_present > 0
    assert stored(stream) == stored(one)
    # each batch is one row group here, sorted by (entity, metric, period_end) as prepare sorts it
    assert b.path is not None
    pf = pq.ParquetFile(b.path)
    assert pf.metadata.num_row_groups == len(batches)
    for rg in range(pf.metadata.num_row_groups):
        t = pf.read_row_group(rg, columns=["entity", "metric", "period_end"])
        keys = list(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))
        assert keys == sorted(keys)
    assert verify(stream) == []


def test_a_stream_skips_what_the_store_holds_in_any_file(store: Store) -> None:
    held = rows(300, 7, entities=("acme",))
    zeta = rows(50, 8, entities=("zeta",))
    store.append(held.slice(0, 100))
    store.append(zeta)                                   # a file the batches' range rules out
    other = rows(300, 9, entities=("acme", "beta"))
    r = store.append_stream(iter([other, held]))
    assert r.already_present >= 100
    assert store.read().num_rows == 100 + zeta.num_rows + r.added
    assert len(pq.read_table(r.path).column("event_id").unique()) == r.added
    again = store.append_stream(iter([held, other]))
    assert (again.added, again.commit_id, again.already_present) == (0, None, held.num_rows + other.num_rows)


def test_existing_ids_opens_only_files_whose_statistics_admit_the_batch(store: Store) -> None:
    store.append(rows(40, 1, entities=("acme",)))
    store.append(rows(40, 2, entities=("zeta",)))
    probe = store.prepare(rows(40, 1, entities=("acme",)))
    assert [p.rsplit("/", 1)[-1] for p in store.ids.files_admitting(probe)] == [store.files()[1].name]
    found = store.existing_ids(probe.column("event_id"), keys=probe)
    assert set(found.to_pylist()) == set(probe.column("event_id").to_pylist())
    outside = store.prepare(rows(40, 3, entities=("mid",)))
    assert store.ids.files_admitting(outside) == []


def test_ids_have_statistics_only_in_small_commits_and_a_single_append_finds_them_either_way(store: Store) -> None:
    many, few = rows(3000, 1), rows(5, 7, entities=("zeta",))
    big = store.append_stream(iter([many]))
    small = store.append(few)
    assert big.added > parquet.SMALL_ROWS and small.added == few.num_rows

    def id_bounds(path: Path) -> list[tuple[object, object] | None]:
        md = pq.read_metadata(path)
        col = md.schema.names.index("event_id")
        out = []
        for rg in range(md.num_row_groups):
            st = md.row_group(rg).column(col).statistics
            out.append((st.min, st.max) if st is not None and st.has_min_max else None)
        return out

    assert set(id_bounds(big.path)) == {None}
    small_ids = pq.read_table(small.path).column("event_id").to_pylist()
    assert id_bounds(small.path) == [(min(small_ids), max(small_ids))]
    for batch in (many.slice(1234, 1), few.slice(3, 1), many.slice(0, 2)):
        again = Store.open(store.root).append(batch)
        assert (again.added, again.already_present) == (0, batch.num_rows)
    assert Store.open(store.root).append(rows(1, 8, entities=("omega",))).added == 1


def test_supersedes_null_counts_let_a_search_for_withdrawals_skip_row_groups(store: Store) -> None:
    big = store.append_stream(iter([rows(3000, 1)]))
    md = pq.read_metadata(big.path)
    col = md.schema.names.index("supersedes")
    stats = [md.row_group(rg).column(col).statistics for rg in range(md.num_row_groups)]
    assert all(st is not None and st.null_count == md.row_group(rg).num_rows for rg, st in enumerate(stats))


def test_a_bad_batch_late_in_a_stream_commits_nothing(store: Store) -> None:
    bad = rows(10, 5).set_column(0, "entity", pa.array([None] * 10, pa.string()))
    before = store.files()
    with pytest.raises(SchemaMismatch):
        store.append_stream(iter([rows(200, 1), rows(200, 2), bad, rows(200, 3)]))
    assert store.files() == before
    assert [n for n in os.listdir(store.root / "_tmp") if n.startswith("commit-")] == []


def test_an_error_in_the_caller_s_iterator_commits_nothing(store: Store) -> None:
    def batches():
        yield rows(100, 1)
        yield rows(100, 2)
        raise RuntimeError("source failed")

    before = store.files()
    with pytest.raises(RuntimeError, match="source failed"):
        store.append_stream(batches())
    assert store.files() == before


def large(n: int, seed: int) -> pa.Table:
    """``n`` events in shuffled order, a tenth of them repeated later with another note (not
    part of an event's identity), and periods as plain dates (no cast before the sort)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    years = 1950 + k % 70
    t = pa.table({
        "entity": pa.array([f"co{i:04d}" for i in (k // 70) % 997]),
        "metric": pa.array(np.array(["revenue", "eps", "units"])[k // (70 * 997) % 3]),
        "period_start": pa.array([dt.date(y, 1, 1) for y in years]),
        "period_end": pa.array([dt.date(y, 12, 31) for y in years]),
        "value": pa.array(k * 0.5),
        "unit": pa.array(["USD"] * n),
        "reported_at": pa.array([dt.date(y + 1, 3, 1) for y in years]),
        "source": pa.array(["filing"] * n),
        "note": pa.array(["first"] * n),
    })
    again = t.take(pa.array(rng.choice(n, n // 10, replace=False))).set_column(8, "note", pa.array(["again"] * (n // 10)))
    both = pa.concat_tables([t, again])
    return both.take(pa.array(rng.permutation(both.num_rows)))


def test_a_large_append_stores_what_one_pass_over_the_batch_stores(store: Store) -> None:
    batch = large(store_mod.STREAM_MIN_ROWS + 40_000, 3)
    r = store.append(batch)
    expected = prepare_mod.first_of_each(store.prepare(batch), "event_id")   # the one-pass computation
    assert (r.added, r.already_present) == (expected.num_rows, batch.num_rows - expected.num_rows)
    assert r.path is not None and store.files()[-1] == r.path
    got = pq.read_table(r.path, columns=expected.column_names)
    for col in ("event_id", "entity", "metric", "period_end", "value", "note"):    # the same rows, in the same order
        assert got.column(col).to_pylist() == expected.column(col).to_pylist(), col
    keys = list(zip(*(got.column(c).to_pylist() for c in prepare_mod.SORT_KEYS), strict=True))
    assert keys == sorted(keys)                      # sorted as a whole, not slice by slice
    first: dict[tuple[object, ...], str] = {}         # of repeated events, the first given is kept
    for row in batch.select(["entity", "metric", "period_end", "value", "note"]).to_pylist():
        first.setdefault((row["entity"], row["metric"], row["period_end"], row["value"]), row["note"])
    kept = {(e, m, p, v): n for e, m, p, v, n in zip(*(got.column(c).to_pylist() for c in
                                                       ("entity", "metric", "period_end", "value", "note")), strict=True)}
    assert kept == first
    assert "again" in kept.values()
    assert store.append(batch).added == 0


def test_a_large_append_refused_reports_the_whole_batch_and_commits_nothing(store: Store) -> None:
    batch = large(store_mod.STREAM_MIN_ROWS + 40_000, 4)
    before = store.files()
    empty = np.zeros(batch.num_rows, bool)
    empty[[5, store_mod.SLICE_ROWS + 7, batch.num_rows - 1]] = True     # in three different slices
    unit = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), batch.column("unit"))
    with pytest.raises(SchemaMismatch, match="3 row"):
        store.append(batch.set_column(batch.schema.get_field_index("unit"), "unit", unit))
    assert store.files() == before
    assert [n for n in os.listdir(store.root / "_tmp") if n.startswith("commit-")] == []


def test_the_packed_sort_gives_pc_sort_indices_order() -> None:
    rnd = random.Random(3)
    for trial in range(200):
        n = rnd.randint(1, 300)
        ents = [rnd.choice(["a", "b", "ab", "B", "", "é", "a\x00"]) for _ in range(n)]
        if trial % 7 == 0:
            ents[rnd.randrange(n)] = None
        keys = [pa.array(ents, pa.string()),
                pa.array([rnd.choice(["x", "y", "xx"]) for _ in range(n)]),
                pa.array([dt.date(2000, 1, 1) + dt.timedelta(days=rnd.choice([0, 1, -4000, 9000]))
                          for _ in range(n)], pa.date32())]
        want = pc.sort_indices(pa.table({str(i): k for i, k in enumerate(keys)}),
                               sort_keys=[(str(i), "ascending") for i in range(3)]).to_numpy()
        assert np.array_equal(_sort_order(keys), want)


def test_encoding_through_runs_gives_pc_dictionary_encode_s_dictionary_and_indices() -> None:
    rnd = random.Random(5)
    probe = ids_mod.RUN_PROBE_ROWS
    seen_runs = seen_plain = 0
    for trial in range(60):
        n = rnd.choice([1, probe, 2 * probe, 3 * probe + 17, 5 * probe])
        values = [rnd.choice(["a", "b", "ab", "", "é", "a\x00", "x" * 40]) for _ in range(n)]
        if trial % 3 == 0:                  # grouped throughout, or only at the start
            values[: n if trial % 2 else n // 2] = sorted(values[: n if trial % 2 else n // 2])
        if trial % 11 == 0:
            values[rnd.randrange(n)] = None
        arr = pa.array(values, pa.string())
        for part in (arr, arr.slice(rnd.randrange(n), n)):
            got, want = ids_mod.dictionary_encode(part), pc.dictionary_encode(part)
            assert got.type == want.type and got.equals(want)
            head = pc.run_end_encode(part.slice(0, probe))
            if len(part) >= 2 * probe and not part.null_count:
                runs = len(head.run_ends) * ids_mod.RUN_MIN_LENGTH <= probe
                seen_runs, seen_plain = seen_runs + runs, seen_plain + (not runs)
    assert seen_runs and seen_plain          # both ways were taken


def nibbles(ids: pa.Array) -> np.ndarray:
    """hex_to_digests as it was first written: a lookup per hex digit."""
    table = np.zeros(256, np.uint8)
    for i, c in enumerate(b"0123456789abcdef"):
        table[c] = i
    raw = np.frombuffer(b"".join(s.encode() for s in ids.to_pylist()), np.uint8).reshape(-1, 32)
    nib = table[raw]
    return (nib[:, 0::2] << 4) | nib[:, 1::2]


def test_hex_ids_read_back_to_their_bytes() -> None:
    ids = pa.array([os.urandom(16).hex() for _ in range(500)])
    for arr in (ids, ids.slice(7, 300), pa.chunked_array([ids.slice(0, 10), ids.slice(10, 40)])):
        flat = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        assert np.array_equal(hex_to_digests(arr), nibbles(flat))
        hi, lo = hex_to_words(arr)
        words = nibbles(flat).view(">u8")
        assert np.array_equal(hi, words[:, 0]) and np.array_equal(lo, words[:, 1])
    with pytest.raises(pa.ArrowInvalid):
        hex_to_digests(pa.array(["abc"]))


@pytest.mark.parametrize("width", [17, 49, 221])
def test_both_hashers_agree(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    records = np.random.default_rng(width).integers(0, 256, (600, width), dtype=np.uint8)
    want = [hashlib.sha256(r.tobytes()).hexdigest()[:32] for r in records]
    for py_max in (0, 10_000):                               # polars-hash, then hashlib
        monkeypatch.setattr(ids_mod, "PY_HASH_MAX", py_max)
        assert sha_rows_hex(records).to_pylist() == want
        assert [bytes(d).hex() for d in sha_rows(records)] == want


def test_text_values_hash_alike_batched_and_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many distinct strings (their digests taken in one polars-hash call) give the ids hashlib
    gives them one by one."""
    names = [f"entity {i} \u00e9\u4e2d" if i % 3 else f"e{i}" for i in range(700)]
    table = pa.table({"entity": names, "value": np.arange(700, dtype=np.float64)})
    batched = content_ids(table, ["entity", "value"]).to_pylist()
    monkeypatch.setattr(ids_mod, "PY_HASH_MAX", 10_000)
    assert batched == content_ids(table, ["entity", "value"]).to_pylist()
    assert len(set(batched)) == 700


@pytest.mark.parametrize("run_max", [1 << 21, 700])
def test_a_streams_id_set_answers_as_a_set_of_pairs(run_max: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream's id set (runs merged up to a size, a filter grown as ids come in) says of
    each id what a plain set of (hi, lo) pairs says: repeats of earlier batches, ids sharing
    their first 8 bytes but not their last, and new ids alike."""
    monkeypatch.setattr(dedup, "ID_RUN_MAX", run_max)
    monkeypatch.setattr(dedup, "ID_FILTER_BITS", (10, 32))      # grown a few times on the way
    rng = np.random.default_rng(run_max)
    seen: _IdSet = _IdSet()
    plain: set[tuple[int, int]] = set()
    for batch in range(40):
        n = int(rng.integers(1, 400))
        hi = rng.integers(0, 2**64, n, dtype=np.uint64)
        lo = rng.integers(0, 2**64, n, dtype=np.uint64)
        if plain:                                 # repeats, and near misses sharing hi
            old = list(plain)
            pick = rng.integers(0, len(old), min(n, 50))
            hi[: len(pick)] = [old[i][0] for i in pick]
            lo[: len(pick)] = [old[i][1] ^ (int(rng.integers(0, 2)) << 63) for i in pick]
        pairs = list(dict.fromkeys(zip(hi.tolist(), lo.tolist(), strict=True)))     # a batch's own repeats go first
        hi = np.array([p[0] for p in pairs], np.uint64)
        lo = np.array([p[1] for p in pairs], np.uint64)
        order = np.argsort(hi, kind="stable")
        hi, lo = hi[order], lo[order]
        found = seen.contains_sorted(hi, lo)
        assert found.tolist() == [(h, l) in plain for h, l in zip(hi.tolist(), lo.tolist(), strict=True)], batch
        seen.add_sorted(hi[~found], lo[~found])
        plain.update((h, l) for h, l, f in zip(hi.tolist(), lo.tolist(), found.tolist(), strict=True) if not f)
    assert seen.count == len(plain) and seen.bits > 13
    assert sum(len(h) for h, _ in seen.levels) == len(plain)
    assert all(len(h) <= max(run_max, 400) for h, _ in seen.levels)
    if run_max < 1000:
        assert len(seen.levels) > 3


def test_the_id_filter_has_the_bit_of_every_id_marked() -> None:
    """Marking by scatter (with the ids that share a byte marked again) sets the bits
    ``np.bitwise_or.at`` sets, whether ids share bytes rarely, often, or all of them one."""
    rng = np.random.default_rng(5)
    for spread in (2**64 - 1, 2**50, 2**44, 0):
        seen = _IdSet()
        hi = np.sort(rng.integers(0, spread, 5_000, dtype=np.uint64, endpoint=True))
        want = seen.filter.copy()
        np.bitwise_or.at(want, *seen._bits_of(hi))
        seen._mark(hi)
        assert np.array_equal(seen.filter, want), spread
        assert np.count_nonzero(want) > 0


def test_ids_are_ordered_by_their_first_half_however_close_they_are() -> None:
    """The order of a batch's ids (row numbers sorted along with them) sorts them, for ids far
    apart, ids that differ only in their last bits (where the row numbers rode) and repeats."""
    rng = np.random.default_rng(9)
    for n in (1, 2, 300, 70_000):
        for spread in (2**64 - 1, 2**10, 0):
            base = rng.integers(0, 2**64 - 1 - spread, dtype=np.uint64, endpoint=True)
            hi = base + rng.integers(0, spread, n, dtype=np.uint64, endpoint=True)
            order, s_hi = _order_by(hi)
            assert np.array_equal(np.sort(order), np.arange(n)), (n, spread)
            assert np.array_equal(hi[order], s_hi) and np.array_equal(s_hi, np.sort(hi)), (n, spread)


def test_declared_and_detected_constant_columns_give_the_same_ids(store: Store) -> None:
    table = store.prepare(rows(300, 4)).drop_columns(["event_id"])
    filled = ["op", "segment", "dims", "kind", "qualifier", "authority", "source_ref", "supersedes", "unit"]
    plain = row_records(table, IDENTITY_COLUMNS)
    assert np.array_equal(row_records(table, IDENTITY_COLUMNS, constant=filled), plain)
    assert content_ids(table, IDENTITY_COLUMNS).equals(store.prepare(rows(300, 4)).column("event_id").chunk(0))


def test_repeats_within_a_batch_keep_each_distinct_row_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    distinct = pa.concat_tables([rows(300, seed) for seed in range(3)])   # repeats across the parts
    want = {tuple(r.values()) for r in distinct.to_pylist()}
    for how in ("append", "append_stream"):
        store = Store.create(tmp_path_factory.mktemp(how))
        r = store.append(distinct) if how == "append" else store.append_stream(iter([distinct]))
        got = store.read().select(distinct.column_names)
        assert {tuple(row.values()) for row in got.to_pylist()} == want
        assert got.num_rows == len(want) == r.added


def test_an_encoded_batch_gets_the_plain_batchs_ids_and_reads_back_as_text(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # large batches are dictionary-encoded from prepare to the Parquet writer: the same ids,
    # rows and stored types as the plain path, with defaults, blanks and nulls among the labels
    base = rows(2500, 11)
    n = base.num_rows
    rnd = random.Random(11)
    batch = base.append_column("segment", pa.array([rnd.choice(["", None, "phones", "total"]) for _ in range(n)])) \
        .append_column("dims", pa.array([rnd.choice(["", "region=eu", "region=us"]) for _ in range(n)])) \
        .append_column("kind", pa.array([rnd.choice(["actual", None, "estimate"]) for _ in range(n)])) \
        .append_column("source_ref", pa.array([rnd.choice([None, "p. 3"]) for _ in range(n)]))
    assert n >= 1024   # (the size from which prepare encodes by default)
    store = Store.create(tmp_path_factory.mktemp("enc"))
    encoded, plain = store.prepare(batch, encode=True), store.prepare(batch, encode=False)
    assert pa.types.is_dictionary(encoded.schema.field("entity").type)
    assert not any(pa.types.is_dictionary(t) for t in plain.schema.types)
    assert encoded.column("event_id").equals(plain.column("event_id"))
    decoded = pa.table([c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in encoded.columns],
                       names=encoded.column_names)
    assert decoded.equals(plain.cast(decoded.schema))
    for how in ("append", "append_stream"):
        store = Store.create(tmp_path_factory.mktemp(how))
        r = store.append(batch) if how == "append" else store.append_stream(iter([batch.slice(0, 1500), batch.slice(1500)]))
        assert r.path is not None
        read = pq.read_table(r.path)
        assert read.schema.types == EVENT_SCHEMA.types
        assert not any(pa.types.is_dictionary(t) for t in read.schema.types)
        meta = pq.read_schema(r.path).metadata
        assert meta[b"metricstore.commit_id"].decode() == r.commit_id
        assert int(meta[b"metricstore.rows"]) == read.num_rows == r.added
        assert hashlib.sha256(r.path.read_bytes()).hexdigest()[:16] == r.path.stem.rsplit("-", 1)[1]
        assert sorted(read.column("event_id").to_pylist()) == sorted(set(plain.column("event_id").to_pylist()))
        assert verify(store) == []


def test_an_empty_batch_adds_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    # found by the append-path fuzz: an empty batch, every required column present, on a store
    # with events in it raised ValueError from the dedup search instead of adding nothing
    store = Store.create(tmp_path_factory.mktemp("empty"))
    store.append(rows(50, 1))
    before = stored(store)
    empty = rows(50, 1).slice(0, 0)
    for r in (store.append(empty), store.append_stream(iter([empty])), store.append_stream(iter([]))):
        assert (r.added, r.already_present, r.commit_id) == (0, 0, None)
    assert stored(store) == before


WRITE_REFUSED = """
import resource, signal, sys
import numpy as np, pyarrow as pa
from store import Store
store = Store(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
n = 100_000
batches = (pa.table({"entity": [f"co{i % 500}" for i in range(b * n, (b + 1) * n)], "metric": ["revenue"] * n,
                     "period_start": pa.array(np.full(n, 0, "datetime64[D]")),
                     "period_end": pa.array(np.arange(b * n, (b + 1) * n).astype("datetime64[D]")),
                     "value": np.random.default_rng(b).random(n), "unit": ["USD"] * n,
                     "reported_at": pa.array(np.full(n, 20000, "datetime64[D]")), "source": ["feed"] * n})
           for b in range(4))
try:
    store.append_stream(batches)
except OSError as exc:
    print("refused", exc.errno)
"""


def test_a_stream_the_disk_refuses_half_way_commits_nothing(tmp_path: Path) -> None:
    """A real process whose files may not grow past 1 MB streams about 8 MB of events: the write
    fails part-way through the file, the error reaches the caller, and the store is as it was
    (no commit, no temporary file left; the events already there still read back)."""
    root = tmp_path / "s"
    store = Store.create(root)
    store.append(rows(50, 1))
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "_lock" not in p.parts)
    run = subprocess.run([sys.executable, "-c", WRITE_REFUSED, str(root)], capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["refused", str(errno.EFBIG)], run.stdout + run.stderr
    after = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "_lock" not in p.parts)
    assert after == before
    assert Store(root).read().num_rows == 50


def _encodings(path: Path) -> dict[str, tuple[str, ...]]:
    meta = pq.ParquetFile(path).metadata
    return {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
            for i in range(meta.num_columns)}


def _pairs(ids: list[object], values: list[object]) -> list[str]:
    """(id, value) pairs as text, sorted: -0.0, 0.0 and None told apart."""
    return sorted(repr(p) for p in zip(ids, values, strict=True))


def test_ids_and_values_are_written_in_their_encodings_and_read_back_by_every_reader(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # the ids' digits in one run (DELTA_LENGTH_BYTE_ARRAY) and the values' bytes split
    # (BYTE_STREAM_SPLIT) in every commit but a tiny one; DuckDB, polars and pyarrow read
    # back the very values written (Spark: tests/scale)
    rnd = random.Random(5)
    n = 3000
    values = [rnd.choice([0.0, -0.0, 1e-300, -2.5e15, 365.906e9, 0.1, None, i / 7]) for i in range(n)]
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n)]    # every row an event of its own
    batch = pa.table({"entity": [f"co{i % 7}" for i in range(n)], "metric": ["revenue"] * n, "period_start": days,
                      "period_end": days, "value": pa.array(values, pa.float64()), "unit": ["USD"] * n,
                      "reported_at": [dt.date(2030, 1, 1)] * n, "source": ["feed"] * n,
                      "op": ["assert" if v is not None else "retract" for v in values]})
    store = Store.create(tmp_path_factory.mktemp("encodings"))
    commits = {"large": store.append(batch.slice(0, 2000)), "small": store.append(batch.slice(2000, 200)),
               "tiny": store.append(batch.slice(2200, 10)),
               "stream": store.append_stream(iter([batch.slice(2210, 400), batch.slice(2610)]))}
    for name, r in commits.items():
        assert r.path is not None and r.added > 0
        enc = _encodings(r.path)
        assert ("DELTA_LENGTH_BYTE_ARRAY" in enc["event_id"]) is (name != "tiny"), (name, r.added, enc["event_id"])
        assert ("BYTE_STREAM_SPLIT" in enc["value"]) is (name != "tiny"), (name, enc["value"])
        arrow = pq.read_table(r.path).to_pydict()
        duck = duckdb.sql(f"SELECT event_id, value FROM read_parquet('{r.path}')").to_arrow_table().to_pydict()
        frame = pl.read_parquet(r.path)
        assert _pairs(arrow["event_id"], arrow["value"]) == _pairs(duck["event_id"], duck["value"]) \
            == _pairs(frame["event_id"].to_list(), frame["value"].to_list()), name
    read = store.read()
    plain = store.prepare(batch, encode=False)          # (sorted: its ids beside its own values)
    assert _pairs(read.column("event_id").to_pylist(), read.column("value").to_pylist()) == \
        _pairs(plain.column("event_id").to_pylist(), plain.column("value").to_pylist())
    assert sorted(map(repr, plain.column("value").to_pylist())) == sorted(map(repr, values))
    assert verify(store) == []
