"""The lineage commands (history, restatements, explain) on the hand-made ACME filing history,
through the real CLI in a subprocess, and MetricStore.explain / growth bases from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from queries import BadArgument, MetricStore
from store import Store
from tests.conftest import ROOT, run_cli

V1 = ROOT / "tests" / "fixtures" / "sec" / "acme_companyfacts_v1.json"
E = "cik9999901"


@pytest.fixture(scope="module")
def acme_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("acme") / "store"
    assert ingest_paths(Store.create(root), [V1], catalog=Catalog.load(ROOT / "data" / "catalog")).ok
    return root


def test_history_lists_every_version_oldest_first(acme_store: Path) -> None:
    r = run_cli("history", E, "revenue", "FY2023", "--format", "csv", store=acme_store)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    assert [x["value"] for x in rows] == ["1000000000.0", "1000000000.0", "980000000.0"]
    assert [x["is_current"] for x in rows] == ["false", "false", "true"]
    r = run_cli("history", E, "revenue", "FY2023", "--as-of", "2024-12-01", "--format", "csv", store=acme_store)
    assert r.stdout.count("\n") == 3 and "980000000" not in r.stdout


def test_restatements_say_by_how_much_and_when(acme_store: Path) -> None:
    r = run_cli("restatements", E, "--metric", "revenue", "--format", "csv", store=acme_store)
    assert r.returncode == 0, r.stderr
    assert "FY2023" in r.stdout and "-20000000.0" in r.stdout and "2024-12-15" in r.stdout


def test_explain_spells_out_a_derived_quarter(acme_store: Path) -> None:
    r = run_cli("explain", E, "revenue", "2024Q4", store=acme_store)
    assert r.returncode == 0, r.stderr
    assert "2024Q4 = FY2024 1,150.0 - 9M2024 810.0 = 340.0 (USD m)" in r.stdout
    r = run_cli("explain", E, "revenue", "2024Q4", "--as-of", "2024-10-01", store=acme_store)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no cik9999901 revenue figure" in r.stderr


def test_explain_from_python_names_sources_and_commits(acme_store: Path) -> None:
    with MetricStore(acme_store) as ms:
        df = ms.explain(E, "revenue", "FY2024")
        roles = dict(zip(df["role"].to_list(), df["source"].to_list(), strict=True))
        assert roles == {"value": "0009999901-24-000010 10-K", "prior": "0009999901-24-000020 10-K/A"}
        assert df["commit_id"].null_count() == 0 and df["source_ref"].to_list()[0].startswith("us-gaap:")
        inst = ms.explain(E, "total_assets", "2024-09-28")
        assert inst["value"].to_list()[0] == 5_512_345_000
        with pytest.raises(BadArgument):
            ms.growth(entity=E, basis="sometime")


def test_growth_basis_as_first_reported(acme_store: Path) -> None:
    with MetricStore(acme_store) as ms:
        first = ms.growth(entity=E, metric="revenue", period="FY2024", basis="first").row(0, named=True)
        now = ms.growth(entity=E, metric="revenue", period="FY2024").row(0, named=True)
    assert first["prior_value"] == 1_000_000_000 and now["prior_value"] == 980_000_000
    assert first["yoy_pct"] == pytest.approx(0.15)


@pytest.mark.parametrize("command", ["history", "restatements", "explain"])
def test_help(command: str) -> None:
    r = run_cli(command, "--help")
    assert r.returncode == 0 and "--as-of" in r.stdout and "--as-recorded" in r.stdout


def test_every_view_honours_both_clocks(acme_store: Path) -> None:
    with MetricStore(acme_store) as ms:
        for view in ("events", "facts", "growth", "history", "restatements", "share"):
            everything = ms.sql(f"SELECT count(*) AS n FROM {view}")["n"][0]
            early = ms.sql(f"SELECT count(*) AS n FROM {view}", as_of="2024-02-01")["n"][0]
            nothing = ms.sql(f"SELECT count(*) AS n FROM {view}", as_recorded="2000-01-01")["n"][0]
            assert nothing == 0, view
            assert early <= everything, view
        assert ms.sql("SELECT count(*) AS n FROM events", as_of="2024-02-01")["n"][0] == 4  # the FY2023 10-K (3) and the Q1 10-Q (1)
        assert ms.sql("SELECT count(*) AS n FROM events", as_of="2024-02-01")["n"][0] < \
            ms.sql("SELECT count(*) AS n FROM events")["n"][0]


def test_series_basis_option(acme_store: Path) -> None:
    r = run_cli("series", E, "revenue", "--freq", "FY", "--basis", "first", "--format", "csv", store=acme_store)
    assert r.returncode == 0, r.stderr
    assert "FY2024" in r.stdout and ",1000000000.0," in r.stdout
    r = run_cli("series", E, "revenue", "--basis", "bogus", store=acme_store)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_history_of_a_derived_quarter_points_to_explain(acme_store: Path) -> None:
    with MetricStore(acme_store) as ms, pytest.raises(BadArgument, match="is derived \\(FY - 9M\\)"):
        ms.history(E, "revenue", "2024Q4")


@pytest.mark.parametrize(("args", "title", "shown", "hidden"), [
    (("history", E, "revenue", "FY2023"), "every version", "withdrawal", "event_id"),
    (("restatements", E, "--metric", "revenue"), "restatements", "restated_at", "old_event_id"),
])
def test_a_table_shows_its_columns_and_csv_every_column(acme_store: Path, args: tuple[str, ...], title: str,
                                                         shown: str, hidden: str) -> None:
    table = run_cli(*args, store=acme_store, env={"COLUMNS": "400"})
    assert table.returncode == 0, table.stderr
    assert title in table.stdout and shown in table.stdout and hidden not in table.stdout
    csv = run_cli(*args, "--format", "csv", store=acme_store)
    assert hidden in csv.stdout.splitlines()[0].split(",")
