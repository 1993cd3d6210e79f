"""The change feed on Apple's real filings (../shared/data/sec): the companyfacts file as a feed
would have served it on successive dates, one ingest run each. The 10-K/A of 2010-01-25 restated
FY2008 and FY2009 (a change in revenue recognition); the 10-K of 2014-10-27 re-reported per-share
figures and share counts after the 7-for-1 split of June 2014."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import Catalog, ingest_paths
from queries import MetricStore
from store import Store
from tests.conftest import CATALOG, needs_shared

APPLE = ("sec", "CIK0000320193_apple_asof2024-11.json")
#: the feed's dates: before the 10-K/A, after it, before the split, after its first 10-K
CUTS = ("2009-12-31", "2010-02-28", "2014-06-30", "2014-11-30")


def as_served(doc: dict[str, Any], until: str, path: Path) -> Path:
    """The companyfacts file as it stood on ``until``: the rows filed by then."""
    cut = {**doc, "facts": {tax: {c: {**body, "units": {u: [r for r in rows if r["filed"] <= until]
                                                         for u, rows in body["units"].items()}}
                                  for c, body in cs.items()} for tax, cs in doc["facts"].items()}}
    path.write_text(json.dumps(cut))
    return path


@pytest.fixture(scope="module")
def apple(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetricStore, list[str]]]:
    doc = json.loads(needs_shared(*APPLE).read_text())
    folder = tmp_path_factory.mktemp("apple-feed")
    store = Store.create(folder / "store")
    catalog = Catalog.load(CATALOG)
    run_ids = [ingest_paths(store, [as_served(doc, cut, folder / f"aapl-{cut}.json")], catalog=catalog).run_id
               for cut in CUTS]
    with MetricStore(store) as ms:
        yield ms, run_ids


def test_the_10ka_restatement_is_in_the_feed(apple: tuple[MetricStore, list[str]]) -> None:
    ms, runs = apple
    rows = ms.changes(entity="aapl", kind="restated", run=runs[1]).to_dicts()
    revenue = {r["period"]: r for r in rows if r["metric"] == "revenue"}
    fy2008 = revenue["FY2008"]
    assert fy2008["summary"] == ("aapl revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) "
                                 "by 0001193125-10-012091 10-K/A, filed 2010-01-25")
    assert (fy2008["old_value"], fy2008["new_value"], fy2008["change"]) == (32_479e6, 37_491e6, 5_012e6)
    history = ms.history("aapl", "revenue", "FY2008").to_dicts()
    assert fy2008["old_event_id"] == history[0]["event_id"] and fy2008["event_id"] == fy2008["by_event_id"]
    assert fy2008["event_id"] in {h["event_id"] for h in history
                                  if h["source"] == "0001193125-10-012091 10-K/A" and h["value"] == 37_491e6}
    assert {"FY2009", "FY2008"} <= set(revenue)
    # the first run's facts are all new; the run before the 10-K/A restated nothing
    assert set(ms.changes(run=runs[0])["change_kind"].to_list()) == {"new"}
    # the feed from the restating run on, as the command line asks it
    since = ms.changes(since=runs[1], kind="restated", entity="aapl")
    in_order = since["run_id"].unique(maintain_order=True).to_list()
    assert in_order[0] == runs[1] and set(in_order) <= set(runs[1:])
    assert fy2008["summary"] in since["summary"].to_list()


def test_the_split_is_a_split_adjustment(apple: tuple[MetricStore, list[str]]) -> None:
    ms, runs = apple
    rows = ms.changes(run=runs[3]).to_dicts()
    split = {(r["metric"], r["period"]): r for r in rows if r["change_kind"] == "split_adjusted"}
    eps = split[("eps_basic", "FY2013")]
    assert (eps["old_value"], eps["new_value"], eps["split_ratio"]) == (40.03, 5.72, 7.0)
    assert eps["summary"] == ("aapl eps_basic FY2013 split-adjusted 7-for-1 (40.03 -> 5.72 USD/share) "
                              "by 0001193125-14-383437 10-K, filed 2014-10-27")
    assert {m for m, _ in split} >= {"eps_basic", "eps_diluted",
                                     "us-gaap:WeightedAverageNumberOfSharesOutstandingBasic"}
    assert {r["split_ratio"] for r in split.values()} == {7.0}
    # no per-share figure of that run is called a restatement
    restated = {r["metric"] for r in rows if r["change_kind"] == "restated"}
    assert not restated & {"eps_basic", "eps_diluted"}
    # while the 10-K/A's per-share restatement (not a split: no share count moved) stays one
    assert "eps_basic" in {r["metric"] for r in ms.changes(run=runs[1], kind="restated").to_dicts()}


def test_one_runs_changes_read_narrowed_are_the_feeds(apple: tuple[MetricStore, list[str]]) -> None:
    # --run reads only the entities the run wrote (the notification's path): the same rows as the whole feed's
    ms, runs = apple
    whole = ms.changes()
    for run in runs:
        assert ms.changes(run=run).equals(whole.filter(whole["run_id"] == run)), run
