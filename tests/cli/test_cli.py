"""The command line as a user runs it: sql/series/catalog/verify, the demo."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, fact, run_cli, write_csv


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    rows = [fact(period="FY2023", value="80", reported_at="2024-02-01"), fact(value="100"),
            fact(period="9M2024", value="70", reported_at="2024-11-01")]
    r = run_cli("ingest", str(write_csv(tmp_path / "in.csv", rows)), store=root)
    assert r.returncode == 0, r.stderr
    assert "3 added, 0 already present, 0 rejected" in r.stdout
    return root


def test_ingest_twice_adds_nothing(filled: Path, tmp_path: Path) -> None:
    r = run_cli("ingest", str(tmp_path / "in.csv"), store=filled)
    assert r.returncode == 0 and "0 added, 3 already present" in r.stdout


def test_sql_json_and_as_of(filled: Path) -> None:
    r = run_cli("sql", "SELECT period, value FROM facts ORDER BY period", "--format", "json", store=filled)
    assert r.returncode == 0, r.stderr
    assert [d["period"] for d in json.loads(r.stdout)] == ["9M2024", "FY2023", "FY2024"]
    r = run_cli("sql", "SELECT count(*) AS n FROM facts", "--as-of", "2024-12-31", "--format", "csv", store=filled)
    assert r.stdout.splitlines() == ["n", "2"]


def test_bad_sql_is_one_line_not_a_traceback(filled: Path) -> None:
    r = run_cli("sql", "SELEKT 1", store=filled)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error:")


def test_series_shows_growth_and_derived_quarter(filled: Path) -> None:
    r = run_cli("series", "acme", "revenue", "--format", "csv", store=filled)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    cols = header.split(",")
    by_period = {row.split(",")[0]: dict(zip(cols, row.split(","), strict=False)) for row in rows}
    assert by_period["FY2024"]["yoy_pct"] == "0.25"
    assert by_period["2024Q4"]["derived"] == "true"


def test_an_empty_series_says_which_name_the_store_lacks(filled: Path) -> None:
    for args, note in ((("acmr", "revenue"), "note: entity='acmr': is not in the store (did you mean acme?)"),
                       (("acme", "revenu"), "note: metric='revenu': has no acme figures (did you mean revenue?)"),
                       (("acme", "revenue", "--segment", "cloud"),
                        "note: segment='cloud': has no acme revenue figures (segments: total)")):
        r = run_cli("series", *args, "--format", "csv", store=filled)
        assert r.returncode == 0 and r.stdout.count("\n") == 1, r.stderr      # the header: no rows
        assert r.stderr.strip() == note
    r = run_cli("series", "ACME", "Revenue", "--freq", "FY", "--format", "csv", store=filled)
    assert r.returncode == 0 and r.stderr == "" and r.stdout.count("\n") == 3
    r = run_cli("series", "acme", "revenue", "--as-of", "2020-01-01", "--format", "csv", store=filled)
    assert r.returncode == 0 and r.stderr == ""     # a date before any figure: nothing to name
    r = run_cli("restatements", "acmr", "--format", "csv", store=filled)
    assert r.returncode == 0 and r.stderr.strip() == "note: entity='acmr': is not in the store (did you mean acme?)"
    r = run_cli("restatements", "acme", "--format", "csv", store=filled)
    assert r.returncode == 0 and r.stderr == ""     # no restatement is an answer



def test_a_refused_fact_or_comparison_names_the_missing_name(filled: Path) -> None:
    no_acmr = "entity='acmr': is not in the store (did you mean acme?)"
    for args, end in ((("history", "acme", "revenu", "FY2024"), "metric='revenu': has no acme figures (did you mean revenue?)"),
                      (("explain", "acmr", "revenue", "FY2024"), no_acmr),
                      (("compare", "revenue", "acme", "acmr"), no_acmr)):
        r = run_cli(*args, store=filled)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr == f"error: {end}\n", r.stderr     # the name at fault, not the period
    r = run_cli("history", "acme", "revenue", "FY2031", store=filled)   # the names are there: no note
    assert r.returncode == 2 and "known periods include FY2024" in r.stderr and ";" not in r.stderr
    assert "did you mean" not in r.stderr


def test_catalog_file_serves_the_views_to_duckdb(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "cat.duckdb"
    r = run_cli("catalog", str(target), store=filled)
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(target), read_only=True)
    assert con.sql("SELECT yoy_pct FROM growth WHERE period = 'FY2024'").fetchall() == [(0.25,)]
    assert con.sql("SELECT count(*) FROM facts_as_of(DATE '2024-12-31')").fetchall() == [(2,)]
    # a commit after the catalog was written shows without rebuilding it
    more = write_csv(tmp_path / "more.csv", [fact(period="FY2022", value="60", reported_at="2023-02-01")])
    assert run_cli("ingest", str(more), store=filled).returncode == 0
    assert con.sql("SELECT count(*) FROM facts").fetchall() == [(4,)]


def test_writing_the_catalog_clears_what_killed_writers_left(filled: Path) -> None:
    import os
    import time
    dead, live = filled / ".catalog.duckdb.0123.tmp", filled / ".catalog.duckdb.init.sql.4567.tmp"
    for p in (dead, live):
        p.write_bytes(b"half a file")
    hours_ago = time.time() - 2 * 3600
    os.utime(dead, (hours_ago, hours_ago))
    assert run_cli("catalog", store=filled).returncode == 0
    assert not dead.exists() and live.exists()      # a writer at work now keeps its file
    assert (filled / "catalog.duckdb").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux): a folder no one can write in")
def test_a_catalog_path_that_cannot_be_written_is_one_line(filled: Path) -> None:
    r = run_cli("catalog", "/proc/cat.duckdb", store=filled)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: path='/proc/cat.duckdb': cannot be written") and r.stderr.count("\n") == 1


def test_verify_passes_on_a_sound_store_and_names_a_damaged_file(filled: Path) -> None:
    r = run_cli("verify", store=filled)
    assert r.returncode == 0 and "0 problem(s)" in r.stdout
    victim = sorted((filled / "events").glob("*.parquet"))[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = run_cli("verify", store=filled)
    assert r.returncode == 1 and victim.name in r.stderr and "checksum" in r.stderr


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    r = run_cli("sql", "SELECT 1", store=tmp_path / "nowhere")
    assert r.returncode == 2 and "no metricstore here" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["q[1] store", "all*", "what?"])
def test_a_store_path_duckdb_would_read_as_a_pattern_is_refused_before_anything_is_written(
        tmp_path: Path, name: str) -> None:
    root = tmp_path / name / "store"
    r = run_cli("ingest", str(ROOT / "data" / "seed" / "xiaomi-2024-article.csv"), store=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and str(root) in r.stderr and "may not hold" in r.stderr
    assert not root.exists()


def test_demo_prints_the_articles_growth_from_the_store(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    r = run_cli("demo", "--chart", str(chart), "--seed", str(ROOT / "data" / "seed"), store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for figure in ("+35.0 %", "+41.3 %", "+48.8 %", "+15.7 %", "52.4 %", "28.4 %", "66,000", "10,000"):
        assert figure in out, figure
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli("demo", "--chart", str(chart), "--seed", str(ROOT / "data" / "seed"), store=tmp_path / "s")
    assert "0 events added" in again.stdout


@pytest.mark.parametrize(("env", "args", "trino", "spark"), [
    ({"METRICSTORE_STORE": "s3://bucket/prefix"}, (), "s3://bucket/prefix", "s3a://bucket/prefix"),
    ({}, ("--store", "s3a://bucket/prefix/"), "s3://bucket/prefix", "s3a://bucket/prefix"),
    ({}, ("--store", "somewhere"), (ROOT / "somewhere").as_uri(), (ROOT / "somewhere").as_uri()),
])
def test_ddl_locates_the_store_from_the_environment_or_store(env: dict[str, str], args: tuple[str, ...],
                                                             trino: str, spark: str) -> None:
    """The store from METRICSTORE_STORE (which the settings read as a path: s3:/bucket) or --store."""
    for engine, where in (("trino", trino), ("spark", spark)):
        r = run_cli("ddl", "--engine", engine, *args, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0].startswith(f"-- metricstore: external tables over {where} ({engine})"), r.stdout


def test_ingest_reports_the_commit_then_says_while_it_projects(tmp_path: Path) -> None:
    """On a terminal, ``metricstore ingest`` says while its projection step runs (on a large store
    it takes minutes), after the summary of what it committed; the store is projected when it exits."""
    import os
    import pty
    import subprocess
    import sys

    from queries.projections import Projections
    from store import Store

    store = tmp_path / "store"
    src = write_csv(tmp_path / "q.csv", [fact(period=f"FY{y}", value=str(100 + y - 2020)) for y in range(2020, 2025)])
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "metricstore", "ingest", str(src)], cwd=ROOT,
                            env={**os.environ, "METRICSTORE_STORE": str(store), "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    said = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:            # the child closed the terminal
            break
        if not chunk:
            break
        said += chunk
    out, _ = proc.communicate(timeout=300)
    os.close(leader)
    assert proc.returncode == 0, (out, said)
    assert "5 events added" in out, out
    assert b"bringing the growth projections up to date" in said
    found = Projections(Store(store)).latest()
    assert found is not None and found.base.rows > 0
