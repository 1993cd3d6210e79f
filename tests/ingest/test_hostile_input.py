"""Input an adversarial user tried: withdrawals naming the wrong fact, look-alike Unicode, links
out of the drop folder, archives, directories, odd years and zeros, huge cells. Each through the
real command on a real store: one clear line per refusal, nothing committed, nothing leaked."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import limits
from store import Store
from tests.conftest import ROOT, fact, run_cli, store_files, write_csv


def events(root: Path) -> list[dict[str, object]]:
    return Store(root).read().to_pylist()


def ingest(tmp_path: Path, *files: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return run_cli("ingest", *map(str, files), *extra, store=tmp_path / "store")


def lines_about(r: subprocess.CompletedProcess[str], text: str) -> list[str]:
    return [ln for ln in (r.stdout + r.stderr).splitlines() if text in ln]


# -- 1. supersedes names an event of the same fact --------------------------------------------------

def test_supersedes_must_name_a_known_event_of_the_same_fact(tmp_path: Path) -> None:
    assert ingest(tmp_path, write_csv(tmp_path / "a.csv", [fact()])).returncode == 0
    (acme,) = events(tmp_path / "store")
    before = store_files(tmp_path / "store" / "events")
    typo = "0" * 32
    bad = write_csv(tmp_path / "bad.csv", [
        fact(op="retract", value="", supersedes=typo),
        fact(entity="other", metric="cash", period="2024-12-31", value="5", supersedes=acme["event_id"]),
    ])
    r = ingest(tmp_path, bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert lines_about(r, f"{bad}:2: column supersedes='{typo}': names no event"), r.stderr
    assert lines_about(r, f"{bad}:3: column supersedes='{acme['event_id']}': names an event of another fact"), r.stderr
    assert store_files(tmp_path / "store" / "events") == before
    # with --skip-invalid a valid row beside them commits, the two are quarantined
    mixed = write_csv(tmp_path / "mixed.csv", [fact(period="FY2023", value="90", reported_at="2024-02-01"),
                                               fact(op="retract", value="", supersedes=typo)])
    r = ingest(tmp_path, mixed, extra=("--skip-invalid",))
    assert r.returncode == 2 and "1 added" in r.stdout
    quarantined = list((tmp_path / "store" / "quarantine").glob("*mixed.csv.rejected.csv"))
    assert len(quarantined) == 1 and "names no event" in quarantined[0].read_text()
    # a correction of the same fact, and one naming an event of its own batch, are accepted
    good = write_csv(tmp_path / "good.csv", [
        fact(value="101", reported_at="2025-03-01", supersedes=acme["event_id"]),
    ])
    r = ingest(tmp_path, good)
    assert r.returncode == 0, r.stderr
    other = tmp_path / "other"
    assert run_cli("ingest", str(write_csv(tmp_path / "new.csv", [fact(entity="beta")])), store=other).returncode == 0
    (beta,) = events(other)
    both = write_csv(tmp_path / "both.csv", [fact(entity="beta"),
                                             fact(entity="beta", op="retract", value="", supersedes=beta["event_id"])])
    r = ingest(tmp_path, both)
    assert r.returncode == 0 and "2 added" in r.stdout, r.stdout + r.stderr


# -- 2. Unicode ----------------------------------------------------------------------------------

def test_text_keys_are_nfc_and_names_are_ascii_with_a_message_that_says_so(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    p = write_csv(tmp_path / "u.csv", [fact(segment=nfc, dims=f"region={nfc}", source=f"{nfc}-report"),
                                       fact(segment=nfd, dims=f"region={nfd}", source=f"{nfd}-report")])
    r = ingest(tmp_path, p)
    assert r.returncode == 0, r.stderr
    (only,) = events(tmp_path / "store")
    assert only["segment"] == nfc and only["dims"] == f"region={nfc}" and only["source"] == f"{nfc}-report"
    names = write_csv(tmp_path / "n.csv", [fact(entity="soci\u00e9t\u00e9"), fact(metric="d\u00e9j\u00e0", period="FY2023")])
    r = ingest(tmp_path, names)
    assert r.returncode == 2
    assert lines_about(r, f"{names}:2: column entity=") and lines_about(r, f"{names}:3: column metric=")
    assert all("ASCII" in ln for ln in lines_about(r, "not a valid name")), r.stderr
    assert not lines_about(r, "accepted as"), r.stderr   # rejected, not also "accepted"
    r = run_cli("entity", "Soci\u00e9t\u00e9", "--name", "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale", store=tmp_path / "store")
    assert r.returncode == 2 and "ASCII" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_key_typed_with_a_combining_accent_finds_the_stored_fact(tmp_path: Path) -> None:
    """Queries normalise their text keys as ingest does: the segment stored NFC is found by an NFD
    argument, in series and in history."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert ingest(tmp_path, write_csv(tmp_path / "u.csv", [fact(segment=nfc)])).returncode == 0
    store = tmp_path / "store"
    r = run_cli("series", "acme", "revenue", "--segment", nfd, "--format", "csv", store=store)
    assert r.returncode == 0 and r.stdout.count("FY2024") == 1, r.stdout + r.stderr
    r = run_cli("history", "acme", "revenue", "FY2024", "--segment", nfd, "--format", "csv", store=store)
    assert r.returncode == 0 and r.stdout.count("\n") == 2, r.stdout + r.stderr     # header + one version


