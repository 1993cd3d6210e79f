"""The catalog file opens in the DuckDB 1.x command line teams have (the README's
``duckdb -readonly -init ...`` line), every view parses there, and the init script locks it."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import VIEWS, MetricStore, write_catalog
from queries.catalog import open_command
from store import Store
from tests.conftest import CATALOG, ROOT


def duckdb1_cli() -> Path:
    """The DuckDB 1.x CLI binary of the ``duckdb-cli`` package (the test extra), else skip.

    The binary itself, not the package's ``duckdb`` launcher: the launcher adds a ``-cmd`` that sets
    ``extension_directories`` after the init script, which the locked configuration refuses."""
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is None or spec.origin is None:
        pytest.skip("duckdb-cli (the DuckDB 1.x command line) is not installed: pip install '.[test]'")
    binary = Path(spec.origin).parent / "duckdb"
    if not binary.is_file():
        pytest.skip(f"duckdb-cli has no bundled binary at {binary}")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("v1."), version
    return binary


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    # (a folder the printed command must quote for the shell, and the init script for SQL)
    store = Store.create(tmp_path_factory.mktemp("duckdb1") / "o'brien's data" / "store")
    ingest_paths(store, sorted((ROOT / "data" / "seed").glob("*.csv")), catalog=Catalog.load(CATALOG))
    return store, write_catalog(store)


def run_readme_line(binary: Path, catalog: Path, sql: str) -> subprocess.CompletedProcess[str]:
    """The line `metricstore catalog` prints, with the 1.x binary as `duckdb`, reading ``sql`` from stdin."""
    args = shlex.split(open_command(catalog))
    assert args[0] == "duckdb"
    return subprocess.run([str(binary), "-csv", "-noheader", *args[1:]], input=sql, capture_output=True,
                          text=True, timeout=120)


def test_every_view_reads_in_the_duckdb_1x_cli(written: tuple[Store, Path]) -> None:
    binary = duckdb1_cli()
    store, catalog = written
    sql = "".join(f"SELECT '{v}', count(*) FROM {v};\n" for v in VIEWS)
    out = run_readme_line(binary, catalog, sql)
    assert out.returncode == 0 and "Error" not in out.stderr, out.stderr
    counts = dict(line.split(",") for line in out.stdout.split())
    with MetricStore(store) as ms:
        expected = {v: str(ms.sql(f"SELECT count(*) FROM {v}").rows()[0][0]) for v in VIEWS}
    assert counts == expected and int(counts["growth"]) > 0


def test_as_of_and_the_lock_in_the_duckdb_1x_cli(written: tuple[Store, Path]) -> None:
    binary = duckdb1_cli()
    store, catalog = written
    day = "2025-03-18"
    out = run_readme_line(binary, catalog, f"SET VARIABLE as_of = DATE '{day}';\nSELECT count(*) FROM facts;\n")
    assert out.returncode == 0, out.stderr
    with MetricStore(store) as ms:
        then, now = (ms.sql("SELECT count(*) FROM facts", as_of=day).rows()[0][0],
                     ms.sql("SELECT count(*) FROM facts").rows()[0][0])
    assert 0 < int(out.stdout.strip()) == then < now
    for refused in ("SELECT * FROM read_csv('/etc/passwd');", "SET enable_external_access = true;",
                    "DROP VIEW facts;", "CREATE TABLE t AS SELECT 1;"):
        bad = run_readme_line(binary, catalog, refused + "\nSELECT 'still', count(*) > 0 FROM growth;\n")
        assert "Error" in bad.stderr, refused
    assert "still,true" in run_readme_line(binary, catalog, "SELECT 'still', count(*) > 0 FROM growth;\n").stdout
