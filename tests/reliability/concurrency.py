"""Writers and readers at once: no reader fails or sees the log go back, nothing acknowledged is lost.

Concurrency (:func:`concurrency_run`): N writers append at once while reader processes query
in a loop; the final event set must equal the union of what the writers were told was committed,
and no reader may fail or see a count go down.

Readers during compaction (:func:`reader_compaction_run`): writers compact automatically at every
second small file and delete merged sources after a grace period of 0 s, then 1 s, while readers
open sessions and query and ``metricstore compact`` runs in a loop; no reader may fail or see a
count go down.

``tests/reliability/torture.py`` runs both in the full campaign.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.processes import ROOT, batch_counts, child_env, read_acks, spawn_writer


def _reader(root: str, seconds_max: float, out: str, sessions: bool = False) -> None:
    """A reader process: query in a loop until told to stop; record counts and errors.

    ``sessions``: open a new session (``MetricStore``) for every round, as a command-line user
    does, so that opening one (listing the files, creating the views) meets compactions too; a
    round also reads ``growth``, which may be answered from the projections."""
    from queries import MetricStore

    stop = Path(out + ".stop")
    counts: list[int] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds_max

    def one_round(ms: MetricStore) -> None:
        try:
            counts.append(int(ms.sql("SELECT count(*) AS n FROM events")["n"][0]))
            ms.sql("SELECT entity, count(*) AS n, sum(value) AS v FROM facts GROUP BY entity")
            if sessions:
                ms.sql("SELECT entity, count(*) AS n FROM growth GROUP BY entity")
        except Exception as exc:  # noqa: BLE001 - a reader must never fail; record what it saw
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    with MetricStore(root) as ms:
        Path(out + ".ready").write_text("")
        # at least one query even when the writers finished first; then until told to stop
        while (not stop.exists() or not counts) and time.monotonic() < deadline:
            if not sessions:
                one_round(ms)
                continue
            try:
                with MetricStore(root) as fresh:
                    one_round(fresh)
            except Exception as exc:  # noqa: BLE001 - opening a session must not fail either
                errors.append(f"{type(exc).__name__} (opening): {str(exc)[:300]}")
    Path(out).write_text(json.dumps({"counts": counts, "errors": errors}))


def concurrency_run(work: Path, *, writers: int = 8, appends: int = 10, rows: int = 20, readers: int = 2,
                    compactor: bool = False, timeout: float = 600.0) -> dict[str, object]:
    """``writers`` processes append ``appends`` batches each at once while ``readers`` query."""
    from store import Store

    root = work / "store"
    Store.create(root)
    reader_out = [work / f"reader{i}.json" for i in range(readers)]
    reader_procs = _start_readers(root, reader_out, timeout)   # they query while the writers append
    procs = [spawn_writer(root, w, 0, appends, rows, work / f"w{w}.ack") for w in range(writers)]
    comp_proc = None
    if compactor:
        comp_proc = spawn_compactor(root, work / "compactor.log", timeout)
    codes = [p.wait(timeout=timeout) for p in procs]
    writer_errors = [p.stderr.read().decode()[-500:] for p in procs if p.stderr and p.returncode]
    for out in reader_out:
        Path(str(out) + ".stop").write_text("")
    if comp_proc is not None:
        (work / "compactor.log.stop").write_text("")
    seen_counts, reader_errors = _reader_results(reader_procs, reader_out, timeout)
    compactions = 0
    if comp_proc is not None:
        comp_proc.wait(timeout=timeout)
        compactions = sum(1 for line in (work / "compactor.log").read_text().splitlines() if line.startswith("ok"))
    acked = {(w, b) for w in range(writers) for b in read_acks(work / f"w{w}.ack")[2]}
    per, raw, distinct = batch_counts(root)
    expected = {f"w{w}-b{b}": rows for w, b in acked}
    return {
        "writers": writers, "appends_each": appends, "rows_per_append": rows, "readers": readers,
        "compactor": compactor, "compactions": compactions,
        "writer_exit_codes": codes, "writer_errors": writer_errors,
        "acked_batches": len(acked), "events_expected": len(acked) * rows, "events_found": distinct,
        "raw_rows": raw, "final_equals_union_of_acks": per == expected,
        "reader_queries": sum(len(c) for c in seen_counts), "reader_errors": reader_errors,
        "counts_went_down": _went_down(seen_counts),
    }


def _reader_results(procs: list[subprocess.Popen[bytes]], outs: list[Path],
                    timeout: float) -> tuple[list[list[int]], list[str]]:
    """Wait for the reader processes (:func:`_reader`, told to stop); the event counts each saw,
    in order, and every error: their queries', then a dead process's stderr."""
    counts: list[list[int]] = []
    errors: list[str] = []
    died: list[str] = []
    for p, out in zip(procs, outs, strict=True):
        p.wait(timeout=timeout)
        if p.returncode:
            died.append(p.stderr.read().decode()[-500:] if p.stderr else "")
        data = json.loads(out.read_text()) if out.exists() else {"counts": [], "errors": ["no output"]}
        counts.append(data["counts"])
        errors.extend(data["errors"])
    return counts, errors + died


def _went_down(counts: list[list[int]]) -> int:
    """How many times a reader's count of events was lower than at its round before."""
    return sum(1 for c in counts for a, b in zip(c, c[1:], strict=False) if b < a)



