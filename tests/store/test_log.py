"""The append-only log: atomic commits, content ids, dedup, concurrent writers."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from store import MetricEvent, SchemaMismatch, Store, StoreNotFound
from store.dedup import KEY_BOUNDS_PY_MAX, RowGroupBounds, key_bounds
from store.dedup import groups_admitting as _groups_admitting
from store.prepare import prepared_row as _prepared_row
from store.schema import EVENT_SCHEMA
from store.verify import verify


def batch(n: int, *, entity: str = "acme", start_value: float = 0.0, source: str = "s") -> pa.Table:
    return pa.table({
        "entity": [entity] * n,
        "metric": ["revenue"] * n,
        "period_start": [dt.date(2000 + i % 20, 1, 1) for i in range(n)],
        "period_end": [dt.date(2000 + i % 20, 12, 31) for i in range(n)],
        "value": [start_value + i for i in range(n)],
        "unit": ["USD"] * n,
        "reported_at": [dt.date(2021, 3, 1)] * n,
        "source": [f"{source}{i}" for i in range(n)],
    })


def test_append_then_read_returns_the_events(store: Store) -> None:
    r = store.append(batch(5))
    assert (r.added, r.already_present) == (5, 0)
    got = store.read()
    assert got.num_rows == 5
    assert sorted(got.column("value").to_pylist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert set(got.column("commit_id").to_pylist()) == {r.commit_id}
    assert set(got.column("segment").to_pylist()) == {"total"}
    assert set(got.column("kind").to_pylist()) == {"actual"}


def test_reappend_adds_nothing_and_says_so(store: Store) -> None:
    store.append(batch(5))
    files = store.files()
    again = store.append(batch(5))
    assert (again.added, again.already_present, again.commit_id) == (0, 5, None)
    assert store.files() == files


def test_partly_new_batch_adds_only_the_new_rows(store: Store) -> None:
    store.append(batch(3))
    r = store.append(batch(5))
    assert (r.added, r.already_present) == (2, 3)
    assert store.read().num_rows == 5


def test_duplicates_within_a_batch_are_written_once(store: Store) -> None:
    b = batch(2)
    r = store.append(pa.concat_tables([b, b]))
    assert (r.added, r.already_present) == (2, 2)


def test_event_id_depends_on_content_not_on_time(tmp_path: Path) -> None:
    a, b = Store.create(tmp_path / "a"), Store.create(tmp_path / "b")
    a.append(batch(3))
    b.append(batch(3))
    assert sorted(a.read().column("event_id").to_pylist()) == sorted(b.read().column("event_id").to_pylist())
    c = Store.create(tmp_path / "c")
    c.append(batch(3, start_value=0.5))
    assert not set(c.read().column("event_id").to_pylist()) & set(a.read().column("event_id").to_pylist())


def test_commit_is_one_parquet_file_with_checksum_in_name_and_nothing_left_in_tmp(store: Store) -> None:
    r = store.append(batch(4))
    assert r.path is not None and r.path.parent == store.root / "events"
    assert pq.read_table(r.path).num_rows == 4
    assert list((store.root / "_tmp").iterdir()) == []
    assert verify(store) == []


def test_file_metadata_carries_schema_version(store: Store) -> None:
    r = store.append(batch(1))
    meta = pq.read_schema(r.path).metadata
    assert meta[b"metricstore.schema_version"] == b"1"
    assert meta[b"metricstore.rows"] == b"1"


def test_batch_missing_a_required_column_is_refused(store: Store) -> None:
    with pytest.raises(SchemaMismatch, match="unit"):
        store.append(batch(1).drop_columns(["unit"]))
    assert store.read().num_rows == 0


def test_batch_may_not_set_store_columns(store: Store) -> None:
    b = batch(1).append_column("event_id", pa.array(["x"]))
    with pytest.raises(SchemaMismatch, match="set by the store"):
        store.append(b)


@pytest.mark.parametrize("column,value,reason", [
    ("kind", "rumour", "not one of"),
    ("value", float("nan"), "NaN"),
    ("period_end", dt.date(1999, 1, 1), "before period_start"),
    ("value", None, "an assert needs a value"),
    ("value_high", float("inf"), "NaN and infinity"),
])
def test_invalid_values_are_refused_whole(store: Store, column: str, value: object, reason: str) -> None:
    b = batch(2)
    col = b.column(column).to_pylist() if column in b.column_names else [None, None]
    col[1] = value
    b = b.drop_columns([column]) if column in b.column_names else b
    b = b.append_column(column, pa.array(col))
    with pytest.raises(SchemaMismatch, match=reason):
        store.append(b)
    assert store.read().num_rows == 0


@pytest.mark.parametrize("n", [2, 3000])          # value by value, and encoded (op a dictionary)
def test_only_an_assert_needs_a_value(store: Store, n: int) -> None:
    b = batch(n)
    values = b.column("value").to_pylist()
    values[n - 1] = None
    b = b.set_column(b.column_names.index("value"), "value", pa.array(values, pa.float64()))
    with pytest.raises(SchemaMismatch, match="an assert needs a value"):
        store.append(b)
    assert store.read().num_rows == 0
    retracted = b.append_column("op", pa.array(["assert"] * (n - 1) + ["retract"]))
    assert store.append(retracted).added == n


def test_opening_a_folder_that_is_not_a_store_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="no metricstore here"):
        Store(tmp_path)


def test_pydantic_model_validates_single_events() -> None:
    e = MetricEvent(entity="x", metric="revenue", period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31),
                    value=1.0, unit="USD", reported_at=dt.date(2025, 1, 1), source="s")
    assert e.segment == "total" and e.to_row()["kind"] == "actual"
    with pytest.raises(ValidationError):
        MetricEvent(entity="x", metric="m", period_start=dt.date(2024, 1, 1), period_end=dt.date(2023, 1, 1),
                    value=1.0, unit="USD", reported_at=dt.date(2025, 1, 1), source="s")
    with pytest.raises(ValidationError):
        e.model_copy(update={}).__setattr__("value", 2.0)


def test_model_rows_append_like_bulk_rows(store: Store) -> None:
    e = MetricEvent(entity="x", metric="revenue", period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31),
                    value=1.5, unit="USD", reported_at=dt.date(2025, 1, 1), source="s")
    row = {k: v for k, v in e.to_row().items() if k not in ("event_id", "recorded_at", "commit_id")}
    assert store.append(pa.Table.from_pylist([row])).added == 1
    assert store.read().column("value").to_pylist() == [1.5]


values = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vals=st.lists(values, min_size=1, max_size=30))
def test_property_append_then_read_and_reappend(tmp_path_factory: pytest.TempPathFactory, vals: list[float]) -> None:
    s = Store.create(tmp_path_factory.mktemp("p") / "s")
    n = len(vals)
    b = batch(n).drop_columns(["value"]).append_column("value", pa.array(vals, pa.float64()))
    first = s.append(b)
    assert first.added == n  # each row has its own source, so every row is a distinct event
    got = sorted(s.read().column("value").to_pylist())
    assert got == sorted(vals)
    assert s.append(b).added == 0


def _writer(root: str, k: int, n: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    s = Store(root)
    for j in range(n):
        r = s.append(batch(3, source=f"w{k}-{j}-"))
        q.put((k, j, r.added))


def test_concurrent_processes_lose_nothing(store: Store) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(store.root), k, 5, q)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [q.get(timeout=10) for _ in range(20)]
    assert sum(r[2] for r in results) == 60
    assert store.read().num_rows == 60
    assert verify(store) == []


def _flip_last_byte_of_a_page(path: Path, column: str, out: Path) -> None:
    md = pq.read_metadata(path)
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    cc = md.row_group(0).column(names.index(column))
    data = bytearray(path.read_bytes())
    data[cc.data_page_offset + cc.total_compressed_size - 1] ^= 0xFF
    out.write_bytes(bytes(data))


def test_committed_and_compacted_files_carry_page_checksums(store: Store, tmp_path: Path) -> None:
    """Issue 6: every page has a CRC32, so a reader that verifies them finds a flipped bit."""
    from store.compaction import CompactionPolicy, compact
    first = store.append(batch(2000))
    store.append(batch(2000, start_value=5000.0))
    merged = compact(store, full=True, grace_s=3600, policy=CompactionPolicy(auto=False))
    for path in (first.path, merged.path):
        assert path is not None
        assert pq.ParquetFile(path, page_checksum_verification=True).read().num_rows >= 2000
        bad = tmp_path / f"bad-{path.name}"
        _flip_last_byte_of_a_page(path, "value", bad)
        with pytest.raises(OSError, match="CRC"):
            pq.ParquetFile(bad, page_checksum_verification=True).read()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.text(max_size=6) | st.none(), min_size=1, max_size=KEY_BOUNDS_PY_MAX), encode=st.booleans())
def test_key_bounds_of_a_few_values_are_those_of_many(values: list[str | None], encode: bool) -> None:
    """A few values' least and greatest are found in Python, more by Arrow's min_max: the same
    answer (the bounds a commit's footer is cached with, and the ones Parquet writes)."""
    col = pa.array(values, pa.string())
    if encode:
        col = pc.dictionary_encode(col)
    many = pa.concat_arrays([col] * (KEY_BOUNDS_PY_MAX // len(values) + 1))
    assert len(many) > KEY_BOUNDS_PY_MAX
    assert key_bounds(col) == key_bounds(many)
    dates = pa.array([None if v is None else dt.date(2000, 1, 1) + dt.timedelta(days=len(v)) for v in values], pa.date32())
    assert key_bounds(dates.slice(0, KEY_BOUNDS_PY_MAX)) == key_bounds(pa.concat_arrays([dates.slice(0, KEY_BOUNDS_PY_MAX)] * 2))


_entity = st.text(alphabet=st.sampled_from(["a", "b", "é", "\x00", "\U0001f600"]), max_size=3)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(_entity, _entity) | st.none(), max_size=12), ascending=st.booleans(),
       entities=st.sets(_entity, min_size=1, max_size=4))
def test_the_row_groups_of_a_batch_s_entities_are_those_a_test_of_each_group_admits(
        pairs: list[tuple[str, str] | None], ascending: bool, entities: set[str]) -> None:
    """A single append's dedup finds the row groups of its entities in a file sorted by entity by
    bisection, in any other by testing each group: the groups a test of each one admits, in order."""
    bounds = [None if p is None else tuple(sorted(p)) for p in pairs]
    if ascending:                       # as a file sorted by entity has them: both ends ascend
        known = sorted(b for b in bounds if b is not None)
        bounds = [(lo, max(hi for _, hi in known[:i + 1])) for i, (lo, _) in enumerate(known)]
    groups = [RowGroupBounds(i, *(b if b is not None else (None, None)), None, None, None, None, None, None)
              for i, b in enumerate(bounds)]
    want = [g for g in groups if g[1] is None or any(g[1] <= e <= g[2] for e in entities)]
    cache: dict[str, tuple[list[str], list[str]] | None] = {}
    for _ in range(2):                  # the file's bounds computed, then cached
        assert _groups_admitting(groups, entities, cache, "f") == want
    lows, highs = [g[1] for g in groups], [g[2] for g in groups]
    ascend = None not in lows and lows == sorted(lows) and highs == sorted(highs)
    assert (cache["f"] is not None) == ascend
    if ascending:
        assert ascend


_texts = st.text(alphabet=st.sampled_from("ab\u00e9 "), max_size=3)
_days = st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31))
#: Optional columns of an events batch and what a test row may hold in them (None among it: the
#: column is there, NULL; absent: left out).
_OPTIONAL = {
    "op": st.sampled_from(["assert", "retract"]), "segment": st.sampled_from(["total", "", "cars"]),
    "dims": _texts, "value_high": st.floats(-1e9, 1e9), "kind": st.sampled_from(["actual", "guidance"]),
    "qualifier": st.sampled_from(["exact", "range"]), "authority": st.sampled_from(["primary", "secondary"]),
    "source_ref": _texts, "as_reported": _texts, "note": _texts, "supersedes": _texts, "run_id": _texts,
}
#: What may break a row (None: nothing), each a column and the value put in it.
_BREAKS = [None] * 6 + [("entity", None), ("metric", None), ("value", None), ("value", float("nan")),
                        ("value_high", float("inf")), ("value", -float("inf")), ("kind", "rumour"),
                        ("op", "bogus"), ("qualifier", ""), ("period_end", dt.date(1989, 12, 31)),
                        ("reported_at", None), ("value", -0.0)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), run_id=st.none() | st.just("run-1"), cast=st.booleans(), broken=st.sampled_from(_BREAKS))
