"""MetricStore.interrupt: another thread stops the running query (a timeout, a cancel request)."""

from __future__ import annotations

import threading
import time

import pytest

from queries import MetricStore
from queries.errors import SqlError

SLOW = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"


def test_interrupt_stops_the_running_query_and_the_store_answers_after(ms: MetricStore) -> None:
    ms.interrupt()                                  # nothing running: nothing happens
    threading.Timer(0.5, ms.interrupt).start()
    started = time.monotonic()
    with pytest.raises(SqlError, match="(?i)interrupt"):
        ms.sql(SLOW)
    assert time.monotonic() - started < 10
    assert ms.sql("SELECT 1 AS one")["one"].to_list() == [1]
