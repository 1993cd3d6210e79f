"""The drop folder: each file once, then moved; rejected files beside a report; nothing lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ingest import Catalog, ingest_file
from ingest.jobs import load_jobs
from ingest.runner import run_job
from store import Store
from tests.conftest import fact, write_csv
from tests.ingest.jobhelpers import event_ids, runs, write_jobs


def drop_job(tmp_path: Path, extra: str = "") -> Path:
    return write_jobs(tmp_path / "jobs.toml", f"""
[jobs.drops]
trigger = {{ interval = "1h" }}
retry = {{ attempts = 2, backoff = "1s" }}
source = {{ type = "drop_folder", path = "drop", settle = 0 {extra} }}
""")


def test_files_are_ingested_once_and_moved_rejected_ones_beside_a_report(tmp_path: Path, store: Store,
                                                                          catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_csv(drop / "a.csv", [fact(), fact(period="FY2023", value="90")])
    write_csv(drop / "b.csv", [fact(metric="deliveries", unit="vehicles", value="12")])
    write_csv(drop / "bad.csv", [fact(value="a lot")])
    config = load_jobs(drop_job(tmp_path))
    result = run_job(config, "drops", store, catalog)
    assert result.status == "partial" and result.outcome.added == 3 and result.outcome.rejected == 1
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == []
    assert sorted(p.name for p in (drop / "processed").iterdir()) == ["a.csv", "b.csv"]
    assert sorted(p.name for p in (drop / "quarantine").iterdir()) == ["bad.csv", "bad.csv.report.txt"]
    report = (drop / "quarantine" / "bad.csv.report.txt").read_text()
    assert "a lot" in report and "is not a number" in report and result.run_id in report
    (rec,) = runs(store, "drops")
    assert rec["status"] == "partial" and rec["added"] == 3 and rec["inputs_read"] == 3
    assert "bad.csv" in str(rec["error"])


def test_a_file_dropped_twice_adds_nothing_and_nothing_is_overwritten(tmp_path: Path, store: Store,
                                                                       catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = load_jobs(drop_job(tmp_path))
    write_csv(drop / "q.csv", [fact()])
    assert run_job(config, "drops", store, catalog).outcome.added == 1
    write_csv(drop / "q.csv", [fact()])
    again = run_job(config, "drops", store, catalog)
    assert again.status == "ok" and again.outcome.added == 0 and again.outcome.already_present == 1
    write_csv(drop / "q.csv", [fact(value="101")])          # same name, new content: both kept
    assert run_job(config, "drops", store, catalog).outcome.added == 1
    kept = sorted(p.name for p in (drop / "processed").iterdir())
    assert len(kept) == 2 and "q.csv" in kept
    assert len(event_ids(store)) == 2


def test_files_being_written_and_temporary_names_wait_for_the_next_run(tmp_path: Path, store: Store,
                                                                        catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("report.csv.part", "~$book.csv", ".hidden.csv", "upload.tmp"):
        write_csv(drop / name, [fact()])
    growing = drop / "growing.csv"
    write_csv(growing, [fact()])
    stop = threading.Event()

    def writer() -> None:  # a slow upload: the file grows while the job looks at it
        with growing.open("a", encoding="utf-8") as fh:
            i = 0
            while not stop.is_set():
                fh.write(f"acme,revenue,,,FY{2000 + i % 20},,,{i},,USD m,,,2025-02-01,acme-10k,,,,,\n")
                fh.flush()
                i += 1
                time.sleep(0.02)

    t = threading.Thread(target=writer)
    t.start()
    try:
        config = load_jobs(write_jobs(tmp_path / "jobs.toml", f"""
[jobs.drops]
trigger = {{ interval = "1h" }}
source = {{ type = "drop_folder", path = "{drop}", settle = "0.5s" }}
"""))
        result = run_job(config, "drops", store, catalog)
    finally:
        stop.set()
        t.join()
    assert result.status == "skipped" and result.outcome.inputs == []
    assert growing.exists() and not (drop / "processed").exists()
    assert event_ids(store) == set()
    later = run_job(config, "drops", store, catalog)        # the upload finished: now it is taken
    assert later.outcome.inputs == [str(growing)] and not growing.exists()
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == [".hidden.csv", "report.csv.part",
                                                                     "upload.tmp", "~$book.csv"]


def test_a_file_ingested_but_not_moved_before_a_crash_is_simply_moved(tmp_path: Path, store: Store,
                                                                      catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    f = write_csv(drop / "a.csv", [fact(), fact(period="FY2023")])
    first = ingest_file(store, f, catalog=catalog)     # the state a kill -9 between ingest and move leaves
    assert first.added == 2 and f.exists()
    result = run_job(load_jobs(drop_job(tmp_path)), "drops", store, catalog)
    assert result.status == "ok" and result.outcome.added == 0 and result.outcome.already_present == 2
    assert (drop / "processed" / "a.csv").exists() and not f.exists()
    assert len(event_ids(store)) == 2


def test_a_mapped_table_dropped_is_detected_by_its_mapping(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    mapping = tmp_path / "kpi.toml"
    mapping.write_text('name = "k"\nentity = "acme"\nsource = "acme-kpi"\n[period]\nyear = "year"\nquarter = "q"\n'
                       '[reported_at]\ndays_after_period_end = 20\n'
                       '[columns.stores]\nmetric = "store_count"\nunit = "stores"\ninstant = true\n')
    (drop / "kpi.csv").write_text("year,q,stores\n2024,1,10\n2024,2,12\n")
    config = load_jobs(drop_job(tmp_path, f', mapping = "{mapping}"'))
    result = run_job(config, "drops", store, catalog)
    assert result.status == "ok" and result.outcome.added == 2
    assert (drop / "processed" / "kpi.csv").exists()


def test_a_second_rejected_file_of_the_same_name_keeps_both_reports(tmp_path: Path, store: Store,
                                                                    catalog: Catalog) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = load_jobs(drop_job(tmp_path))
    write_csv(drop / "bad.csv", [fact(value="first")])
    run_job(config, "drops", store, catalog)
    write_csv(drop / "bad.csv", [fact(value="second")])
    run_job(config, "drops", store, catalog)
    q = drop / "quarantine"
    files = sorted(p.name for p in q.iterdir())
    assert len(files) == 4
    for data in (p for p in q.iterdir() if not p.name.endswith(".report.txt")):
        word = "first" if "first" in data.read_text() else "second"
        assert word in data.with_name(data.name + ".report.txt").read_text()
