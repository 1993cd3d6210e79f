"""One contract, every backend: the same tests run on a local folder (``tests/store``, part of the
fast suite) and on S3 (``tests/scale``, against a real S3-compatible server: moto's server mode on
127.0.0.1, real HTTP, real conditional PUTs, no mock of our code).

A backend joins by subclassing :class:`StoreContract` with its ``create_store``, ``put_raw`` and
``missing_root`` hooks. Not collected by itself (no ``test_`` prefix): each suite imports it.
"""

from __future__ import annotations

import datetime as dt
import threading

import duckdb
import pyarrow as pa
import pytest

from queries.views import install
from store import Store, StoreNotFound
from store.compaction import CompactionPolicy, compact
from store.errors import SchemaMismatch
from store.verify import verify


def batch(n: int, *, start: float = 0.0, reported: dt.date = dt.date(2025, 2, 1), source: str = "s") -> pa.Table:
    return pa.table({
        "entity": ["acme"] * n,
        "metric": ["revenue"] * n,
        "period_start": [dt.date(2000 + i, 1, 1) for i in range(n)],
        "period_end": [dt.date(2000 + i, 12, 31) for i in range(n)],
        "value": [start + 100.0 * (i + 1) for i in range(n)],
        "unit": ["USD"] * n,
        "reported_at": [reported] * n,
        "source": [source] * n,
    })


