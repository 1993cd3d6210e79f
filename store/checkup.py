"""``metricstore verify [--repair]`` as one call: check every file, optionally repair first."""

from __future__ import annotations

from dataclasses import dataclass, field

from store.errors import StoreError
from store.store import Store
from store.repair import leftovers, repair as repair_store
from store.verify import CORE_TABLES, Finding, verify


@dataclass
class Checkup:
    """What :func:`checkup` found, and what the repair did when asked."""

    root: str
    files_checked: int
    findings: list[Finding]                                         # problems (after the repair, when repairing)
    removed: list[str] = field(default_factory=list)                # repair: dead writers' temporary files removed
    moved: list[tuple[Finding, str]] = field(default_factory=list)  # repair: damaged files set aside, and where
    temporary: list[str] = field(default_factory=list)              # no repair: temporary files present (never read)

    @property
    def ok(self) -> bool:
        """Sound, and no file was set aside (its events are missing until restored)."""
        return not self.findings and not self.moved


def checkup(store: Store, *, repair: bool = False) -> Checkup:
    """Read every file of the store and report what is wrong; ``repair`` first removes dead writers'
    temporary files and moves damaged files to ``<store>/_damaged/`` (see :mod:`store.repair`).

    Raises:
        StoreError: ``repair`` on an object store (it works by rename under file locks).
        StoreBusy: a writer held the lock too long (repair only).
    """
    if repair and store.backend.folder is None:
        raise StoreError(
            f"{store.root}: repair works on local stores only (it moves damaged files aside by rename, under "
            "file locks); on object storage nothing is staged in the bucket, so only damaged objects can be "
            "found: verify, then restore or delete each named object with your S3 tools")
    if repair:
        rep = repair_store(store)
        found = Checkup(str(store.root), 0, rep.remaining, removed=rep.removed, moved=rep.moved)
    else:
        found = Checkup(str(store.root), 0, verify(store), temporary=[str(p) for p in leftovers(store)])
    found.files_checked = sum(len(store.files(t)) for t in CORE_TABLES)
    return found
