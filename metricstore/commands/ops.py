"""Looking after a store: ``metricstore verify`` and ``metricstore compact``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from metricstore.options import StoreOpt, err, open_store
from store.checkup import checkup

app = typer.Typer()


@app.command()
def verify(
    store: StoreOpt = None,
    repair: Annotated[bool, typer.Option("--repair", help="Remove temporary files of dead writers; move damaged files to <store>/_damaged/ (never deleted).")] = False,
) -> None:
    """Read every file of the store and report anything unreadable or inconsistent."""
    found = checkup(open_store(store), repair=repair)
    for p in found.removed:
        print(f"removed {p} (a writer died before publishing it; it was never read as data)")
    for f, target in found.moved:
        err.print(f"moved aside: {f} -> {target} (its events are missing until it is restored from a backup)")
    for f in found.findings:
        err.print(f"problem: {f}")
    if found.temporary:
        print(f"note: {len(found.temporary)} temporary file(s) in {found.root}/_tmp (never read; the next writer "
              "or verify --repair removes them)")
    print(f"{found.root}: {found.files_checked} files checked, {len(found.findings)} problem(s)")
    if not found.ok:
        raise typer.Exit(1)


@app.command()
def compact(
    store: StoreOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Merge every file, large ones too (the best layout for queries; rewrites everything).")] = False,
    snapshot: Annotated[bool, typer.Option("--snapshot/--no-snapshot", help="Bring the growth projections up to date afterwards (--no-snapshot: leave them to the next writer).")] = True,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the growth projections from the events (only after damage: a change of the views rebuilds by itself).")] = False,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds merged sources stay for running readers before deletion [env METRICSTORE_COMPACT_GRACE_S; default 300]. 0 deletes at once: only when no reader runs.", show_default=False)] = None,
) -> None:
    """Merge small commit files into one sorted by series; bring the growth projections up to date.

    Merged sources are deleted after the grace period (running readers may still read them).
    Merging runs by itself after a commit once small files reach METRICSTORE_COMPACT_MIN_FILES (32)
    or METRICSTORE_COMPACT_MIN_BYTES; METRICSTORE_AUTO_COMPACT=0 turns that off. On an s3:// store it
    runs only when asked (one PUT per merged file and manifest; the lock is this machine's).
    The projections (local stores) answer growth queries without recomputing them; every ingest
    keeps them current, and entities whose events changed since are computed (docs/projections.md).
    """
    from queries.projector import project
    from store.compaction import compact as run

    st = open_store(store)
    print(run(st, full=full, grace_s=grace))
    if not (snapshot or rebuild):
        return
    t = time.perf_counter()
    done = project(st, rebuild=rebuild)
    if done is not None:
        print(f"projections: {done.base.rows:,} growth versions in the base, {len(done.deltas)} delta layer(s), "
              f"{time.perf_counter() - t:.1f}s")
