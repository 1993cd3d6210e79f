"""The scheduler: a real APScheduler with its SQLite job store in the store folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest import Catalog
from ingest.jobs import load_jobs
from ingest.runner import job_lock, run_job
from ingest.scheduler import Scheduler, SchedulerRunning, read_next_runs
from store import Store
from tests.conftest import CATALOG, fact, write_csv
from tests.ingest.jobhelpers import event_ids, poll, runs, write_jobs


def config_text(drop: Path, trigger: str, grace: str = "10m") -> str:
    return f"""
[jobs.drops]
trigger = {trigger}
misfire_grace = "{grace}"
source = {{ type = "drop_folder", path = "{drop}", settle = 0 }}
"""


def test_jobs_run_on_their_interval_and_land_in_the_run_log(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", config_text(drop, '{ interval = "1s" }')))
    sched = Scheduler(config, store, CATALOG)
    sched.start()
    try:
        write_csv(drop / "a.csv", [fact()])
        poll(lambda: (drop / "processed" / "a.csv").exists(), what="a.csv processed")
        write_csv(drop / "b.csv", [fact(period="FY2023")])
        poll(lambda: (drop / "processed" / "b.csv").exists(), what="b.csv processed")
        poll(lambda: sum(r["added"] for r in runs(store, "drops") if r["status"] == "ok") == 2, what="two ok runs")
    finally:
        sched.shutdown()
    recs = runs(store, "drops")
    assert {r["trigger"] for r in recs} == {"schedule"}
    assert {r["status"] for r in recs} <= {"ok", "skipped"} and len(event_ids(store)) == 2
    assert "drops" in read_next_runs(store)


def test_the_schedule_survives_a_restart_and_a_changed_trigger_is_rescheduled(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "drop"
    path = write_jobs(tmp_path / "jobs.toml", config_text(drop, '{ interval = "1h" }'))
    first = Scheduler(load_jobs(path), store, CATALOG)
    first.start()
    first.shutdown()
    planned = read_next_runs(store)["drops"]
    assert planned is not None and planned > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)
    again = Scheduler(load_jobs(path), store, CATALOG)
    again.start()
    again.shutdown()
    assert read_next_runs(store)["drops"] == planned        # not reset to "an hour from now"
    write_jobs(path, config_text(drop, '{ interval = "3h" }'))
    changed = Scheduler(load_jobs(path), store, CATALOG)
    changed.start()
    changed.shutdown()
    assert read_next_runs(store)["drops"] > planned + dt.timedelta(hours=1)


def test_a_run_missed_within_the_grace_runs_once_and_beyond_it_is_recorded_skipped(tmp_path: Path,
                                                                                   store: Store) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_csv(drop / "a.csv", [fact()])
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat(timespec="seconds")
    path = write_jobs(tmp_path / "jobs.toml", config_text(drop, f'{{ interval = "1h", start = {start} }}'))
    down = Scheduler(load_jobs(path), store, CATALOG)
    down.start()
    down.shutdown()                                           # the scheduler is down when the run is due
    due = read_next_runs(store)["drops"]
    assert due is not None
    poll(lambda: dt.datetime.now(dt.UTC) > due + dt.timedelta(seconds=1), what="the run time to pass")
    up = Scheduler(load_jobs(path), store, CATALOG)
    up.start()
    try:
        poll(lambda: [r for r in runs(store, "drops") if r["status"] == "ok"], what="the missed run")
    finally:
        up.shutdown()
    assert [r["status"] for r in runs(store, "drops")] == ["ok"]          # once, not once per missed slot
    assert (drop / "processed" / "a.csv").exists()

    # Beyond the grace: the missed run is recorded as skipped, not run.
    store2 = Store.create(tmp_path / "store2")
    write_csv(drop / "b.csv", [fact(period="FY2023")])
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat(timespec="seconds")
    path = write_jobs(tmp_path / "jobs.toml", config_text(drop, f'{{ interval = "1h", start = {start} }}', "1s"))
    down = Scheduler(load_jobs(path), store2, CATALOG)
    down.start()
    down.shutdown()
    due = read_next_runs(store2)["drops"]
    poll(lambda: dt.datetime.now(dt.UTC) > due + dt.timedelta(seconds=3), what="the grace to pass")
    up = Scheduler(load_jobs(path), store2, CATALOG)
    up.start()
    try:
        poll(lambda: runs(store2, "drops"), what="the missed-run record")
    finally:
        up.shutdown()
    (rec,) = runs(store2, "drops")
    assert rec["status"] == "skipped" and "missed" in str(rec["error"])
    assert (drop / "b.csv").exists()


def test_a_job_never_runs_twice_at_once_and_one_scheduler_per_store(tmp_path: Path, store: Store,
                                                                   catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_csv(drop / "a.csv", [fact()])
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", config_text(drop, '{ interval = "1h" }')))
    with job_lock(store, "drops"):                            # another run holds the job
        busy = run_job(config, "drops", store, catalog)
    assert busy.status == "skipped" and "already running" in str(busy.error)
    assert (drop / "a.csv").exists()
    assert run_job(config, "drops", store, catalog).status == "ok"
    one = Scheduler(config, store, CATALOG)
    one.start()
    try:
        with pytest.raises(SchedulerRunning):
            Scheduler(config, store, CATALOG).start()
    finally:
        one.shutdown()
