"""Compaction: the event multiset is unchanged, readers during a compaction neither fail nor double
count, sources go only after their grace period, the automatic trigger fires on its threshold."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from queries import MetricStore
from store import Store
from store.compaction import CompactionPolicy, compact, maybe_compact, retired
from store.ids import content_id_of, id_layout
from store.ids import content_ids
from store.schema import EVENT_SCHEMA, IDENTITY_COLUMNS
from store.verify import verify


def _rows(store: Store) -> Counter[tuple[object, ...]]:
    """Every stored row, duplicates included, as a multiset of full rows (recorded_at, commit_id too)."""
    data = pa.concat_tables([pq.read_table(p) for p in store.files()], promote_options="default")
    return Counter(tuple(r.values()) for r in data.to_pylist())


def _events(store: Store) -> Counter[tuple[object, ...]]:
    """The events a reader sees: one per id."""
    return Counter(tuple(r.values()) for r in store.read().to_pylist())


def event(entity: str, metric: str, year: int, value: float, source: str = "s", **kw: object) -> pa.Table:
    cols: dict[str, list[object]] = {
        "entity": [entity], "metric": [metric], "period_start": [dt.date(year, 1, 1)],
        "period_end": [dt.date(year, 12, 31)], "value": [value], "unit": ["USD"],
        "reported_at": [dt.date(year + 1, 3, 1)], "source": [source]}
    cols.update({k: [v] for k, v in kw.items()})
    return pa.table(cols)


commits = st.lists(
    st.lists(st.tuples(st.sampled_from(["acme", "beta", "gamma"]), st.sampled_from(["revenue", "net_income"]),
                       st.integers(2015, 2024), st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)),
             min_size=1, max_size=4),
    min_size=2, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=commits, full=st.booleans())
def test_compaction_keeps_the_exact_event_multiset(tmp_path_factory: pytest.TempPathFactory,
                                                   batches: list[list[tuple[str, str, int, float]]],
                                                   full: bool) -> None:
    store = Store.create(tmp_path_factory.mktemp("c") / "store")
    policy = CompactionPolicy(auto=False)
    for b in batches:
        store.append(pa.concat_tables([event(*row) for row in b]))
    rows_before, events_before = _rows(store), _events(store)
    stamps = sorted(r["recorded_at"] for r in store.read().to_pylist())
    mid = stamps[len(stamps) // 2]
    with MetricStore(store) as ms:
        recorded_before = ms.sql("SELECT * FROM facts ORDER BY ALL", as_recorded=mid)

    result = compact(store, full=full, grace_s=0, policy=policy)

    assert result.merged >= 2
    assert _rows(store) == rows_before                  # every row, recorded_at and commit_id included
    assert _events(store) == events_before
    with MetricStore(store) as ms:                      # as_recorded answers unchanged
        assert ms.sql("SELECT * FROM facts ORDER BY ALL", as_recorded=mid).equals(recorded_before)
    assert verify(store) == []


def test_merged_sources_stay_for_the_grace_period_and_nothing_is_counted_twice(store: Store) -> None:
    for i in range(5):
        store.append(event("acme", "revenue", 2015 + i, 100.0 + i))
    n_files = len(store.files())
    result = compact(store, grace_s=3600, policy=CompactionPolicy(auto=False))
    assert result.merged == n_files and result.deleted == 0
    assert len(store.files()) == n_files + 1            # sources still readable beside the merged file
    assert retired(store) == set(result.sources)
    with MetricStore(store) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"][0] == 5
        assert ms.sql("SELECT count(*) AS n FROM facts")["n"][0] == 5
        assert ms.sql("SELECT count(*) AS n FROM growth WHERE yoy_change IS NOT NULL")["n"][0] == 4
    for writer in (store, Store(store.root)):           # dedup searches the merged file, not its sources
        assert {n for n, _ in writer.ids.footers_of("events")}.isdisjoint(result.sources)
        assert (writer.append(event("acme", "revenue", 2016, 101.0)).added,
                writer.append_stream(iter([event("acme", "revenue", 2017, 102.0)])).added) == (0, 0)
    again = compact(store, grace_s=3600, policy=CompactionPolicy(auto=False))
    assert again.merged == 0                            # retired sources are not merged again
    assert compact(store, grace_s=0, policy=CompactionPolicy(auto=False)).deleted == n_files
    assert len(store.files()) == 1 and _events(store) and verify(store) == []


def test_a_reader_during_compactions_neither_fails_nor_double_counts(store: Store) -> None:
    for i in range(40):
        store.append(event("acme", "revenue", 1990 + i, float(i)))
    expected = 40
    errors: list[BaseException] = []
    counts: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader() -> None:
        with MetricStore(store) as ms:
            while not stop.is_set():
                try:
                    n_events = ms.sql("SELECT count(*) AS n FROM events")["n"][0]
                    n_facts = ms.sql("SELECT count(*) AS n FROM facts")["n"][0]
                    counts.append((n_events, n_facts))
                except BaseException as exc:   # noqa: BLE001 - any failure is the finding
                    errors.append(exc)
                    return

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(600):                                  # the reader is up before compactions start
        if counts or errors:
            break
        time.sleep(0.1)
    try:
        policy = CompactionPolicy(auto=False, grace_s=2.0)   # sources are deleted while the reader reads
        i = 0
        while i < 30 or (len(counts) < 5 and i < 90):     # until the reader has overlapped several
            if i < 6:
                store.append(event("acme", "revenue", 2030 + i, float(i)))
                expected += 1
            compact(store, policy=policy, full=bool(i % 2))
            time.sleep(0.1)
            i += 1
    finally:
        stop.set()
        t.join()
    assert not errors
    # a double count would show up to twice the events (sources and merged file side by side)
    assert counts and all(40 <= e <= expected and 40 <= f <= expected for e, f in counts)
    assert _events(store) and store.read().num_rows == expected


def test_automatic_compaction_fires_on_the_file_count(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTORE_COMPACT_MIN_FILES", "8")
    monkeypatch.setenv("METRICSTORE_COMPACT_GRACE_S", "0")
    for i in range(6):
        store.append(event("acme", "revenue", 2000 + i, float(i)))
    assert len(store.files()) == 7                      # the empty initial file and 6 commits
    store.append(event("acme", "revenue", 2010, 1.0))    # the 8th small file triggers it
    assert len(store.files()) == 1
    assert store.read().num_rows == 7 and verify(store) == []


def test_automatic_compaction_can_be_switched_off(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTORE_COMPACT_MIN_FILES", "3")
    monkeypatch.setenv("METRICSTORE_AUTO_COMPACT", "0")
    for i in range(5):
        store.append(event("acme", "revenue", 2000 + i, float(i)))
    assert maybe_compact(store) is None
    assert len(store.files()) == 6


def test_a_compacted_store_still_dedups_appends(store: Store) -> None:
    for i in range(4):
        store.append(event("acme", "revenue", 2000 + i, float(i)))
    compact(store, full=True, grace_s=0, policy=CompactionPolicy(auto=False))
    again = store.append(event("acme", "revenue", 2001, 1.0))
    assert (again.added, again.already_present) == (0, 1)


def test_streamed_append_is_one_commit_and_dedups_across_batches(store: Store) -> None:
    b1 = pa.concat_tables([event("acme", "revenue", 2000 + i, float(i)) for i in range(3)])
    b2 = pa.concat_tables([event("acme", "revenue", 2001 + i, float(i + 1)) for i in range(3)])  # 2 repeats
    r = store.append_stream(iter([b1, b2]))
    assert (r.added, r.already_present) == (4, 2)
    assert len(store.files()) == 2 and store.read().num_rows == 4
    assert store.append_stream(iter([b2])).added == 0
    assert verify(store) == []


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def spec_id(row: dict[str, object], types: dict[str, str]) -> str:
    """The content id as store/ids.py specifies it, written plainly (hashlib and struct, row by row)."""
    key = b"metricstore/id/v2"
    for c, t in types.items():
        if t == "str":
            v = row[c]
            key += b"\0" + bytes(16) if v is None else b"\1" + hashlib.sha256(str(v).encode()).digest()[:16]
    rec = hashlib.sha256(key).digest()[:16]
    for c, t in types.items():
        v = row[c]
        if t == "str":
            continue
        width = {"date": 4, "float": 8, "int": 8, "bool": 1}[t]
        if v is None:
            rec += b"\0" + bytes(width)
        elif t == "bool":
            rec += b"\1" + bytes([int(bool(v))])
        elif t == "date":
            rec += b"\1" + struct.pack("<i", (v - dt.date(1970, 1, 1)).days)  # type: ignore[operator]
        elif t == "float":
            rec += b"\1" + struct.pack("<d", float(v) + 0.0)  # type: ignore[arg-type]
        else:
            rec += b"\1" + struct.pack("<q", int(v))  # type: ignore[call-overload]
    return hashlib.sha256(rec).hexdigest()[:32]


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(text, st.floats(allow_nan=False, allow_infinity=False) | st.none(),
                               st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)) | st.none(), text | st.none(),
                               st.integers(-(2**63), 2**63 - 1) | st.none(), st.booleans() | st.none()),
                     min_size=1, max_size=20))
@example(rows=[("", -0.0, None, None, None, None), ("\u00e9", 0.0, dt.date(1969, 12, 31), "", -1, False)])
def test_small_batches_hash_to_the_same_ids_as_large_ones(
        rows: list[tuple[str, float | None, dt.date | None, str | None, int | None, bool | None]]) -> None:
    """A few rows are encoded value by value, many vectorised, more still hashed in one batched call: the
    three give the ids the specification gives, for every kind of column, NULLs included."""
    table = pa.table({"entity": pa.array([r[0] for r in rows], pa.string()),
                      "value": pa.array([r[1] for r in rows], pa.float64()),
                      "period_end": pa.array([r[2] for r in rows], pa.date32()),
                      "source_ref": pa.array([r[3] for r in rows], pa.string()),
                      "count": pa.array([r[4] for r in rows], pa.int64()),
                      "flag": pa.array([r[5] for r in rows], pa.bool_())})
    cols = ["entity", "value", "period_end", "source_ref", "count", "flag"]
    types = {"entity": "str", "value": "float", "period_end": "date", "source_ref": "str", "count": "int",
             "flag": "bool"}
    expected = [spec_id(r, types) for r in table.to_pylist()]
    assert content_ids(table, cols).to_pylist() == expected
    layout = id_layout(table.schema, cols)              # a single append's: from Python values
    assert [content_id_of(r, layout) for r in table.to_pylist()] == expected
    for copies in (20, 400):                            # vectorised, then past hashlib's limit: polars-hash
        big = pa.concat_tables([table] * copies)
        assert content_ids(big, cols).to_pylist()[: len(rows)] == expected
    assert set(IDENTITY_COLUMNS) >= {"entity", "value", "period_end", "source_ref"}


def test_event_ids_are_pinned() -> None:
    """The id of a fixed event never changes (runs, platforms, library versions): a changed
    encoding must change this test, and say so (no store may hold ids of two encodings)."""
    row = {"op": "assert", "entity": "acme", "metric": "revenue", "segment": "total", "dims": "",
           "period_start": dt.date(2024, 1, 1), "period_end": dt.date(2024, 12, 31), "value": 1234.5,
           "value_high": None, "unit": "USD", "kind": "actual", "qualifier": "exact", "authority": "primary",
           "reported_at": dt.date(2025, 3, 1), "source": "acme-10k", "source_ref": None, "supersedes": None}
    schema = {f.name: f.type for f in EVENT_SCHEMA}
    table = pa.table({c: pa.array([row[c]], schema[c]) for c in IDENTITY_COLUMNS})
    types = {c: {"string": "str", "date32[day]": "date", "double": "float"}[str(schema[c])] for c in IDENTITY_COLUMNS}
    pinned = spec_id(row, types)
    assert content_ids(table, IDENTITY_COLUMNS).to_pylist() == [pinned]
    assert content_ids(pa.concat_tables([table] * 300), IDENTITY_COLUMNS).to_pylist() == [pinned] * 300
    assert content_id_of(row, id_layout(EVENT_SCHEMA, IDENTITY_COLUMNS)) == pinned
    assert pinned == "4605f6a243334049d08ab39622d1991d"


def test_compaction_cli_reports_what_it_did(tmp_path: Path) -> None:
    from tests.conftest import run_cli
    root = tmp_path / "store"
    store = Store.create(root)
    for i in range(3):
        store.append(event("acme", "revenue", 2000 + i, float(i)))
    out = run_cli("compact", "--full", "--grace", "0", store=root)
    assert out.returncode == 0, out.stderr
    assert "merged 4 file(s)" in out.stdout
    assert len(Store(root).files()) == 1


def test_a_large_merge_is_written_in_whole_row_groups(store: Store) -> None:
    from store.parquet import ROW_GROUP_ROWS
    n = 0
    for k in range(5):
        rows = 17_000 + 1_000 * k
        b = pa.table({"entity": [f"e{k}"] * rows, "metric": ["revenue"] * rows,
                      "period_start": [dt.date(2000, 1, 1)] * rows, "period_end": [dt.date(2000, 12, 31)] * rows,
                      "value": [float(i) for i in range(rows)], "unit": ["USD"] * rows,
                      "reported_at": [dt.date(2001, 1, 1)] * rows, "source": ["s"] * rows})
        n += store.append(b).added
    r = compact(store, full=True, grace_s=0, policy=CompactionPolicy(auto=False))
    assert r.path is not None
    md = pq.read_metadata(r.path)
    sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    assert sum(sizes) == md.num_rows == n and all(s == ROW_GROUP_ROWS for s in sizes[:-1])
    assert store.read().num_rows == n