# -- 3. links out of the drop folder --------------------------------------------------------------

def test_the_drop_folder_skips_links_and_never_echoes_a_file_s_content(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    outside = write_csv(tmp_path / "outside.csv", [fact()])
    secret = tmp_path / ".env"
    secret.write_text("aws_secret_access_key=AKIAVERYSECRETVALUE123456\nother=x\n")
    (drop / "linked.csv").symlink_to(outside)
    (drop / "env.csv").symlink_to(secret)
    write_csv(drop / "fine.csv", [fact(period="FY2023", reported_at="2024-02-01")])
    secret_in = drop / "plain.csv"              # a copy, not a link: read, rejected, never echoed
    secret_in.write_text("aws_secret_access_key=AKIAVERYSECRETVALUE123456,x\n1,2\n")
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.drops]\ntrigger = { interval = "1h" }\n'
                    'source = { type = "drop_folder", path = "drop", settle = 0 }\n')
    r = run_cli("jobs", "run", "drops", "--config", str(jobs), store=tmp_path / "store")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    stored = events(tmp_path / "store")
    assert [e["period_end"].year for e in stored] == [2023]        # only fine.csv, not the linked one
    assert outside.exists() and secret.exists()
    text = r.stdout + r.stderr
    reports = list((drop / "quarantine").glob("*.report.txt"))
    assert len(reports) == 3                    # the two links and plain.csv, each beside its report
    text += "".join(f.read_text() for f in reports)
    text += json.dumps(run_cli("sql", "SELECT * FROM ingest_runs", "--format", "json",
                               store=tmp_path / "store").stdout)
    assert "AKIA" not in text and "SECRET" not in text.upper().replace("SECRET_ACCESS_KEY", "")
    assert "linked.csv" in text and "symbolic link" in text


# -- 6. archives and compressed files ---------------------------------------------------------------

def test_archives_are_named_and_gzip_is_read(tmp_path: Path) -> None:
    write_csv(tmp_path / "plain.csv", [fact()])
    data = (tmp_path / "plain.csv").read_bytes()
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.csv").write_bytes(gzip.compress(data.replace(b"FY2024", b"FY2023")))
    doc = json.dumps([fact(period="FY2022", reported_at="2023-02-01")]).encode()
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(doc))
    r = ingest(tmp_path, tmp_path / "a.csv.gz", tmp_path / "b.csv", tmp_path / "c.json.gz")
    assert r.returncode == 0 and "3 events added" in r.stdout, r.stdout + r.stderr
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("plain.csv", data)
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    (tmp_path / "z.zip").write_bytes(zipped.getvalue())
    (tmp_path / "z.csv").write_bytes(zipped.getvalue())
    (tmp_path / "w.xlsx").write_bytes(zipped.getvalue())
    (tmp_path / "book.csv").write_bytes(workbook.getvalue())
    r = ingest(tmp_path, *(tmp_path / n for n in ("z.zip", "z.csv", "w.xlsx", "book.csv")))
    assert r.returncode == 2 and "NUL bytes" not in r.stdout + r.stderr, r.stdout + r.stderr
    for n in ("z.zip", "z.csv", "w.xlsx"):
        assert lines_about(r, f"{tmp_path / n}: rejected: is a ZIP archive"), (n, r.stdout + r.stderr)
    assert lines_about(r, f"{tmp_path / 'book.csv'}: rejected: is an Excel workbook"), r.stdout + r.stderr
    assert all("gzip" in ln for ln in lines_about(r, "is a ZIP archive"))   # says what is supported


# -- 7. a directory --------------------------------------------------------------------------------

def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    r = ingest(tmp_path, folder)
    assert r.returncode == 2 and lines_about(r, f"{folder}: rejected: is a directory"), r.stdout + r.stderr
    assert not lines_about(r, "no such file")


# -- 8. a whole-file rejection: one line, no empty column -----------------------------------------

