"""Names on disk and the writes that make them durable.

Layout of a store root::

    metricstore.json          marker: format version, creation time
    events/                   metric events, one file per commit (or per compaction)
    entities/                 entity records (name, CIK, fiscal year end)
    metrics/                  metric definitions (aggregation kind)
    runs/                     the ingest run log
    _tmp/                     files being written; never read as data
    _lock/                    the writers' and the compactor's locks, the change tokens
    _compaction/              compaction manifests (see store.manifests)

A commit file is named ``<recorded_at>-<commit_id>-<sha256 prefix>.parquet``: the checksum of its
bytes travels in the name, which the same atomic rename (or conditional PUT) publishes, so
``verify`` can prove a file is whole without a sidecar.

Durability, one policy for every local write: the bytes are written to a temporary name and
flushed (``fsync``), renamed over the final name in one step, then the folder is flushed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import os
import re
import shutil
import uuid
from pathlib import Path

FORMAT_VERSION = 1
MARKER = "metricstore.json"
LOCK_TIMEOUT_S = 120.0
#: The folder of compaction manifests.
MANIFESTS = "_compaction"
#: The commit id of the empty file each table of a new store starts with.
EMPTY_COMMIT = "0" * 32

COMMIT_NAME = re.compile(r"^(?P<ts>\d{8}T\d{12})Z-(?P<commit>[0-9a-f]{32})-(?P<sha>[0-9a-f]{16})\.parquet$")

#: In ``_lock``, a file per log holding a random token, replaced (with the writers' lock held)
#: before every change this store's code makes to the log's folder: a listing taken under that
#: lock stays exact while the token, and the folder's mtime, stand (see ``Log.listing``).
CHANGE_TOKEN = "{table}.changed"

#: What a compaction writes in its scratch folder: the merged file, its manifest, DuckDB's spill folder.
COMPACTION_LEFTOVERS = ("compact-", "manifest-", "duckdb-")


def commit_name(recorded_at: dt.datetime, commit_id: str, sha256_hex: str) -> str:
    """The name a committed file is published under."""
    return f"{recorded_at.strftime('%Y%m%dT%H%M%S%f')}Z-{commit_id}-{sha256_hex[:16]}.parquet"


@functools.lru_cache(maxsize=1 << 16)
def commit_of(name: str) -> str | None:
    """The commit id in a committed file's name (None: not a commit name)."""
    m = COMMIT_NAME.match(name)
    return m["commit"] if m else None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def file_sha256(fh: io.BufferedIOBase | str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes, from a path or an open binary file."""
    if isinstance(fh, (str, os.PathLike)):
        with open(fh, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return hashlib.file_digest(fh, "sha256").hexdigest()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it, a removal) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *,
                 tmp_dir: str | os.PathLike[str] | None = None, tmp_prefix: str = ".") -> None:
    """Write ``data`` to ``path`` so that a reader, or a crash, sees the old file or the new one.

    The temporary file, ``<tmp_prefix><name>.<random>.tmp``, goes in ``tmp_dir`` (same file system
    as ``path``), by default beside ``path``; flushed, renamed over ``path``, then ``path``'s
    folder flushed."""
    target = Path(path)
    folder = Path(tmp_dir) if tmp_dir is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{tmp_prefix}{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    body = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "xb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def remove_compaction_leftovers(folder: Path) -> None:
    """Remove what a killed compaction left in ``folder``; the caller holds the compaction lock."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for n in names:
        if n.startswith(COMPACTION_LEFTOVERS):
            path = folder / n
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
