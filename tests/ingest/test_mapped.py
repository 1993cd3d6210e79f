"""Mapped tables: a wide KPI export read through a mapping file into canonical events."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import Catalog, ingest_file, load_mapping, mapped_format
from ingest.errors import ConfigError
from queries import MetricStore
from store import Store
from tests.conftest import ROOT, needs_shared

TESLA = ("kpi", "tesla_operational_summary_q4-2022_q2-2024.csv")
MAPPING = ROOT / "data" / "mappings" / "tesla_operational_summary.toml"


def test_tesla_deliveries_per_quarter_and_their_yoy_are_in_growth(store: Store, catalog: Catalog,
                                                                   ms: MetricStore) -> None:
    path = needs_shared(*TESLA)
    report = ingest_file(store, path, catalog=catalog)   # format detected: the mapping matches
    assert report.ok, report.error or report.problems
    assert report.format == "mapped" and report.warnings == []
    df = ms.sql("SELECT period, value, yoy_pct FROM growth WHERE entity = 'tsla' AND metric = 'deliveries' "
                "AND segment = 'total' ORDER BY period")
    rows = {p: (v, y) for p, v, y in df.iter_rows()}
    assert [p for p in rows] == ["2022Q4", "2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    assert rows["2023Q4"][0] == 484507
    assert rows["2023Q4"][1] == pytest.approx(484507 / 405278 - 1)
    assert rows["2024Q2"][1] == pytest.approx(443956 / 466140 - 1)
    assert rows["2023Q3"][1] is None          # no 2022Q3 in the table


def test_tesla_stocks_are_instants_and_empty_cells_are_no_figure(store: Store, catalog: Catalog,
                                                                  ms: MetricStore) -> None:
    path = needs_shared(*TESLA)
    assert ingest_file(store, path, catalog=catalog, fmt=mapped_format(MAPPING)).ok
    st = ms.sql("SELECT period_start, period_end, value FROM events WHERE entity = 'tsla' "
                "AND metric = 'supercharger_stations' ORDER BY period_end")
    assert st.height == 7 and (st["period_start"] == st["period_end"]).all()
    assert str(st["period_end"][0]) == "2022-12-31" and st["value"][-1] == 6473
    loc = ms.sql("SELECT count(*) AS n FROM events WHERE metric = 'store_and_service_locations'")
    assert loc["n"][0] == 6                   # blank for 2022Q4
    solar = ms.sql("SELECT count(*) AS n FROM events WHERE metric = 'solar_deployed'")
    assert solar["n"][0] == 5                 # no longer reported in 2024
    agg = ms.sql("SELECT metric, aggregation FROM metrics WHERE metric IN ('deliveries', 'supercharger_stations')")
    assert dict(agg.iter_rows()) == {"deliveries": "flow", "supercharger_stations": "stock"}
    lineage = ms.sql("SELECT source, source_ref, note FROM events WHERE metric = 'deliveries' AND segment = 'total' "
                     "AND period_end = DATE '2022-12-31'")
    assert lineage.row(0) == ("tesla-quarterly-update", "tesla_operational_summary:2022Q4:total_deliveries",
                              f"{path.name}:2 column total_deliveries")


def _mapping(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "m.toml"
    p.write_text('name = "t"\nentity = "acme"\nsource = "acme-kpi"\n'
                 '[period]\nyear = "Year"\nquarter = "Q"\n[reported_at]\ndays_after_period_end = 20\n'
                 '[columns.stores]\nmetric = "store_count"\nunit = "stores"\ninstant = true\n' + extra)
    return p


def test_a_column_the_mapping_does_not_know_rejects_the_file(tmp_path: Path, store: Store,
                                                              catalog: Catalog) -> None:
    data = tmp_path / "kpi.csv"
    data.write_text("Year,Q,stores,new_kpi\n2024,Q1,10,5\n")
    report = ingest_file(store, data, catalog=catalog, fmt=mapped_format(_mapping(tmp_path)))
    assert report.error and "'new_kpi' is not in mapping 't'" in report.error and report.added == 0


def test_ignored_columns_are_skipped(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    data = tmp_path / "kpi.csv"
    data.write_text("Year,Q,stores,new_kpi\n2024,1,10,5\n2024,2,12,5\n")
    m = _mapping(tmp_path).read_text().replace('[period]', 'ignore = ["new_kpi"]\n[period]')
    (tmp_path / "m2.toml").write_text(m)
    report = ingest_file(store, data, catalog=catalog, fmt=mapped_format(tmp_path / "m2.toml"))
    assert report.ok and report.added == 2


@pytest.mark.parametrize(("extra", "field"), [
    ('[columns.x]\nmetric = "m"\n', "columns.x.unit"),
    ('[columns.y]\nmetric = "m"\nunit = "u"\nkind = "rumour"\n', "columns.y.kind"),
])
def test_a_bad_mapping_is_one_error_naming_the_field(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_mapping(_mapping(tmp_path, extra))
    assert exc.value.field == field and "m.toml" in str(exc.value)


def test_the_documented_example_mapping_is_valid() -> None:
    m = load_mapping(MAPPING)
    assert m.entity == "tsla" and m.columns["total_deliveries"].metric == "deliveries"
    assert m.columns["supercharger_stations"].instant and not m.columns["total_production"].instant


def test_an_excel_export_reads_like_its_csv(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    import polars as pl

    book = tmp_path / "kpi.xlsx"
    pl.DataFrame({"Year": [2024, 2024], "Q": ["Q1", "Q2"], "stores": [10, 12]}).write_excel(book)
    report = ingest_file(store, book, catalog=catalog, fmt=mapped_format(_mapping(tmp_path)))
    assert report.ok, report.error
    assert report.added == 2
    with MetricStore(store) as ms:
        got = ms.sql("SELECT period_end, value, source_ref FROM events ORDER BY period_end").rows()
    assert [(str(d), v) for d, v, _ in got] == [("2024-03-31", 10.0), ("2024-06-30", 12.0)]
    assert got[0][2] == "t:2024Q1:stores"


def test_a_mapped_table_job_reads_in_place_and_skips_an_unchanged_file(tmp_path: Path, store: Store,
                                                                        catalog: Catalog) -> None:
    from ingest.jobs import load_jobs
    from ingest.runner import run_job

    src = needs_shared(*TESLA)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[jobs.tesla]\ntrigger = {{ cron = "30 7 * * mon-fri", timezone = "America/New_York" }}\n'
                    f'source = {{ type = "mapped_table", path = "{src}", mapping = "{MAPPING}" }}\n')
    config = load_jobs(jobs)
    first = run_job(config, "tesla", store, catalog)
    assert first.status == "ok" and first.outcome.added == 102 and src.exists()
    second = run_job(config, "tesla", store, catalog)
    assert second.status == "skipped" and second.outcome.unchanged == 1 and second.outcome.added == 0
    copy = tmp_path / "tesla_operational_summary_next.csv"      # next quarter's export: one more row
    copy.write_text(src.read_text().rstrip("\n") + "\n2024,3,443668,25662,469330,439975,22887,462890,"
                    "9600,170000,17,6943,,1300,1900,6706,62421\n")
    jobs.write_text(jobs.read_text().replace(str(src), str(tmp_path / "tesla_operational_summary_*.csv")))
    third = run_job(load_jobs(jobs), "tesla", store, catalog)
    assert third.status == "ok" and third.outcome.added == 14 and third.outcome.already_present == 102  # 15 KPIs, solar blank


def test_a_parquet_export_reads_like_its_csv(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    import polars as pl

    table = tmp_path / "kpi.parquet"
    pl.DataFrame({"Year": [2024, 2024], "Q": [1, 2], "stores": [10.0, 12.5]}).write_parquet(table)
    report = ingest_file(store, table, catalog=catalog, fmt=mapped_format(_mapping(tmp_path)))
    assert report.ok, report.error
    with MetricStore(store) as ms:
        got = ms.sql("SELECT period_end, value FROM events ORDER BY period_end").rows()
    assert [(str(d), v) for d, v in got] == [("2024-03-31", 10.0), ("2024-06-30", 12.5)]
