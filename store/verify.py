"""Integrity checks: every committed file is whole, ours, and what its name says it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq

from store.layout import COMMIT_NAME, file_sha256
from store.log import Log
from store.schema import TABLES

#: The logs every store has (a log registered later, as ``runs``, starts with its first append).
CORE_TABLES = ("events", "entities", "metrics")


@dataclass(frozen=True)
class Finding:
    """One problem ``verify`` found."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def sha256_prefix(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of a file's bytes (the part a commit name holds)."""
    with path.open("rb") as fh:
        return file_sha256(fh)[:16]


def check_file(path: Path, table: str) -> str | None:
    """Why ``path`` is not a sound commit file of ``table``, or None when it is."""
    m = COMMIT_NAME.match(path.name)
    if not m:
        return "not a commit file of this store (unexpected name)"
    if sha256_prefix(path) != m["sha"]:
        return "checksum mismatch: the file was altered or truncated after commit"
    try:
        pf = pq.ParquetFile(path)
        meta = pf.schema_arrow.metadata or {}
        data = pf.read()
    except (pa.ArrowInvalid, OSError) as exc:
        return f"unreadable Parquet: {str(exc).splitlines()[0]}"
    if meta.get(b"metricstore.table", b"").decode() != table:
        return f"belongs to table {meta.get(b'metricstore.table', b'?').decode()!r}, not {table!r}"
    rows = meta.get(b"metricstore.rows")
    if rows is not None and int(rows) != data.num_rows:
        return f"holds {data.num_rows} rows; its commit recorded {int(rows)}"
    missing = [f.name for f in TABLES[table][0] if f.name not in data.column_names
               and not f.nullable]
    if missing:
        return f"lacks required column(s) {', '.join(missing)}"
    return None


def verify(store: Log) -> list[Finding]:
    """Read every file of every table and report what is wrong (an empty list when all is well)."""
    findings: list[Finding] = []
    for table in TABLES:
        # (an object store's entries are ObjectPaths, which answer the pathlib calls made here)
        entries = sorted(cast("list[Path]", store.backend.entries(table)))
        if not entries:
            if table in CORE_TABLES:
                findings.append(Finding(str(store.root / table), "missing table folder"))
            continue
        for path in entries:
            if path.is_dir():
                continue
            if path.suffix != ".parquet":
                findings.append(Finding(str(path), "stray file in a table folder (not read as data)"))
                continue
            try:
                problem = check_file(path, table)
            except FileNotFoundError:  # removed since the listing (a compaction): no longer data
                continue
            if problem:
                findings.append(Finding(str(path), problem))
    return findings
