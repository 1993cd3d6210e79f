"""The canonical input format: normalisation, and bad input rejected with one clear line each."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import Catalog, canonical_dims, ingest_file, parse_unit
from queries import MetricStore
from store import Store
from tests.conftest import fact, run_cli, store_files, write_csv


def ingest_one(store: Store, catalog: Catalog, path: Path, **kw: object):
    return ingest_file(store, path, catalog=catalog, **kw)


VALUES = [
    ("365906.4", "CNY m", 365906.4e6),
    ("365.9", "CNY bn", 365.9e9),
    ("20.9", "%", 0.209),
    ("3", "pp", 0.03),
    ("169", "m units", 169e6),
    ("136,854", "vehicles", 136854.0),
    ("(6.2)", "CNY bn", -6.2e9),
    ("-0.7", "RMB bn", -0.7e9),
    ("1.5e3", "USD k", 1.5e6),
    ("30", "weeks", 30.0),
]


@pytest.mark.parametrize("value,unit,expected", VALUES)
def test_values_are_normalised_to_base_units_exactly(tmp_path: Path, store: Store, catalog: Catalog,
                                                     value: str, unit: str, expected: float) -> None:
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(value=value, unit=unit)]))
    assert r.ok and r.added == 1, r.problems
    t = store.read()
    assert t.column("value").to_pylist() == [expected]
    assert t.column("as_reported").to_pylist() == [f"{value} {unit}"]


def test_each_value_of_a_mixed_batch_is_read_as_it_would_be_alone(tmp_path: Path, store: Store,
                                                                   catalog: Catalog) -> None:
    # plain numbers, thousands, parentheses and exponents in one file: how a column is read is
    # chosen per batch (plain columns skip the other forms' passes), never at a row's expense
    rows = [fact(value=v, unit=u, period=f"FY{2000 + i}", reported_at="2024-06-01") for i, (v, u, _) in enumerate(VALUES)]
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", rows))
    assert r.ok and r.added == len(VALUES), r.problems
    t = store.read()
    got = dict(zip(t.column("as_reported").to_pylist(), t.column("value").to_pylist(), strict=True))
    assert got == {f"{v} {u}": expected for v, u, expected in VALUES}


@settings(max_examples=200, deadline=None)
@given(digits=st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=4),
       unit=st.sampled_from(["USD", "USD k", "USD m", "USD bn", "%", "bp"]))
def test_property_scaling_is_correctly_rounded(digits: Decimal, unit: str) -> None:
    from ingest.canonical import normalise
    import polars as pl

    text = format(digits, "f")
    df = pl.DataFrame({"entity": ["a"], "metric": ["revenue"], "period": ["FY2020"], "value": [text], "unit": [unit],
                       "reported_at": ["2021-01-01"], "source": ["s"]}).with_row_index("__row", offset=2)
    df = df.with_columns(pl.col("__row").cast(pl.Int64))
    out = normalise(df, "f.csv", Catalog(), {})
    assert not out.problems
    u = parse_unit(unit)
    assert out.events["value"][0] == float(digits.scaleb(u.exponent))


def test_dims_are_canonical() -> None:
    assert canonical_dims("region=CN; price_band=3000+") == "price_band=3000+;region=CN"
    assert canonical_dims('{"b": "2", "a": "1"}') == "a=1;b=2"
    assert canonical_dims("") == ""
    # a value is NFC however it is written: composed, decomposed, or as JSON escapes of either
    assert canonical_dims("r=caf\u00e9") == canonical_dims("r=cafe\u0301") == canonical_dims('{"r": "cafe\\u0301"}') \
        == "r=caf\u00e9"
    with pytest.raises(ValueError):
        canonical_dims("region")
    with pytest.raises(ValueError):
        canonical_dims("a=1;a=2")


def test_labels_are_read_on_the_calendar_of_the_entity_s_latest_record(tmp_path: Path, store: Store,
                                                                        catalog: Catalog) -> None:
    """The entity log read in any order would give any of its records' fiscal year ends; the
    latest one (as the entities view picks it) is the one periods are read on."""
    from ingest.catalog import EntityDef
    from ingest.records import fiscal_year_ends, set_entity

    for month in (3, 9, 1, 11, 4, 8, 2, 10, 5, 7, 6):
        set_entity(store, EntityDef("acme", None, None, None, month))
        assert fiscal_year_ends(store, catalog)["acme"] == month
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(period="FY2024", reported_at="2024-08-01")]))
    assert r.added == 1 and str(store.read().column("period_end")[0]) == "2024-06-30"


def test_alias_maps_to_the_standard_metric(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(metric="adjusted_net_profit")]))
    assert store.read().column("metric").to_pylist() == ["adjusted_net_income"]


def test_unknown_metric_is_accepted_with_a_warning_and_an_inferred_kind(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(metric="widgets_made", unit="units")]))
    assert r.added == 1 and any("widgets_made" in w and "flow" in w for w in r.warnings)
    assert store.read("metrics").column("inferred").to_pylist() == [True]


@pytest.mark.parametrize(("unit", "period", "kind"), [
    ("USD/shares", "FY2024", "per_share"),           # dividends declared per share over a year
    ("USD/share", "2024-12-31", "stock"),            # book value per share at an instant
    ("CNY/vehicle", "FY2024", "ratio"),              # a loss per vehicle sold
    ("%", "FY2024", "ratio"),
    ("USD m", "2024-12-31", "stock"),
])
def test_the_inferred_kind_follows_the_unit_and_the_period(tmp_path: Path, store: Store, catalog: Catalog,
                                                           unit: str, period: str, kind: str) -> None:
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(metric="odd_figure", unit=unit, period=period)]))
    assert r.added == 1, r.problems
    assert store.read("metrics").select(["metric", "aggregation"]).to_pylist() == [
        {"metric": "odd_figure", "aggregation": kind}]


def test_a_corrected_catalog_definition_is_recorded_at_the_next_ingest(tmp_path: Path, store: Store,
                                                                      catalog: Catalog) -> None:
    # a catalog that once had EPS as a flow: its derived Q4 was exact; corrected, it is approx
    old = tmp_path / "old-catalog"
    shutil.copytree(Path(__file__).parents[2] / "data" / "catalog", old)
    toml = old / "metrics.toml"
    toml.write_text(toml.read_text().replace('[eps_diluted]\naggregation = "per_share"',
                                             '[eps_diluted]\naggregation = "flow"'))
    rows = [fact(metric="eps_diluted", unit="USD/shares", period=p, value=v)
            for p, v in (("9M2024", "4.21"), ("FY2024", "6.08"))]
    ingest_one(store, Catalog.load(old), write_csv(tmp_path / "a.csv", rows))
    ms = MetricStore(store)
    assert ms.growth(period="2024Q4")["qualifier"].to_list() == ["exact"]
    before = store.read("metrics").num_rows
    ingest_one(store, catalog, write_csv(tmp_path / "b.csv", [fact(metric="eps_diluted", unit="USD/shares",
                                                                   period="2024Q1", value="1.5")]))
    ingest_one(store, catalog, write_csv(tmp_path / "c.csv", [fact(metric="eps_diluted", unit="USD/shares",
                                                                   period="2023Q1", value="1.4")]))
    assert store.read("metrics").num_rows == before + 1         # recorded once, not at every ingest
    assert ms.sql("SELECT aggregation FROM metrics WHERE metric = 'eps_diluted'").item() == "per_share"
    assert ms.growth(period="2024Q4")["qualifier"].to_list() == ["approx"]
    ms.close()


def test_strict_catalog_rejects_unknown_metrics(tmp_path: Path, store: Store) -> None:
    strict = Catalog.load(Path(__file__).parents[2] / "data" / "catalog", strict=True)
    r = ingest_one(store, strict, write_csv(tmp_path / "a.csv", [fact(metric="widgets_made")]))
    assert r.added == 0 and "strict" in r.problems[0].reason


def test_json_and_parquet_inputs(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    j = tmp_path / "a.json"
    j.write_text(json.dumps({"events": [fact(value=1.25), fact(period="FY2023", value=1, reported_at="2024-02-01")]}))
    assert ingest_one(store, catalog, j).added == 2
    p = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist([fact(period="FY2022", value=0.1, reported_at="2023-02-01")]), p)
    assert ingest_one(store, catalog, p).added == 1
    assert sorted(store.read().column("value").to_pylist()) == [0.1e6, 1e6, 1.25e6]


def test_thousands_separators_and_parentheses_are_read_where_unambiguous(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    rows = [fact(value="1,234,567.5", unit="USD"), fact(period="FY2023", value="(1,000)", unit="USD", reported_at="2024-01-10")]
    assert ingest_one(store, catalog, write_csv(tmp_path / "a.csv", rows)).added == 2
    assert sorted(store.read().column("value").to_pylist()) == [-1000.0, 1234567.5]


def test_skip_invalid_commits_the_valid_rows_and_quarantines_the_rest(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    rows = [fact(), fact(period="FY2023", value="abc", reported_at="2024-02-01")]
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", rows), skip_invalid=True)
    assert (r.added, r.rejected) == (1, 1)
    assert r.quarantine is not None and "not a number" in r.quarantine.read_text()


# -- the command line, as a user runs it ------------------------------------------------------

BAD_ROWS = [
    ("unparseable period", fact(period="FY24x"), "period", "is not a period"),
    ("period ends before it starts", fact(period="", period_start="2024-12-31", period_end="2024-01-01"), "period_end", "ends before"),
    ("unknown unit", fact(unit="furlongs"), "unit", "unknown unit"),
    ("NaN", fact(value="NaN"), "value", "not a number"),
    ("infinity", fact(value="inf"), "value", "not a number"),
    ("text in a number column", fact(value="twelve"), "value", "not a number"),
    ("decimal comma", fact(value="1,5"), "value", "not a number"),
    ("sign inside parentheses", fact(value="(-5)"), "value", "not a number"),
    ("actual reported before the period ends", fact(reported_at="2024-06-30"), "reported_at", "before its period ends"),
    ("reported far in the future", fact(period="FY2030", kind="target", reported_at="2099-01-01"), "reported_at", "future"),
    ("bad kind", fact(kind="rumour"), "kind", "not one of"),
    ("bad qualifier", fact(qualifier="roughly"), "qualifier", "not one of"),
    ("missing value", fact(value=""), "value", "required"),
    ("range without high", fact(qualifier="range"), "value_high", "needs value_high"),
    ("range upside down", fact(value="33", value_high="30"), "value_high", "below value"),
    ("bad dims", fact(dims="region"), "dims", "key=value"),
    ("bad date", fact(reported_at="18/03/2025"), "reported_at", "not a date"),
    ("huge field", fact(source_ref="x" * 20_000), "source_ref", "too long"),
]


@pytest.mark.parametrize("name,row,column,reason", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_gives_one_clear_line_and_commits_nothing(tmp_path: Path, name: str, row: dict[str, object],
                                                          column: str, reason: str) -> None:
    root = tmp_path / "store"
    good = write_csv(tmp_path / "good.csv", [fact(period="FY2023", reported_at="2024-02-01")])
    assert run_cli("ingest", str(good), store=root).returncode == 0
    before = store_files(root / "events")
    bad = write_csv(tmp_path / "bad.csv", [fact(period="FY2022", reported_at="2023-02-01"), row])
    r = run_cli("ingest", str(bad), store=root)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("rejected: ")]
    assert any(f"{bad}:3: column {column}=" in ln and reason in ln for ln in lines), r.stderr
    assert store_files(root / "events") == before
    assert "0 added" in r.stdout and "1 rejected" in r.stdout


def test_each_check_sees_the_values_as_they_stood_when_it_ran() -> None:
    """Problems of every stage of the checks, in one batch, are each reported once; a check on
    the text as read (a field's length) sees it before it is stripped."""
    import polars as pl

    from ingest.canonical import normalise
    from ingest.readers import MAX_FIELD

    base = {"entity": "acme", "metric": "revenue", "period": "FY2024", "value": "1", "unit": "USD",
            "reported_at": "2025-02-01", "source": "s", "kind": "actual"}
    rows = [{**base, "entity": "  " + "a" * (MAX_FIELD - 1)},    # too long as read, not once stripped
            {**base, "kind": "rumour"}, {**base, "value": "twelve"}, {**base, "unit": "furlongs"},
            {**base, "kind": "target", "reported_at": "2099-01-01"}, {**base, "metric": "margin"}]
    df = pl.DataFrame(rows).with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
    out = normalise(df, "f.csv", Catalog(), {})
    assert sorted((p.row, p.column) for p in out.problems) == [
        (2, "entity"), (3, "kind"), (4, "value"), (5, "unit"), (6, "reported_at")]
    assert "too long" in out.problems[0].reason
    assert out.events["__row"].to_list() == [7]


def test_a_field_is_measured_in_characters_and_blanks_become_null() -> None:
    """The length limit counts characters, not bytes (two-byte letters to the limit pass, one more
    is refused); text is read in NFC; a blank cell is NULL, in any column, beside full ones."""
    import polars as pl

    from ingest.canonical import normalise
    from ingest.readers import MAX_FIELD

    base = {"entity": "acme", "metric": "revenue", "period": "FY2024", "value": "1", "unit": "USD",
            "reported_at": "2025-02-01", "source": "s", "note": "n", "source_ref": "r", "dims": ""}
    rows = [{**base, "note": "\u00e9" * MAX_FIELD, "dims": "city=Cafe\u0301"},
            {**base, "source": "t", "note": "\u00e9" * (MAX_FIELD + 1)},
            {**base, "source": "u", "note": "  ", "source_ref": ""}]
    df = pl.DataFrame(rows).with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
    out = normalise(df, "f.csv", Catalog(), {})
    assert [(p.row, p.column) for p in out.problems] == [(3, "note")] and "too long" in out.problems[0].reason
    assert out.events["__row"].to_list() == [2, 4]
    assert out.events["dims"].to_list() == ["city=Caf\u00e9", ""]
    assert out.events["note"].to_list() == ["\u00e9" * MAX_FIELD, None]
    assert out.events["source_ref"].to_list() == ["r", None]


def test_formula_like_text_is_kept_as_text(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    rows = [fact(source_ref="=cmd|' /C calc'!A0", note="+SUM(A1)")]
    assert ingest_one(store, catalog, write_csv(tmp_path / "a.csv", rows)).added == 1
    assert store.read().column("source_ref").to_pylist() == ["=cmd|' /C calc'!A0"]


def test_conflicting_rows_in_one_batch_are_both_rejected(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(value="100"), fact(value="101")]))
    assert r.added == 0 and r.rejected == 2
    assert [(p.row, p.reason.split(":")[0]) for p in r.problems] == [(2, "conflicts with row 3 of this batch"),
                                                                      (3, "conflicts with row 2 of this batch")]


