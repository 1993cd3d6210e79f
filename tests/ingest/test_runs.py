"""The run log: every run records its outcome; the `ingest_runs` view shows one row per run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ingest import Catalog, RunLog, ingest_recorded
from queries import MetricStore
from store import Store
from tests.conftest import ROOT, fact, run_cli, write_csv


def runs(store: Store) -> list[dict[str, object]]:
    with MetricStore(store) as ms:
        return ms.sql("SELECT * FROM ingest_runs ORDER BY started").to_dicts()


def test_a_recorded_ingest_is_one_run_whose_id_the_events_carry(tmp_path: Path, store: Store,
                                                                  catalog: Catalog) -> None:
    good = write_csv(tmp_path / "good.csv", [fact(), fact(period="FY2023", value="90")])
    first = ingest_recorded(store, [good], catalog=catalog, job="manual-load")
    again = ingest_recorded(store, [good], catalog=catalog, job="manual-load")
    rows = runs(store)
    assert [(r["job"], r["status"], r["added"], r["already_present"], r["inputs_read"]) for r in rows] == [
        ("manual-load", "ok", 2, 0, 1), ("manual-load", "ok", 0, 2, 1)]
    assert rows[0]["run_id"] == first.run_id and rows[1]["run_id"] == again.run_id
    assert rows[0]["inputs"] == [str(good)] and rows[0]["finished"] >= rows[0]["started"]
    with MetricStore(store) as ms:
        assert set(ms.sql("SELECT DISTINCT run_id FROM events")["run_id"]) == {first.run_id}


def test_rejected_and_mixed_runs_are_failed_and_partial(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    good = write_csv(tmp_path / "good.csv", [fact()])
    bad = write_csv(tmp_path / "bad.csv", [fact(value="lots")])
    ingest_recorded(store, [bad], catalog=catalog, job="j")
    ingest_recorded(store, [good, bad], catalog=catalog, job="j")
    failed, partial = runs(store)
    assert failed["status"] == "failed" and failed["rejected"] == 1 and "bad.csv" in str(failed["error"])
    assert partial["status"] == "partial" and partial["added"] == 1 and partial["inputs_read"] == 2


def test_the_view_is_empty_not_an_error_on_a_store_without_a_run_log(store: Store) -> None:
    shutil.rmtree(store.root / "runs")
    assert runs(store) == []


def test_a_killed_run_stays_running_until_the_next_run_marks_it_failed(tmp_path: Path, store: Store,
                                                                        catalog: Catalog) -> None:
    code = ("import os, sys; from ingest import RunLog; from store import Store;"
            "RunLog(Store(sys.argv[1])).start('nightly', trigger='schedule'); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(store.root)], cwd=ROOT, timeout=120)
    assert proc.returncode == -9
    assert [r["status"] for r in runs(store)] == ["running"]
    ingest_recorded(store, [write_csv(tmp_path / "a.csv", [fact()])], catalog=catalog, job="nightly")
    killed, ok = runs(store)
    assert killed["status"] == "failed" and "interrupted" in str(killed["error"])
    assert ok["status"] == "ok"
    assert RunLog(store).last_outcome()["nightly"]["status"] == "ok"


def test_metricstore_ingest_records_its_run(tmp_path: Path) -> None:
    root = tmp_path / "store"
    path = write_csv(tmp_path / "x.csv", [fact()])
    assert run_cli("ingest", str(path), store=root).returncode == 0
    out = run_cli("sql", "SELECT job, status, added FROM ingest_runs", "--format", "csv", store=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == ["ingest,ok,1"]
