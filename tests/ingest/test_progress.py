"""Progress: a bar on a terminal, one plain log line per input otherwise."""

from __future__ import annotations

import logging

import pytest

from ingest.progress import progress


def test_plain_lines_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="metricstore.jobs"), progress("drops", 2, terminal=False) as p:
        p.advance("a.csv: 3 added")
        p.advance("b.csv: 1 added")
    assert [r.getMessage() for r in caplog.records] == ["drops: 1/2 a.csv: 3 added", "drops: 2/2 b.csv: 1 added"]


def test_a_bar_on_a_terminal(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="metricstore.jobs"), progress("drops", 3, terminal=True) as p:
        for name in ("a", "b", "c"):
            p.advance(f"{name}.csv")
    err = capsys.readouterr().err
    assert "drops" in err and "3/3" in err and caplog.records == []
