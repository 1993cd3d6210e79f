"""SEC Financial Statement Data Sets: a hand-made quarter (tests/fixtures/fsds/) and the real
2009q3 quarter from ../shared/data (ingested once for the module), alone and beside Apple's
companyfacts."""

from __future__ import annotations

import csv
import datetime as dt
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ingest import Catalog, RunReport, detect_format, ingest_paths
from ingest.chunked import READ_AHEAD
from ingest.sec import read_companyfacts
from queries import MetricStore
from store import Store, label_period
from tests.conftest import ROOT, needs_shared, run_cli, store_files

FIXTURE = ROOT / "tests" / "fixtures" / "fsds"
ACME, BETA = "cik9999901", "cik9999902"
Q3 = "0009999901-24-000010 10-Q"
APPLE_10Q = "0001193125-09-153165 10-Q"


def make_zip(folder: Path, name: str = "2024q3.zip", **members: bytes | None) -> Path:
    """The fixture quarter zipped, with members replaced (bytes) or left out (None)."""
    files = {n: (FIXTURE / n).read_bytes() for n in ("sub.txt", "num.txt", "tag.txt")}
    files.update(members)
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            if data is not None:
                zf.writestr(member, data)
    return path


def fixture_rows() -> list[dict[str, str]]:
    with (FIXTURE / "num.txt").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture
def acme(tmp_path: Path, store: Store, catalog: Catalog) -> Store:
    report = ingest_paths(store, [make_zip(tmp_path)], catalog=catalog)
    assert report.ok, [str(p) for f in report.files for p in f.problems] + [f.error for f in report.files]
    return store


def one(ms: MetricStore, sql: str, params: list[object]) -> dict[str, object]:
    df = ms.sql(sql, params)
    assert df.height == 1, df
    return df.row(0, named=True)


