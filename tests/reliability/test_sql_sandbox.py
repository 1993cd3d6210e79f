"""The SQL surface is read-only: every way out of the store is tried and must be refused.

Three doors: ``MetricStore.sql()``, ``metricstore sql`` and the catalog file. Each attempt is its
own test; each also proves the store's files did not change and no file appeared outside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore, write_catalog
from queries.errors import BadArgument, SqlError, SqlRefused
from queries.sandbox import connect_catalog
from store import Store
from tests.conftest import CATALOG, fact, run_cli, store_files, write_csv


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store per module: every test proves it unchanged, so sharing it is safe."""
    tmp_path = tmp_path_factory.mktemp("sandbox")
    st = Store.create(tmp_path / "store")
    rows = [fact(period="FY2023", value="80", reported_at="2024-02-01"), fact(value="100"),
            fact(entity="beta", value="7")]
    report = ingest_paths(st, [write_csv(tmp_path / "in.csv", rows)], catalog=Catalog.load(CATALOG))
    assert report.ok and report.added == 3
    return st


@pytest.fixture(scope="module")
def secret_file(filled: Store) -> Path:
    """A file outside the store that no query may read."""
    p = filled.root.parent / "outside" / "secret.csv"
    p.parent.mkdir()
    p.write_text("token\nhunter2\n")
    return p


@pytest.fixture(scope="module")
def ms(filled: Store) -> Iterator[MetricStore]:
    with MetricStore(filled) as m:
        yield m


def attempts(store: Path, outside: Path) -> list[tuple[str, str]]:
    """(name, SQL) of every attempt to write, escape or reconfigure."""
    ev = store / "events"
    return [
        ("copy to a file outside", f"COPY (SELECT * FROM events) TO '{outside.parent}/dump.csv'"),
        ("copy into the event log", f"COPY (SELECT * FROM event_log) TO '{ev}/20990101T000000000000Z-{'0' * 32}-{'0' * 16}.parquet'"),
        ("copy a view out", f"COPY facts TO '{store}/stolen.parquet' (FORMAT parquet)"),
        ("export the database", f"EXPORT DATABASE '{store}/export'"),
        ("create a table", "CREATE TABLE t AS SELECT 1 AS x"),
        ("create a temp table", "CREATE TEMP TABLE t AS SELECT 1 AS x"),
        ("replace a view", "CREATE OR REPLACE VIEW facts AS SELECT 1 AS x"),
        ("insert", "INSERT INTO facts SELECT * FROM facts"),
        ("update", "UPDATE facts SET value = 0"),
        ("delete", "DELETE FROM facts"),
        ("drop a view", "DROP VIEW facts"),
        ("alter a view", "ALTER VIEW facts RENAME TO f2"),
        ("attach a new database in the store", f"ATTACH '{store}/evil.duckdb' AS evil"),
        ("attach a file outside", f"ATTACH '{outside.parent}/evil.duckdb' AS evil"),
        ("read a csv outside the store", f"SELECT * FROM read_csv('{outside}')"),
        ("read /etc/passwd", "SELECT * FROM read_csv('/etc/passwd', sep = ':')"),
        ("read text outside", f"SELECT * FROM read_text('{outside}')"),
        ("escape with ..", f"SELECT * FROM read_text('{store}/../outside/secret.csv')"),
        ("list a folder outside", f"SELECT * FROM glob('{outside.parent}/*')"),
        ("install an extension", "INSTALL httpfs"),
        ("load an extension", "LOAD httpfs"),
        ("force install", "FORCE INSTALL httpfs"),
        ("turn external access back on", "SET enable_external_access = true"),
        ("widen allowed directories", "SET allowed_directories = ['/']"),
        ("unlock the configuration", "SET lock_configuration = false"),
        ("reset a setting", "RESET enable_external_access"),
        ("pragma", "PRAGMA enable_profiling = 'json'"),
        ("checkpoint", "CHECKPOINT"),
        ("a write after a select", "SELECT 1; DROP VIEW facts"),
        ("a transaction", "BEGIN TRANSACTION"),
        ("a persistent secret", "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"),
        ("explain analyze a copy", f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}/x.csv'"),
        ("update extensions", "UPDATE EXTENSIONS"),
        ("a write through query()", f"SELECT * FROM query('COPY (SELECT 1) TO ''{store}/q.csv''')"),
    ]


ATTEMPT_NAMES = [a[0] for a in attempts(Path("/s"), Path("/o/secret.csv"))]


