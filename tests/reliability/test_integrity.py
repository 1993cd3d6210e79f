"""Damaged files: flipped bits, truncation, foreign files. Found by name; never a wrong number.

DuckDB does not check Parquet page checksums (a flipped bit in an uncompressed page reads as a
slightly different number), so every query first proves each committed file whole against the
sha256 prefix in its name (``store/integrity.py``), once per file per process.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from queries import MetricStore
from store import CorruptFile, Store
from store.verify import verify
from tests.conftest import run_cli
from tests.reliability._writer import batch


def flip(offset: Callable[[int], int], bit: int = 0x01) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        data = bytearray(p.read_bytes())
        data[offset(len(data))] ^= bit
        p.write_bytes(bytes(data))
    return damage


def truncate(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        data = p.read_bytes()
        p.write_bytes(data[: keep(len(data))])
    return damage


def append_garbage(p: Path) -> None:
    p.write_bytes(p.read_bytes() + b"\x00garbage")


def swap_with_sibling(p: Path) -> None:
    """Whole, valid Parquet, but another commit's bytes under this name."""
    other = next(q for q in sorted(p.parent.glob("2*.parquet")) if q != p)
    p.write_bytes(other.read_bytes())


def not_parquet(p: Path) -> None:
    p.write_text("entity,value\nacme,1\n")


DAMAGES: dict[str, Callable[[Path], None]] = {
    "bit flipped in the header magic": flip(lambda n: 1),
    "bit flipped in a data page": flip(lambda n: 60),
    "bit flipped in the middle": flip(lambda n: n // 2),
    "bit flipped in the footer": flip(lambda n: n - 12),
    "byte zeroed": flip(lambda n: n // 3, 0xFF),
    "truncated to half": truncate(lambda n: n // 2),
    "last byte cut": truncate(lambda n: n - 1),
    "emptied": truncate(lambda n: 0),
    "garbage appended": append_garbage,
    "another commit's bytes": swap_with_sibling,
    "replaced by a CSV": not_parquet,
}


@pytest.fixture
def two_commits(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "store"
    st = Store.create(root)
    st.append(batch(1, 0, 40))
    st.append(batch(1, 1, 40))
    return root, sorted((root / "events").glob("2*.parquet"))[0]


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damage_is_found_by_verify_and_fails_the_query_by_name(damage: str, two_commits: tuple[Path, Path]) -> None:
    root, victim = two_commits
    with MetricStore(root) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [80]  # proven whole once
        DAMAGES[damage](victim)
        with pytest.raises(CorruptFile) as info:
            ms.sql("SELECT sum(value) AS v FROM events")
    assert victim.name in str(info.value)
    found = verify(Store(root))
    assert [f.path for f in found] == [str(victim)], found
    with pytest.raises(CorruptFile, match=victim.name):  # a new session, too
        MetricStore(root).sql("SELECT count(*) FROM facts")


@pytest.mark.parametrize("where", ["events", "entities", "metrics"])
def test_a_foreign_parquet_file_in_a_table_folder_is_refused_not_read(where: str, two_commits: tuple[Path, Path]) -> None:
    root, victim = two_commits
    foreign = root / where / "copy-of-something.parquet"
    shutil.copy(victim, foreign)  # valid Parquet, same events: would double nothing, but is not ours
    with pytest.raises(CorruptFile, match="copy-of-something.parquet"):
        MetricStore(root).sql("SELECT count(*) FROM events")
    assert [f.path for f in verify(Store(root))] == [str(foreign)]


def test_the_cli_names_the_damaged_file_in_one_line(two_commits: tuple[Path, Path]) -> None:
    root, victim = two_commits
    DAMAGES["bit flipped in a data page"](victim)
    r = run_cli("sql", "SELECT sum(value) FROM events", store=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error:") and victim.name in r.stderr and r.stdout == ""
    r = run_cli("series", "w1", "revenue", store=root)
    assert r.returncode == 2 and victim.name in r.stderr


def test_a_sound_store_answers_and_proves_each_file_once(two_commits: tuple[Path, Path]) -> None:
    from store.integrity import ChecksumGuard

    root, _ = two_commits
    guard = ChecksumGuard(Store(root))
    from store import TABLES

    committed = sum(len(list((root / t).glob("*.parquet"))) for t in TABLES if (root / t).is_dir())
    assert committed >= 5  # an empty file per table at creation + 2 commits
    assert guard.check() == committed
    assert guard.check() == 0  # proven files are not hashed again
    Store(root).append(batch(1, 2, 40))
    assert guard.check() == 1  # only the new commit


def test_a_file_removed_by_compaction_between_listing_and_reading_is_not_an_error(two_commits: tuple[Path, Path]) -> None:
    root, victim = two_commits
    with MetricStore(root) as ms:
        ms.sql("SELECT count(*) FROM events")
        victim.unlink()  # what a compaction does to a merged source after its grace period
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [40]


def test_a_query_proves_the_files_it_reads_not_the_merged_sources_waiting_out_their_grace(
        two_commits: tuple[Path, Path]) -> None:
    """Each query proves the files it is about to read (an open session proves every file once):
    thousands of merged sources waiting out their grace period cost a query nothing."""
    from store.compaction import compact, retired

    root, victim = two_commits
    st = Store(root)
    total = sum(float(i * 1000 + j) for i in (0, 1) for j in range(40))
    with MetricStore(root) as ms:
        assert compact(st, full=True, grace_s=3600).rows == 80
        assert victim.name in retired(st)               # still in the folder, no longer read
        DAMAGES["bit flipped in a data page"](victim)
        assert ms.sql("SELECT count(*) AS n, sum(value) AS v FROM events").rows() == [(80, total)]
        assert [f.path for f in verify(st)] == [str(victim)]   # verify reads every file all the same
        merged = next(p for p in (root / "events").glob("2*.parquet")
                      if p.name not in retired(st) and p.stat().st_size > 4096)
        DAMAGES["bit flipped in the middle"](merged)
        with pytest.raises(CorruptFile, match=merged.name):
            ms.sql("SELECT count(*) FROM events")