# -- the hand-made quarter ------------------------------------------------------------------------
def test_detected_and_every_valued_row_is_one_event(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    path = make_zip(tmp_path)
    assert detect_format(path) == "sec-fsds"
    valued = [r for r in fixture_rows() if r["value"]]
    first = ingest_paths(store, [path], catalog=catalog)
    assert (first.added, first.rejected) == (len(valued), 0) == (14, 0)
    assert any("1 row(s) without a value" in w for w in first.files[0].warnings)
    again = ingest_paths(store, [path], catalog=catalog)
    assert (again.added, again.already_present) == (0, len(valued))


def test_the_chunks_of_a_quarter_read_alike_twice(tmp_path: Path) -> None:
    """``num.txt`` is parsed once and its blocks kept for the second pass: the reader's chunks
    can still be read again, the same rows each time."""
    from ingest.fsds import read_fsds
    from ingest.readers import Batch

    batch = read_fsds(make_zip(tmp_path))
    assert isinstance(batch, Batch) and batch.chunks is not None
    chunks = batch.chunks
    first, again = (pl.concat(list(chunks())) for _ in range(2))
    assert first.height == 14 and first.equals(again)


def test_rows_follow_the_companyfacts_rules(acme: Store, ms: MetricStore) -> None:
    rev = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'revenue' AND period = '2024Q3' AND dims = ''", [ACME])
    assert (rev["value"], rev["unit"], rev["source"], rev["source_ref"], str(rev["reported_at"])) == (
        1_000_000_000, "USD", Q3, "us-gaap:Revenues", "2024-08-01")
    # ACME's instance is acme-20240629_htm.xml: a 52/53-week year, quarters end on the last Saturday
    assert (str(rev["period_start"]), str(rev["period_end"])) == ("2024-03-31", "2024-06-29")
    shadow = one(ms, "SELECT * FROM events WHERE entity = ? AND metric = 'us-gaap:SalesRevenueNet'", [ACME])
    assert shadow["value"] == 999_000_000 and "shadowed by us-gaap:Revenues" in shadow["note"]
    assert one(ms, "SELECT value FROM facts WHERE entity = ? AND metric = 'revenue' AND period = '9M2024'",
               [ACME])["value"] == 2_900_000_000
    eps = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'eps_diluted'", [ACME])
    assert (eps["value"], eps["unit"]) == (1.23, "USD/share")           # a perShare tag in USD
    custom = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'acme:WidgetBacklog'", [ACME])
    assert (custom["period"], custom["value"]) == ("2024-06-29", 12_000_000)
    assert "footnote: Unaudited." in one(ms, "SELECT note FROM events WHERE event_id = ?", [custom["event_id"]])["note"]
    early = one(ms, "SELECT * FROM events WHERE entity = ? AND period_end = DATE '2024-09-28'", [ACME])
    assert early["kind"] == "guidance" and "filed before the period ended" in early["note"]
    beta = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'revenue'", [BETA])
    assert (beta["period"], beta["value"]) == ("2024H1", 5_000_000)
    assert (str(beta["period_start"]), str(beta["period_end"])) == ("2024-01-01", "2024-06-30")


def test_a_concept_without_a_value_leaves_the_name_to_one_with_a_value(tmp_path: Path, store: Store,
                                                                       catalog: Catalog) -> None:
    """A filing's higher concept reported without a value (an XBRL nil) for a period is no event,
    so the next concept with a value there takes the standard name; elsewhere the higher one does."""
    nil = ["0009999902-24-000001", "Revenues", "us-gaap/2024", "20240331", "1", "USD", "", "", "", ""]
    valued = [*nil[:1], "SalesRevenueNet", *nil[2:8], "2400000.0000", ""]
    num = _num_with(nil) + ("\t".join(valued) + "\n").encode()
    assert ingest_paths(store, [make_zip(tmp_path, **{"num.txt": num})], catalog=catalog).ok
    with MetricStore(store) as ms:
        q1 = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'revenue' AND period_end = DATE '2024-03-31'",
                 [BETA])
        assert (q1["value"], q1["source_ref"]) == (2_400_000, "us-gaap:SalesRevenueNet")
        h1 = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'revenue' AND period_end = DATE '2024-06-30'",
                 [BETA])
        assert (h1["value"], h1["source_ref"]) == (5_000_000, "us-gaap:Revenues")
        assert ms.sql("SELECT * FROM events WHERE entity = ? AND metric = 'us-gaap:SalesRevenueNet'", [BETA]).height == 0


def test_segments_and_coregistrant_become_dims(acme: Store, ms: MetricStore) -> None:
    seg = ms.sql("SELECT dims, value FROM facts WHERE entity = ? AND metric = 'revenue' AND period = '2024Q3' "
                 "AND dims <> '' ORDER BY dims", [ACME])
    assert seg.rows() == [("statementbusinesssegmentsaxis=GadgetsMember", 400_000_000),
                          ("statementbusinesssegmentsaxis=WidgetsMember", 600_000_000)]
    assets = ms.sql("SELECT dims, value FROM facts WHERE entity = ? AND metric = 'total_assets' ORDER BY dims", [ACME])
    assert assets.rows() == [("", 5_512_345_000), ("coreg=AcmeFinanceSubsidiary", 800_000_000)]


def test_entities_from_sub_and_the_amendment_restates(acme: Store, ms: MetricStore) -> None:
    e = one(ms, "SELECT * FROM entities WHERE entity = ?", [ACME])
    assert (e["name"], e["cik"], e["fiscal_year_end_month"]) == ("ACME WIDGETS INC", "9999901", 9)
    assert one(ms, "SELECT cik FROM entities WHERE entity = ?", [BETA])["cik"] == "9999902"
    fy = one(ms, "SELECT * FROM facts WHERE entity = ? AND metric = 'revenue' AND period = 'FY2023'", [ACME])
    assert (fy["value"], fy["source"]) == (3_950_000_000, "0009999901-24-000020 10-K/A")


