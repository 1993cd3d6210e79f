"""The event rules live in ``store.rules``, and every engine applying them agrees: the one-row check
(a single append, the pydantic model), the column check (a batch append) and the polars masks (the
canonical reader, which reports each bad row)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.canonical import per_value
from store import MetricEvent, SchemaMismatch, Store
from store.rules import DEFAULTS, ENUMS, check_columns, polars_checks, row_violation
from store.store import STREAM_MIN_ROWS

_rows = st.fixed_dictionaries({
    "entity": st.sampled_from(["acme", "ACME", "acme corp", "0x.co"]),
    "metric": st.sampled_from(["revenue", "us-gaap:Revenues", "Revenue", "US-GAAP:Revenues"]),
    "segment": st.sampled_from(["total", "cloud services", "Cloud", "Éire"]),
    "op": st.sampled_from(["assert", "retract", "amend"]),
    "kind": st.sampled_from(["actual", "guidance", "rumour"]),
    "qualifier": st.sampled_from(["exact", "range", "approx"]),
    "authority": st.sampled_from(["primary", "secondary"]),
    "period_start": st.sampled_from([dt.date(2024, 1, 1), dt.date(2024, 12, 31)]),
    "period_end": st.sampled_from([dt.date(2024, 6, 30), dt.date(2024, 12, 31)]),
    "value": st.sampled_from([None, 1.0, math.nan, math.inf]),
    "value_high": st.sampled_from([None, 2.0, -math.inf]),
})


def _columns(row: dict[str, Any]) -> dict[str, pa.Array]:
    types = {"period_start": pa.date32(), "period_end": pa.date32(), "value": pa.float64(), "value_high": pa.float64()}
    return {k: pa.array([v], types.get(k, pa.string())) for k, v in row.items()}


@settings(max_examples=300, deadline=None)
@given(row=_rows)
def test_the_row_check_the_column_check_and_the_polars_masks_agree(row: dict[str, Any]) -> None:
    broken = row_violation(row)
    try:
        check_columns(_columns(row), given=row)
        refused = None
    except SchemaMismatch as exc:
        refused = (exc.column, exc.reason)
    assert refused == (None if broken is None else tuple(broken))
    frame = pl.DataFrame([row], schema_overrides={"value": pl.Float64, "value_high": pl.Float64})
    cols = {"period_start": "period_start", "period_end": "period_end", "value_high": "value_high"}
    flagged = [(column, reason) for mask, column, reason in polars_checks(cols)
               if frame.select(mask.fill_null(False)).item()]
    # the canonical reader works the name tests out once per distinct value: the same masks
    assert flagged == [(column, reason) for mask, column, reason in polars_checks(
        cols, each=lambda c, e: per_value(frame, c, e)) if frame.select(mask.fill_null(False)).item()]
    # the reader's masks leave out what it checks as input (a missing value, a number out of range)
    reader_rules = broken is not None and broken.reason not in ("an assert needs a value",
                                                                "NaN and infinity are not values")
    if reader_rules:
        assert broken is not None and flagged and flagged[0][0] == broken.column
        assert broken.reason.endswith(flagged[0][1])     # (the reader reports the value in a column of its own)
    else:
        assert broken is not None or flagged == []


def test_the_model_states_the_same_rule() -> None:
    base = dict(entity="acme", metric="revenue", period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31),
                value=1.0, unit="USD", reported_at=dt.date(2025, 2, 1), source="s")
    with pytest.raises(ValidationError, match="a range needs value_high"):
        MetricEvent(**base, qualifier="range")
    assert MetricEvent(**base, qualifier="range", value_high=2.0).value_high == 2.0
    with pytest.raises(ValidationError, match="entity: 'Acme' is not a valid name"):
        MetricEvent(**{**base, "entity": "Acme"})
    assert set(DEFAULTS) >= set(ENUMS)


def _batch(n: int, **last: str) -> pa.Table:
    """``n`` valid events of one entity, the last row's columns replaced by ``last``."""
    rows = [{"entity": "acme", "metric": "revenue", "segment": "total", "qualifier": "exact",
             "period_start": dt.date(2000 + i % 20, 1, 1), "period_end": dt.date(2000 + i % 20, 12, 31),
             "value": float(i), "unit": "USD", "reported_at": dt.date(2025, 2, 1), "source": f"s{i}"}
            for i in range(n)]
    rows[-1].update(last)
    return pa.Table.from_pylist(rows)


