"""Period labels: parsing, labelling, fiscal calendars, and the SQL twin of the Python code."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queries.views import sql_sources
from store import label_period, parse_period

LABELS = ["FY2024", "2024Q1", "2024Q4", "2024H1", "2024H2", "9M2024", "3M2024", "2024-03", "2024-12-31",
          "2024-01-01/2024-03-18"]


@pytest.mark.parametrize("fye", range(1, 13))
@pytest.mark.parametrize("label", LABELS)
def test_label_round_trips_on_every_fiscal_calendar(label: str, fye: int) -> None:
    p = parse_period(label, fye)
    expected = {"3M2024": "2024Q1"}.get(label, label)
    assert label_period(p.start, p.end, fye) == expected


@pytest.mark.parametrize("text,fye,start,end", [
    ("FY2024", 12, "2024-01-01", "2024-12-31"),
    ("FY2024", 9, "2023-10-01", "2024-09-30"),
    ("FY2025", 1, "2024-02-01", "2025-01-31"),
    ("2025Q1", 9, "2024-10-01", "2024-12-31"),
    ("Q4 2024", 12, "2024-10-01", "2024-12-31"),
    ("2024-Q2", 12, "2024-04-01", "2024-06-30"),
    ("9M2024", 12, "2024-01-01", "2024-09-30"),
    ("2024H2", 6, "2024-01-01", "2024-06-30"),
    ("2024-02", 12, "2024-02-01", "2024-02-29"),
])
def test_parse_known_labels(text: str, fye: int, start: str, end: str) -> None:
    p = parse_period(text, fye)
    assert (p.start.isoformat(), p.end.isoformat()) == (start, end)


@pytest.mark.parametrize("start,end,fye,label", [
    ("2023-10-01", "2024-09-28", 9, "FY2024"),     # Apple: 52 weeks ending the last Saturday of September
    ("2022-09-25", "2023-09-30", 9, "FY2023"),     # 53 weeks
    ("2024-09-29", "2024-12-28", 9, "2025Q1"),     # a quarter of FY2025
    ("2012-09-30", "2012-12-29", 9, "2013Q1"),     # a 14-week quarter
    ("2023-02-01", "2024-01-31", 1, "FY2024"),     # Snowflake: year ends 31 January
    ("2024-05-01", "2024-07-31", 1, "2025Q2"),
    ("2023-01-29", "2024-02-03", 1, "FY2024"),     # a retailer's 53-week year ending early February
    ("2024-01-01", "2024-03-18", 12, "2024-01-01/2024-03-18"),
    ("2024-03-04", "2024-03-10", 12, "2024-03-04/2024-03-10"),
])
def test_label_from_filing_dates(start: str, end: str, fye: int, label: str) -> None:
    assert label_period(dt.date.fromisoformat(start), dt.date.fromisoformat(end), fye) == label


@pytest.mark.parametrize("bad", ["FY24x", "2024Q5", "13M2024", "2024-13", "2024-02-30", "yesterday", "",
                                 "2024-03-01/2024-01-01"])
def test_unparseable_periods_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_period(bad)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name, text in sql_sources():
        if name.startswith("00_"):
            c.execute(text)
    return c


dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2040, 12, 31))


@settings(max_examples=300, deadline=None)
@given(start=dates, days=st.one_of(st.integers(0, 400), st.sampled_from([90, 91, 97, 181, 273, 363, 364, 370])),
       fye=st.integers(1, 12))
def test_sql_labels_equal_python_labels(con: duckdb.DuckDBPyConnection, start: dt.date, days: int, fye: int) -> None:
    end = start + dt.timedelta(days=days)
    got = con.sql("SELECT ms_period_label(?::DATE, ?::DATE, ?::INTEGER)", params=[start, end, fye]).fetchall()[0][0]
    assert got == label_period(start, end, fye)


@settings(max_examples=200, deadline=None)
@given(year=st.integers(1990, 2040), fye=st.integers(1, 12),
       kind=st.sampled_from(["FY{y}", "{y}Q1", "{y}Q2", "{y}Q3", "{y}Q4", "{y}H1", "{y}H2", "9M{y}", "{y}-07"]))
def test_property_parse_then_label_is_identity(year: int, fye: int, kind: str) -> None:
    label = kind.format(y=year)
    p = parse_period(label, fye)
    assert label_period(p.start, p.end, fye) == label