def test_a_file_of_the_era_before_segments_reads_alike(tmp_path: Path, store: Store, catalog: Catalog,
                                                       ms: MetricStore) -> None:
    """Files before the SEC added ``segments``: ``coreg`` after ``version``, no segments column."""
    rows = [r for r in fixture_rows() if not r["segments"]]
    cols = ["adsh", "tag", "version", "coreg", "ddate", "qtrs", "uom", "value", "footnote"]
    text = "".join("\t".join(r) + "\n" for r in [cols] + [[row[c] for c in cols] for row in rows])
    report = ingest_paths(store, [make_zip(tmp_path, **{"num.txt": text.encode()})], catalog=catalog)
    assert (report.added, report.rejected) == (len([r for r in rows if r["value"]]), 0) == (12, 0)
    assert ms.sql("SELECT dims FROM facts WHERE entity = ? AND metric = 'total_assets' ORDER BY dims",
                  [ACME])["dims"].to_list() == ["", "coreg=AcmeFinanceSubsidiary"]


def test_the_cli_ingests_a_quarter(tmp_path: Path) -> None:
    r = run_cli("ingest", str(make_zip(tmp_path)), "--format", "sec-fsds", store=tmp_path / "st")
    assert r.returncode == 0, r.stderr
    assert "14 added, 0 already present, 0 rejected" in r.stdout


# -- the real 2009q3 quarter ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def quarter() -> Path:
    return needs_shared("sec-fsds", "2009q3.zip")


@pytest.fixture(scope="module")
def raw_num(quarter: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(quarter) as zf, zf.open("num.txt") as fh:
        lines = fh.read().decode("utf-8").splitlines()
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def real(quarter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, RunReport, MetricStore]]:
    """The quarter ingested once, then Apple's companyfacts beside it."""
    catalog = Catalog.load(ROOT / "data" / "catalog")
    store = Store.create(tmp_path_factory.mktemp("fsds") / "store")
    report = ingest_paths(store, [quarter], catalog=catalog)
    ms = MetricStore(store)
    yield store, report, ms
    ms.close()


def test_every_row_of_the_quarter_is_one_event(real: tuple[Store, RunReport, MetricStore],
                                               raw_num: list[dict[str, str]], quarter: Path) -> None:
    store, report, ms = real
    valued = [r for r in raw_num if r["value"]]
    assert len(raw_num) == 126_650 and report.ok
    assert report.added == len(valued) == ms.sql("SELECT count(*) n FROM events WHERE run_id = ?",
                                                  [report.run_id])["n"][0]
    assert ms.sql("SELECT count(*) n FROM events WHERE run_id = ? AND dims <> ''",
                  [report.run_id])["n"][0] >= 17_000    # segment and co-registrant figures
    again = ingest_paths(store, [quarter], catalog=Catalog.load(ROOT / "data" / "catalog"))
    assert (again.added, again.already_present) == (0, len(valued))


@pytest.mark.parametrize("index", [0, 1, 4_321, 60_000, 126_649])
def test_spot_values_match_the_raw_file(real: tuple[Store, RunReport, MetricStore],
                                        raw_num: list[dict[str, str]], index: int) -> None:
    _, report, ms = real
    r = raw_num[index]
    if not r["value"]:
        pytest.skip("a nil row")
    got = ms.sql("SELECT value, period_end, source, source_ref, unit, dims FROM events "
                 "WHERE run_id = ? AND source LIKE ? AND source_ref LIKE ?",
                 [report.run_id, r["adsh"] + " %", "%:" + r["tag"]])
    matches = [g for g in got.iter_rows(named=True)
               if g["value"] == pytest.approx(float(r["value"]))
               and abs((g["period_end"] - dt.datetime.strptime(r["ddate"], "%Y%m%d").date()).days) <= 6
               and (r["coreg"] == "") == ("coreg=" not in g["dims"])
               and (r["segments"] == "") == (g["dims"] in ("", f"coreg={r['coreg']}"))]
    assert matches, (r, got)