def nothing_escaped(store: Store, before: dict[str, bytes], outside: Path) -> None:
    assert store_files(store.root) == before, "the store's files changed"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.csv"], "a file appeared outside"


@pytest.mark.parametrize("name", ATTEMPT_NAMES)
def test_python_helper_refuses(name: str, filled: Store, ms: MetricStore, secret_file: Path) -> None:
    query = dict(attempts(filled.root, secret_file))[name]
    before = store_files(filled.root)
    with pytest.raises(SqlError) as info:
        ms.sql(query)
    assert "hunter2" not in str(info.value)
    nothing_escaped(filled, before, secret_file)
    # the session still works, unchanged
    assert ms.sql("SELECT count(*) AS n FROM facts")["n"].to_list() == [3]


@pytest.mark.parametrize("name", ["copy into the event log", "read /etc/passwd", "drop a view", "install an extension",
                                  "turn external access back on", "attach a file outside"])
def test_cli_refuses_with_one_line(name: str, filled: Store, secret_file: Path) -> None:
    query = dict(attempts(filled.root, secret_file))[name]
    before = store_files(filled.root)
    r = run_cli("sql", query, store=filled.root)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    nothing_escaped(filled, before, secret_file)


def test_refusals_name_the_reason(ms: MetricStore, filled: Store, secret_file: Path) -> None:
    with pytest.raises(SqlRefused, match="COPY statements are not allowed"):
        ms.sql(f"COPY facts TO '{filled.root}/x.csv'")
    with pytest.raises(SqlRefused, match="disabled by configuration"):
        ms.sql(f"SELECT * FROM read_csv('{secret_file}')")


def test_reads_inside_the_store_still_work(ms: MetricStore) -> None:
    assert ms.sql("SELECT count(*) AS n FROM event_log")["n"].to_list() == [3]
    assert ms.sql("DESCRIBE facts").height > 5
    assert ms.sql("FROM facts SELECT entity WHERE value > ? ORDER BY entity", [50e6])["entity"].to_list() == ["acme", "acme"]
    assert ms.sql("SELECT count(*) AS n FROM facts", as_of="2024-12-31")["n"].to_list() == [1]


# -- the raw DuckDB sessions: DuckDB itself refuses, with no statement check in between ------------

@pytest.fixture
def catalog_con(filled: Store, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path = write_catalog(filled, tmp_path / "cat" / "catalog.duckdb")
    con = connect_catalog(path, filled.root)
    yield con
    con.close()


CATALOG_REFUSED = ["create a table", "replace a view", "drop a view", "alter a view", "insert",
                   "attach a file outside", "read a csv outside the store", "read /etc/passwd", "read text outside",
                   "escape with ..", "list a folder outside", "install an extension", "load an extension",
                   "turn external access back on", "widen allowed directories", "unlock the configuration",
                   "reset a setting", "copy to a file outside", "a persistent secret"]


@pytest.mark.parametrize("name", CATALOG_REFUSED)
def test_catalog_session_refuses(name: str, catalog_con: duckdb.DuckDBPyConnection, filled: Store,
                                 secret_file: Path) -> None:
    query = dict(attempts(filled.root, secret_file))[name]
    before = store_files(filled.root)
    with pytest.raises(duckdb.Error):
        catalog_con.execute(query).fetchall()
    nothing_escaped(filled, before, secret_file)
    assert catalog_con.execute("SELECT count(*) FROM facts").fetchall() == [(3,)]


def test_catalog_init_script_locks_a_plain_session(filled: Store, tmp_path: Path, secret_file: Path) -> None:
    """What `duckdb -readonly -init catalog.duckdb.init.sql catalog.duckdb` does, statement by statement."""
    path = write_catalog(filled, tmp_path / "cat" / "catalog.duckdb")
    init = path.with_name(path.name + ".init.sql")
    con = duckdb.connect(str(path), read_only=True)
    for stmt in con.extract_statements(init.read_text()):
        con.execute(stmt).fetchall()
    assert con.execute("SELECT count(*) FROM facts").fetchall() == [(3,)]
    for query in (f"SELECT * FROM read_csv('{secret_file}')", "SET enable_external_access = true", "LOAD httpfs",
                  "DROP VIEW facts"):
        with pytest.raises(duckdb.Error):
            con.execute(query).fetchall()
    con.close()


def test_helper_session_settings_are_locked_in_duckdb(ms: MetricStore) -> None:
    """Even a statement that got past the type check could not reopen the session."""
    con = ms._con  # the raw connection: DuckDB's own controls, without our statement check
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('enable_external_access', 'lock_configuration', 'autoinstall_known_extensions', "
                                "'autoload_known_extensions', 'python_enable_replacements')").fetchall())
    assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                        "autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
                        "python_enable_replacements": "false"}
    for query in ("SET enable_external_access = true", "CREATE TABLE t AS SELECT 1", "SELECT * FROM read_csv('/etc/passwd')"):
        with pytest.raises(duckdb.Error):
            con.execute(query).fetchall()


