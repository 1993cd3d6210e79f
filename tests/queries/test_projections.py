"""The growth projections: read only for the entities they describe, so never a stale answer.

Every test compares answers read from projections against answers computed from the events
(``METRICSTORE_PROJECTIONS=0``, the reference). To prove a projection is read (or not), some tests
doctor the newest one, every value doubled, with a manifest that vouches for it: an answer that
comes back doubled was read from the projection.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import queries.projections as projections_module
import queries.projector as projector_module
from ingest import EntityDef, ingest_paths, set_entity
from queries import MetricStore, projected
from queries.helper import SERIES_COLUMNS, SERIES_ORDER
from queries.projections import FOLDER, NOW_DAY
from queries.projector import project
from store import Store
from store.compaction import CompactionPolicy, compact
from tests.conftest import fact, run_cli
from tests.queries.projection_checks import doctor, newest, rich_rows, whole
from tests.queries.test_sec_filings import FILES, sec_file

@pytest.fixture
def rich(ingest_rows, store: Store) -> Store:
    assert set_entity(store, EntityDef("beta", "Beta", None, None, 6))
    assert ingest_rows(rich_rows()).ok
    return store


def computed(ms: MetricStore, monkeypatch: pytest.MonkeyPatch, fn) -> pl.DataFrame:
    with monkeypatch.context() as m:
        m.setenv("METRICSTORE_PROJECTIONS", "0")
        return fn()


def series_keys(ms: MetricStore) -> list[tuple[str, str, str]]:
    return ms.sql("SELECT DISTINCT entity, metric, segment FROM growth ORDER BY ALL").rows()


def dates(ms: MetricStore) -> list[object]:
    """Every date anything was published, and the day before."""
    return ms.sql("SELECT DISTINCT d FROM (SELECT reported_at AS d FROM events UNION ALL "
                  "SELECT reported_at - 1 FROM events) ORDER BY d")["d"].to_list()


def test_the_projection_is_the_computed_view(rich: Store, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = computed(ms, monkeypatch, lambda: whole(ms))
    snap = project(rich)
    assert snap is not None
    stored = pl.read_parquet(snap.base.file)
    assert stored.filter(pl.col("valid_to") == dt.date(9999, 12, 31)).height == expected.height
    # a reported row stores no copy of its own id; a derived one names its inputs
    assert stored.filter(~pl.col("derived"))["derived_from"].null_count() == stored.filter(~pl.col("derived")).height
    assert stored.filter(pl.col("derived"))["derived_from"].list.len().min() >= 2
    assert expected.filter(~pl.col("derived"))["derived_from"].list.len().max() == 1
    assert_frame_equal(whole(ms), expected)
    for entity, metric, segment in series_keys(ms):
        want = computed(ms, monkeypatch, lambda: ms.series(entity, metric, segment))
        assert_frame_equal(ms.series(entity, metric, segment), want)
        for freq in ("FY", "Q"):
            want = computed(ms, monkeypatch, lambda: ms.series(entity, metric, segment, freq=freq))
            assert_frame_equal(ms.series(entity, metric, segment, freq=freq), want)


def test_answers_now_and_as_of_a_date_read_the_projection(rich: Store, ms: MetricStore) -> None:
    true = whole(ms)
    true_as_of = whole(ms, as_of="2024-12-31")
    project(rich)
    doctor(rich)
    assert whole(ms)["value"].to_list() == [v * 2 for v in true["value"].to_list()]
    assert ms.series("acme", "revenue", freq="FY")["value"].to_list() == [220e6, 242e6, 240e6]
    doubled = whole(ms, as_of="2024-12-31")
    assert doubled["value"].to_list() == [v * 2 for v in true_as_of["value"].to_list()]
    assert ms.series("acme", "revenue", freq="FY", as_of="2025-06-30")["value"].to_list() == [220e6, 242e6, 240e6]
    assert ms.series("acme", "revenue", freq="FY", as_of="2024-06-30")["value"].to_list() == [220e6, 230e6]
    assert_frame_equal(whole(ms, as_of="2024-12-31", as_recorded="2099-01-01"), doubled)


def test_a_series_across_many_row_groups_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One series is read with polars, which skips the row groups whose statistics exclude it: with
    2,048-row groups (DuckDB's smallest) series straddle their boundaries, and each must come back
    whole, now and as of a date, read from the file (not the view) and equal to the computed answer."""
    from benchmarks.data import entity_batch, metric_records

    store = Store.create(tmp_path / "store")
    store.append(metric_records(), table="metrics")
    store.append_stream(entity_batch(i, 1) for i in range(12))
    monkeypatch.setattr(projector_module, "ROW_GROUP_ROWS", 2048)
    snap = project(store)
    assert snap is not None
    assert pq.read_metadata(snap.base.file).num_row_groups > 6
    with MetricStore(store) as ms:
        for d in (None, "2018-06-30", "2021-02-14", "2024-12-31"):
            for i in range(12):
                entity = f"co{i:06d}"
                for metric in ("revenue", "total_assets"):
                    want = computed(ms, monkeypatch, lambda: ms.series(entity, metric, as_of=d))
                    assert want.height > 0
                    assert_frame_equal(ms.series(entity, metric, as_of=d), want)
                    day = NOW_DAY if d is None else dt.date.fromisoformat(d)
                    direct = projected.series(snap.layer_of(entity), {"entity": entity, "metric": metric}, day,
                                              list(SERIES_COLUMNS), SERIES_ORDER)
                    assert direct is not None
                    assert_frame_equal(direct, want)
        assert ms.series("nobody", "revenue").height == 0


