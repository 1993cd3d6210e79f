"""Files a compaction deletes under a read: the read lists again (queries/live.py), and the
projector, whose rebuild can outlast the grace period, reads hard links of what it listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from queries import MetricStore
from queries.errors import FilesVanished
from queries.live import list_live, read_listed, vanished
from queries import projector
from queries.projections import COVERED, FOLDER
from queries.projector import project
from store import Store
from store.compaction import compact
from tests.conftest import fact


def count(files: list[Path]) -> int:
    return int(duckdb.sql("SELECT count(*) FROM read_parquet(?)", params=[[str(p) for p in files]]).fetchall()[0][0])


@pytest.fixture
def four_commits(ingest_rows, store: Store) -> Store:
    for year in range(2020, 2024):
        assert ingest_rows([fact(period=f"FY{year}", value=str(year - 2000))]).ok
    return store


def test_a_read_whose_files_were_deleted_lists_again(four_commits: Store) -> None:
    store = four_commits
    stale = list_live(store, ["events"])
    assert compact(store, grace_s=0).deleted >= 4           # every file of the listing is gone
    listings = iter([stale])

    def listing() -> dict[str, list[Path]]:
        return next(listings, None) or list_live(store, ["events"])

    assert read_listed(store, listing, lambda live: count(live["events"])) == 4


def test_a_read_that_keeps_losing_its_files_fails_in_one_line(four_commits: Store) -> None:
    store = four_commits
    stale = list_live(store, ["events"])
    compact(store, grace_s=0)
    with pytest.raises(FilesVanished) as err:
        read_listed(store, lambda: stale, lambda live: count(live["events"]), retries=2)
    assert "\n" not in str(err.value) and "deleted by a compaction" in str(err.value)
    assert "METRICSTORE_COMPACT_GRACE_S" in str(err.value)


def test_vanished_names_the_listed_files_gone_from_each_folder(four_commits: Store, tmp_path: Path) -> None:
    store = four_commits
    listing = list_live(store, COVERED)
    assert vanished(listing) == []
    gone_folder = tmp_path / "gone"
    listing["other"] = [gone_folder / "a.parquet"]          # a folder that is no more
    assert compact(store, grace_s=0).deleted >= 4
    gone = [p for files in listing.values() for p in files if not p.exists()]
    assert len(gone) >= 5 and gone[-1] == gone_folder / "a.parquet"
    assert vanished(listing) == gone


def test_a_failure_with_every_file_in_place_is_not_retried(four_commits: Store) -> None:
    calls = []

    def bad(live: dict[str, list[Path]]) -> int:
        calls.append(1)
        return int(duckdb.sql("SELECT no_such_column FROM read_parquet(?)",
                              params=[[str(p) for p in live["events"]]]).fetchall()[0][0])

    with pytest.raises(duckdb.BinderException):
        read_listed(four_commits, lambda: list_live(four_commits, ["events"]), bad)
    assert len(calls) == 1


def test_the_projector_reads_what_it_listed_though_a_compaction_deleted_it(
        four_commits: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild longer than the grace period (minutes at 10 M events) keeps its sources: a
    compaction that deletes them while it computes neither fails it nor makes it list again."""
    store = four_commits
    listed = list_live(store, COVERED)
    computed: list[int] = []

    def compute(session: Any, entities: Any) -> None:
        computed.append(count(session.listing["events"]))
        if len(computed) == 1:
            assert compact(store, grace_s=0).deleted >= 4
            assert not any(p.exists() for p in listed["events"])
        real(session, entities)

    real = projector._Session.compute
    monkeypatch.setattr(projector._Session, "compute", compute)
    snap = project(store)
    assert snap is not None and snap.base.rows > 0
    assert computed == [4]                                  # once, over the files it listed
    assert snap.covers["events"] == {p.name for p in listed["events"]}
    assert not [p for p in (Path(store.root) / FOLDER).iterdir() if p.name.startswith(".tmp-")]


def test_a_query_of_a_store_compacted_at_grace_zero_answers(four_commits: Store) -> None:
    store = four_commits
    project(store)
    with MetricStore(store) as ms:
        before = ms.sql("SELECT count(*) AS n FROM growth")["n"][0]
        compact(store, grace_s=0)
        project(store, rebuild=True)                        # the previous projection is deleted at once
        assert ms.sql("SELECT count(*) AS n FROM growth")["n"][0] == before
        assert ms.sql("SELECT count(*) AS n FROM events")["n"][0] == 4
