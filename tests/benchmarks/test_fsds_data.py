"""The generator of SEC data sets zips the benchmarks ingest: the real reader takes what it writes
(segments under their dimensions, co-registrants, amendments), and the same seed writes the same zip."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from benchmarks.fsds_data import NUM_HEADER, SUB_HEADER, write_zip
from benchmarks.fsds_shape import load
from queries import MetricStore
from tests.conftest import run_cli

SIZE = 12_000


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.TextIOWrapper(zf.open(name), encoding="utf-8"), delimiter="\t",
                               quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("fsds") / "2024q2.zip"
    return path, write_zip(path, SIZE, seed=3)


def test_the_data_sets_shape(generated: tuple[Path, dict[str, int]]) -> None:
    path, counts = generated
    with zipfile.ZipFile(path) as zf:
        assert {"sub.txt", "num.txt", "tag.txt", "pre.txt"} <= set(zf.namelist())
        num, sub = _rows(zf, "num.txt"), _rows(zf, "sub.txt")
        assert list(num[0]) == list(NUM_HEADER) and list(sub[0]) == list(SUB_HEADER)
        tags = {r["tag"] for r in _rows(zf, "tag.txt")}
    assert len(num) == counts["numbers"] and abs(len(num) - SIZE) < SIZE * 0.3
    assert {r["qtrs"] for r in num} >= {"0", "1"} and {r["tag"] for r in num} <= tags
    real = {t["tag"] for t in load()["tags"]}
    standard = [r for r in num if "/" in r["version"]]
    assert {r["tag"] for r in standard} <= real and len(standard) > len(num) // 2
    assert any(r["segments"] for r in num) and any(r["coreg"] for r in num)
    keys = [(r["adsh"], r["tag"], r["version"], r["ddate"], r["qtrs"], r["uom"], r["segments"], r["coreg"])
            for r in num]
    assert len(set(keys)) == len(keys)                      # one row per fact of a filing, as the SEC's
    assert {r["adsh"] for r in num} == {r["adsh"] for r in sub}
    assert len({r["cik"] for r in sub}) == counts["filers"]


def test_the_same_seed_writes_the_same_numbers(generated: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    again, other = tmp_path / "again.zip", tmp_path / "other.zip"
    write_zip(again, SIZE, seed=3)
    write_zip(other, SIZE, seed=4)
    read = lambda p: zipfile.ZipFile(p).read("num.txt")  # noqa: E731
    assert read(again) == read(generated[0]) != read(other)


def test_the_reader_ingests_it_with_segments_under_their_dimensions(generated: tuple[Path, dict[str, int]],
                                                                     tmp_path: Path) -> None:
    path, counts = generated
    with zipfile.ZipFile(path) as zf:
        num = _rows(zf, "num.txt")
    valued = [r for r in num if r["value"]]
    segment = next(r for r in valued if r["segments"] and not r["coreg"])
    coreg = next(r for r in valued if r["coreg"])
    out = run_cli("ingest", str(path), store=tmp_path / "store")
    assert out.returncode == 0, out.stderr
    assert f"{len(valued)} events added, 0 already present, 0 rejected" in out.stdout
    axis, member = segment["segments"].rstrip(";").split("=")
    with MetricStore(tmp_path / "store") as ms:
        under = ms.sql("SELECT count(*) FROM events WHERE dims = ?", [f"{axis.lower()}={member}"])[0, 0]
        both = ms.sql("SELECT count(*) FROM events WHERE dims LIKE ?", [f"coreg={coreg['coreg']};%"])[0, 0]
        whole = ms.sql("SELECT count(DISTINCT entity) FROM events WHERE metric = 'total_assets' AND dims = ''")[0, 0]
    assert under >= 1 and both >= 1
    assert whole >= counts["filers"] // 2