@pytest.mark.parametrize("n", [1, 3, 2000])        # the one-row path, a small batch, an encoded one
def test_append_refuses_a_range_without_value_high_whole_and_clearly(tmp_path: Any, n: int) -> None:
    store = Store.create(tmp_path / "store")
    with pytest.raises(SchemaMismatch, match="column 'value_high': a range needs value_high") as refused:
        store.append(_batch(n, qualifier="range"))
    assert refused.value.row == n - 1     # (the caller's row, though prepare sorts the batch)
    assert store.read().num_rows == 0


@pytest.mark.parametrize("n", [1, 3, 2000])
@pytest.mark.parametrize(("column", "value", "reason"), [
    ("entity", "AAPL", "is not a valid name"), ("entity", "acme corp", "is not a valid name"),
    ("metric", "Revenue", "is not a valid name"), ("segment", "Cloud", "has capital letters"),
])
def test_append_refuses_a_name_no_reader_would_find(tmp_path: Any, n: int, column: str, value: str,
                                                    reason: str) -> None:
    """Readers look names up lower-cased (``AAPL`` finds ``aapl``): the low-level append refuses a
    name stored otherwise, as the canonical reader does, and keeps a qualified metric's case."""
    store = Store.create(tmp_path / "store")
    with pytest.raises(SchemaMismatch) as refused:
        store.append(_batch(n, **{column: value}))
    assert str(refused.value).startswith(f"row index {n - 1}, column '{column}': {value!r} {reason}")
    assert store.read().num_rows == 0
    store.append(_batch(n, metric="us-gaap:Revenues", segment="cloud services"))
    assert store.read().num_rows == n


@pytest.mark.parametrize(("table", "row", "column", "value"), [
    ("entities", {"entity": "AAPL", "name": "Apple Inc.", "source": "s"}, "entity", "AAPL"),
    ("metrics", {"metric": "Gross Margin", "aggregation": "ratio", "inferred": False}, "metric", "Gross Margin"),
])
def test_append_refuses_a_record_no_reader_would_find(tmp_path: Any, table: str, row: dict[str, Any],
                                                      column: str, value: str) -> None:
    """An entity's or a metric's record is looked up by name as events are: the same rule holds."""
    store = Store.create(tmp_path / "store")
    fine = {**row, column: value.lower().replace(" ", "_")}
    with pytest.raises(SchemaMismatch) as refused:
        store.append(pa.Table.from_pylist([fine, row]), table=table)
    assert str(refused.value).startswith(f"row index 1, column '{column}': {value!r} is not a valid name")
    assert store.read(table).num_rows == 0
    store.append(pa.Table.from_pylist([fine]), table=table)
    assert store.read(table).column(column).to_pylist() == [fine[column]]


def test_a_refusal_names_the_callers_row_through_a_stream_and_a_large_batch(tmp_path: Any) -> None:
    """A stream's row is counted from its first batch; a batch large enough to be written in
    slices, sorted first, names the caller's row (the bad one sorts first: ``AAPL`` < ``acme``)."""
    store = Store.create(tmp_path / "store")
    with pytest.raises(SchemaMismatch, match="^row index 5, column 'entity': 'AAPL'"):
        store.append_stream([_batch(3), _batch(3, entity="AAPL")])
    n = STREAM_MIN_ROWS + 1
    with pytest.raises(SchemaMismatch, match=f"^row index {n - 1}, column 'entity': 'AAPL'"):
        store.append(_batch(n, entity="AAPL"))
    assert store.read().num_rows == 0