def test_a_whole_file_rejection_is_one_line_without_an_empty_column(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("")
    r = ingest(tmp_path, p)
    assert r.returncode == 2
    assert "column =" not in r.stdout + r.stderr
    assert len(lines_about(r, "is empty")) == 1, r.stdout + r.stderr


# -- 9. a conflict is reported on the row that conflicts with an earlier one ----------------------

def test_a_conflict_names_the_other_row_not_itself(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "c.csv", [fact(), fact(value="101")])
    r = ingest(tmp_path, p)
    assert r.returncode == 2
    conflicts = lines_about(r, "conflicts with")
    assert conflicts and not any(f"{p}:2:" in ln and "row 2" in ln for ln in conflicts), conflicts
    assert any(f"{p}:3:" in ln and "row 2" in ln for ln in conflicts), conflicts


# -- 10. years below 1000 --------------------------------------------------------------------------

def test_a_year_before_1000_is_refused_at_ingest(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "y.csv", [fact(period="FY0001", reported_at="0002-02-01"),
                                       fact(period="", period_start="0999-01-01", period_end="0999-12-31",
                                            reported_at="2025-02-01")])
    r = ingest(tmp_path, p)
    assert r.returncode == 2
    assert lines_about(r, f"{p}:2: column period='FY0001'") and lines_about(r, f"{p}:3: column period_start=")
    assert all("1000" in ln for ln in lines_about(r, "rejected: ")), r.stderr


# -- 11. negative zero -------------------------------------------------------------------------------

def test_negative_zero_is_stored_as_zero(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "z.csv", [fact(value="-0.0"), fact(metric="cash", period="2024-12-31", value="(0)")])
    assert ingest(tmp_path, p).returncode == 0
    assert [math.copysign(1, float(e["value"])) for e in events(tmp_path / "store")] == [1.0, 1.0]   # type: ignore[arg-type]


# -- 12. duplicates within one file ----------------------------------------------------------------

def test_identical_rows_are_counted_as_duplicates_within_the_file(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "d.csv", [fact(), fact(), fact()])
    r = ingest(tmp_path, p)
    assert r.returncode == 0 and f"{p}: 1 added, 2 duplicates within the file, 0 already present" in r.stdout, r.stdout
    r = ingest(tmp_path, p)
    assert f"{p}: 0 added, 2 duplicates within the file, 1 already present" in r.stdout, r.stdout


# -- 13. an oversized cell ---------------------------------------------------------------------------

MAXRSS = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-m", "metricstore", *sys.argv[1:]], capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_kib(tmp_path: Path, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", MAXRSS, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return int(out.stdout.strip())


def test_an_oversized_cell_is_refused_in_bounded_memory_and_quarantined_truncated(tmp_path: Path) -> None:
    header = "entity,metric,period,value,unit,reported_at,source,note\n"
    p = tmp_path / "big.csv"
    with p.open("w") as fh:
        fh.write(header + "acme,revenue,FY2023,1,USD m,2024-02-01,s,ok\n")
        fh.write("acme,revenue,FY2024,1,USD m,2025-02-01,s,\"" + "x" * 20_000_000 + "\"\n")
        fh.write("acme,revenue,FY2022,1,USD m,2023-02-01,s,ok\n")
    r = ingest(tmp_path, p, extra=("--skip-invalid",))
    assert r.returncode == 2 and "2 added" in r.stdout, r.stdout + r.stderr[-500:]
    (line,) = lines_about(r, "field too long")
    assert line.startswith(f"rejected: {p}:3: column note='xxxx") and len(line) < 300
    (q,) = (tmp_path / "store" / "quarantine").glob("*big.csv.rejected.csv")
    assert q.stat().st_size < 20_000 and "field too long" in q.read_text()
    small = write_csv(tmp_path / "small.csv", [fact()])
    base = peak_kib(tmp_path, "ingest", str(small), "--store", str(tmp_path / "s1"))
    big = peak_kib(tmp_path, "ingest", str(p), "--store", str(tmp_path / "s2"))
    assert big - base < 60_000, (base, big)        # KiB: less than three times the cell, not fifteen


def test_an_oversized_json_or_parquet_cell_is_quarantined_truncated(tmp_path: Path) -> None:
    p = tmp_path / "big.json"
    p.write_text(json.dumps([fact(note="y" * 2_000_000)]))
    r = ingest(tmp_path, p)
    assert r.returncode == 2 and lines_about(r, "field too long")
    (q,) = (tmp_path / "store" / "quarantine").glob("*big.json.rejected.csv")
    assert q.stat().st_size < 20_000
    t = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist([fact(note="z" * 2_000_000)]), t)
    r = ingest(tmp_path, t)
    assert r.returncode == 2 and lines_about(r, "field too long")
    (q,) = (tmp_path / "store" / "quarantine").glob("*big.parquet.rejected.csv")
    assert q.stat().st_size < 20_000


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.text(alphabet='ae\u00e9"\n,\u20ac\U0001d11e', max_size=12), min_size=3, max_size=3),
                     min_size=1, max_size=4),
       keep=st.integers(min_value=1, max_value=15))
def test_cutting_long_fields_keeps_every_record_and_a_prefix_of_each_field(rows: list[list[str]], keep: int) -> None:
    """The cutter against Python's csv module, in 7-byte chunks so that every quote, doubled
    quote and multi-byte character falls on a chunk boundary somewhere."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    old, limits.CHUNK = limits.CHUNK, 7
    try:
        out, _ = limits.cut_long_fields(io.BytesIO(text.getvalue().encode()), b",", keep)
    finally:
        limits.CHUNK = old
    got = list(csv.reader(io.StringIO(out.decode("utf-8"))))
    assert got == [[f.encode()[:keep].decode("utf-8", "ignore") for f in r] for r in rows]