# -- injection through every argument of the Python helper ----------------------------------------

PAYLOADS = ["acme' OR '1'='1", "x'; DROP VIEW facts; --", "' UNION SELECT * FROM read_csv('/etc/passwd') --",
            'acme" OR "1"="1 --\\']


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_through_every_argument(payload: str, ms: MetricStore, filled: Store) -> None:
    before = store_files(filled.root)
    # values bound as parameters: a payload is just a string that matches nothing
    assert ms.series(payload, "revenue").height == 0
    assert ms.series("acme", payload).height == 0
    assert ms.series("acme", "revenue", segment=payload).height == 0
    assert ms.series("acme", "revenue", dims=payload).height == 0
    assert ms.facts(entity=payload).height == 0
    assert ms.facts(metric=payload, entity="acme").height == 0
    assert ms.growth(entity=payload).height == 0
    assert ms.share(entity=payload).height == 0
    assert ms.sql("SELECT * FROM facts WHERE entity = ?", [payload]).height == 0
    assert ms.sql("SELECT * FROM facts WHERE entity = $e", {"e": payload}).height == 0
    # names and dates are validated, never pasted into SQL
    for call in (lambda: ms.series("acme", "revenue", freq=payload),
                 lambda: ms.facts(**{payload: "acme"}),
                 lambda: ms.growth(**{payload: "x"}),
                 lambda: ms.share(**{payload: "x"}),
                 lambda: ms.facts(as_of=payload),
                 lambda: ms.growth(as_recorded=payload),
                 lambda: ms.series("acme", "revenue", as_of=payload),
                 lambda: ms.series("acme", "revenue", as_recorded=payload),
                 lambda: ms.sql("SELECT 1 AS x", as_of=payload),
                 lambda: ms.sql("SELECT 1 AS x", as_recorded=payload)):
        with pytest.raises(BadArgument):
            call()
    assert store_files(filled.root) == before
    assert ms.sql("SELECT count(*) AS n FROM facts")["n"].to_list() == [3]
    assert ms.facts(entity="acme").height == 2  # the honest query still answers


def test_a_session_spills_past_its_memory_limit_instead_of_failing(filled: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``METRICSTORE_MEMORY_LIMIT`` caps a session; a query that needs more spills to disk, in a
    private folder outside the store that is gone when the session closes."""
    monkeypatch.setenv("METRICSTORE_MEMORY_LIMIT", "128MB")
    before = store_files(filled.root)
    big = ("SELECT count(*) AS n, min(s) AS first FROM (SELECT s, count(*) AS c FROM "
           "(SELECT i::VARCHAR || repeat('x', 60) AS s FROM range(3000000) t(i)) GROUP BY s)")
    plain = duckdb.connect()
    plain.execute("SET memory_limit = '128MB'")
    plain.execute("SET temp_directory = ''")              # the same limit, nowhere to spill: too big
    with pytest.raises(duckdb.OutOfMemoryException):
        plain.sql(big).fetchall()
    with MetricStore(filled) as ms:
        settings = ms.sql("SELECT current_setting('memory_limit') AS m, current_setting('temp_directory') AS t")
        assert settings["m"][0] == plain.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = Path(settings["t"][0])
        assert not spill.is_relative_to(filled.root)
        assert ms.sql(big).rows() == [(3_000_000, "0" + "x" * 60)]
    assert not spill.exists() and store_files(filled.root) == before


def test_a_memory_limit_duckdb_cannot_read_is_one_clear_line(filled: Store) -> None:
    r = run_cli("sql", "SELECT 1", store=filled.root, env={"METRICSTORE_MEMORY_LIMIT": "lots"})
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: METRICSTORE_MEMORY_LIMIT='lots' is not a memory size (say 2GB, 512MB or 50%)")
