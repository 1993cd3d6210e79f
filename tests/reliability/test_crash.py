"""Crashes and concurrency, for real: writer processes killed with SIGKILL, 8 writers at once.

The full campaign (>= 200 kills) is ``make torture``; these run a short one in ``make test``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queries import MetricStore
from queries.errors import SqlError
from store import CorruptFile, Store
from store.repair import leftovers
from store.verify import verify
from tests.conftest import ROOT, run_cli
from tests.reliability._writer import batch
from tests.reliability.concurrency import concurrency_run
from tests.reliability.processes import read_acks, spawn_writer
from tests.reliability.torture import FAULT_POINTS, kill_trials


def test_killed_writers_lose_nothing_and_leave_nothing_visible(tmp_path: Path) -> None:
    stats = kill_trials(8, tmp_path, seed=20261124, rows=40, per_store=8, query_every=3, cli_every=0)
    assert stats.failures == []
    assert stats.kills == 8 and set(stats.faults) == {"timed", *FAULT_POINTS}
    assert stats.events_lost == 0 and stats.partial_batches == 0 and stats.retry_added_twice == 0
    assert stats.acked_batches > 0 and stats.retries > 0


def _kill_at(tmp_path: Path, fault: str, *, first: int = 0) -> tuple[Path, set[int], list[int]]:
    root = tmp_path / "store"
    ack = tmp_path / f"ack-{fault}-{first}.log"
    proc = spawn_writer(root, 1, first, 50, 10, ack, fault)
    assert proc.wait(timeout=120) == -9, proc.stderr.read().decode() if proc.stderr else ""
    _, begun, acked = read_acks(ack)
    return root, acked, begun


def test_a_dead_writers_temporary_file_is_never_read_and_the_next_writer_removes_it(tmp_path: Path) -> None:
    root, acked, begun = _kill_at(tmp_path, "fsync:2")  # the 2nd commit's file is complete and flushed
    left = [p for p in leftovers(Store(root)) if p.name.startswith("commit-")]
    assert len(left) == 1 and left[0].stat().st_size > 0
    with MetricStore(root) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [10 * len(acked)]
    assert run_cli("verify", store=root).returncode == 0
    r = Store(root).append(batch(1, begun[-1], 10))  # the next writer retries the batch in flight
    assert r.added == 10 and not [p for p in leftovers(Store(root)) if p.name.startswith("commit-")]


def test_verify_repair_removes_leftovers_and_sets_damaged_files_aside(tmp_path: Path) -> None:
    root, acked, _ = _kill_at(tmp_path, "write:3")
    assert len(acked) == 2
    r = run_cli("verify", store=root)
    assert r.returncode == 0 and "temporary file" in r.stdout, r.stdout + r.stderr
    r = run_cli("verify", "--repair", store=root)
    assert r.returncode == 0 and "removed" in r.stdout and not leftovers(Store(root)), r.stdout + r.stderr
    # damage after the fact: a flipped byte in a committed file
    victim = sorted((root / "events").glob("2*.parquet"))[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x01
    victim.write_bytes(bytes(data))
    assert [f.path for f in verify(Store(root))] == [str(victim)]
    r = run_cli("verify", "--repair", store=root)
    assert r.returncode == 1 and "moved aside" in r.stderr and victim.name in r.stderr
    assert (root / "_damaged" / "events" / victim.name).read_bytes() == bytes(data)  # kept, not deleted
    assert verify(Store(root)) == []
    with MetricStore(root) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [10]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_commit_is_flushed_file_and_folder_before_append_returns(tmp_path: Path) -> None:
    """Traced system calls of a real append: fsync(file) < rename < fsync(folder) < append returns."""
    root = tmp_path / "store"
    Store.create(root)
    trace = tmp_path / "trace.txt"
    code = ("import os, sys; from store import Store; from tests.reliability._writer import batch; "
            "s = Store(sys.argv[1]); os.write(1, b'APPEND\\n'); s.append(batch(1, 0, 5)); os.write(1, b'RETURNED\\n')")
    subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,write", "-o", str(trace),
                    sys.executable, "-c", code, str(root)], cwd=ROOT, check=True, capture_output=True, timeout=120)
    calls = trace.read_text().splitlines()
    start = next(i for i, c in enumerate(calls) if "APPEND" in c)
    end = next(i for i, c in enumerate(calls) if "RETURNED" in c)
    calls = calls[start:end]
    rename = next(i for i, c in enumerate(calls) if re.search(r"rename.*_tmp/commit-.*events/", c))
    commit = re.search(r"_tmp/(commit-[0-9a-f]+\.parquet)", calls[rename])
    assert commit is not None
    assert any(re.search(rf"fsync\(\d+<[^>]*{commit.group(1)}>\)", c) for c in calls[:rename]), "file not flushed"
    assert any(re.search(r"fsync\(\d+<[^>]*/events>\)", c) for c in calls[rename:]), "folder not flushed"


def test_eight_writers_readers_and_compaction_at_once(tmp_path: Path) -> None:
    compactor = importlib.util.find_spec("store.compaction") is not None
    out = concurrency_run(tmp_path, writers=8, appends=4, rows=20, readers=2, compactor=compactor, timeout=300)
    assert out["writer_exit_codes"] == [0] * 8, out["writer_errors"]
    assert out["acked_batches"] == 32
    assert out["final_equals_union_of_acks"] and out["events_found"] == out["events_expected"] == 640
    assert out["reader_errors"] == [] and out["counts_went_down"] == 0
    assert out["reader_queries"] > 0


def test_a_query_meeting_a_damaged_file_fails_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    st = Store.create(root)
    st.append(batch(1, 0, 30))
    st.append(batch(1, 1, 30))
    victim = sorted((root / "events").glob("2*.parquet"))[0]
    with MetricStore(root) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [60]
        data = bytearray(victim.read_bytes())
        data[100] ^= 0x40  # one bit, inside the data pages
        victim.write_bytes(bytes(data))
        with pytest.raises(CorruptFile) as info:
            ms.sql("SELECT sum(value) AS v FROM events")
    assert victim.name in str(info.value) and "checksum" in str(info.value)
    assert not isinstance(info.value, SqlError)


@pytest.mark.skipif(importlib.util.find_spec("store.compaction") is None, reason="compaction has not landed")
def test_killed_compactions_change_no_event(tmp_path: Path) -> None:
    from tests.reliability.torture import COMPACTION_FAULTS, compaction_trials

    stats = compaction_trials(8, tmp_path, seed=7, commits=8)
    assert stats.failures == []
    assert stats.events_lost == 0 and stats.verify_problems == 0 and stats.query_mismatches == 0
    assert {f.removesuffix("-finished-first") for f in stats.faults} == {"timed", *COMPACTION_FAULTS}


def test_the_next_writer_removes_what_a_killed_compaction_left_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.reliability.processes import child_env, wait_ready

    monkeypatch.setenv("METRICSTORE_AUTO_COMPACT", "0")
    root = tmp_path / "store"
    store = Store.create(root)
    for i in range(6):
        store.append(batch(3, i, 10))
    ack = tmp_path / "compact.log"
    proc = subprocess.Popen([sys.executable, "-m", "tests.reliability._writer", "compact", str(root), str(ack),
                             "manifest:1"], cwd=ROOT, env={**child_env(), "METRICSTORE_AUTO_COMPACT": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_ready(proc, ack)
    assert proc.wait(timeout=300) == -9                   # killed right after publishing its manifest
    left = [p.name for p in leftovers(store) if p.name.startswith(("compact-", "manifest-", "duckdb-"))]
    assert left, [p.name for p in leftovers(store)]       # the merged file it was about to publish
    r = Store(root).append(batch(3, 6, 10))               # the next writer, no compaction of its own
    assert r.added == 10
    assert not [p.name for p in leftovers(store)]
    assert verify(store) == []
    with MetricStore(root) as ms:
        assert ms.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [70]


def test_writers_killed_around_their_projection_step_leave_no_stale_answer(tmp_path: Path) -> None:
    from tests.reliability.projection_trials import projection_trials

    stats = projection_trials(3, tmp_path, seed=20261205)
    assert stats.failures == []
    assert stats.kills == 3 and set(stats.faults) == {"timed", "project", "layer"}
