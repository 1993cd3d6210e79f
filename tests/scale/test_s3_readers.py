"""The read-only SQL surface on an ``s3://`` store: the Python helper, ``metricstore sql`` and ``series``.

Against a real S3-compatible server (moto) on 127.0.0.1 and real DuckDB: the sandbox reads only
under the store's prefix (no other prefix or bucket, no local file, no URL), its settings are
locked, only one SELECT runs, and a damaged object fails the query naming it. ``verify --repair``
stays local-only: it refuses an s3:// root in one line and touches nothing (``compact`` runs on S3:
test_s3_compaction.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from queries.errors import SqlRefused
from store import CorruptFile, Store
from tests.conftest import CATALOG, ROOT, run_cli, write_csv
from tests.scale.conftest import s3_keys, s3_put, s3_root, synthetic_rows
from tests.scale.test_store_contract import batch

pytestmark = pytest.mark.usefixtures("s3_server")


@pytest.fixture(scope="module")
def s3_synthetic(s3_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The scale suite's synthetic store, ingested into S3 (two commits: a restatement comes later)."""
    folder = tmp_path_factory.mktemp("s3-synthetic")
    store = Store.create(s3_root())
    catalog = Catalog.load(CATALOG)
    for i, rows in enumerate(synthetic_rows()):
        report = ingest_paths(store, [write_csv(folder / f"batch{i}.csv", rows)], catalog=catalog)
        assert report.ok, report.summary()
    return store


@pytest.fixture
def s3_ms(s3_synthetic: Store) -> Iterator[MetricStore]:
    ms = MetricStore(str(s3_synthetic.root))
    yield ms
    ms.close()


def _no_ids(df: pl.DataFrame) -> pl.DataFrame:
    """A result without the columns that differ between two stores of the same facts (commit times)."""
    return df.drop([c for c in ("recorded_at", "commit_id", "run_id") if c in df.columns])


def test_the_helper_on_s3_answers_as_on_a_local_folder(s3_ms: MetricStore, synthetic_store: Store) -> None:
    with MetricStore(synthetic_store) as local:
        for view in ("facts", "growth", "share"):
            ours = s3_ms.sql(f"SELECT * FROM {view} ORDER BY ALL")
            assert ours.height > 0
            assert _no_ids(ours).equals(_no_ids(local.sql(f"SELECT * FROM {view} ORDER BY ALL"))), view
        then = s3_ms.series("acme", "revenue", freq="FY", as_of="2025-03-01")
        assert _no_ids(then).equals(_no_ids(local.series("acme", "revenue", freq="FY", as_of="2025-03-01")))
    fy = dict(zip(then["period"].to_list(), then["value"].to_list(), strict=True))
    assert fy["FY2024"] == 1000e6                     # USD m; before the restatement was published
    now = s3_ms.series("acme", "revenue", freq="FY")
    assert dict(zip(now["period"].to_list(), now["value"].to_list(), strict=True))["FY2024"] == 1010e6
    recorded = s3_ms.sql("SELECT count(*) AS n FROM events", as_recorded=dt.datetime(2000, 1, 1))
    assert recorded["n"].to_list() == [0]


def test_a_commit_made_after_opening_shows_in_the_next_query() -> None:
    store = Store.create(s3_root())
    store.append(batch(2))
    with MetricStore(str(store.root)) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [2]
        Store(str(store.root)).append(batch(3))
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [3]


@pytest.mark.parametrize("query", [
    "SELECT * FROM read_parquet('{other}/events/*.parquet')",           # another store in the bucket
    "SELECT * FROM read_parquet('{root}-sibling/events/*.parquet')",     # a prefix that merely starts alike
    "SELECT * FROM glob('s3://metricstore-test/**')",                    # the whole bucket
    "SELECT * FROM read_parquet('{root}/../{other_name}/events/*.parquet')",
    "SELECT * FROM read_csv('/etc/passwd')",                             # a local file
    "SELECT * FROM read_text('{endpoint}/metricstore-test/')",           # a URL, even the S3 endpoint's
    "SELECT * FROM read_text('{root}/metricstore.json') UNION ALL SELECT * FROM read_text('/etc/hostname')",
])
def test_the_s3_sandbox_reads_nothing_outside_the_store_prefix(s3_ms: MetricStore, s3_server: dict[str, str],
                                                               query: str) -> None:
    other = Store.create(s3_root())
    other.append(batch(1))
    root = str(s3_ms.store.root)
    text = query.format(root=root, other=other.root, other_name=str(other.root).rsplit("/", 1)[1],
                        endpoint=s3_server["AWS_ENDPOINT_URL"])
    with pytest.raises(SqlRefused, match="disabled by configuration|Permission"):
        s3_ms.sql(text)


