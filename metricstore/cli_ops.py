"""Store operations (issue 5): ``metricstore compact``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from metricstore.cli import StoreOpt, app, open_store


@app.command()
def compact(
    store: StoreOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Merge every file, large ones too (the best layout for queries; rewrites everything).")] = False,
    snapshot: Annotated[bool, typer.Option("--snapshot/--no-snapshot", help="Refresh the snapshot of the current growth view afterwards.")] = True,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds merged sources stay for running readers before deletion [env METRICSTORE_COMPACT_GRACE_S; default 300]. 0 deletes at once: only when no reader runs.", show_default=False)] = None,
) -> None:
    """Merge small commit files into one file sorted by series, delete merged sources after the grace
    period, and refresh the snapshot of the current growth view.

    Merging runs by itself after a commit once small files reach METRICSTORE_COMPACT_MIN_FILES (32)
    or METRICSTORE_COMPACT_MIN_BYTES; METRICSTORE_AUTO_COMPACT=0 turns that off. On an s3:// store it
    runs only when asked (one PUT per merged file and manifest; the lock is this machine's).
    The snapshot (local stores) answers current growth queries without recomputing them; series
    whose events changed since are computed as before (see queries/snapshot.py).
    """
    from queries.snapshot import refresh
    from store.compaction import compact as run

    st = open_store(store)
    print(run(st, full=full, grace_s=grace))
    if not snapshot:
        return
    t = time.perf_counter()
    snap = refresh(st)
    if snap is not None:
        print(f"snapshot: {snap.rows:,} growth rows in {time.perf_counter() - t:.1f}s, "
              f"{snap.path.relative_to(st.root)}")