# -- the same filing through companyfacts and through the data sets -------------------------------
def test_apple_through_both_is_one_set_of_facts(real: tuple[Store, RunReport, MetricStore]) -> None:
    """Apple's 10-Q of July 2009 through both readers: the same facts under the same event ids."""
    store, report, ms = real
    apple = needs_shared("sec", "CIK0000320193_apple_asof2024-11.json")
    cf = read_companyfacts(apple).frame.filter(pl.col("source") == APPLE_10Q)
    fs = ms.sql("SELECT source_ref, CAST(period_start AS VARCHAR) AS period_start, CAST(period_end AS VARCHAR) "
                "AS period_end, value, metric, dims FROM events WHERE run_id = ? AND source = ?",
                [report.run_id, APPLE_10Q])
    assert fs.height == 176 and (fs["dims"] == "").all()
    both = fs.join(cf.select("source_ref", "period_start", "period_end", pl.col("value").cast(pl.Float64).alias("cf"),
                             pl.col("metric").alias("cf_metric")),
                   on=["source_ref", "period_start", "period_end"], how="inner")
    assert both.height == 172                          # every us-gaap fact; custom aapl: and dei: are in one only
    assert (both["value"] == both["cf"]).all() and (both["metric"] == both["cf_metric"]).all()
    added = ingest_paths(store, [apple], catalog=Catalog.load(ROOT / "data" / "catalog"))
    assert added.ok and added.already_present == both.height    # same content, same ids: not stored twice
    # no fact counted twice: nothing current as of the filing sits beside a copy a few days off
    near = ms.sql("""
        WITH f AS (SELECT * FROM facts_as_of(DATE '2009-07-22') WHERE entity = 'aapl')
        SELECT a.metric, a.period, b.period AS other FROM f a JOIN f b
          ON a.metric = b.metric AND a.dims = b.dims AND a.unit = b.unit AND a.period < b.period
         AND (a.period_start = a.period_end) = (b.period_start = b.period_end)
         AND abs(date_diff('day', a.period_end, b.period_end)) BETWEEN 1 AND 6
         AND abs(date_diff('day', a.period_start, b.period_start)) <= 6""")
    assert near.height == 0, near
    revenue = ms.sql("SELECT period, value, source FROM facts_as_of(DATE '2009-07-22') WHERE entity = 'aapl' "
                     "AND metric = 'revenue' AND period IN ('2009Q3', '9M2009') ORDER BY period")
    assert revenue.rows() == [("2009Q3", 8_337_000_000, APPLE_10Q), ("9M2009", 26_667_000_000, APPLE_10Q)]  # as in num.txt


# -- bad input: one line, exit 2, the store unchanged ----------------------------------------------
def _num_with(row: list[str]) -> bytes:
    return (FIXTURE / "num.txt").read_bytes() + ("\t".join(row) + "\n").encode()


_ROW = ["0009999901-24-000010", "Revenues", "us-gaap/2024", "20240630", "1", "USD", "", "", "1.0000", ""]
BAD = [
    ("no num.txt", {"num.txt": None}, "holds no num.txt"),
    ("unknown accession", {"num.txt": _num_with(["0000000000-00-000000", *_ROW[1:]])},
     "2024q3.zip/num.txt:17: column adsh='0000000000-00-000000': is not an accession of sub.txt"),
    ("qtrs 2.5", {"num.txt": _num_with([*_ROW[:4], "2.5", *_ROW[5:]])},
     "2024q3.zip/num.txt:17: column qtrs='2.5': is not a number of quarters"),
    ("qtrs 999", {"num.txt": _num_with([*_ROW[:4], "999", *_ROW[5:]])},
     "2024q3.zip/num.txt:17: column qtrs='999': is not a number of quarters"),
    ("bad date", {"num.txt": _num_with([*_ROW[:3], "20091340", *_ROW[4:]])},
     "2024q3.zip/num.txt:17: column ddate='20091340': is not a date (YYYYMMDD)"),
    ("non-UTF-8 name", {"sub.txt": (FIXTURE / "sub.txt").read_bytes().replace(b"BETA CORP", b"B\xc9TA CORP")},
     "2024q3.zip/sub.txt:4: not UTF-8 text: byte 0xc9"),
    ("truncated zip", "truncate", "is truncated or damaged"),
]


