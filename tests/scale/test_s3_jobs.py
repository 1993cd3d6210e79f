"""Scheduled ingestion into an ``s3://`` store: a real APScheduler, a real drop folder, a real S3 server.

What belongs to the machine (the scheduler's SQLite job store, the job and scheduler locks, the
jobs' small state) lives in the store's local state folder (``METRICSTORE_STATE_DIR``); the bucket
holds only the store: events, entities, metrics and the run log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.jobs import load_jobs
from ingest.runs import RunLog
from ingest.scheduler import JOBSTORE_FILE, Scheduler, SchedulerRunning, read_next_runs
from queries import MetricStore
from store import Store
from store.backends import local_state
from tests.conftest import CATALOG, ROOT, fact, run_cli, write_csv
from tests.ingest.jobhelpers import poll, write_jobs
from tests.scale.conftest import s3_keys, s3_root

pytestmark = pytest.mark.usefixtures("s3_server")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("METRICSTORE_STATE_DIR", str(folder))
    return folder


def drop_job(path: Path, drop: Path, trigger: str = '{ interval = "1s" }') -> Path:
    return write_jobs(path, f"""
[jobs.drops]
trigger = {trigger}
source = {{ type = "drop_folder", path = "{drop}", settle = 0 }}
""")


def finished(store: Store, job: str) -> list[dict[str, object]]:
    return [r for r in RunLog(store).latest() if r["job"] == job and r["status"] != "running"]


def test_a_scheduled_drop_folder_job_ingests_into_an_s3_store(tmp_path: Path, state_dir: Path) -> None:
    store = Store.create(s3_root("jobs"))
    drop = tmp_path / "drop"
    drop.mkdir()
    config = load_jobs(drop_job(tmp_path / "jobs.toml", drop))
    sched = Scheduler(config, store, CATALOG)
    sched.start()
    try:
        with pytest.raises(SchedulerRunning):           # one scheduler per store (on this machine)
            Scheduler(config, Store(str(store.root)), CATALOG).start()
        write_csv(drop / "a.csv", [fact(), fact(period="FY2023", value="90", reported_at="2024-02-01")])
        poll(lambda: (drop / "processed" / "a.csv").exists(), what="a.csv processed")
        write_csv(drop / "bad.csv", [fact(value="not a number")])
        poll(lambda: (drop / "quarantine" / "bad.csv").exists(), what="bad.csv quarantined")
        poll(lambda: {r["status"] for r in finished(store, "drops")} >= {"ok", "failed"}, what="ok and failed runs")
    finally:
        sched.shutdown()

    # the events are in the bucket, read back through the sandboxed helper
    with MetricStore(str(store.root)) as ms:
        facts = ms.sql("SELECT period, value FROM facts ORDER BY period")
        log = ms.sql("SELECT job, \"trigger\", status, added, rejected, inputs FROM ingest_runs "
                     "WHERE status <> 'skipped' ORDER BY started")
    assert facts.rows() == [("FY2023", 90e6), ("FY2024", 100e6)]
    assert set(log["trigger"]) == {"schedule"} and set(log["job"]) == {"drops"}
    ok = log.filter(log["status"] == "ok").row(0, named=True)
    failed = log.filter(log["status"] == "failed").row(0, named=True)
    assert ok["added"] == 2 and ok["inputs"] == [str(drop / "a.csv")]
    assert failed["added"] == 0 and failed["rejected"] == 1 and failed["inputs"] == [str(drop / "bad.csv")]
    assert (drop / "quarantine" / "bad.csv.report.txt").is_file()

    # the machine's state is local; the bucket holds the store only
    state = local_state(store.root)
    assert state.is_relative_to(state_dir) and (state / JOBSTORE_FILE).is_file()
    assert "drops" in read_next_runs(store)
    keys = s3_keys(str(store.root))
    top = {k.split(str(store.root).split("metricstore-test/", 1)[1] + "/", 1)[1].split("/")[0] for k in keys}
    assert top <= {"metricstore.json", "events", "entities", "metrics", "runs", "quarantine"}, top
    assert not (ROOT / "s3:").exists()


def test_jobs_run_and_jobs_runs_cli_on_an_s3_store(tmp_path: Path, state_dir: Path) -> None:
    root = s3_root("jobs")
    drop = tmp_path / "drop"
    drop.mkdir()
    config = drop_job(tmp_path / "jobs.toml", drop, '{ cron = "0 3 * * *" }')
    write_csv(drop / "a.csv", [fact()])
    env = {"METRICSTORE_STATE_DIR": str(state_dir)}
    run = run_cli("jobs", "run", "drops", "--config", str(config), "--store", root, env=env)
    assert run.returncode == 0, run.stderr
    assert "drops: ok: 1 input(s), 1 events added" in run.stdout
    runs = run_cli("jobs", "runs", "drops", "--format", "csv", "--store", root, env=env)
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.splitlines()[1].startswith("drops,") and ",manual,ok," in runs.stdout
    listing = run_cli("schedule", "list", "--config", str(config), "--store", root, "--format", "csv", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "drops,drop_folder,cron 0 3 * * * (UTC),true," in listing.stdout and ",ok," in listing.stdout
    assert (drop / "processed" / "a.csv").is_file() and not (ROOT / "s3:").exists()
