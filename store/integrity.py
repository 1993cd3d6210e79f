"""Checksums on read: a query that would meet a damaged file fails naming it.

Every committed file carries the sha256 prefix of its bytes in its name (see :mod:`store.log`).
A :class:`ChecksumGuard` proves each file whole once per process, before the first query that
could read it, and remembers it by (name, size, mtime); committed files are never rewritten, so a
file once proven stays proven unless its size or mtime changes, and then it is proven again.

A ``.parquet`` file in a table folder whose name is not a commit name is foreign (a copy, a file
someone dropped there): readers would glob it as data, so the guard refuses it too. A file that
vanishes between listing and hashing (a compaction removed it) is no longer read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from store.errors import CorruptFile
from store.layout import COMMIT_NAME
from store.log import Log
from store.schema import TABLES
from store.verify import sha256_prefix

#: Set METRICSTORE_VERIFY_ON_READ=0 to skip the check (a trusted, read-mostly deployment).
ENV_SWITCH = "METRICSTORE_VERIFY_ON_READ"


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class ChecksumGuard:
    """Remembers which committed files of a store were proven whole in this process.

    Example:
        >>> guard = ChecksumGuard(store)     # doctest: +SKIP
        >>> guard.check()                    # raises CorruptFile naming a damaged file
    """

    def __init__(self, store: Log) -> None:
        self.store = store
        self._proven: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def check(self, tables: tuple[str, ...] | None = None, *, files: Iterable[Path] | None = None) -> int:
        """Prove every not-yet-proven committed file whole; returns how many were hashed.

        Args:
            tables: the logs whose folders are checked (default: all).
            files: check these files only, the ones a query will read (a reader of the live
                files need not look at the merged sources waiting out their grace period).

        Raises:
            CorruptFile: a file's bytes do not match the checksum in its name (truncated, flipped).
        """
        if not enabled():
            return 0
        hashed = 0
        with self._lock:
            if files is not None:
                for path in files:
                    hashed += self._check_one(path)
                return hashed
            for table in tables or tuple(TABLES):
                # (an object store's entries are ObjectPaths, knowing their size and time from the LIST)
                for path in cast("list[Path]", self.store.backend.entries(table)):
                    hashed += self._check_one(path)
        return hashed

    def _check_one(self, path: Path) -> int:
        if not path.name.endswith(".parquet"):
            return 0  # not globbed by the views; verify reports it as stray
        m = COMMIT_NAME.match(path.name)
        if not m:
            if not path.exists():
                return 0
            raise CorruptFile(path, "is not a commit file of this store (unexpected name) but would be read as "
                                    "data; move it out of the table folder or run `metricstore verify --repair`")
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            if self._proven.get(str(path)) == key:
                return 0
            actual = sha256_prefix(path)
        except FileNotFoundError:
            self._proven.pop(str(path), None)
            return 0
        if actual != m["sha"]:
            raise CorruptFile(path, f"checksum mismatch (content hashes to {actual}, its name says "
                                    f"{m['sha']}): the file was altered or truncated after commit; "
                                    "run `metricstore verify` and restore it from a backup")
        self._proven[str(path)] = key
        return 1
