"""Crash and concurrency torture: real writer processes, killed with SIGKILL, and counted losses.

    python -m tests.reliability.torture --trials 240 --writers 8 --json torture.json

Kill trials (:func:`kill_trials`): a writer process appends batches; it is killed with SIGKILL,
either at a random moment (timed kill) or at a chosen step of the commit (a fault point, see
``_writer.py``). After each kill the harness checks, on the real files:

- every batch whose append *returned* to the writer is wholly present (else: events lost);
- no batch is partly present, and no row is present twice (a commit is all or nothing);
- ``verify`` finds nothing wrong in the table folders, and a query counts exactly the whole batches;
- recovery: the next writer (or ``verify --repair``, alternately) removes the dead writer's
  temporary file; retrying the batch in flight adds it once or not at all, and re-appending an
  acknowledged batch adds nothing.

Writers and readers at once, with and without compactions (:mod:`tests.reliability.concurrency`):
nothing acknowledged is lost, and no reader fails or sees a count go down.

Projections (:mod:`tests.reliability.projection_trials`): writers killed around their projection
step; no reader may get a stale growth answer, and the next step must cover the whole log.

``make torture`` runs the full campaign; ``tests/reliability/test_crash.py`` runs a few trials in
``make test``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from tests.reliability.concurrency import concurrency_run, reader_compaction_ok, reader_compaction_run
from tests.reliability.processes import ROOT, batch_counts, child_env, end, read_acks, spawn_writer, wait_ready
from tests.reliability.projection_trials import projection_trials

FAULT_POINTS = ("write", "fsync", "replace", "lock")


@dataclass
class Stats:
    """Counts of a torture run (the figures the README quotes)."""

    trials: int = 0
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    acked_batches: int = 0
    acked_events: int = 0
    events_lost: int = 0
    partial_batches: int = 0
    duplicate_rows: int = 0  # most copies seen at once (compaction; by design)
    verify_problems: int = 0
    query_mismatches: int = 0
    leftovers_seen: int = 0
    leftovers_cleaned_by_next_writer: int = 0
    leftovers_cleaned_by_repair: int = 0
    retries: int = 0
    retry_added_twice: int = 0
    in_flight_committed: int = 0
    in_flight_absent: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, trial: int, what: str) -> None:
        self.failures.append(f"trial {trial}: {what}")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["faults"] = dict(self.faults)
        return d


def check_store(root: Path, writer: int, rows: int, acked: set[int], stats: Stats, trial: int,
                *, allow_duplicates: bool = True) -> dict[str, int]:
    """The invariants after a crash; counts violations in ``stats``; returns rows per batch source."""
    from store import Store
    from store.verify import verify

    per, raw, distinct = batch_counts(root)
    for b in acked:
        got = per.get(f"w{writer}-b{b}", 0)
        if got != rows:
            stats.events_lost += rows - got
            stats.fail(trial, f"acknowledged batch {b} has {got} of {rows} events")
    for source, n in per.items():
        if n != rows:
            stats.partial_batches += 1
            stats.fail(trial, f"batch {source} is partly present: {n} of {rows}")
    # a compaction publishes its merged file beside its sources, which go after a grace period:
    # the same event in two files is by design (every reader dedupes by id); a retried append
    # writing an event again is not, and is caught by the retry checks.
    stats.duplicate_rows = max(stats.duplicate_rows, raw - distinct)
    if raw != distinct and not allow_duplicates:
        stats.fail(trial, f"{raw - distinct} rows written twice")
    findings = verify(Store(root))
    if findings:
        stats.verify_problems += len(findings)
        stats.fail(trial, f"verify: {findings[0]}")
    return per


def query_count(root: Path) -> int:
    from queries import MetricStore

    with MetricStore(root) as ms:
        return int(ms.sql("SELECT count(*) AS n FROM events")["n"][0])


def kill_trials(trials: int, work: Path, *, seed: int = 1, rows: int = 50, per_store: int = 25,
                query_every: int = 1, cli_every: int = 10, log: bool = False) -> Stats:
    """Kill a writer ``trials`` times; half at random moments, half at the commit's fault points."""
    from store import Store
    from store.repair import leftovers, repair
    from tests.reliability._writer import batch

    rng = random.Random(seed)
    stats = Stats()
    root = work / "store-0"
    next_batch = 0
    writer = 1
    for trial in range(trials):
        if trial % per_store == 0:
            root = work / f"store-{trial // per_store}"
            Store.create(root)
            next_batch = 0
        ack = work / f"ack-{trial}.log"
        fault = ""
        if trial % 2 == 1:
            point = FAULT_POINTS[(trial // 2) % len(FAULT_POINTS)]
            fault = f"{point}:{rng.randint(1, 4)}"
        proc = spawn_writer(root, writer, next_batch, 1000, rows, ack, fault)
        if not wait_ready(proc, ack):
            proc.kill()
            stats.fail(trial, f"writer did not start: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            continue
        if fault:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            stats.faults[fault.split(":")[0]] += 1
        else:
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stats.faults["timed"] += 1
        if proc.returncode != -signal.SIGKILL:
            stats.fail(trial, f"writer exited {proc.returncode}, not by SIGKILL: "
                              f"{proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
        if proc.stderr:
            proc.stderr.close()
        stats.kills += 1
        stats.trials += 1
        _, begun, acked = read_acks(ack)
        all_acked = {b for t_ack in work.glob("ack-*.log") if _same_store(t_ack, trial, per_store)
                     for b in read_acks(t_ack)[2]}
        stats.acked_batches += len(acked)
        stats.acked_events += len(acked) * rows
        per = check_store(root, writer, rows, all_acked, stats, trial)
        if query_every and trial % query_every == 0:
            expect = sum(per.values())
            got = query_count(root)
            if got != expect:
                stats.query_mismatches += 1
                stats.fail(trial, f"query counts {got} events; the files hold {expect}")
        left = leftovers(Store(root))
        stats.leftovers_seen += len(left)
        in_flight = begun[-1] if begun and begun[-1] not in acked else None
        store = Store(root)
        use_repair = (trial // 2) % 2 == 0  # alternate: verify --repair, or the next writer, cleans up
        if use_repair and left:
            if cli_every and (trial // 2) % cli_every == 0:
                r = subprocess.run([sys.executable, "-m", "metricstore", "verify", "--repair", "--store", str(root)],
                                   cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
                if r.returncode != 0 or "Traceback" in r.stderr:
                    stats.fail(trial, f"verify --repair exited {r.returncode}: {r.stderr[-300:]}")
            else:
                rep = repair(store)
                if rep.remaining or rep.moved:
                    stats.fail(trial, f"repair left {rep.remaining} / moved {rep.moved}")
            if leftovers(store):
                stats.fail(trial, "repair left temporary files")
            else:
                stats.leftovers_cleaned_by_repair += len(left)
        # the next writer: retry the batch in flight, re-append an acknowledged one
        if in_flight is not None:
            was_there = per.get(f"w{writer}-b{in_flight}", 0) == rows
            r = store.append(batch(writer, in_flight, rows))
            stats.retries += 1
            if was_there:
                stats.in_flight_committed += 1
                if r.added:
                    stats.retry_added_twice += 1
                    stats.fail(trial, f"retry of committed batch {in_flight} added {r.added}")
            else:
                stats.in_flight_absent += 1
                if r.added != rows:
                    stats.fail(trial, f"retry of lost in-flight batch {in_flight} added {r.added} of {rows}")
        if acked:
            again = store.append(batch(writer, rng.choice(sorted(acked)), rows))
            stats.retries += 1
            if again.added:
                stats.retry_added_twice += 1
                stats.fail(trial, f"re-appending an acknowledged batch added {again.added}")
        if left and not use_repair:
            if leftovers(store) and (in_flight is not None or acked):
                stats.fail(trial, "the next writer did not remove the dead writer's temporary file")
            elif in_flight is not None or acked:
                stats.leftovers_cleaned_by_next_writer += len(left)
        check_store(root, writer, rows, all_acked | ({in_flight} if in_flight is not None else set()), stats, trial)
        next_batch = max([next_batch - 1, *begun]) + 1
        if log:
            print(f"trial {trial}: fault={fault or 'timed'} acked={len(acked)} in_flight={in_flight} "
                  f"leftovers={len(left)}", flush=True)
    return stats


def _drop_files(drop: Path, first: int, count: int, rows: int) -> None:
    """``count`` canonical CSV files; file ``i`` holds ``rows`` events, all with source ``drop-<i>``."""
    from tests.conftest import fact, write_csv

    drop.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        tmp = drop.parent / f".drop-{i:04d}.csv"
        write_csv(tmp, [fact(segment=f"s{j % 7}", period=f"FY{2000 + j // 7}", value=str(i * 1000 + j),
                             source=f"drop-{i}") for j in range(rows)])
        os.replace(tmp, drop / f"drop-{i:04d}.csv")


def scheduled_trials(trials: int, work: Path, *, seed: int = 1, files: int = 12, rows: int = 40,
                     log: bool = False) -> Stats:
    """Kill ``metricstore jobs run`` (a drop-folder job) at random moments, ``trials`` times.

    After each kill: a file moved to ``processed/`` is wholly in the store; a file still in the
    drop folder is wholly there or not at all (never part of it); nothing is lost from the folder;
    ``verify`` is clean. The folder is refilled when a run empties it. At the end one run
    finishes the rest, and every file's events are present exactly once.
    """
    from store import Store
    from store.verify import verify

    rng = random.Random(seed)
    stats = Stats()
    root, drop = work / "store", work / "drop"
    Store.create(root)
    config = work / "jobs.toml"
    config.write_text(f'[jobs.drops]\ntrigger = {{ interval = "1h" }}\n'
                      f'source = {{ type = "drop_folder", path = "{drop}", settle = 0 }}\n')
    made = 0
    env = {**child_env(), "METRICSTORE_STORE": str(root)}
    cmd = [sys.executable, "-m", "metricstore", "jobs", "run", "drops", "--config", str(config), "--quiet"]
    for trial in range(trials):
        pending = sorted(p.name for p in drop.glob("*.csv")) if drop.is_dir() else []
        if len(pending) < 3:
            _drop_files(drop, made, files, rows)
            made += files
        def progress() -> tuple[int, int]:
            done = len(list((drop / "processed").glob("*.csv"))) if (drop / "processed").is_dir() else 0
            return done, len(list((root / "events").iterdir()))

        base = progress()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while progress() == base and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # wait for the job to be ingesting (start-up takes seconds on a busy machine)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
        stats.trials += 1
        stats.kills += 1 if proc.returncode == -signal.SIGKILL else 0
        stats.faults["scheduled_ingest"] += 1
        per, _, _ = batch_counts(root)
        processed = {p.name for p in (drop / "processed").glob("*.csv")} if (drop / "processed").is_dir() else set()
        still = {p.name for p in drop.glob("*.csv")}
        for i in range(made):
            name = f"drop-{i:04d}.csv"
            got = per.get(f"drop-{i}", 0)
            if name not in processed and name not in still:
                stats.events_lost += rows
                stats.fail(trial, f"{name} vanished from the drop folder")
            if name in processed and got != rows:
                stats.events_lost += rows - got
                stats.fail(trial, f"{name} is in processed/ but {got} of its {rows} events are in the store")
            if got not in (0, rows):
                stats.partial_batches += 1
                stats.fail(trial, f"{name}: {got} of {rows} events present")
        stats.acked_batches = len(processed)
        stats.acked_events = len(processed) * rows
        findings = verify(Store(root))
        if findings:
            stats.verify_problems += len(findings)
            stats.fail(trial, f"verify: {findings[0]}")
        stats.leftovers_seen += len([p for p in (root / "_tmp").iterdir()]) if (root / "_tmp").is_dir() else 0
        if log:
            print(f"scheduled trial {trial}: processed={len(processed)} pending={len(still)}", flush=True)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        stats.fail(trials, f"the final run exited {r.returncode}: {r.stderr[-500:]}")
    per, _, _ = batch_counts(root)
    for i in range(made):
        if per.get(f"drop-{i}", 0) != rows:
            stats.events_lost += rows - per.get(f"drop-{i}", 0)
            stats.fail(trials, f"after the final run drop-{i} has {per.get(f'drop-{i}', 0)} of {rows} events")
    if query_count(root) != made * rows:
        stats.query_mismatches += 1
        stats.fail(trials, "a query does not count every dropped event once")
    stats.acked_events = made * rows
    return stats


COMPACTION_FAULTS = ("manifest", "publish", "unlink", "lock")


def compaction_trials(trials: int, work: Path, *, seed: int = 1, commits: int = 12, rows: int = 10,
                      log: bool = False) -> Stats:
    """Kill a compaction ``trials`` times: at random moments and at each of its steps.

    After each kill the set of distinct event ids must be exactly the set before (nothing lost,
    nothing invented), ``verify`` clean, a query counting every event once; then a compaction run to
    its end must leave the same set, no temporary file, and no event in two files.
    """
    from store import Store
    from store.compaction import compact
    from store.verify import verify
    from tests.reliability._writer import batch

    rng = random.Random(seed)
    stats = Stats()
    root = work / "store"
    store = Store.create(root)
    next_batch = 0

    def ids() -> set[str]:
        con = duckdb.connect()
        try:
            rows_ = con.execute("SELECT DISTINCT event_id FROM read_parquet(?, union_by_name = true)",
                                [str(root / "events" / "*.parquet")]).fetchall()
        finally:
            con.close()
        return {r[0] for r in rows_}

    env_off = os.environ.get("METRICSTORE_AUTO_COMPACT")
    os.environ["METRICSTORE_AUTO_COMPACT"] = "0"  # only the compactor under test compacts
    try:
        for trial in range(trials):
            for _ in range(commits):
                store.append(batch(9, next_batch, rows))
                next_batch += 1
            before = ids()
            ack = work / f"compact-{trial}.log"
            fault = ""
            if trial % 2 == 1:
                point = COMPACTION_FAULTS[(trial // 2) % len(COMPACTION_FAULTS)]
                fault = f"{point}:{rng.randint(1, 3) if point == 'unlink' else 1}"
            proc = subprocess.Popen([sys.executable, "-m", "tests.reliability._writer", "compact", str(root), str(ack),
                                     fault], cwd=ROOT, env={**child_env(), "METRICSTORE_AUTO_COMPACT": "0"},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if not wait_ready(proc, ack):
                proc.kill()
                stats.fail(trial, "compactor did not start")
                continue
            end(proc, fault, rng.uniform(0.0, 0.15))
            finished = "ok compacted" in ack.read_text()
            stats.trials += 1
            stats.kills += 0 if finished else 1
            stats.faults[(fault.split(":")[0] if fault else "timed") + ("" if not finished else "-finished-first")] += 1
            if proc.stderr:
                err = proc.stderr.read().decode()
                proc.stderr.close()
                if proc.returncode not in (0, -signal.SIGKILL):
                    stats.fail(trial, f"compactor exited {proc.returncode}: {err[-400:]}")
            after = ids()
            if after != before:
                stats.events_lost += len(before - after)
                stats.fail(trial, f"event set changed: {len(before - after)} lost, {len(after - before)} new")
            findings = verify(store)
            if findings:
                stats.verify_problems += len(findings)
                stats.fail(trial, f"verify: {findings[0]}")
            if query_count(root) != len(before):
                stats.query_mismatches += 1
                stats.fail(trial, "a query does not count every event once after a killed compaction")
            stats.leftovers_seen += len([p for p in (root / "_tmp").iterdir() if p.name.startswith(("compact-", "manifest-", "duckdb-"))])
            stats.acked_events = len(before)
            compact(store, full=True, grace_s=0)  # the next compaction finishes the job
            per, raw, distinct = batch_counts(root)
            if ids() != before or raw != distinct:
                stats.fail(trial, f"after a full compaction: {distinct} ids ({len(before)} before), {raw - distinct} copies left")
            if any(p.name.startswith(("compact-", "manifest-", "duckdb-")) for p in (root / "_tmp").iterdir()):
                stats.fail(trial, "the next compaction left the dead one's temporary files")
            else:
                stats.leftovers_cleaned_by_next_writer += 1
            if log:
                print(f"compaction trial {trial}: fault={fault or 'timed'} finished={finished} events={len(before)}", flush=True)
    finally:
        if env_off is None:
            os.environ.pop("METRICSTORE_AUTO_COMPACT", None)
        else:
            os.environ["METRICSTORE_AUTO_COMPACT"] = env_off
    return stats


def _same_store(ack: Path, trial: int, per_store: int) -> bool:
    n = int(ack.stem.split("-")[1])
    return n // per_store == trial // per_store and n <= trial


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=240)
    p.add_argument("--scheduled", type=int, default=40, help="kills of a scheduled (drop-folder) ingest")
    p.add_argument("--compactions", type=int, default=40, help="kills of a compaction")
    p.add_argument("--projections", type=int, default=30, help="kills of a writer around its projection step")
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--appends", type=int, default=15)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--compactor", action="store_true")
    p.add_argument("--reader-grace", type=float, nargs="*", default=[0.0, 1.0],
                   help="grace periods (s) of the readers-during-compaction phase (none: skip it)")
    p.add_argument("--reader-appends", type=int, default=600,
                   help="appends per writer in that phase (more appends: more compactions under the readers)")
    args = p.parse_args(argv)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="metricstore-torture-"))
    t0 = time.monotonic()
    (work / "kill").mkdir(parents=True, exist_ok=True)
    stats = kill_trials(args.trials, work / "kill", seed=args.seed, log=True)
    comp = None
    if importlib.util.find_spec("store.compaction") is not None:
        (work / "compact").mkdir(parents=True, exist_ok=True)
        comp = compaction_trials(args.compactions, work / "compact", seed=args.seed, log=True)
    (work / "sched").mkdir(parents=True, exist_ok=True)
    sched = scheduled_trials(args.scheduled, work / "sched", seed=args.seed, log=True)
    (work / "project").mkdir(parents=True, exist_ok=True)
    proj = projection_trials(args.projections, work / "project", seed=args.seed, log=True)
    t1 = time.monotonic()
    (work / "conc").mkdir(parents=True, exist_ok=True)
    conc = concurrency_run(work / "conc", writers=args.writers, appends=args.appends,
                           compactor=args.compactor or importlib.util.find_spec("store.compaction") is not None)
    t2 = time.monotonic()
    during: list[dict[str, object]] = []
    for grace in args.reader_grace:
        (work / f"readers-{grace:g}").mkdir(parents=True, exist_ok=True)
        during.append(reader_compaction_run(work / f"readers-{grace:g}", grace_s=grace,
                                            appends=args.reader_appends))
        print(f"readers during compaction, grace {grace:g} s: {during[-1]['reader_rounds']} rounds, "
              f"{during[-1]['reader_failures']} reader failures, {len(during[-1]['compact_failures'])} failed "
              f"compactions of {during[-1]['compact_runs']}", flush=True)
    t3 = time.monotonic()
    summary = {"seed": args.seed, "kill_trials": stats.as_dict(), "scheduled_ingest_trials": sched.as_dict(),
               "compaction_trials": comp.as_dict() if comp else "store.compaction not present",
               "projection_trials": asdict(proj),
               "kill_seconds": round(t1 - t0, 1),
               "concurrency": conc, "concurrency_seconds": round(t2 - t1, 1),
               "readers_during_compaction": during, "readers_during_compaction_seconds": round(t3 - t2, 1)}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = (not stats.failures and stats.events_lost == 0 and not sched.failures and not (comp and comp.failures)
          and not proj.failures
          and conc["final_equals_union_of_acks"]
          and not conc["reader_errors"] and not conc["counts_went_down"] and not conc["writer_errors"]
          and all(reader_compaction_ok(run) for run in during))
    print("TORTURE", "PASSED" if ok else "FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