@pytest.fixture
def seeded(tmp_path: Path, catalog: Catalog) -> Store:
    """A store that holds the good quarter already (the refused file must change nothing)."""
    st = Store.create(tmp_path / "store")
    (tmp_path / "good").mkdir()
    assert ingest_paths(st, [make_zip(tmp_path / "good")], catalog=catalog).ok
    return st

def test_an_inception_to_date_value_is_stored_under_its_dates(tmp_path: Path, store: Store,
                                                              catalog: Catalog) -> None:
    """A ``qtrs`` past 4 (a development-stage company's inception-to-date column, in filings before
    2015) is a value like any other, under the dates of its 21 months (on the filer's week calendar)."""
    row = [*_ROW[:4], "7", *_ROW[5:8], "7.5000", ""]
    report = ingest_paths(store, [make_zip(tmp_path, **{"num.txt": _num_with(row)})], catalog=catalog)
    assert report.ok, report.summary()
    got = [e for e in store.read("events").to_pylist() if e["value"] == 7.5]
    assert len(got) == 1
    start, end = got[0]["period_start"], got[0]["period_end"]
    assert abs((end - dt.date(2024, 6, 30)).days) <= 6 and 7 * 91 - 7 <= (end - start).days <= 7 * 91 + 7
    assert label_period(start, end) == f"{start.isoformat()}/{end.isoformat()}"     # no FY, H or 9M


@pytest.mark.parametrize("name,members,message", BAD, ids=[b[0] for b in BAD])
def test_bad_quarter_is_one_line_exit_2_and_commits_nothing(name: str, members: object, message: str,
                                                             tmp_path: Path, seeded: Store) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if members == "truncate":
        path = make_zip(folder)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        assert isinstance(members, dict)
        path = make_zip(folder, **members)
    before = store_files(seeded.root)
    r = run_cli("ingest", str(path), store=seeded.root)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if message in ln]   # '<file>: rejected: <message>', once
    assert len(lines) == 1 and lines[0].startswith(f"{path}: rejected: "), r.stdout + r.stderr
    logs = ("events", "entities", "metrics")    # the run log records the refused run, as for any file
    assert {k: v for k, v in store_files(seeded.root).items() if k.startswith(logs)} == \
           {k: v for k, v in before.items() if k.startswith(logs)}


