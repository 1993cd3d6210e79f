"""The views' file a session opens is built once per store and definitions, then copied
(queries/views_cache.py): later sessions answer the same, and see every later commit."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest import RunReport
from queries import MetricStore, define_metric
from queries.views_cache import CACHE_ENV, KEPT, cache_folder, key, prune
from store import Store
from tests.conftest import fact, run_cli

Ingest = Callable[..., RunReport]


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return cache_folder()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("views-*.duckdb")) if folder.exists() else []


def growth(store: Store) -> list[dict[str, object]]:
    with MetricStore(store) as ms:
        return ms.sql("SELECT entity, metric, period, value, yoy_pct FROM growth ORDER BY ALL").to_dicts()


def test_a_second_session_reads_the_kept_views_and_sees_later_commits(
        kept: Path, ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(period="FY2023", value="80"), fact(period="FY2024", value="100")])
    first = growth(store)
    assert [r["yoy_pct"] for r in first] == [None, 0.25]
    (name,) = files(kept)
    assert name == f"views-{key(store)}.duckdb"
    before = (kept / name).stat()
    ingest_rows([fact(period="FY2025", value="120", reported_at="2026-02-01")])   # no new definition: same key
    assert files(kept) == [name]
    later = growth(store)
    assert later[:2] == first and later[2]["period"] == "FY2025" and later[2]["yoy_pct"] == pytest.approx(0.2)
    assert (kept / name).stat().st_ino == before.st_ino      # copied, not built and kept again


def test_a_new_formula_definition_is_a_new_file_and_its_sessions_compute_it(
        kept: Path, ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(metric="gross_profit", value="40"), fact(value="100")])
    growth(store)
    old = key(store)
    assert define_metric(store, "margin", "gross_profit / revenue")
    assert key(store) != old
    with MetricStore(store) as ms:
        assert ms.sql("SELECT value FROM facts WHERE metric = 'margin'")["value"].to_list() == [0.4]
    assert files(kept) == sorted([f"views-{old}.duckdb", f"views-{key(store)}.duckdb"])


def test_each_store_has_its_own_file(kept: Path, tmp_path: Path, ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(value="100")])
    other = Store.create(tmp_path / "other")
    assert key(other) != key(store)
    growth(store)
    with MetricStore(other) as ms:       # the other store's views read the other store's (empty) log
        assert ms.sql("SELECT count(*) AS n FROM facts")["n"].to_list() == [0]
    assert len(files(kept)) == 2


def test_a_damaged_kept_file_is_built_again(kept: Path, ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(period="FY2023", value="80"), fact(period="FY2024", value="100")])
    first = growth(store)
    (name,) = files(kept)
    (kept / name).write_bytes(b"not a database" * 100)
    assert growth(store) == first
    assert (kept / name).read_bytes()[:14] != b"not a database"


def test_without_a_writable_cache_each_session_builds_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ingest_rows: Ingest, store: Store) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))     # under a file: no folder can be made
    ingest_rows([fact(period="FY2023", value="80"), fact(period="FY2024", value="100")])
    assert [r["yoy_pct"] for r in growth(store)] == [None, 0.25]
    assert [r["yoy_pct"] for r in growth(store)] == [None, 0.25]


def test_the_folder_keeps_the_most_recently_used(tmp_path: Path) -> None:
    folder = tmp_path / "views"
    folder.mkdir()
    for i in range(KEPT + 3):
        p = folder / f"views-{i:04d}.duckdb"
        p.write_bytes(b"")
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    stale, fresh = folder / ".views-a.tmp", folder / ".views-b.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(stale, (1_000_000, 1_000_000))
    prune(folder)
    assert files(folder) == [f"views-{i:04d}.duckdb" for i in range(3, KEPT + 3)]
    assert not stale.exists() and fresh.exists()


def test_the_cli_keeps_its_views_in_the_cache_folder(tmp_path: Path, ingest_rows: Ingest, store: Store) -> None:
    ingest_rows([fact(period="FY2023", value="80"), fact(period="FY2024", value="100")])
    cache = tmp_path / "cli-cache"
    for _ in range(2):
        done = run_cli("series", "acme", "revenue", "--format", "csv", store=store.root, env={CACHE_ENV: str(cache)})
        assert done.returncode == 0, done.stderr
        rows = {r["period"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
        assert float(rows["FY2024"]["yoy_pct"]) == 0.25 and rows["FY2023"]["yoy_pct"] == ""
    assert files(cache / "views") == [f"views-{key(store)}.duckdb"]
