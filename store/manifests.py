"""Compaction manifests: which files a merge replaced, hence which committed files are live.

Before a merged file is published, a manifest in ``_compaction/<merge commit id>.json`` names it
and its sources. A merge *took effect* when its merged file is listed, or was itself merged by a
merge that took effect; the sources of a merge that took effect are *merged sources*: every event
of each is in a live file, and they only wait out their grace period for readers that listed them.

Nothing here is a source of truth: the manifests only say which files are already merged.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from store.backends import Backend
from store.layout import MANIFESTS, commit_of


class Manifest(NamedTuple):
    """One parsed manifest."""

    name: str                        # ``<commit_id>.json``
    commit_id: str                   # the merged file's commit
    table: str
    created_unix: float              # when it was written (the creator's clock)
    sources: tuple[str, ...]         # the merged files' names, in the manifest's order
    source_names: frozenset[str]
    source_commits: frozenset[str]


def _parse(name: str, body: object) -> Manifest | None:
    if not isinstance(body, dict):
        return None
    sources = tuple(str(n) for n in body.get("sources", []))
    return Manifest(name, str(body.get("commit_id")), str(body.get("table")), float(body.get("created_unix", 0.0)),
                    sources, frozenset(sources), frozenset(c for c in map(commit_of, sources) if c))


class ManifestCache:
    """Parsed manifests by the store's manifest folder and their name.

    A manifest is published once (its name is its merge's commit id) and never changed, so a
    parsed one stays true until the file is deleted; the entries of deleted ones are dropped
    when a listing no longer shows them. Shared by every store object of the process, and by
    their threads (automatic compaction runs after a commit, outside the writers' lock): one
    lock guards the dictionaries.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_folder: dict[str, dict[str, Manifest]] = {}

    def all(self, backend: Backend) -> list[Manifest]:
        """Every readable manifest of the store, oldest first (a later compaction may have merged
        an earlier one's output)."""
        try:
            listing = backend.list_names(MANIFESTS)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = [n for n in listing if n.endswith(".json")]
        key = str(backend.root)
        with self._lock:
            known = dict(self._by_folder.get(key, {}))
        out, parsed = [], {}
        for n in names:
            hit = known.get(n)
            if hit is None:
                try:
                    hit = _parse(n, json.loads(backend.read_text(f"{MANIFESTS}/{n}")))
                except (OSError, ValueError):   # (FileNotFoundError is an OSError: deleted since the listing)
                    continue    # a manifest being replaced, or a stray file: not ours to judge
                if hit is None:
                    continue
                parsed[n] = hit
            out.append(hit)
        listed = set(names)
        with self._lock:
            cache = self._by_folder.setdefault(key, {})
            cache.update(parsed)
            for n in [n for n in cache if n not in listed]:
                del cache[n]
        return sorted(out, key=lambda m: (m.created_unix, m.name))

    def of_table(self, backend: Backend, table: str) -> list[Manifest]:
        return [m for m in self.all(backend) if m.table == table]


#: The process's one cache of parsed manifests.
CACHE = ManifestCache()


def write(backend: Backend, commit_id: str, table: str, sources: list[str]) -> None:
    """Publish the manifest of a merge, before its merged file: one conditional PUT on an object
    store (whole or absent, never overwritten), an atomic write locally."""
    body = {"commit_id": commit_id, "table": table, "sources": sources,
            "created_at": dt.datetime.now(dt.UTC).isoformat(), "created_unix": time.time()}
    backend.write_new(f"{MANIFESTS}/{commit_id}.json", json.dumps(body, indent=1).encode(), tmp_prefix="manifest-")


def delete(backend: Backend, manifest: Manifest) -> None:
    backend.delete(f"{MANIFESTS}/{manifest.name}")


def took_effect(mans: list[Manifest], names: Iterable[str]) -> list[Manifest]:
    """The manifests (of one table) whose merge took effect given a listing of the table."""
    if not mans:
        return []
    live = set(map(commit_of, names))
    done: set[str] = set()
    changed = True
    while changed:          # newest first: a merge's output is merged by a later one, so one pass
        changed = False     # usually settles it (a second finds nothing new)
        for m in reversed(mans):
            if m.commit_id not in done and m.commit_id in live:
                done.add(m.commit_id)
                live |= m.source_commits
                changed = True
    return [m for m in mans if m.commit_id in done]


def sources_state(backend: Backend, table: str, names: list[str]) -> tuple[set[str], float | None]:
    """The merged sources among ``names`` (a listing of ``table``), and when the oldest manifest
    of ``table`` was written (unix seconds; None when there is none)."""
    mans = CACHE.of_table(backend, table)
    oldest = min((m.created_unix for m in mans), default=None)
    effective = took_effect(mans, names)
    if not effective:
        return set(), oldest
    out: set[str] = set().union(*(m.source_names for m in effective))
    return out.intersection(names), oldest


def merged_sources(backend: Backend, table: str = "events") -> dict[str, list[str]]:
    """The sources of each merge whose manifest is still kept, by the merged file's commit id
    (a manifest is dropped with its sources once their grace period is over)."""
    return {m.commit_id: list(m.sources) for m in CACHE.of_table(backend, table)}


def any_expired(backend: Backend, table: str, grace_s: float) -> bool:
    """Is a manifest of ``table`` past its grace period (could a cleanup have work)?"""
    now = time.time()
    return any(now - m.created_unix >= grace_s for m in CACHE.of_table(backend, table))
