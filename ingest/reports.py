"""What an ingest run reports: one :class:`FileReport` per file, one :class:`RunReport` per run."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import RowProblem


@dataclass
class FileReport:
    """What ingesting one file did."""

    file: str
    format: str = ""
    rows: int = 0
    added: int = 0
    already_present: int = 0
    duplicates: int = 0          # rows repeating an earlier row of the same file (not stored twice)
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    commit_id: str | None = None
    quarantine: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rejected == 0

    def summary(self) -> str:
        if self.error:   # the file's one line (``problems`` lists rejected rows only), its name once
            return f"{self.file}: rejected: {self.error.removeprefix(self.file + ': ')}"
        dups = ("" if not self.duplicates else "1 duplicate within the file, " if self.duplicates == 1
                else f"{self.duplicates} duplicates within the file, ")
        return (f"{self.file}: {self.added} added, {dups}{self.already_present} already present, "
                f"{self.rejected} rejected")


@dataclass
class RunReport:
    """What one ingest run did, file by file."""

    run_id: str
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def already_present(self) -> int:
        return sum(f.already_present for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def summary(self) -> str:
        dups = f"{self.duplicates} duplicate row(s) within files, " if self.duplicates else ""
        return (f"{self.added} events added, {dups}{self.already_present} already present, "
                f"{self.rejected} rejected ({len(self.files)} file(s), run {self.run_id})")


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
