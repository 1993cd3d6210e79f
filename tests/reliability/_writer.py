"""A writer process for the crash and concurrency harness (``tests/reliability/torture.py``).

    python -m tests.reliability._writer ROOT WRITER FIRST COUNT ROWS ACKFILE [FAULT]

Appends batches FIRST .. FIRST+COUNT-1 of writer WRITER to the store at ROOT, one ``Store.append``
each, and after each append *returns* writes ``ok <batch> <added> <already>`` to ACKFILE: the
harness's record of what the store told this writer was committed. ``begin <batch>`` is written
before each append. ``ready`` is written once the store is open, so a timed kill lands in appends,
not in Python's start-up.

FAULT injects a crash at a chosen step of the commit, by SIGKILL from inside the process (the
strongest kill: no cleanup, no ``finally``, no flush), at the N-th time the step runs:

    write:N     after the temporary Parquet file is written, before it is flushed
    fsync:N     after the temporary file is flushed, before it is renamed into place
    replace:N   after the rename, before the folder is flushed
    lock:N      right after the writers' lock (or the compactor's) is taken
    manifest:N  a compaction: after its manifest is published, before the merged file is
    publish:N   a compaction: after the merged file is published, before any source is deleted
    unlink:N    a compaction: after the N-th merged source is deleted

    project:N   a writer: after its N-th commit, before its projection step
    layer:N     a projector: after the N-th layer file is renamed into place, before its manifest

``python -m tests.reliability._writer compact ROOT ACKFILE [FAULT]`` runs one full compaction;
``python -m tests.reliability._writer project ROOT WRITER FIRST COUNT ROWS ACKFILE [FAULT]`` appends
as the plain writer does, each append followed by the query layer's projection step.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys

import pyarrow as pa


def batch(writer: int, index: int, rows: int) -> pa.Table:
    """Batch ``index`` of ``writer``: ``rows`` distinct events, all with source ``w<writer>-b<index>``."""
    return pa.table({
        "entity": [f"w{writer}"] * rows,
        "metric": ["revenue"] * rows,
        "period_start": [dt.date(2000 + j % 20, 1, 1) for j in range(rows)],
        "period_end": [dt.date(2000 + j % 20, 12, 31) for j in range(rows)],
        "value": [float(index * 1000 + j) for j in range(rows)],
        "unit": ["USD"] * rows,
        "reported_at": [dt.date(2021, 3, 1)] * rows,
        "source": [f"w{writer}-b{index}"] * rows,
    })


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_fault(spec: str) -> None:
    """Arm one crash point (see the module docstring)."""
    point, _, nth = spec.partition(":")
    left = [int(nth or 1)]

    def hit() -> None:
        left[0] -= 1
        if left[0] == 0:
            _die()

    if point in ("write", "fsync"):
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            ours = os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("commit-")
            if ours and point == "write":     # written in full, not yet flushed
                hit()
            real_fsync(fd)
            if ours and point == "fsync":
                hit()
        os.fsync = fsync
    elif point in ("replace", "manifest", "publish", "layer"):
        real_replace = os.replace
        marker = {"replace": "commit-", "manifest": "manifest-", "publish": "compact-", "layer": "-layer."}[point]

        def replace(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
            real_replace(src, dst, *a, **kw)
            if marker in os.path.basename(os.fspath(src)):
                hit()
        os.replace = replace
    elif point == "unlink":  # a compaction deleting its merged sources
        from pathlib import Path
        real_unlink = Path.unlink

        def unlink(self, *a, **kw):  # type: ignore[no-untyped-def]
            real_unlink(self, *a, **kw)
            if self.suffix == ".parquet" and self.parent.name == "events":
                hit()
        Path.unlink = unlink  # type: ignore[method-assign]
    elif point == "lock":
        from store.locks import FileLock
        real_enter = FileLock.__enter__

        def enter(self):  # type: ignore[no-untyped-def]
            out = real_enter(self)
            hit()
            return out
        FileLock.__enter__ = enter  # type: ignore[method-assign]
    elif point == "project":
        import queries.projector
        real_project = queries.projector.project

        def project(*a, **kw):  # type: ignore[no-untyped-def]
            hit()
            return real_project(*a, **kw)
        queries.projector.project = project  # type: ignore[assignment]
    elif point not in ("", "none"):
        raise SystemExit(f"unknown fault point {point!r}")


def compact_main(argv: list[str]) -> None:
    """``compact ROOT ACKFILE [FAULT]``: one full compaction, deleting merged sources at once."""
    root, ackfile = argv[:2]
    from store import Store
    from store.compaction import compact

    ack = os.open(ackfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    store = Store(root)
    install_fault(argv[2] if len(argv) > 2 else "")
    os.write(ack, b"ready\n")
    r = compact(store, full=True, grace_s=0)
    os.write(ack, f"ok compacted {r.merged} {r.rows} {r.deleted}\n".encode())


def main(argv: list[str]) -> None:
    if argv and argv[0] == "compact":
        compact_main(argv[1:])
        return
    projecting = bool(argv) and argv[0] == "project"
    argv = argv[1:] if projecting else argv
    root, writer, first, count, rows, ackfile = argv[:6]
    fault = argv[6] if len(argv) > 6 else ""
    from store import Store

    ack = os.open(ackfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    store = Store.create(root)
    install_fault(fault)
    os.write(ack, b"ready\n")
    for i in range(int(first), int(first) + int(count)):
        os.write(ack, f"begin {i}\n".encode())
        r = store.append(batch(int(writer), i, int(rows)))
        os.write(ack, f"ok {i} {r.added} {r.already_present}\n".encode())
        if projecting:
            import queries.projector
            queries.projector.project(store)
            os.write(ack, f"projected {i}\n".encode())
    os.write(ack, b"done\n")


if __name__ == "__main__":
    main(sys.argv[1:])
