"""``series`` and ``sql`` in a terminal: readable units, growth as percentages, flags; ``--wide``
and csv/json/parquet keep every column with raw values. On the demo's store (data/seed)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ingest import Settings
from metricstore.demo import build_store
from metricstore.render import change, human
from tests.conftest import ROOT, run_cli

WIDE = {"COLUMNS": "160"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed") / "store"
    build_store(Settings().model_copy(update={"store": root, "catalog": ROOT / "data" / "catalog"}), ROOT / "data" / "seed")
    return root


def cells(stdout: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The header and the rows (by their first cell) of a rich table."""
    lines = [line for line in stdout.splitlines() if line.startswith(("┃", "│"))]
    split = [[c.strip() for c in line.strip("┃│").replace("┃", "│").split("│")] for line in lines]
    header, rows = split[0], split[1:]
    return header, {r[0]: dict(zip(header, r, strict=True)) for r in rows}


def test_series_reads_in_units_and_percentages(seeded: Path) -> None:
    r = run_cli("series", "xiaomi", "revenue", store=seeded, env=WIDE)
    assert r.returncode == 0, r.stderr
    header, rows = cells(r.stdout)
    assert header[:3] == ["period", "value", "YoY"] and "event_id" not in header
    assert rows["FY2024"]["value"] == "365.9 bn CNY" and rows["FY2024"]["YoY"] == "+35.0 %"
    assert rows["2024Q4"]["YoY"] == "+48.8 %" and rows["FY2023"]["YoY"] == ""
    assert max(map(len, r.stdout.splitlines())) <= 160 and "more column(s) with --wide" in r.stdout
    r = run_cli("series", "xiaomi", "shipments", "--segment", "smartphones", store=seeded, env=WIDE)
    assert cells(r.stdout)[1]["FY2024"]["value"] == "168.5 m units"


def test_wide_and_machine_formats_keep_every_column_raw(seeded: Path) -> None:
    r = run_cli("series", "xiaomi", "revenue", "--wide", store=seeded, env={"COLUMNS": "400"})
    header, rows = cells(r.stdout)
    assert {"yoy_pct", "yoy_change", "qoq_pct", "ttm_value", "event_id", "derived_from"} <= set(header)
    assert rows["FY2024"]["yoy_pct"] == "0.350357"
    out = seeded.parent / "series.parquet"
    assert run_cli("series", "xiaomi", "revenue", "-f", "parquet", "-o", str(out), store=seeded).returncode == 0
    df = pl.read_parquet(out)
    assert set(header) == set(df.columns)
    assert df.filter(pl.col("period") == "FY2024")["yoy_pct"][0] == pytest.approx(0.3503571058209005)
    csv = run_cli("series", "xiaomi", "revenue", "-f", "csv", store=seeded).stdout
    assert csv.splitlines()[0].split(",") == df.columns


def test_sql_shows_ratios_as_percentages_with_flags(seeded: Path) -> None:
    r = run_cli("sql", "SELECT * FROM growth WHERE entity = 'xiaomi' AND metric = 'revenue_share' ORDER BY segment",
                store=seeded, env=WIDE)
    assert r.returncode == 0, r.stderr
    header, _ = cells(r.stdout)
    assert header == ["entity", "metric", "segment", "period", "value", "flags"]   # no dims, YoY or TTM to show
    rows = {line.split("│")[3].strip(): line for line in r.stdout.splitlines() if "revenue_share" in line}
    assert "52.4 %" in rows["smartphones"] and "10.0 %" in rows["internet_services"]
    assert "approx" in rows["internet_services"] and "approx" not in rows["smartphones"]
    r = run_cli("sql", "SELECT segment, share FROM share WHERE entity = 'xiaomi' AND period = 'FY2024' "
                "AND metric = 'revenue' AND dims = '' ORDER BY share DESC", store=seeded, env=WIDE)
    assert cells(r.stdout)[1]["smartphones"]["share"] == "52.4 %"
    r = run_cli("sql", "SELECT 'x' AS value, 0.25 AS yoy_pct, 3 AS n", store=seeded, env=WIDE)   # no numeric value
    assert cells(r.stdout) == (["value", "yoy_pct", "n"], {"x": {"value": "x", "yoy_pct": "+25.0 %", "n": "3"}})


def test_units_and_points() -> None:
    assert human(1_150_000_000, "USD") == "1.15 bn USD" and human(66_000, "CNY/unit") == "66,000 CNY/unit"
    assert human(52, "weeks") == "52 weeks" and human(-0.01, "ratio") == "-1.0 %"
    assert change(None, 0.021, "ratio") == "+2.1 pp" and change(-0.1667, -50.0, "USD") == "-16.7 %"


def test_a_change_under_a_tenth_keeps_two_significant_digits() -> None:
    # Apple's gross margin from 46.26 % to 46.22 %: not "-0.0 pp", which reads as no change
    assert change(None, -0.00035, "ratio") == "-0.035 pp" and change(0.0004, 1.0, "USD") == "+0.04 %"
    assert change(0.0, 0.0, "USD") == "+0.0 %" and change(None, 0.0, "ratio") == "+0.0 pp"
