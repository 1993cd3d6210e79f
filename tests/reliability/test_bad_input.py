"""Hostile and broken input, beyond ``tests/ingest/test_canonical.py``: each case one clear line,
nothing committed, the store as it was. Then hypothesis throws random bytes, random text in every
column, random JSON and random batches at the parsers and the append path: nothing may escape but
the project's own errors.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import json
import math
import os
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest import Catalog, ingest_file
from ingest.errors import first_line
from store import MetricStoreError, Store
from tests.conftest import CATALOG, fact, run_cli, store_files, write_csv

HEADER = "entity,metric,period,value,unit,reported_at,source\n"
ROW = "acme,revenue,FY2024,1,USD,2025-02-01,s\n"


def companyfacts(**facts: object) -> bytes:
    return json.dumps({"cik": 320193, "entityName": "Acme Inc.", **facts}).encode()


def one_fact(**kw: object) -> bytes:
    f = {"start": "2024-01-01", "end": "2024-12-31", "val": 5, "accn": "0000320193-25-000001", "filed": "2025-02-01",
         "form": "10-K", "fy": 2024, "fp": "FY"}
    f.update(kw)
    f = {k: v for k, v in f.items() if v is not None}
    return companyfacts(facts={"us-gaap": {"Revenues": {"label": "Revenues", "units": {"USD": [f]}}}})


def zipped(**members: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in members.items():
            z.writestr(name.replace("__", "/"), text)
    return out.getvalue()


SECRET = "AKIA0123456789SECRET"


def parquet_bytes(table: pa.Table, tmp: Path) -> bytes:
    p = tmp / "x.parquet"
    pq.write_table(table, p)
    return p.read_bytes()


#: (name, file name, content maker, what the one line must say)
FILES: list[tuple[str, str, object, str]] = [
    ("UTF-16 without a BOM", "a.csv", (HEADER + ROW).encode("utf-16-le"), "NUL bytes in the first line"),
    ("Windows-1252 smart quotes", "a.csv", (HEADER + "acme,revenue,FY2024,1,USD,2025-02-01,\u201cs\u201d\n").encode("cp1252"), "not UTF-8 text: byte 0x93"),
    ("Latin-1 in the header", "a.csv", ("d\u00e9tail," + HEADER + "x," + ROW).encode("latin-1"), "not UTF-8 text: byte 0xe9"),
    ("only a BOM", "a.csv", codecs.BOM_UTF8, "is empty"),
    ("only whitespace", "a.csv", b"  \n\t\n \n", "is empty"),
    ("a column twice", "a.csv", (HEADER.strip() + ",VALUE\n" + ROW.strip() + ",2\n").encode(), "'value' appears twice"),
    ("tab-separated named .csv", "a.csv", (HEADER + ROW).replace(",", "\t").encode(), "looks tab-separated"),
    ("an unterminated quote", "a.csv", (HEADER + 'acme,"revenue,FY2024,1,USD,2025-02-01,s\n').encode(), "fields; the header has 7"),
    ("Parquet bytes named .csv", "a.csv", "parquet", "is a Parquet file, not a file of facts"),
    ("JSON: an empty array", "a.json", b"[]", "holds no rows"),
    ("JSON: a number", "a.json", b"42", "not a JSON array of objects"),
    ("JSON: arrays, not objects", "a.json", b"[[1, 2]]", "item is a list"),
    ("JSON: a NaN literal", "a.json", b'[{"entity": "acme", "value": NaN}]', "NaN is not a number"),
    ("JSON lines: a broken line", "a.jsonl", b'{"entity": "acme"}\n{"entity":\n', "not valid JSON"),
    ("JSON: nested 100,000 deep", "a.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("JSON: events is not a list", "a.json", b'{"events": {"entity": "acme"}}', "without an 'events' list"),
    ("Parquet: a nested column", "a.parquet", pa.table({"entity": [["acme"]]}), "nested column"),
    ("Parquet: bytes that are not text", "a.parquet", pa.table({"entity": pa.array([b"\xff\xfe"], pa.binary())}), "not UTF-8 text"),
    ("Parquet: no rows", "a.parquet", pa.table({"entity": pa.array([], pa.string())}), "no rows"),
    ("companyfacts: no facts", "cf.json", companyfacts(), "is not SEC companyfacts"),
    ("companyfacts: facts is a list", "cf.json", companyfacts(facts=[]), "no 'facts' object"),
    ("companyfacts: a concept without units", "cf.json", companyfacts(facts={"us-gaap": {"Revenues": {"label": "R"}}}), "has no 'units' object"),
    ("companyfacts: a fact without val", "cf.json", one_fact(val=None), "a fact has no 'val'"),
    ("companyfacts: a fact without end", "cf.json", one_fact(end=None), "a fact has no 'end'"),
    ("companyfacts: a fact without filed", "cf.json", one_fact(filed=None), "a fact has no 'filed'"),
    ("companyfacts: cik is null", "cf.json", json.dumps({"cik": None, "entityName": None, "facts": {}}).encode(), "'cik'"),
    ("companyfacts: a date that does not exist", "cf.json", one_fact(end="2024-13-45"), "is not a date"),
    ("companyfacts: a value that is text", "cf.json", one_fact(val="abc"), "is not a number"),
    ("a ZIP archive named .csv", "a.csv", zipped(a_csv=HEADER + ROW), "is a ZIP archive"),
    ("an Excel workbook named .csv", "a.csv", zipped(xl__workbook_xml="<workbook/>"), "is an Excel workbook"),
    ("a PDF named .csv", "a.csv", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "is a PDF document"),
    ("a damaged gzip", "a.csv.gz", gzip.compress((HEADER + ROW).encode())[:-12], "cannot be decompressed"),
    ("a ZIP inside gzip", "a.csv.gz", gzip.compress(zipped(a_csv=HEADER + ROW)), "is a ZIP archive"),
    ("a secrets file as the header", "a.csv", f"aws_secret_access_key={SECRET}\nx\n".encode(),
     "unknown column 'aws_secret_access_key...'"),
]

#: (name, row, column, what the one line must say): rejected values, each named with its row
ROWS: list[tuple[str, dict[str, object], str, str]] = [
    ("a currency symbol", fact(value="$100"), "value", "not a number"),
    ("an underscore in a number", fact(value="1_000"), "value", "not a number"),
    ("a hex number", fact(value="0x10"), "value", "not a number"),
    ("an ambiguous separator", fact(value="1,2345"), "value", "not a number"),
    ("a number beyond float range", fact(value="1e400"), "value", "out of range"),
    ("a fifth quarter", fact(period="2024Q5"), "period", "not a period"),
    ("the 30th of February", fact(reported_at="2025-02-30"), "reported_at", "not a date"),
    ("a timestamp for a date", fact(reported_at="2025-02-01T10:00"), "reported_at", "not a date"),
    ("SQL in an entity name", fact(entity="acme'; DROP TABLE events; --"), "entity", "not a valid name"),
    ("a NUL in a name", fact(metric="rev\x00enue"), "metric", "not a valid name"),
    ("supersedes that is not an event id", fact(supersedes="../../etc/passwd"), "supersedes", "not an event id"),
    ("a period and its start/end both", fact(period_start="2024-01-01", period_end="2024-12-31"), "period", "not both"),
    ("a dimension given twice", fact(dims="region=cn;region=us"), "dims", "given twice"),
    ("supersedes naming no event", fact(supersedes="0" * 32), "supersedes", "names no event"),
    ("an accented entity name", fact(entity="soci\u00e9t\u00e9"), "entity", "ASCII letters"),
    ("an accented metric name", fact(metric="b\u00e9n\u00e9fice"), "metric", "ASCII letters"),
    ("a year before 1000", fact(period="FY0999"), "period", "before the year 1000"),
    ("published before the year 1000", fact(kind="guidance", reported_at="0999-12-31"), "reported_at", "before the year 1000"),
    ("a unit 5,000 characters long", fact(unit="x" * 5000), "unit", "unknown unit 'xxx"),
]


def make(content: object, tmp: Path) -> bytes:
    if content == "parquet":
        return parquet_bytes(pa.Table.from_pylist([{"entity": "acme", "value": 1.0}]), tmp)
    if isinstance(content, pa.Table):
        return parquet_bytes(content, tmp)
    assert isinstance(content, bytes)
    return content


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(CATALOG)


@pytest.fixture
def seeded(tmp_path: Path, catalog: Catalog) -> Store:
    st = Store.create(tmp_path / "store")
    assert ingest_file(st, write_csv(tmp_path / "good.csv", [fact(period="FY2023", reported_at="2024-02-01")]),
                       catalog=catalog).added == 1
    return st


@pytest.mark.parametrize("name,fname,content,reason", FILES, ids=[f[0] for f in FILES])
def test_bad_file_is_refused_with_one_clear_line(name: str, fname: str, content: object, reason: str,
                                                 tmp_path: Path, seeded: Store, catalog: Catalog) -> None:
    path = tmp_path / "in" / fname
    path.parent.mkdir()
    path.write_bytes(make(content, tmp_path))
    before = store_files(seeded.root / "events")
    r = ingest_file(seeded, path, catalog=catalog)
    assert not r.ok and r.added == 0
    lines = [str(p) for p in r.problems] + ([r.error] if r.error else [])
    assert any(str(path) in ln and reason in ln for ln in lines), lines
    assert all("\n" not in ln and SECRET not in ln and len(ln) < 600 for ln in lines)
    assert store_files(seeded.root / "events") == before


def test_a_parser_s_error_is_repeated_as_one_short_line() -> None:
    """What every refusal repeats of a parser's error: its first line, clipped; an empty message
    is an empty text, not an IndexError."""
    assert first_line(ValueError("")) == ""
    assert first_line(ValueError("bad block\nat offset 12")) == "bad block"
    assert first_line(ValueError("x" * 500)) == "x" * 157 + "..."


@pytest.mark.parametrize("name,row,column,reason", ROWS, ids=[r[0] for r in ROWS])
def test_bad_value_is_rejected_naming_file_row_column_and_value(name: str, row: dict[str, object], column: str,
                                                                 reason: str, tmp_path: Path, seeded: Store,
                                                                 catalog: Catalog) -> None:
    path = write_csv(tmp_path / "bad.csv", [fact(period="FY2022", reported_at="2023-02-01"), row])
    before = store_files(seeded.root / "events")
    r = ingest_file(seeded, path, catalog=catalog)
    assert r.added == 0 and r.rejected == 1
    assert any(p.row == 3 and p.column == column and reason in p.reason and str(p).startswith(f"{path}:3: column {column}=")
               for p in r.problems), [str(p) for p in r.problems]
    assert all(len(str(p)) < 400 for p in r.problems), [str(p) for p in r.problems]
    assert store_files(seeded.root / "events") == before


def test_accepted_where_unambiguous(tmp_path: Path, seeded: Store, catalog: Catalog) -> None:
    """UTF-32 with a BOM, CRLF line ends, a name in capitals: read, and read as the same fact."""
    a = tmp_path / "utf32.csv"
    a.write_bytes(codecs.BOM_UTF32_LE + (HEADER + ROW).encode("utf-32-le"))
    b = tmp_path / "crlf.csv"
    b.write_bytes((HEADER + ROW.replace("acme", "ACME")).replace("\n", "\r\n").encode())
    assert ingest_file(seeded, a, catalog=catalog).added == 1
    r = ingest_file(seeded, b, catalog=catalog)
    assert (r.added, r.already_present) == (0, 1)


def test_conflicting_rows_in_json_are_both_rejected(tmp_path: Path, seeded: Store, catalog: Catalog) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps([fact(value=100), fact(value="100.5")]))
    r = ingest_file(seeded, p, catalog=catalog)
    assert (r.added, r.rejected) == (0, 2) and all("conflicts" in x.reason for x in r.problems)


def test_the_cli_gives_each_bad_file_one_line_and_no_traceback(tmp_path: Path) -> None:
    """Every bad file of the catalog in one run of the real command: one refusal each, exit 2."""
    paths = []
    for i, (_, fname, content, _) in enumerate(FILES):
        p = tmp_path / "in" / f"{i:02d}-{fname}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(make(content, tmp_path))
        paths.append(p)
    r = run_cli("ingest", *map(str, paths), store=tmp_path / "store")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    out = r.stdout + r.stderr
    for p, (_, _, _, reason) in zip(paths, FILES, strict=True):
        assert any(str(p) in ln and reason in ln for ln in out.splitlines()), (p, reason)
    assert Store(tmp_path / "store").read().num_rows == 0


# -- fuzzing: nothing escapes but our own errors ----------------------------------------------------

#: ``make torture`` sets METRICSTORE_FUZZ_EXAMPLES=1000; ``make test`` tries 60 inputs per property.
FUZZ = settings(max_examples=int(os.environ.get("METRICSTORE_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_STORE: dict[str, Store] = {}


def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    if "s" not in _STORE:
        _STORE["s"] = Store.create(tmp_path_factory.mktemp("fuzz") / "store")
    return _STORE["s"]


@pytest.fixture(scope="module")
def fstore(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return fuzz_store(tmp_path_factory)


_n = iter(range(10**9))


def ingest_bytes(store: Store, catalog: Catalog, data: bytes, suffix: str):  # noqa: ANN201
    p = store.root.parent / f"in-{next(_n)}{suffix}"
    p.write_bytes(data)
    return ingest_file(store, p, catalog=catalog)


def ingest_and_check(store: Store, catalog: Catalog, data: bytes, suffix: str) -> None:
    """Ingest ``data`` and hold the outcome to the one of two that is allowed: a refusal in one line per
    problem, each naming the file, with nothing added and the store's tables byte for byte as they were;
    or every row of the file accepted, exactly its new events added and the others already present."""
    before, rows_before = tables(store), store.read().num_rows
    r = ingest_bytes(store, catalog, data, suffix)
    if r.ok:
        assert (r.added + r.already_present, r.rejected) == (r.rows, 0), r.summary()
        assert store.read().num_rows == rows_before + r.added
        return
    lines = [str(x) for x in r.problems] + ([r.error] if r.error else [])
    assert lines and all(ln.startswith(f"{r.file}:") and "\n" not in ln for ln in lines), lines
    assert (r.added, r.already_present, r.commit_id) == (0, 0, None)
    assert tables(store) == before


def tables(store: Store) -> dict[str, bytes]:
    """The store's files but its quarantine (a refused file's rows are written there, by design)."""
    return {k: v for k, v in store_files(store.root).items() if not k.startswith("quarantine")}


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt"]))
def test_fuzz_random_bytes_never_crash_the_readers(fstore: Store, catalog: Catalog, data: bytes, suffix: str) -> None:
    ingest_and_check(fstore, catalog, data, suffix)


CELL = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "FY2024", "2024Q4", "USD m", "%", "(1,000)", "1e5",
                                                        "2025-02-01", "nan", "-inf", "=cmd|' /C calc'!A0", "range", "retract"]))


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({c: CELL for c in ("entity", "metric", "period", "value", "unit",
                                                                "reported_at", "source", "qualifier", "value_high", "dims")}),
                     min_size=1, max_size=5))
def test_fuzz_random_text_in_every_column(fstore: Store, catalog: Catalog, rows: list[dict[str, str]]) -> None:
    p = fstore.root.parent / f"rows-{next(_n)}.csv"
    write_csv(p, rows, header=list(rows[0]))
    r = ingest_file(fstore, p, catalog=catalog)
    assert r.added + r.already_present + r.rejected <= len(rows) or r.error


JSONV = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=12)


VALID_ROW = {"entity": "acme", "metric": "revenue", "period": "FY2024", "value": 1, "unit": "USD",
             "reported_at": "2025-02-01", "source": "s"}


@FUZZ
@example(doc=[VALID_ROW, {**VALID_ROW, "period": "FY2023", "reported_at": "2024-02-01"}])  # accepted: 2 added,
@example(doc=[VALID_ROW])                                                                   # then 1 present
@given(doc=st.one_of(JSONV, st.lists(st.dictionaries(st.sampled_from(["entity", "metric", "period", "value", "unit",
                                                                         "reported_at", "source", "dims", "cik", "facts"]),
                                                        JSONV, max_size=8), max_size=4)))
def test_fuzz_random_json_never_crashes(fstore: Store, catalog: Catalog, doc: object) -> None:
    ingest_and_check(fstore, catalog, json.dumps(doc).encode(), ".json")


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["cik", "entityName", "facts"]), JSONV, max_size=3),
       units=st.dictionaries(st.sampled_from(["USD", "shares", "USD/shares", "pure", "x"]),
                             st.lists(st.dictionaries(st.sampled_from(["start", "end", "val", "accn", "filed", "form",
                                                                       "fy", "fp", "frame"]),
                                                      st.one_of(st.text(max_size=10), st.integers(), st.none(),
                                                                st.sampled_from(["2024-12-31", "10-K", "FY"])),
                                                      max_size=9), max_size=3), max_size=2))
@example(doc={}, units={"USD": [{"start": "2023-01-01", "end": "2023-12-31", "val": 7, "accn": "0000000001-24-000001",
                                 "filed": "2024-02-01", "form": "10-K", "fy": 2023, "fp": "FY"}]})  # accepted: 1 added
def test_fuzz_companyfacts_never_crash(fstore: Store, catalog: Catalog, doc: dict[str, object],
                                       units: dict[str, object]) -> None:
    doc = {"cik": doc.get("cik", 1), "entityName": doc.get("entityName", "X"),
           "facts": {"us-gaap": {"Revenues": {"units": units}}}}
    ingest_and_check(fstore, catalog, json.dumps(doc).encode(), ".json")


DAY = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
APPEND_COLS = {
    "entity": st.one_of(st.text(max_size=6), st.none(), st.integers()),
    "metric": st.one_of(st.text(max_size=6), st.none()),
    "period_start": st.one_of(DAY, st.none(), st.text(max_size=10)),
    "period_end": st.one_of(DAY, st.none()),
    "value": st.one_of(st.floats(), st.none(), st.integers(min_value=-(2**62), max_value=2**62)),
    "unit": st.one_of(st.text(max_size=4), st.none()),
    "reported_at": st.one_of(DAY, st.none()),
    "source": st.one_of(st.text(max_size=6), st.none()),
    "kind": st.one_of(st.sampled_from(["actual", "guidance", "rumour"]), st.none()),
    "op": st.one_of(st.sampled_from(["assert", "retract", "delete"]), st.none()),
    "recorded_at": st.none(),
    "bogus": st.integers(),
}


@FUZZ
@given(cols=st.lists(st.sampled_from(sorted(APPEND_COLS)), min_size=1, max_size=len(APPEND_COLS), unique=True),
       n=st.integers(min_value=0, max_value=4), data=st.data())
def test_fuzz_the_append_path_raises_only_our_errors(fstore: Store, cols: list[str], n: int,
                                                      data: st.DataObject) -> None:
    columns = {}
    for c in cols:
        values = [data.draw(APPEND_COLS[c]) for _ in range(n)]
        try:
            columns[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[c] = pa.array([None if v is None else str(v) for v in values], pa.string())
    batch = pa.table(columns) if columns else pa.table({})
    before = fstore.read().num_rows
    try:
        r = fstore.append(batch)
    except MetricStoreError:
        assert fstore.read().num_rows == before  # refused: nothing written
        return
    after = fstore.read()
    assert after.num_rows == before + r.added
    vals = [v for v in after.column("value").to_pylist() if v is not None]
    assert all(math.isfinite(v) for v in vals)