def test_duplicate_rows_in_one_batch_count_once(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    r = ingest_one(store, catalog, write_csv(tmp_path / "a.csv", [fact(), fact()]))
    assert (r.added, r.duplicates, r.already_present, r.rejected) == (1, 1, 0, 0)


FILE_CASES = [
    ("empty file", b"", "is empty"),
    ("header only", b"entity,metric,period,value,unit,reported_at,source\n", "no rows"),
    ("missing column", b"entity,metric,period,value,reported_at,source\nacme,revenue,FY2024,1,2025-02-01,s\n", "'unit' is missing"),
    ("extra column", b"entity,metric,period,value,unit,reported_at,source,valeu\nacme,revenue,FY2024,1,USD,2025-02-01,s,1\n", "unknown column 'valeu'"),
    ("ragged row", b"entity,metric,period,value,unit,reported_at,source\nacme,revenue,FY2024,1,USD,2025-02-01,s,extra\n", "has 8 fields"),
    ("latin-1 bytes", "entity,metric,period,value,unit,reported_at,source\nacmé,revenue,FY2024,1,USD,2025-02-01,s\n".encode("latin-1"), "not UTF-8"),
    ("JSON of the wrong shape", b'{"rows": 5}', "without an 'events' list"),
    ("JSON nested values", b'[{"entity": ["a"]}]', "only text and numbers"),
]


@pytest.mark.parametrize("name,content,reason", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_file_is_refused_whole_with_a_clear_line(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    root = tmp_path / "store"
    path = tmp_path / ("bad.json" if content.startswith((b"{", b"[")) else "bad.csv")
    path.write_bytes(content)
    r = run_cli("ingest", str(path), store=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert reason in r.stdout + r.stderr, r.stdout + r.stderr
    assert Store(root).read().num_rows == 0


@pytest.mark.parametrize("bom,encoding", [(b"\xef\xbb\xbf", "utf-8"), (b"", "utf-16")])
def test_boms_and_utf16_are_read(tmp_path: Path, store: Store, catalog: Catalog, bom: bytes, encoding: str) -> None:
    text = "entity,metric,period,value,unit,reported_at,source\nacme,revenue,FY2024,1,USD,2025-02-01,s\n"
    path = tmp_path / "a.csv"
    path.write_bytes(bom + text.encode(encoding))
    assert ingest_one(store, catalog, path).added == 1


def test_truncated_parquet_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist([fact()]), p)
    p.write_bytes(p.read_bytes()[:-20])
    r = run_cli("ingest", str(p), store=tmp_path / "s")
    assert r.returncode == 2 and "not a readable Parquet file" in r.stdout + r.stderr
