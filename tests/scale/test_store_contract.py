"""One contract, every backend: the same tests run on a local folder and on S3.

The S3 backend runs against a real S3-compatible server (moto's server mode) started by the test
on 127.0.0.1: real HTTP, real conditional PUTs, no mock of our code. A backend joins by
subclassing :class:`StoreContract` with its ``create_store`` and ``put_raw`` hooks.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from queries.views import install
from store import Store, StoreNotFound
from store.backends import staging_path
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


class TestLocalStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def create_store(self) -> Store:
        return Store.create(self.folder / f"store-{uuid.uuid4().hex[:8]}")

    def put_raw(self, store: Store, name: str, data: bytes) -> None:
        (Path(store.root) / name).write_bytes(data)

    def missing_root(self) -> str:
        return str(self.folder / "nothing-here")


class TestS3Store(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, s3_server: dict[str, str]) -> None:
        self.env = s3_server

    def create_store(self) -> Store:
        return Store.create(f"s3://metricstore-test/stores/{uuid.uuid4().hex[:12]}")

    def put_raw(self, store: Store, name: str, data: bytes) -> None:
        import boto3

        key = str(store.root).split("metricstore-test/", 1)[1] + "/" + name
        boto3.client("s3").put_object(Bucket="metricstore-test", Key=key, Body=data)

    def missing_root(self) -> str:
        return "s3://metricstore-test/stores/nothing-here"

    def test_a_commit_never_overwrites_an_object(self) -> None:
        s = self.create_store()
        r = s.append(batch(1))
        assert r.path is not None
        files: Any = s.root.files  # type: ignore[union-attr]
        with pytest.raises(FileExistsError):
            files.put_new(f"events/{r.path.name}", b"another writer's bytes")
        assert verify(s) == []

    def test_stores_created_at_once_on_one_machine_all_get_their_first_commits(self) -> None:
        """Every store's first (empty) commit has the same id, and is staged in the machine's one
        staging folder: stores created at once must not take each other's staged files."""
        assert staging_path("0" * 32) != staging_path("0" * 32)
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def create() -> None:
            try:
                start.wait()
                for _ in range(3):
                    assert verify(self.create_store()) == []
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_nothing_is_staged_in_the_bucket(self) -> None:
        s = self.create_store()
        s.append(batch(2))
        files: Any = s.root.files  # type: ignore[union-attr]
        assert files.list("_tmp") == [] and files.list("_lock") == []
        assert files.exists("metricstore.json")
