"""A scheduled maintenance job: the store's upkeep (compaction, the growth projections) on a trigger."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.jobs import load_jobs
from ingest.runner import run_job
from ingest.scheduler import Scheduler
from queries import MetricStore
from queries.projections import FOLDER
from store import Store
from store.compaction import live_files
from tests.conftest import CATALOG, fact, run_cli
from tests.ingest.jobhelpers import poll, runs, write_jobs

UPKEEP = """
[jobs.upkeep]
trigger = {{ {trigger} }}
source = {{ type = "maintenance", full = true }}
"""


def test_a_scheduled_maintenance_job_compacts_and_projects(tmp_path: Path, store: Store,
                                                                         ingest_rows) -> None:
    for year in (2022, 2023, 2024):
        assert ingest_rows([fact(period=f"FY{year}", value=str(100 + year - 2022))]).ok   # three commits
    assert len(live_files(store)) >= 3
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", UPKEEP.format(trigger='interval = "1s"')))
    sched = Scheduler(config, store, CATALOG)
    sched.start()
    try:
        poll(lambda: any(r["status"] == "ok" for r in runs(store, "upkeep")), what="an ok upkeep run")
    finally:
        sched.shutdown()
    assert list((store.root / FOLDER).glob("projection-*.json"))
    with MetricStore(store) as ms:
        assert ms.series("acme", "revenue")["yoy_change"].to_list() == [None, 1e6, 1e6]
    assert len(live_files(store)) == 1
    assert run_cli("verify", store=store.root).returncode == 0


def test_a_maintenance_run_records_what_each_step_did(tmp_path: Path, store: Store, ingest_rows) -> None:
    assert ingest_rows([fact()]).ok and ingest_rows([fact(period="FY2023", value="90")]).ok
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", UPKEEP.format(trigger='cron = "0 3 * * *"')))
    result = run_job(config, "upkeep", store, CATALOG)
    assert result.status == "ok", result.summary()
    assert any(re.match(r"events: merged \d+ file\(s\), 2 rows", i) for i in result.outcome.inputs)
    assert any(re.match(r"projections: 2 growth versions in the base", i) for i in result.outcome.inputs)


def test_a_failed_maintenance_run_is_recorded_with_the_command_s_own_message(tmp_path: Path, store: Store,
                                                                            ingest_rows) -> None:
    assert ingest_rows([fact()]).ok and ingest_rows([fact(period="FY2023", value="90")]).ok
    assert not (store.root / FOLDER).exists()
    (store.root / FOLDER).write_text("not a folder")        # the projection step cannot write
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", UPKEEP.format(trigger='cron = "0 3 * * *"')))
    result = run_job(config, "upkeep", store, CATALOG)
    assert result.status == "failed" and result.error is not None
    assert "metricstore compact exited 2" in result.error and "Traceback" not in result.error
    assert f"{FOLDER}: is not a folder" in result.error
    recorded = [r for r in runs(store, "upkeep") if r["status"] == "failed"]
    assert len(recorded) == 1 and recorded[0]["error"] == result.error
    with MetricStore(store) as ms:                             # the merge before it stands; answers unchanged
        assert ms.series("acme", "revenue")["value"].to_list() == [90e6, 100e6]
    assert len(live_files(store)) == 1 and run_cli("verify", store=store.root).returncode == 0
