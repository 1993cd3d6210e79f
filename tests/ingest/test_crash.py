"""kill -9 of a scheduler in the middle of a large drop folder, then a restart: same events, no file lost."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ingest import Catalog
from ingest.jobs import load_jobs
from ingest.runner import run_job
from queries import MetricStore
from store import Store
from tests.conftest import ROOT, fact, write_csv
from tests.ingest.jobhelpers import event_ids, poll, runs, write_jobs

FILES = 48
ROWS = 120


def make_inputs(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    for i in range(FILES):
        write_csv(folder / f"batch-{i:03d}.csv",
                  [fact(segment=f"seg{i}", period=f"FY{2000 + j % 25}", value=str(i * 1000 + j),
                        dims=f"line=l{j // 25}") for j in range(ROWS)])
    return sorted(p.name for p in folder.iterdir())


def jobs_file(tmp_path: Path, drop: Path, name: str) -> Path:
    return write_jobs(tmp_path / name, f"""
[jobs.drops]
trigger = {{ interval = "1s" }}
misfire_grace = "10m"
source = {{ type = "drop_folder", path = "{drop}", settle = 0 }}
""")


def start_scheduler(config: Path, store: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "METRICSTORE_STORE": str(store)}
    with log.open("ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "metricstore", "schedule", "run", "--config", str(config)],
                                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def test_a_scheduler_killed_mid_ingest_and_restarted_ends_like_an_uninterrupted_run(tmp_path: Path,
                                                                                    catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    names = make_inputs(drop)
    reference_drop = tmp_path / "reference-drop"
    shutil.copytree(drop, reference_drop)

    # The uninterrupted run of the same inputs.
    reference = Store.create(tmp_path / "reference")
    done = run_job(load_jobs(jobs_file(tmp_path, reference_drop, "ref.toml")), "drops", reference, catalog,
                   terminal=False)
    assert done.status == "ok" and done.outcome.added == FILES * ROWS

    # The same inputs, with the scheduler killed twice part-way through.
    root = tmp_path / "store"
    Store.create(root)
    config = jobs_file(tmp_path, drop, "jobs.toml")
    log = tmp_path / "scheduler.log"
    for at_least in (6, 24):
        proc = start_scheduler(config, root, log)
        try:
            poll(lambda: len(files_in(drop / "processed")) >= at_least, deadline_s=120,
                 what=f"{at_least} files processed ({log.read_text(errors='replace')[-2000:]})")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert len(files_in(drop)) + len(files_in(drop / "processed")) == FILES     # nothing lost
    proc = start_scheduler(config, root, log)
    try:
        store = Store(root)
        poll(lambda: not files_in(drop) and runs(store, "drops") and runs(store, "drops")[-1]["status"] != "running",
             deadline_s=120, what="the drop folder to empty")
    finally:
        proc.send_signal(signal.SIGTERM)              # a clean stop: the run in flight finishes first
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]

    assert files_in(drop / "processed") == names and files_in(drop / "quarantine") == []
    assert event_ids(store) == event_ids(reference)
    with MetricStore(store) as a, MetricStore(reference) as b:
        q = "SELECT count(*) AS n, sum(value) AS s FROM facts"
        assert a.sql(q).row(0) == b.sql(q).row(0)
        assert a.sql("SELECT count(*) FROM events").item() == FILES * ROWS
    statuses = [r["status"] for r in runs(store, "drops")]
    assert "running" not in statuses
    interrupted = [r for r in runs(store, "drops") if "interrupted" in str(r["error"] or "")]
    assert len(interrupted) == 2                     # each killed run is closed by the next one
    # Not a terminal: plain log lines, one per file, instead of a progress bar.
    assert re.search(r"INFO drops: \d+/\d+ batch-\d{3}\.csv: \d+ added", log.read_text(errors="replace"))


def test_sigterm_lets_the_run_in_flight_finish_then_exits_cleanly(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    names = make_inputs(drop)
    root = tmp_path / "store"
    Store.create(root)
    log = tmp_path / "scheduler.log"
    proc = start_scheduler(jobs_file(tmp_path, drop, "jobs.toml"), root, log)
    try:
        poll(lambda: len(files_in(drop / "processed")) >= 2, deadline_s=120, what="the run to be under way")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert files_in(drop) == [] and files_in(drop / "processed") == names    # the run went to its end
    recs = runs(Store(root), "drops")
    assert recs[0]["status"] == "ok" and recs[0]["added"] == FILES * ROWS
    assert all(r["status"] != "running" for r in recs)
    assert "SIGTERM received" in log.read_text(errors="replace")