def _start_readers(root: Path, outs: list[Path], timeout: float, *, env: dict[str, str] | None = None,
                   sessions: bool = False) -> list[subprocess.Popen[bytes]]:
    """Reader processes (:func:`_reader`), one per output file, returned once each has opened its
    session (or died), so that they query while the writers append."""
    procs = [subprocess.Popen([sys.executable, "-c",
                               "import sys; from tests.reliability.concurrency import _reader; "
                               f"_reader(sys.argv[1], float(sys.argv[2]), sys.argv[3], sessions={sessions})",
                               str(root), str(timeout), str(out)], cwd=ROOT, env={**child_env(), **(env or {})},
                              stderr=subprocess.PIPE)
             for out in outs]
    ready_by = time.monotonic() + min(timeout, 120.0)
    while time.monotonic() < ready_by and not all(Path(str(o) + ".ready").exists() or p.poll() is not None
                                                  for o, p in zip(outs, procs, strict=True)):
        time.sleep(0.05)
    return procs

def reader_compaction_run(work: Path, *, grace_s: float, writers: int = 3, appends: int = 30, rows: int = 5,
                          readers: int = 1, min_files: int = 2, compact_cli: bool = True,
                          timeout: float = 600.0) -> dict[str, object]:
    """Readers during compaction: ``writers`` processes append with automatic compaction at every
    ``min_files`` small files and merged sources deleted after ``grace_s`` seconds, while reader
    processes open sessions and query in a loop and ``metricstore compact`` (which also refreshes
    the growth projections) runs again and again. No reader query, session or compaction may fail:
    a file a compaction deletes under a reader is listed again, never an error."""
    from store import Store

    root = work / "store"
    Store.create(root)
    env = {"METRICSTORE_AUTO_COMPACT": "1", "METRICSTORE_COMPACT_MIN_FILES": str(min_files),
           "METRICSTORE_COMPACT_GRACE_S": f"{grace_s:g}"}
    reader_out = [work / f"reader{i}.json" for i in range(readers)]
    reader_procs = _start_readers(root, reader_out, timeout, env=env, sessions=True)
    procs = [spawn_writer(root, w, 0, appends, rows, work / f"w{w}.ack", env=env) for w in range(writers)]
    compact_runs, compact_failures = 0, []
    while compact_cli and any(p.poll() is None for p in procs):
        r = subprocess.run([sys.executable, "-m", "metricstore", "compact", "--store", str(root)], cwd=ROOT,
                           env={**child_env(), **env}, capture_output=True, text=True, timeout=timeout)
        compact_runs += 1
        if r.returncode != 0 or "Traceback" in r.stderr:
            compact_failures.append(f"exit {r.returncode}: {r.stderr.strip()[-400:]}")
    codes = [p.wait(timeout=timeout) for p in procs]
    writer_errors = [p.stderr.read().decode()[-500:] for p in procs if p.stderr and p.returncode]
    for out in reader_out:
        Path(str(out) + ".stop").write_text("")
    seen_counts, reader_errors = _reader_results(reader_procs, reader_out, timeout)
    acked = {(w, b) for w in range(writers) for b in read_acks(work / f"w{w}.ack")[2]}
    per, _, distinct = batch_counts(root)
    return {
        "grace_s": grace_s, "writers": writers, "appends_each": appends, "readers": readers,
        "writer_exit_codes": codes, "writer_errors": writer_errors,
        "final_equals_union_of_acks": per == {f"w{w}-b{b}": rows for w, b in acked},
        "events_found": distinct, "compact_runs": compact_runs, "compact_failures": compact_failures,
        "reader_rounds": sum(len(c) for c in seen_counts), "reader_failures": len(reader_errors),
        "reader_errors": reader_errors[:10], "counts_went_down": _went_down(seen_counts),
    }


def reader_compaction_ok(run: dict[str, object]) -> bool:
    """Did a :func:`reader_compaction_run` pass: nothing lost, no reader, writer or compaction failed,
    no reader saw fewer events than it had seen before?"""
    return (bool(run["final_equals_union_of_acks"]) and not run["writer_errors"] and not run["reader_failures"]
            and not run["compact_failures"] and not run["counts_went_down"])


def spawn_compactor(root: Path, log: Path, timeout: float) -> subprocess.Popen[bytes]:
    """A compactor process looping until ``<log>.stop`` appears (needs the store's compaction)."""
    code = (
        "import sys, time, pathlib\n"
        "from store import Store\n"
        "from store.compaction import compact\n"
        "root, log, limit = sys.argv[1], pathlib.Path(sys.argv[2]), float(sys.argv[3])\n"
        "stop, end = pathlib.Path(str(log) + '.stop'), time.monotonic() + limit\n"
        "with log.open('a') as fh:\n"
        "    while not stop.exists() and time.monotonic() < end:\n"
        "        r = compact(Store(root))\n"
        "        fh.write(f'ok {r}\\n'); fh.flush()\n"
        "        time.sleep(0.05)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(root), str(log), str(timeout)], cwd=ROOT, env=child_env(),
                            stderr=subprocess.PIPE)
