"""Store operations (issue 5): ``metricstore compact``."""

from __future__ import annotations

from typing import Annotated

import typer

from metricstore.cli import StoreOpt, app, open_store


@app.command()
def compact(
    store: StoreOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Merge every file, large ones too (the best layout for queries; rewrites everything).")] = False,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds merged sources stay for running readers before deletion [env METRICSTORE_COMPACT_GRACE_S; default 300]. 0 deletes at once: only when no reader runs.", show_default=False)] = None,
) -> None:
    """Merge small commit files into one file sorted by series; delete merged sources after the grace period.

    Runs by itself after a commit once small files reach METRICSTORE_COMPACT_MIN_FILES (32) or
    METRICSTORE_COMPACT_MIN_BYTES; METRICSTORE_AUTO_COMPACT=0 turns that off. On an s3:// store it
    runs only when asked (one PUT per merged file and manifest; the lock is this machine's).
    """
    from store.compaction import compact as run

    st = open_store(store)
    print(run(st, full=full, grace_s=grace))