def test_a_screen_of_one_metric_reads_the_projection(
        rich: Store, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """One metric across every entity, now and as of a date, and one entity's metrics, are read
    from the projection and equal the computed answers."""
    asked = [{"metric": "revenue"}, {"metric": "revenue", "as_of": "2024-12-31"}, {"entity": "acme"}]
    want = [computed(ms, monkeypatch, lambda: ms.growth(**kw)) for kw in asked]
    project(rich)
    for kw, expected in zip(asked, want, strict=True):
        assert_frame_equal(ms.growth(**kw), expected)
    doctor(rich)
    for kw, expected in zip(asked, want, strict=True):
        assert expected.height > 0
        assert ms.growth(**kw)["value"].to_list() == [v * 2 for v in expected["value"].to_list()]


def test_a_screen_reads_each_entity_from_its_newest_layer_and_computes_the_changed_ones(
        rich: Store, ingest_rows, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Screens over a base and a delta layer equal the computed answers: filters on text, on a
    number (``fy``), by a text the view reads as a date, with ``as_of``; and after a commit the
    projection has not seen, with the changed entity computed."""
    asked: list[dict[str, object]] = [{"metric": "revenue", "ptype": "FY"}, {"metric": "revenue", "fy": 2024},
                                      {"metric": "revenue", "period_end": "2024-12-31"},
                                      {"metric": "revenue", "ptype": "Q", "as_of": "2024-12-31"},
                                      {"metric": "revenue", "entity": "beta", "as_of": "2025-12-31"}]

    def check() -> None:
        for kw in asked:
            want = computed(ms, monkeypatch, lambda: ms.growth(**kw))
            assert want.height > 0 and set(want["entity"]) <= {"acme", "beta"}
            assert_frame_equal(ms.growth(**kw), want)

    project(rich)
    assert ingest_rows([fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    check()                                     # beta changed: computed; acme read
    found = project(rich)
    assert found is not None and [sorted(d.entities or ()) for d in found.deltas] == [["beta"]]
    check()                                     # beta read from the delta, acme from the base
    # the reads above came from the files through polars, not the view: the same rows straight from it
    columns, order = ms.growth(metric="revenue").columns, ["entity", "metric", "segment", "dims", "ptype",
                                                           "period_end", "period", "unit", "kind"]
    direct = projected.rows_where(found, {"metric": "revenue", "ptype": "FY"}, NOW_DAY, columns, order)
    assert direct is not None and direct.height > 0
    assert_frame_equal(direct, ms.growth(metric="revenue", ptype="FY"))
    assert projected.rows_where(found, {"metric": "revenue", "period_end": "2024-12-31"}, NOW_DAY, columns,
                                order) is None      # a text the view reads as a date: the view answers
    doctor(rich)
    want = computed(ms, monkeypatch, lambda: ms.growth(metric="revenue", ptype="FY"))
    got = ms.growth(metric="revenue", ptype="FY")
    assert set(got["entity"]) == {"acme", "beta"}
    assert got["value"].to_list() == [v * 2 for v in want["value"].to_list()]


def test_the_versions_answer_as_of_every_date_like_the_computed_view(
        rich: Store, ingest_rows, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def check() -> None:
        for d in dates(ms):
            expected = computed(ms, monkeypatch, lambda: whole(ms, as_of=d))
            assert_frame_equal(whole(ms, as_of=d), expected)
            for entity in ("acme", "beta"):
                want = computed(ms, monkeypatch, lambda: ms.series(entity, "revenue", as_of=d))
                assert_frame_equal(ms.series(entity, "revenue", as_of=d), want)

    project(rich)
    check()
    # a newer commit: acme's answers are computed, beta's still read from the versions
    assert ingest_rows([fact(period="FY2023", value="119", source="amended", reported_at="2024-06-01"),
                        fact(period="2025Q1", value="31", reported_at="2025-04-20")]).ok
    check()


def test_a_commit_after_the_projection_is_seen(rich: Store, ingest_rows, ms: MetricStore) -> None:
    project(rich)
    doctor(rich)
    assert ingest_rows([fact(period="FY2025", value="130", reported_at="2026-03-01")]).ok
    fy = ms.series("acme", "revenue", freq="FY")        # acme's events changed: computed
    assert fy["value"].to_list() == [110e6, 121e6, 120e6, 130e6]
    beta = ms.series("beta", "revenue", freq="FY")       # beta's did not: still the projection's
    assert beta["value"].to_list() == [100e6, 102e6, 104e6]
    view = whole(ms)                                     # the view: acme computed, beta read
    acme_fy = view.filter((pl.col("entity") == "acme") & (pl.col("metric") == "revenue")
                          & (pl.col("segment") == "total") & (pl.col("ptype") == "FY"))
    assert acme_fy["value"].to_list() == [110e6, 121e6, 120e6, 130e6]
    beta_fy = view.filter((pl.col("entity") == "beta") & (pl.col("ptype") == "FY"))
    assert beta_fy["value"].to_list() == [100e6, 102e6, 104e6]


def test_one_series_reads_the_projection_however_many_other_entities_changed(
        rich: Store, ingest_rows, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap on recomputed entities the whole view is computed; one series of an
    untouched entity is still read from the projection (its own entity is all it asks about)."""
    project(rich)
    doctor(rich)
    monkeypatch.setattr(projections_module, "MAX_RECOMPUTED", 2)
    others = [fact(entity=f"other{i}", period="FY2024", value="1", reported_at="2025-03-01") for i in range(3)]
    assert ingest_rows(others).ok                         # three entities changed: past the cap of 2
    beta = ms.series("beta", "revenue", freq="FY")
    assert beta["value"].to_list() == [100e6, 102e6, 104e6]           # the doctored projection: read
    assert ms.series("other1", "revenue")["value"].to_list() == [1e6]  # a changed entity: computed
    view = whole(ms).filter((pl.col("entity") == "beta") & (pl.col("ptype") == "FY"))
    assert view["value"].to_list() == [50e6, 51e6, 52e6]               # the whole view: computed


def test_the_view_over_a_projection_and_newer_commits_is_the_computed_view(
        rich: Store, ingest_rows, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    project(rich)
    assert ingest_rows([fact(period="2024Q4", value="33", reported_at="2025-03-02"),       # a reported Q4
                        fact(entity="gamma", period="FY2024", value="7"),                  # a new entity
                        fact(entity="gamma", period="FY2023", value="5")]).ok
    assert ingest_rows([fact(entity="beta", metric="gross_margin", period="FY2024", value="41", unit="%")]).ok
    expected = computed(ms, monkeypatch, lambda: whole(ms))
    assert {"gamma"} < set(expected["entity"].to_list())
    assert_frame_equal(whole(ms), expected)
    for entity, metric, segment in series_keys(ms):
        want = computed(ms, monkeypatch, lambda: ms.series(entity, metric, segment))
        assert_frame_equal(ms.series(entity, metric, segment), want)


def test_a_withdrawal_after_the_refresh_is_seen(rich: Store, ingest_rows, ms: MetricStore) -> None:
    wrong = ms.sql("SELECT event_id FROM facts WHERE entity = 'beta' AND period = 'FY2024' AND segment = 'total' "
                   "AND metric = 'revenue'")["event_id"][0]
    project(rich)
    doctor(rich)
    assert ingest_rows([fact(entity="beta", value="", op="retract", supersedes=wrong, source="b",
                             reported_at="2025-03-05")]).ok
    assert ms.series("beta", "revenue", freq="FY")["period"].to_list() == ["FY2022", "FY2023"]


def test_compaction_keeps_the_projection_while_it_can_prove_it_current(
        rich: Store, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = whole(ms)
    project(rich)
    doctor(rich)
    compact(rich, full=True, grace_s=3600, policy=CompactionPolicy(auto=False))
    assert whole(ms)["value"].to_list() == [v * 2 for v in expected["value"].to_list()]   # still read
    compact(rich, full=True, grace_s=0, policy=CompactionPolicy(auto=False))   # manifests dropped:
    assert_frame_equal(whole(ms), expected)                                     # unprovable, computed


def test_a_new_fiscal_calendar_is_seen(rich: Store, ms: MetricStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "FY2024" in ms.series("beta", "revenue")["period"].to_list()    # years end in June
    project(rich)
    doctor(rich)
    assert set_entity(rich, EntityDef("beta", "Beta", None, None, 12))
    labels = computed(ms, monkeypatch, lambda: ms.series("beta", "revenue"))
    assert "FY2024" not in labels["period"].to_list() and "2023Q3" in labels["period"].to_list()
    assert_frame_equal(ms.series("beta", "revenue"), labels)


def test_a_damaged_projection_or_one_of_other_sql_is_ignored(rich: Store, ms: MetricStore) -> None:
    expected = whole(ms)
    snap = project(rich)
    assert snap is not None
    path = snap.base.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_frame_equal(whole(MetricStore(rich)), expected)
    project(rich, rebuild=True)
    doctor(rich)
    meta = newest(rich)
    body = json.loads(meta.read_text())
    body["sql"] = "0" * 16
    meta.write_text(json.dumps(body))
    assert_frame_equal(whole(MetricStore(rich)), expected)


def test_replaced_projections_stay_for_the_grace_period_then_are_deleted(
        rich: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced projection's files stay as long as the log's merged files (a Spark session reads
    them at its first query), then go."""
    monkeypatch.setenv("METRICSTORE_COMPACT_GRACE_S", "300")
    first = project(rich)
    assert first is not None
    rich.append(pl.DataFrame([{"entity": "acme", "metric": "revenue", "period_start": "2029-01-01",
                               "period_end": "2029-12-31", "value": 1.0, "unit": "USD",
                               "reported_at": "2030-01-01", "source": "s"}])
                .with_columns(pl.col("period_start", "period_end", "reported_at").str.to_date()).to_arrow())
    replacing = project(rich, rebuild=True)
    assert replacing is not None and replacing.base.file != first.base.file
    assert first.base.file.exists() and first.manifest.exists()
    assert pl.read_parquet(first.base.file).height == first.base.rows      # still whole, still readable
    monkeypatch.setenv("METRICSTORE_COMPACT_GRACE_S", "0")
    first = project(rich)
    rich.append(pl.DataFrame([{"entity": "acme", "metric": "revenue", "period_start": "2030-01-01",
                               "period_end": "2030-12-31", "value": 1.0, "unit": "USD",
                               "reported_at": "2031-01-01", "source": "s"}])
                .with_columns(pl.col("period_start", "period_end", "reported_at").str.to_date()).to_arrow())
    second = project(rich, rebuild=True)
    assert first is not None and second is not None and first.manifest != second.manifest
    assert {p.name for p in (rich.root / FOLDER).iterdir()} == {
        second.manifest.name, ".lock", second.base.file.name}


def test_compact_command_brings_the_projections_up_to_date(rich: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_cli("compact", store=rich.root)
    assert out.returncode == 0, out.stderr
    assert "projections:" in out.stdout and list((rich.root / FOLDER).glob("projection-*.json"))
    args = ("series", "acme", "revenue", "--freq", "Q", "--format", "csv")
    with_projection = run_cli(*args, store=rich.root)
    without = run_cli(*args, store=rich.root, env={"METRICSTORE_PROJECTIONS": "0"})
    assert with_projection.returncode == 0 and with_projection.stdout == without.stdout
    assert "2024Q4" in with_projection.stdout
    assert run_cli("verify", store=rich.root).returncode == 0


@pytest.mark.slow     # minutes: `make test-slow` (CI runs it)
def test_on_real_filings_the_projection_is_the_computed_view(tmp_path: Path, catalog,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Four companies' SEC companyfacts: three fiscal calendars, restatements, derived quarters."""
    store = Store.create(tmp_path / "store")
    for entity in FILES:
        assert ingest_paths(store, [sec_file(entity)], catalog=catalog).ok
    with MetricStore(store) as ms:
        expected = computed(ms, monkeypatch, lambda: whole(ms))
        assert project(store) is not None
        assert_frame_equal(whole(ms), expected)
        for entity, metric, segment in series_keys(ms)[::7]:
            want = computed(ms, monkeypatch, lambda: ms.series(entity, metric, segment))
            assert_frame_equal(ms.series(entity, metric, segment), want)


# 1MB runs short in the computation; 1KB already while the step's views are created
@pytest.mark.parametrize("limit", ["1MB", "1KB"])
def test_a_refresh_short_of_memory_fails_clearly_and_keeps_the_projection(rich: Store, limit: str) -> None:
    """``METRICSTORE_MEMORY_LIMIT`` caps the refresh (DuckDB spills past it); when even one thread
    cannot finish within it, ``compact`` says so in one line and the previous projection stays."""
    assert run_cli("compact", store=rich.root).returncode == 0
    before = {p.name: p.read_bytes() for p in (rich.root / FOLDER).iterdir()}
    args = ("series", "acme", "revenue", "--freq", "Q", "--format", "csv")
    answer = run_cli(*args, store=rich.root).stdout

    short = run_cli("compact", "--rebuild", store=rich.root, env={"METRICSTORE_MEMORY_LIMIT": limit})
    assert short.returncode != 0 and "Traceback" not in short.stderr, short.stderr
    assert short.stderr.strip().splitlines()[-1] == (
        f"error: the growth projection needs more than {limit} of memory; set METRICSTORE_MEMORY_LIMIT higher "
        f"(say 4GB; default {projector_module.MEMORY_LIMIT}). Answers meanwhile are computed from the events")
    assert {p.name: p.read_bytes() for p in (rich.root / FOLDER).iterdir()} == before   # no leftovers
    assert run_cli(*args, store=rich.root).stdout == answer

    wrong = run_cli("compact", "--rebuild", store=rich.root, env={"METRICSTORE_MEMORY_LIMIT": "lots"})
    assert wrong.returncode != 0 and wrong.stderr.strip().splitlines()[-1] == (
        "error: METRICSTORE_MEMORY_LIMIT='lots' is not a memory size (say 2GB, 512MB or 50%)")

    enough = run_cli("compact", "--rebuild", store=rich.root, env={"METRICSTORE_MEMORY_LIMIT": "256MB"})
    assert enough.returncode == 0 and "projections:" in enough.stdout, enough.stderr
