"""Store operations (issue 5): ``metricstore compact``."""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.cli import StoreOpt, app, err, open_store
from store.backends import ObjectPath

#: Why ``compact`` refuses an object-store root (store/compaction.py is written for local folders).
NOT_ON_OBJECT_STORES = (
    "compaction works on local stores only: it takes a file lock (<store>/_lock/compact.lock), writes its "
    "manifest and merged file by local rename (<store>/_compaction, <store>/_tmp) and merges on a DuckDB "
    "connection that cannot read s3:// paths; on object storage, compact a local copy and upload it to a new "
    "prefix (or re-ingest into one)"
)


@app.command()
def compact(
    store: StoreOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Merge every file, large ones too (the best layout for queries; rewrites everything).")] = False,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds merged sources stay for running readers before deletion [env METRICSTORE_COMPACT_GRACE_S; default 300]. 0 deletes at once: only when no reader runs.", show_default=False)] = None,
) -> None:
    """Merge small commit files into one file sorted by series; delete merged sources after the grace period.

    Runs by itself after a commit once small files reach METRICSTORE_COMPACT_MIN_FILES (32) or
    METRICSTORE_COMPACT_MIN_BYTES; METRICSTORE_AUTO_COMPACT=0 turns that off.
    """
    from store.compaction import compact as run

    st = open_store(store)
    if isinstance(st.root, ObjectPath):
        err.print(f"error: {st.root}: {NOT_ON_OBJECT_STORES}")
        raise typer.Exit(2)
    print(run(st, full=full, grace_s=grace))