def test_in_small_blocks_the_same_events_and_a_late_bad_row_commits_nothing(
        tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.fsds

    whole = Store.create(tmp_path / "whole")
    assert ingest_paths(whole, [make_zip(tmp_path)], catalog=catalog).ok
    monkeypatch.setattr(ingest.fsds, "BLOCK_BYTES", 300)     # a row or three a block
    blocks = Store.create(tmp_path / "blocks")
    report = ingest_paths(blocks, [make_zip(tmp_path)], catalog=catalog)
    assert report.ok and report.added == 14
    concepts = [w for w in report.files[0].warnings if "concept metric(s)" in w]     # said once, not a block
    assert len(concepts) == 1 and concepts[0].startswith(f"{tmp_path / '2024q3.zip'}: 3 concept"), concepts
    ids = [sorted(s.read("events").column("event_id").to_pylist()) for s in (whole, blocks)]
    assert ids[0] == ids[1] and len(set(blocks.read("events").column("commit_id").to_pylist())) == 1

    late = Store.create(tmp_path / "late")
    bad = make_zip(tmp_path / "late", **{"num.txt": _num_with([*_ROW[:4], "-1", *_ROW[5:]])})
    report = ingest_paths(late, [bad], catalog=catalog)
    assert report.added == 0 and report.files[0].error and "num.txt:17: column qtrs='-1'" in report.files[0].error
    assert late.read("events").num_rows == 0 and late.read("entities").num_rows == 0
    assert not [t for t in threading.enumerate() if t.name.startswith(READ_AHEAD)]


def test_chunks_read_ahead_arrive_in_order_and_a_reader_left_early_is_closed() -> None:
    from ingest.chunked import _read_ahead

    closed: list[bool] = []

    def chunks(n: int, fail_at: int | None = None) -> Iterator[int]:
        try:
            for i in range(n):
                if i == fail_at:
                    raise ValueError(f"chunk {i} is damaged")
                yield i
        finally:
            closed.append(True)

    assert list(_read_ahead(chunks(50))) == list(range(50)) and closed == [True]
    got = []
    with pytest.raises(ValueError, match="chunk 3 is damaged"):
        for chunk in _read_ahead(chunks(10, fail_at=3)):
            got.append(chunk)
    assert got == [0, 1, 2] and closed == [True, True]
    early = _read_ahead(chunks(1_000))
    assert [next(early), next(early)] == [0, 1]
    early.close()                       # the caller stops: the reader thread ends and closes its source
    assert closed == [True, True, True]
    assert not [t for t in threading.enumerate() if t.name.startswith(READ_AHEAD)]


# -- a scheduled job fetching each quarter's zip ---------------------------------------------------
def test_sec_fsds_job_fetches_each_new_quarter_once(tmp_path: Path, store: Store, catalog: Catalog) -> None:
    from ingest.fsds_feed import quarters
    from ingest.jobs import load_jobs
    from ingest.runner import run_job
    from tests.conftest import http_server
    from tests.ingest.test_http import Feed, make_handler

    assert quarters("2023q4", None, dt.date(2024, 7, 14), 14) == ["2023q4", "2024q1", "2024q2"]
    assert quarters("2023q4", "2024q1", dt.date(2024, 7, 14), 14) == ["2023q4", "2024q1"]
    assert quarters("2024q2", None, dt.date(2024, 7, 13), 14) == []          # not published yet
    feed = Feed()
    feed.bodies["/dera/2024q1.zip"] = make_zip(tmp_path)
    feed.fail_first["/dera/2024q1.zip"] = 1                                   # a 503 first: retried
    with http_server(make_handler(feed)) as base:
        jobs = tmp_path / "jobs.toml"
        jobs.write_text(f"""
[jobs.fsds]
trigger = {{ cron = "0 6 * * *" }}
retry = {{ attempts = 2, backoff = "0.1s", max_backoff = "0.2s" }}

[jobs.fsds.source]
type = "sec_fsds"
base_url = "{base}/dera/"
first = "2024q1"
last = "2024q2"
user_agent = "metricstore fsds tests (tests@example.com)"
timeout = "5s"
""", encoding="utf-8")
        config = load_jobs(jobs)
        first = run_job(config, "fsds", store, catalog)
        assert first.outcome.added == 14 and first.outcome.failed_inputs == 1     # 2024q2: 404, not out yet
        assert feed.count("/dera/2024q1.zip") == 2 and feed.count("/dera/2024q2.zip") == 1
        assert all(h["user-agent"] == "metricstore fsds tests (tests@example.com)" for _, h in feed.hits)
        feed.bodies["/dera/2024q2.zip"] = make_zip(tmp_path, "q2.zip", **{"num.txt": _num_with(
            [_ROW[0], "Goodwill", "us-gaap/2024", "20240630", "0", "USD", "", "", "7000000.0000", ""])})
        second = run_job(config, "fsds", store, catalog)
        assert (second.status, second.outcome.added, second.outcome.already_present) == ("ok", 1, 14), second.error
        assert feed.count("/dera/2024q1.zip") == 2                                # an ingested quarter: no request
        third = run_job(config, "fsds", store, catalog)
        assert third.status == "skipped" and len(feed.hits) == 4


def test_a_quarter_dropped_in_a_drop_folder_is_ingested_and_moved(tmp_path: Path, store: Store,
                                                                   catalog: Catalog) -> None:
    from ingest.sources import DropFolder, RunContext

    drop = tmp_path / "drop"
    drop.mkdir()
    make_zip(drop)
    ctx = RunContext(store, catalog, "run-drop", "drops", terminal=False)
    DropFolder(drop, settle=0).run(ctx)
    assert (ctx.outcome.added, ctx.outcome.failed_inputs) == (14, 0)
    assert (drop / "processed" / "2024q3.zip").is_file() and not (drop / "2024q3.zip").exists()