class StoreContract:
    """What every backend promises. Subclasses give the hooks."""

    def create_store(self) -> Store:
        raise NotImplementedError

    def put_raw(self, store: Store, name: str, data: bytes) -> None:
        """Write bytes under ``name`` (relative to the root) behind the store's back."""
        raise NotImplementedError

    def missing_root(self) -> str:
        raise NotImplementedError

    # -- the contract ----------------------------------------------------------------------
    def test_append_then_read_returns_the_events(self) -> None:
        s = self.create_store()
        r = s.append(batch(3))
        assert (r.added, r.already_present) == (3, 0)
        got = s.read()
        assert sorted(got.column("value").to_pylist()) == [100.0, 200.0, 300.0]
        assert set(got.column("commit_id").to_pylist()) == {r.commit_id}

    def test_reappend_adds_nothing_and_writes_no_file(self) -> None:
        s = self.create_store()
        s.append(batch(3))
        files = s.files()
        again = s.append(batch(4))
        assert (again.added, again.already_present) == (1, 3)
        assert len(s.files()) == len(files) + 1
        assert s.append(batch(4)).added == 0
        assert s.read().num_rows == 4

    def test_a_commit_is_one_file_named_by_its_checksum_and_verify_agrees(self) -> None:
        s = self.create_store()
        r = s.append(batch(2))
        assert r.path is not None and r.path.name in {p.name for p in s.files()}
        assert str(r.path).startswith(str(s.root))
        assert verify(s) == []

    def test_verify_names_a_damaged_file(self) -> None:
        s = self.create_store()
        r = s.append(batch(2))
        assert r.path is not None
        bad = r.path.name.replace(r.path.name[:8], "20991231", 1)
        self.put_raw(s, f"events/{bad}", b"PAR1 not really parquet")
        findings = verify(s)
        assert [f.path.rsplit("/", 1)[-1] for f in findings] == [bad]
        assert "checksum mismatch" in findings[0].problem

    def test_views_growth_and_as_of_read_the_same_files(self) -> None:
        s = self.create_store()
        s.append(batch(2))                                            # FY2000 100, FY2001 200
        s.append(batch(2, start=10.0, reported=dt.date(2025, 6, 1), source="restated"))
        con = duckdb.connect()
        try:
            install(con, s)
            now = con.sql("SELECT period, value, yoy_change FROM growth ORDER BY period").fetchall()
            assert now == [("FY2000", 110.0, None), ("FY2001", 210.0, 100.0)]
            con.execute("SET VARIABLE as_of = DATE '2025-03-01'")
            then = con.sql("SELECT period, value FROM facts ORDER BY period").fetchall()
            assert then == [("FY2000", 100.0), ("FY2001", 200.0)]
            assert con.sql("SELECT count(*) FROM events").fetchall() == [(2,)]
        finally:
            con.close()

    def test_concurrent_writers_lose_nothing_and_readers_see_each_event_once(self) -> None:
        s = self.create_store()
        others = [Store(s.root) for _ in range(3)]
        errors: list[BaseException] = []

        def write(st: Store, k: int) -> None:
            try:
                st.append(batch(3))                       # the same events from every writer
                st.append(batch(1, start=float(k), source=f"w{k}"))  # and one of its own
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(st, k)) for k, st in enumerate(others)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        got = s.read()
        assert got.num_rows == 3 + len(others)
        assert len(set(got.column("event_id").to_pylist())) == got.num_rows

    def test_opening_a_root_without_a_store_fails_clearly(self) -> None:
        with pytest.raises(StoreNotFound):
            Store(self.missing_root())

    def test_create_is_idempotent(self) -> None:
        s = self.create_store()
        s.append(batch(1))
        again = Store.create(s.root)
        assert again.read().num_rows == 1
        assert len(again.files("entities")) == 1

    # -- the backend's own operations, as the store uses them --------------------------------
    def test_a_manifest_written_reads_back_whole_and_is_deleted(self) -> None:
        s = self.create_store()
        s.backend.write_new("_compaction/x.json", b'{"a": 1}')
        assert s.backend.read_text("_compaction/x.json") == '{"a": 1}'
        assert s.backend.list_names("_compaction") == ["x.json"]
        s.backend.delete("_compaction/x.json")
        s.backend.delete("_compaction/x.json")         # deleting what is gone is no error
        assert s.backend.list_names("_compaction") == []

    def test_entries_and_sizes_are_those_of_the_published_files(self) -> None:
        s = self.create_store()
        r = s.append(batch(2))
        assert r.path is not None
        names = sorted(p.name for p in s.backend.entries("events"))
        assert names == s.names() and r.path.name in names
        assert s.backend.size("events", r.path.name) == len(r.path.read_bytes())
        assert s.backend.size("events", "nothing.parquet") is None
        assert s.backend.list_names("nothing-here") == [] and s.backend.entries("nothing-here") == []
        s.backend.delete(f"events/{r.path.name}")      # listed (its size known), then gone
        assert r.path.name not in s.names()               # listed again: its size is forgotten
        assert s.backend.size("events", r.path.name) is None

    # -- live files: one listing, one rule ---------------------------------------------------
    def test_live_files_leave_out_merged_sources_and_read_each_event_once(self) -> None:
        s = self.create_store()
        for k in range(3):
            s.append(batch(1, start=float(k), source=f"s{k}"))
        before = s.live_files()
        result = compact(s, policy=CompactionPolicy(auto=False, grace_s=3600.0))
        assert result.merged >= 3 and result.path is not None      # (the empty first file too)
        live = s.live_files()
        assert {p.name for p in live} == ({p.name for p in before} - set(result.sources)) | {result.path.name}
        assert set(result.sources) <= set(s.names())       # still there: their grace period runs
        con = duckdb.connect()
        try:
            s.backend.attach(con)
            got = con.sql("SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?, union_by_name=true)",
                          params=[[str(p) for p in live]]).fetchall()
        finally:
            con.close()
        assert got == [(3, 3)]

    # -- the event rules ---------------------------------------------------------------------
    def test_a_range_without_value_high_is_refused_and_nothing_is_written(self) -> None:
        s = self.create_store()
        files = s.names()
        b = batch(1).append_column("qualifier", pa.array(["range"]))
        with pytest.raises(SchemaMismatch, match="a range needs value_high"):
            s.append(b)
        assert s.names() == files
        ok = b.append_column("value_high", pa.array([150.0]))
        assert s.append(ok).added == 1
