"""The projector follows the log: each step recomputes only what a commit changed, and at every
moment, projected or not yet, every answer equals the reference computed from the events."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

import queries.projector as projector_module
from ingest import EntityDef, set_entity
from ingest.runs import RunLog
from queries import MetricStore, SqlError
from queries.live import list_live
from queries.projections import COVERED, FOLDER, SOURCES, Projections, folder_of
from queries.projector import project
from queries.sandbox import MEMORY_ENV, set_memory_limit
from store import Store
from store.compaction import compact
from tests.conftest import fact, run_cli, write_csv
from tests.queries.projection_checks import KEY, assert_fresh, doctor, reference, retract_across, rich_rows, whole

def layers(store: Store) -> tuple[str, list[list[str]]]:
    """The newest projection's base file and each delta's entities."""
    found = Projections(store).latest()
    assert found is not None
    return found.base.file.name, [sorted(d.entities or ()) for d in found.deltas]


def event_id(ms: MetricStore, entity: str, period: str) -> str:
    return str(ms.sql("SELECT event_id FROM facts WHERE entity = ? AND period = ? AND metric = 'revenue' "
                      "AND segment = 'total'", [entity, period])["event_id"][0])


@pytest.fixture
def rich(ingest_rows, store: Store) -> Store:
    assert set_entity(store, EntityDef("beta", "Beta", None, None, 6))
    assert ingest_rows(rich_rows()).ok
    assert project(store) is not None
    return store


def test_a_commit_is_projected_as_a_delta_of_the_entities_it_touched(rich: Store, ingest_rows) -> None:
    base, deltas = layers(rich)
    assert deltas == []
    assert ingest_rows([fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    assert_fresh(rich)                                   # not projected yet: beta computed
    project(rich)
    assert layers(rich) == (base, [["beta"]])            # the base untouched, beta in a delta
    assert_fresh(rich)
    assert ingest_rows([fact(period="FY2025", value="140", reported_at="2026-03-01")]).ok
    project(rich)
    assert layers(rich)[0] == base and sorted(sum(layers(rich)[1], [])) == ["acme", "beta"]
    assert_fresh(rich)


def test_a_small_steps_connection_serves_the_next_step_over_its_own_listing(
        rich: Store, ingest_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step of a few entities leaves its connection, its views created, to the process's next
    step, which points it at its own listing (not at the files, nor the events narrowed to other
    entities, of the step before) and at the memory limit set now. A step of every entity leaves none."""
    folder = folder_of(rich)

    def kept() -> duckdb.DuckDBPyConnection | None:
        held = projector_module._idle.held
        return held[2] if held is not None and held[:2] == (os.getpid(), folder) else None

    assert kept() is None                                # the fixture's first step computed every entity
    assert ingest_rows([fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    project(rich)
    left = kept()
    assert left is not None
    limit = "SELECT current_setting('memory_limit')"
    assert ingest_rows([fact(period="FY2025", value="140", reported_at="2026-03-01")]).ok
    project(rich)
    assert kept() is left                                # served the step, and kept again
    assert_fresh(rich)
    monkeypatch.setenv(MEMORY_ENV, "300MB")
    assert ingest_rows([fact(entity="beta", period="FY2026", value="65", reported_at="2026-08-15")]).ok
    project(rich)
    assert kept() is left
    expected = duckdb.connect()
    set_memory_limit(expected, "300MB")
    assert left.execute(limit).fetchone() == expected.execute(limit).fetchone()
    assert_fresh(rich)
    project(rich, rebuild=True)
    assert kept() is None
    assert_fresh(rich)


def test_a_kept_connection_too_full_for_a_lower_limit_gives_way_to_a_new_one(
        rich: Store, ingest_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    """A memory limit set below what the kept connection holds is the limit of a new connection:
    too small for the step, the step fails as any step short of memory does; enough, it runs."""
    assert ingest_rows([fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    project(rich)
    assert projector_module._idle.held is not None
    monkeypatch.setenv(MEMORY_ENV, "1KB")
    assert ingest_rows([fact(period="FY2025", value="140", reported_at="2026-03-01")]).ok
    with pytest.raises(SqlError, match="the growth projection needs more than 1KB of memory"):
        project(rich)
    monkeypatch.setenv(MEMORY_ENV, "300MB")
    assert_fresh(rich)                                   # (the reader computes what the step could not)
    project(rich)
    assert Projections(rich).changed(Projections(rich).latest(), list_live(rich, COVERED)) == frozenset()
    assert_fresh(rich)


def test_a_commit_merged_by_a_compaction_before_its_step_is_projected_as_a_delta(rich: Store, ingest_rows) -> None:
    """An automatic compaction runs inside the append, before the writer's projection step: the
    merged file holds covered rows and the new commit's. The step reads which entities that
    commit touched from the merged rows' commit ids, and projects them alone (no rebuild)."""
    base, _ = layers(rich)
    assert ingest_rows([fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    compact(rich, full=True)
    assert len(list_live(rich, ("events",))["events"]) == 1
    assert_fresh(rich)
    project(rich)
    assert layers(rich) == (base, [["beta"]])
    assert_fresh(rich)
    # merged again with its sources deleted at once (no manifest left to tell them): a rebuild
    assert ingest_rows([fact(period="FY2025", value="140", reported_at="2026-03-01")]).ok
    compact(rich, full=True, grace_s=0)
    assert_fresh(rich)
    project(rich)
    rebuilt, deltas = layers(rich)
    assert rebuilt != base and deltas == []
    assert_fresh(rich)


def test_a_rebuild_in_parts_of_a_few_entities_is_the_rebuild_at_once(
        rich: Store, ingest_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PART_EVENTS events a full computation runs entity by entity in parts (its memory then
    follows the part); a withdrawal filed under another entity still reaches the one it names."""
    assert ingest_rows([fact(entity="gamma", period="FY2024", value="7"),
                        fact(entity="delta", period="FY2024", value="9")]).ok
    with MetricStore(rich) as ms:
        retract_across(rich, "gamma", event_id(ms, "beta", "FY2024"))
    at_once = project(rich, rebuild=True)
    monkeypatch.setattr(projector_module, "PART_EVENTS", 12)
    in_parts = project(rich, rebuild=True)
    assert at_once is not None and in_parts is not None
    listing = list_live(rich, projector_module.COVERED)
    with projector_module._Session(rich, listing, rich.root / FOLDER) as s:
        parts = projector_module._parts(s._counts())
    assert parts is not None and len(parts) >= 3 and set().union(*parts) == {"acme", "beta", "gamma", "delta"}
    assert in_parts.base.rows == at_once.base.rows
    assert_frame_equal(pl.read_parquet(in_parts.base.file), pl.read_parquet(at_once.base.file))
    assert_fresh(rich)


def test_a_commit_touching_many_entities_is_projected_as_a_delta_of_them_in_parts(
        rich: Store, ingest_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_NARROWED changed entities a step still computes only those, in parts of about
    PART_EVENTS events, as a delta; changed entities holding most of the events make a new base."""
    base, _ = layers(rich)
    monkeypatch.setattr(projector_module, "MAX_NARROWED", 1)
    monkeypatch.setattr(projector_module, "PART_EVENTS", 2)
    rows = [fact(entity=e, period=f"FY{y}", value=str(v + y - 2022)) for e, v in (("gamma", 7), ("delta", 9))
            for y in (2022, 2023)]
    assert ingest_rows(rows).ok
    with MetricStore(rich) as ms:
        retract_across(rich, "gamma", event_id(ms, "beta", "FY2024"))       # reaches beta, in another part
    assert_fresh(rich)
    project(rich)
    assert layers(rich) == (base, [["beta", "delta", "gamma"]])
    assert_fresh(rich)
    assert ingest_rows([fact(period="FY2025", value="140", reported_at="2026-03-01"),
                        fact(entity="beta", period="FY2025", value="60", reported_at="2025-08-15")]).ok
    project(rich)                                       # acme and beta hold most of the events
    rebuilt, deltas = layers(rich)
    assert rebuilt != base and deltas == []
    assert_fresh(rich)


def test_a_withdrawal_filed_under_another_entity_reaches_the_entity_it_names(rich: Store, ingest_rows) -> None:
    with MetricStore(rich) as ms:
        wrong = event_id(ms, "beta", "FY2024")
    # ingest refuses a withdrawal of another fact; the log holds any a writer appended
    assert ingest_rows([fact(entity="gamma", period="FY2024", value="7")]).ok
    retract_across(rich, "gamma", wrong)
    assert_fresh(rich)
    project(rich)
    assert sorted(sum(layers(rich)[1], [])) == ["beta", "gamma"]
    assert_fresh(rich)
    with MetricStore(rich) as ms:
        assert "FY2024" not in ms.series("beta", "revenue", freq="FY")["period"].to_list()


def test_as_recorded_reads_the_projection_only_for_entities_wholly_recorded_by_then(
        rich: Store, ingest_rows) -> None:
    """At a system time between two commits, the entities the later commit touched (its events, a
    withdrawal it files under another entity, a new fiscal calendar) are computed as recorded then;
    every other entity is read from the projection, which describes it then as now."""
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    assert ingest_rows([fact(period="FY2024", value="131", source="restated", reported_at="2025-04-01"),
                        fact(entity="gamma", period="FY2024", value="7", reported_at="2025-04-01")]).ok
    project(rich)
    ms = MetricStore(rich)
    asked = [{"as_recorded": between}, {"as_recorded": between, "as_of": "2024-12-31"}]
    want = [reference(rich, lambda m, kw=kw: whole(m, **kw)) for kw in asked]
    want_series = reference(rich, lambda m: m.series("acme", "revenue", as_recorded=between))
    doctor(rich)
    for kw, expected in zip(asked, want, strict=True):
        got = whole(ms, **kw)
        # acme was restated after `between`: computed as recorded then (gamma did not exist then)
        assert_frame_equal(got.filter(pl.col("entity") == "acme"), expected.filter(pl.col("entity") == "acme"))
        assert got.filter(pl.col("entity") == "gamma").height == 0
        # beta was wholly recorded by then: read from the (doubled) projection
        assert got.filter(pl.col("entity") == "beta")["value"].to_list() == \
            [v * 2 for v in expected.filter(pl.col("entity") == "beta")["value"].to_list()]
    assert_frame_equal(ms.series("acme", "revenue", as_recorded=between), want_series)
    assert ms.series("beta", "revenue", freq="FY", as_recorded=between)["value"].to_list() == [100e6, 102e6, 104e6]
    # later records of beta (a withdrawal filed under gamma, a fiscal calendar) make it computed too
    retract_across(rich, "gamma", reference(rich, lambda m: m.sql(
        "SELECT event_id FROM facts WHERE entity = 'beta' AND period = 'FY2022' AND metric = 'revenue' "
        "AND segment = 'total'"))["event_id"][0])
    project(rich)
    doctor(rich)
    assert ms.series("beta", "revenue", freq="FY", as_recorded=between)["value"].to_list() == [50e6, 51e6, 52e6]
    withdrawn = dt.datetime.now(dt.UTC)
    assert ms.series("beta", "revenue", freq="FY", as_recorded=withdrawn)["value"].to_list() == [102e6, 104e6]
    time.sleep(0.01)
    assert set_entity(rich, EntityDef("beta", "Beta", None, None, 12))
    project(rich)
    doctor(rich)
    assert ms.series("beta", "revenue", freq="FY", as_recorded=withdrawn)["value"].to_list() == [51e6, 52e6]
    ms.close()


def test_a_new_fiscal_calendar_or_metric_definition_reprojects_whom_it_concerns(rich: Store) -> None:
    assert set_entity(rich, EntityDef("beta", "Beta", None, None, 12))
    assert_fresh(rich)
    project(rich)
    assert layers(rich)[1] == [["beta"]]
    assert_fresh(rich)
    rich.append(pa.table({"metric": ["store_count"], "aggregation": ["flow"], "description": ["as a flow"],
                          "inferred": [False]}), table="metrics")
    assert_fresh(rich)
    project(rich)
    assert sorted(sum(layers(rich)[1], [])) == ["acme", "beta"]    # only acme reports store_count
    assert_fresh(rich)


def test_deltas_merge_and_fold_into_the_base(rich: Store, ingest_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projector_module, "MAX_DELTAS", 3)
    base = layers(rich)[0]
    for i in range(6):
        assert ingest_rows([fact(entity=f"e{i}", period="FY2024", value=str(i + 1))]).ok
        project(rich)
        assert len(layers(rich)[1]) <= 3
    assert layers(rich)[0] == base
    assert sorted(sum(layers(rich)[1], [])) == [f"e{i}" for i in range(6)]
    assert_fresh(rich)
    monkeypatch.setattr(projector_module, "FOLD", 0.0)
    monkeypatch.setattr(projector_module, "FOLD_MIN_ROWS", 0)
    assert ingest_rows([fact(entity="e0", period="FY2023", value="1")]).ok
    project(rich)
    assert layers(rich)[0] != base and layers(rich)[1] == []
    assert_fresh(rich)


def test_a_projection_of_other_sql_is_rebuilt_by_the_next_writer(rich: Store) -> None:
    meta = max((rich.root / FOLDER).glob("projection-*.json"))
    body = json.loads(meta.read_text())
    body["sql"] = "0" * 16
    meta.write_text(json.dumps(body))
    assert Projections(rich).latest() is None           # the views changed: not read
    assert_fresh(rich)
    found = project(rich)
    assert found is not None and found.deltas == ()
    assert_fresh(rich)


def test_only_the_sql_that_computes_a_projection_versions_it(tmp_path: Path) -> None:
    # a copy of the package whose views are edited: editing a view that reads the growth keeps
    # every store's projection; editing one that computes it, or the projector, rebuilds them
    import shutil
    root = Path(__file__).resolve().parents[2]

    def version(edit: str | None) -> str:
        copy = tmp_path / (edit or "none")
        shutil.copytree(root / "queries", copy / "queries", ignore=shutil.ignore_patterns("__pycache__"))
        if edit is not None:
            with (copy / "queries" / edit).open("a", encoding="utf-8") as f:
                f.write("\n-- edited\n" if edit.endswith(".sql") else "\n# edited\n")
        out = subprocess.run([sys.executable, "-c", "from queries.projections import sql_version; print(sql_version())"],
                             env={**os.environ, "PYTHONPATH": f"{copy}{os.pathsep}{root}"},
                             check=True, capture_output=True, text=True, cwd=copy)
        return out.stdout.strip()

    same = version(None)
    assert len(same) == 16
    assert version("sql/70_currency.sql") == same
    assert version("sql/60_checks.sql") == same
    assert version("sql/30_growth.sql") != same
    assert version("sql/10_log.sql") != same
    assert version("projector.py") != same


def test_the_ingest_command_projects_and_a_killed_writer_leaves_no_stale_answer(
        rich: Store, tmp_path: Path) -> None:
    # a writer killed for real between its commit and its projection step
    script = ("import os, signal, sys\nfrom ingest import Catalog, ingest_paths\nfrom store import Store\n"
              "s = Store(sys.argv[1])\nr = ingest_paths(s, [sys.argv[2]], catalog=Catalog.load(sys.argv[3]))\n"
              "assert r.added == 1\nos.kill(os.getpid(), signal.SIGKILL)\n")
    batch = write_csv(tmp_path / "killed.csv", [fact(entity="beta", period="FY2026", value="70",
                                                     reported_at="2026-08-15")])
    from tests.conftest import CATALOG
    died = subprocess.run([sys.executable, "-c", script, str(rich.root), str(batch), str(CATALOG)],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert died.returncode == -9
    assert layers(rich)[1] == []                         # the projection step never ran
    assert_fresh(rich)                                   # readers compute beta meanwhile
    with MetricStore(rich) as ms:
        assert "FY2026" in ms.series("beta", "revenue", freq="FY")["period"].to_list()
    # the next writer (the CLI) catches up, its own commit and the killed one's
    out = run_cli("ingest", str(write_csv(tmp_path / "next.csv", [fact(entity="gamma", value="5")])), store=rich.root)
    assert out.returncode == 0, out.stderr
    found = Projections(rich).latest()
    assert found is not None and not Projections(rich).changed(found, {
        t: rich.live_files(t) for t in ("events", "entities", "metrics")})
    assert sorted(sum(layers(rich)[1], [])) == ["beta", "gamma"]
    assert RunLog(rich).latest()
    assert_fresh(rich)


def test_the_catalog_file_reads_the_projections_and_is_never_stale(rich: Store, ingest_rows) -> None:
    """The catalog's ``growth`` is plain SQL over the manifests and layers: opened as a data team
    opens it, it answers like the reference before and after a commit, projected or not."""
    import duckdb

    from queries.catalog import write_catalog

    path = write_catalog(rich)
    mark = dt.datetime.now(dt.UTC)          # answers as recorded then: what came later is computed

    def catalog_answers(recorded: dt.datetime) -> list[pl.DataFrame]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            out = []
            for as_of, as_recorded in ((None, None), ("2024-12-31", None), (None, recorded), ("2024-12-31", recorded)):
                con.execute("SET VARIABLE as_of = CAST(? AS DATE)", [as_of])
                con.execute("SET VARIABLE as_recorded = ?", [as_recorded])
                out.append(con.sql("SELECT * FROM growth").pl().sort(KEY))
            return out
        finally:
            con.close()

    def check() -> None:
        expected = reference(rich, lambda ms: [
            ms.sql("SELECT * FROM growth", as_of=as_of, as_recorded=as_recorded).sort(KEY)
            for as_of, as_recorded in ((None, None), ("2024-12-31", None), (None, mark), ("2024-12-31", mark))])
        for got, want in zip(catalog_answers(mark), expected, strict=True):
            assert_frame_equal(got.select(want.columns), want)

    check()
    time.sleep(0.01)
    assert ingest_rows([fact(entity="beta", period="FY2025", value="61", reported_at="2025-08-15")]).ok
    check()                                              # beta computed, acme read
    project(rich)
    check()
    with MetricStore(rich) as ms:
        wrong = event_id(ms, "acme", "FY2023")
    retract_across(rich, "beta", wrong)
    check()
    project(rich)
    check()
    doctor(rich)                                         # the projection is what the catalog reads
    want = reference(rich, lambda ms: ms.sql("SELECT * FROM growth").sort(KEY))
    for got in (catalog_answers(mark)[0], catalog_answers(dt.datetime.now(dt.UTC))[2]):
        assert got["value"].to_list() == [v * 2 for v in want["value"].to_list()]


def test_a_scheduled_job_projects_what_it_ingested(tmp_path: Path, store: Store) -> None:
    """Nobody schedules the projection: the scheduler's runs end with it (the CLI hands it over)."""
    from ingest.jobs import load_jobs
    from ingest.scheduler import Scheduler
    from queries.projector import follow
    from tests.conftest import CATALOG
    from tests.ingest.jobhelpers import poll, write_jobs
    from tests.ingest.test_scheduler import config_text

    drop = tmp_path / "drop"
    drop.mkdir()
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", config_text(drop, '{ interval = "1s" }')))
    sched = Scheduler(config, store, CATALOG, after=f"{follow.__module__}:{follow.__name__}")
    sched.start()
    try:
        write_csv(drop / "a.csv", [fact(), fact(entity="beta", value="7")])
        poll(lambda: Projections(store).latest() is not None, what="a projection")
    finally:
        sched.shutdown()
    found = Projections(store).latest()
    assert found is not None
    assert found.covers["events"] == {p.name for p in store.live_files("events")}
    assert_fresh(store)


WRITER = """
import os
import sys
from pathlib import Path
from ingest import Catalog, ingest_paths
from queries.projector import follow
from store import Store
from tests.conftest import fact, write_csv

store, catalog, folder, n = Store(sys.argv[1]), Catalog.load(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
for k in range(1, n + 1):
    batch = write_csv(folder / f"w{k}.csv", [fact(entity="writer", period=f"FY{2000 + k}", value=str(k),
                                                  reported_at=f"{2001 + k}-02-01")])
    assert ingest_paths(store, [batch], catalog=catalog).added == 1
    (folder / "committed.tmp").write_text(str(k))
    os.replace(folder / "committed.tmp", folder / "committed")      # committed, not yet projected
    if k % 2:
        follow(store)                                 # every other commit projected, as a writer would
"""


@pytest.mark.slow     # minutes: `make test-slow` (CI runs it)
def test_readers_beside_a_writer_never_see_a_stale_or_torn_answer(rich: Store, tmp_path: Path) -> None:
    """A writer process commits one fiscal year at a time (value k for the k-th), projecting every
    other commit; a reader queries all along. Every answer holds exactly the first k years for a k
    no smaller than the commits finished before the query began: never stale, never torn."""
    from tests.conftest import CATALOG

    n = 12
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(rich.root), str(CATALOG), str(tmp_path), str(n)],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    seen = []
    with MetricStore(rich) as ms:
        while True:
            done = writer.poll() is not None
            mark = tmp_path / "committed"
            before = int(mark.read_text()) if mark.exists() else 0
            series = ms.series("writer", "revenue", freq="FY")
            view = ms.sql("SELECT value FROM growth WHERE entity = 'writer' ORDER BY period_end")
            screen = ms.growth(metric="revenue", ptype="FY").filter(pl.col("entity") == "writer")
            k = series.height
            assert k >= before and screen.height >= before
            assert screen["value"].to_list() == [float(v) * 1e6 for v in range(1, screen.height + 1)]
            assert series["value"].to_list() == [float(v) * 1e6 for v in range(1, k + 1)]
            assert len(view) >= before and view["value"].to_list() == [float(v) * 1e6 for v in range(1, len(view) + 1)]
            seen.append(k)
            if done:
                break
    assert writer.returncode == 0
    assert seen[-1] == n and len(set(seen)) > 2          # the reader saw the writer at work
    assert_fresh(rich)


def test_a_step_creates_only_what_its_stages_read(rich: Store) -> None:
    import duckdb
    from queries.views import install
    con = duckdb.connect()
    install(con, rich, only=SOURCES, without=projector_module.NOT_READ)
    made = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal UNION ALL "
                                  "SELECT function_name FROM duckdb_functions() WHERE function_type LIKE '%macro' "
                                  "AND NOT internal").fetchall()}
    assert made.isdisjoint(projector_module.NOT_READ)
    assert {"event_log", "metrics", "fact_versions", "placed_versions", "growth_versions_of"} <= made
    assert con.sql("SELECT count(*) FROM fact_versions()").fetchall()[0][0] > 0
