"""Readers while compactions delete the files they listed: real writer processes compacting at a
grace period of 0 s, reader processes in a loop, ``metricstore compact`` beside them."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.concurrency import reader_compaction_ok, reader_compaction_run


def test_no_reader_or_compaction_fails_when_sources_are_deleted_at_once(tmp_path: Path) -> None:
    run = reader_compaction_run(tmp_path, grace_s=0.0, writers=3, appends=25, rows=5, readers=1, timeout=300)
    assert run["reader_rounds"] > 0 and run["compact_runs"] > 0
    assert reader_compaction_ok(run), run
