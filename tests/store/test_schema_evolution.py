"""A store written before a column was added keeps working: its files are read and merged."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from store import Store
from store.compaction import compact


def test_metric_records_written_before_the_formula_columns_are_merged(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "store")
    for i in range(3):
        store.append(pa.table({"metric": [f"m{i}"], "aggregation": ["flow"], "description": [None],
                               "inferred": [False]}), table="metrics")
    for f in (tmp_path / "store" / "metrics").glob("*.parquet"):      # as an earlier version wrote them
        t = pq.read_table(f)
        pq.write_table(t.drop_columns(["formula", "unit"]).replace_schema_metadata(pq.read_metadata(f).metadata), f)
    result = compact(store, table="metrics", full=True, grace_s=0)
    assert result.rows == 3
    merged = store.read("metrics")
    assert sorted(merged.column("metric").to_pylist()) == ["m0", "m1", "m2"]
    assert merged.column("formula").null_count == 3 and merged.column("unit").null_count == 3