def test_one_row_is_prepared_as_any_batch_is(store: Store, data: st.DataObject, run_id: str | None, cast: bool,
                                             broken: tuple[str, object] | None) -> None:
    """A single event is prepared from its Python values (a path of its own, for speed): what it
    gives, or refuses, is what the general path gives for the same row, here that row twice."""
    start = data.draw(_days)
    row: dict[str, object] = {
        "entity": data.draw(_texts), "metric": data.draw(_texts), "unit": "CNY", "source": "s",
        "period_start": start, "period_end": start + dt.timedelta(days=data.draw(st.integers(0, 400))),
        "reported_at": data.draw(_days), "value": data.draw(st.floats(-1e12, 1e12)),
    }
    for name in data.draw(st.lists(st.sampled_from(sorted(_OPTIONAL)), unique=True)):
        row[name] = data.draw(_OPTIONAL[name] | st.none())
    if broken is not None:
        row[broken[0]] = broken[1]
    types = {f.name: f.type for f in EVENT_SCHEMA}
    if cast:
        types["value"] = pa.float32()               # a column to cast: the general path's
    one = pa.table({k: pa.array([v], types[k]) for k, v in row.items()})
    try:
        got = store.prepare(one, run_id=run_id)
    except SchemaMismatch as exc:
        with pytest.raises(SchemaMismatch) as general:
            store.prepare(pa.concat_tables([one, one]), run_id=run_id)
        assert general.value.column == exc.column
        return
    want = store.prepare(pa.concat_tables([one, one]), run_id=run_id).slice(0, 1)
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.equals(want)
    if not cast:                                    # every column as stored: the row took its own path
        assert _prepared_row(one, run_id) is not None