@pytest.mark.parametrize("query", [
    "SET enable_external_access = true",
    "SET allowed_directories = ['s3://metricstore-test/']",
    "COPY (SELECT 1) TO '{root}/events/x.csv'",
    "ATTACH '{root}/x.duckdb' AS x",
    "INSTALL httpfs",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; SELECT 2",
])
def test_the_s3_sandbox_runs_one_select_and_its_settings_are_locked(s3_ms: MetricStore, query: str) -> None:
    before = s3_keys(str(s3_ms.store.root))
    with pytest.raises(SqlRefused):
        s3_ms.sql(query.format(root=s3_ms.store.root))
    assert s3_keys(str(s3_ms.store.root)) == before
    # the lock also holds on the raw connection: no SET gives the prefix's limits back
    with pytest.raises(Exception, match="locked|lock_configuration"):
        s3_ms._con.execute("SET enable_external_access = true")


def test_the_s3_sandbox_readable_files_are_what_the_views_read(s3_ms: MetricStore) -> None:
    got = s3_ms.sql(f"SELECT count(*) AS n FROM read_parquet('{s3_ms.store.root}/events/*.parquet')")
    assert got["n"].to_list()[0] >= s3_ms.sql("SELECT count(*) AS n FROM events")["n"].to_list()[0] > 0


def test_a_damaged_or_foreign_object_fails_the_query_naming_it() -> None:
    store = Store.create(s3_root())
    r = store.append(batch(2))
    assert r.path is not None
    with MetricStore(str(store.root)) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [2]
    key = str(store.root).split("metricstore-test/", 1)[1]
    bad = r.path.name.replace(r.path.name[:8], "20991231", 1)     # a commit name whose bytes do not match
    s3_put(f"{key}/events/{bad}", b"PAR1 not really parquet")
    with pytest.raises(CorruptFile, match="checksum mismatch") as info:
        MetricStore(str(store.root))
    assert bad in str(info.value)
    store2 = Store.create(s3_root())
    store2.append(batch(1))
    key2 = str(store2.root).split("metricstore-test/", 1)[1]
    s3_put(f"{key2}/events/copy-of-something.parquet", r.path.read_bytes())
    with pytest.raises(CorruptFile, match="not a commit file"):
        MetricStore(str(store2.root))


def test_cli_sql_and_series_on_an_s3_store(s3_synthetic: Store) -> None:
    root = str(s3_synthetic.root)
    q = run_cli("sql", "SELECT period, value FROM facts WHERE entity = 'acme' AND metric = 'revenue' "
                "AND segment = 'total' AND period = 'FY2024'", "--store", root, "--format", "csv", "--as-of", "2025-03-01")
    assert q.returncode == 0, q.stderr
    assert q.stdout.splitlines()[1:] == ["FY2024,1000000000.0"]
    s = run_cli("series", "acme", "revenue", "--freq", "FY", "--store", root, "--format", "csv")
    assert s.returncode == 0, s.stderr
    rows = {line.split(",")[0]: line for line in s.stdout.splitlines()[1:]}
    assert set(rows) >= {"FY2022", "FY2023", "FY2024"} and ",1010000000.0," in rows["FY2024"]
    refused = run_cli("sql", "SELECT * FROM read_csv('/etc/passwd')", "--store", root)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "disabled by configuration" in refused.stderr


def test_cli_verify_on_s3_and_repair_is_refused_in_one_line(s3_synthetic: Store) -> None:
    root = str(s3_synthetic.root)
    ok = run_cli("verify", "--store", root)
    assert ok.returncode == 0, ok.stderr
    assert "0 problem(s)" in ok.stdout and root in ok.stdout
    before = s3_keys(root)
    rep = run_cli("verify", "--repair", "--store", root)
    assert rep.returncode == 2 and "Traceback" not in rep.stderr
    assert len(rep.stderr.strip().splitlines()) == 1 and "local stores only" in rep.stderr
    assert s3_keys(root) == before and not (ROOT / "s3:").exists()


def test_a_catalog_of_an_s3_store_is_written_locally_and_opens_locked_down(tmp_path: Path) -> None:
    from queries.sandbox import connect_catalog

    store = Store.create(s3_root())
    store.append(batch(2))
    root = str(store.root)
    nowhere = run_cli("catalog", "--store", root)
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1 and "give a local PATH" in nowhere.stderr
    from queries import write_catalog
    from queries.errors import BadArgument

    with pytest.raises(BadArgument, match="required for an object store"):   # the Python API too
        write_catalog(store)
    target = tmp_path / "catalog.duckdb"
    made = run_cli("catalog", str(target), "--store", root)
    assert made.returncode == 0, made.stderr
    assert f"SET allowed_directories = ['{root}/']" in (tmp_path / "catalog.duckdb.init.sql").read_text()
    con = connect_catalog(target, root)
    try:
        assert con.sql("SELECT count(*) FROM events").fetchall() == [(2,)]
        with pytest.raises(Exception, match="disabled by configuration"):
            con.sql("SELECT * FROM read_parquet('s3://metricstore-test/stores/*/events/*.parquet')").fetchall()
    finally:
        con.close()
