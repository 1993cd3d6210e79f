"""`metricstore entity`: a fiscal calendar recorded by hand labels what is ingested after it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import fact, run_cli, write_csv


def test_entity_fiscal_calendar_labels_later_ingests(tmp_path: Path) -> None:
    root = tmp_path / "s"
    r = run_cli("entity", "junco", "--name", "Junco Ltd", "--fiscal-year-end-month", "6", store=root)
    assert r.returncode == 0 and "recorded" in r.stdout, r.stderr
    assert "unchanged" in run_cli("entity", "junco", "--fiscal-year-end-month", "6", store=root).stdout
    rows = [fact(entity="junco", period="FY2024", value="5", reported_at="2024-08-01")]
    assert run_cli("ingest", str(write_csv(tmp_path / "a.csv", rows)), store=root).returncode == 0
    r = run_cli("sql", "SELECT period_start, period_end, period FROM facts", "--format", "csv", store=root)
    assert r.stdout.splitlines()[1] == "2023-07-01,2024-06-30,FY2024"


def test_unknown_entity_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "s"
    assert run_cli("ingest", str(write_csv(tmp_path / "a.csv", [fact()])), store=root).returncode == 0
    r = run_cli("entity", "nobody", store=root)
    assert r.returncode == 2 and "not known" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("entity", "nobody", store=tmp_path / "elsewhere")
    assert r.returncode == 2 and not (tmp_path / "elsewhere").exists()
