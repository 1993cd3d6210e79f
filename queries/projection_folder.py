"""The projections' folder: a projection's manifest published, a step's listing held, and the
files of dead and replaced steps cleared. The projector (:mod:`queries.projector`) calls these
under its lock; readers (:mod:`queries.projections`) only read what they leave."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from queries.live import Reading
from queries.projections import LAYER, Layer, Projection, sql_version
from store.compaction import CompactionPolicy

#: Layer files' names begin so (``LAYER`` now, the others in earlier formats).
LAYER_PREFIXES = (f"{LAYER}-", "current-", "versions-", "timeline-")


def publish(folder: Path, covers: dict[str, list[str]], base: Layer, deltas: list[Layer]) -> Projection:
    """Write the manifest naming ``base`` and ``deltas`` as the projection of the ``covers`` files."""
    now = time.time()
    body = {"sql": sql_version(), "created_at": dt.datetime.now(dt.UTC).isoformat(), "created_unix": now,
            "covers": covers, "base": base.body(), "deltas": [d.body() for d in deltas]}
    name = f"projection-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
    tmp = folder / f".tmp-{name}"
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, folder / name)
    return Projection(folder / name, {t: frozenset(v) for t, v in covers.items()}, now, base, tuple(deltas))


def hold(listing: Reading, folder: Path) -> Reading:
    """The files of ``listing`` as hard links in ``folder`` (same names), which a compaction's
    deletion of the originals does not reach: a long rebuild reads what it listed. ``listing``
    itself, read in place, where a link cannot be made (a file deleted since the listing: the
    read then fails and lists again; a filesystem without hard links)."""
    shutil.rmtree(folder, ignore_errors=True)
    out: Reading = {}
    try:
        for table, files in listing.items():
            (folder / table).mkdir(parents=True)
            out[table] = []
            for path in files:
                os.link(path, folder / table / path.name)
                out[table].append(folder / table / path.name)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return listing
    return out


def clear_dead(folder: Path) -> None:
    """Delete the temporary files of a projector that died: one runs at a time, so under the lock
    every one present is a dead one's."""
    for entry in os.scandir(folder):
        if entry.name.startswith(".tmp-"):
            if entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)


def prune(folder: Path) -> None:
    """Delete replaced manifests (but the newest and those replaced within :func:`kept_for`) and
    the layer files no kept manifest names."""
    now = time.time()
    keep = kept_for()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    manifests = [e for e in entries if e.name.startswith("projection-") and e.name.endswith(".json")]
    named: set[str] = set()
    for i, entry in enumerate(manifests):
        try:
            # a manifest is replaced when the next one is published; the newest is the projection
            if i + 1 == len(manifests) or now - manifests[i + 1].stat().st_mtime < keep:
                named |= _files_named(Path(entry.path))
            else:
                Path(entry.path).unlink(missing_ok=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    for entry in entries:
        if entry.name.endswith(".parquet") and entry.name.startswith(LAYER_PREFIXES):
            if entry.name not in named:
                Path(entry.path).unlink(missing_ok=True)


def kept_for() -> float:
    """Seconds a replaced projection's files stay for the readers that took it (Spark reads them
    at its first query, maybe minutes after it registered its views): the compaction's grace
    period, which keeps the log's merged files as long (``METRICSTORE_COMPACT_GRACE_S``)."""
    return CompactionPolicy.from_env().grace_s


@functools.lru_cache(maxsize=4096)
def _files_named(manifest: Path) -> frozenset[str]:
    """The layer files a manifest names (read once: a manifest never changes)."""
    body = json.loads(manifest.read_text())
    return frozenset(Layer.of(layer, manifest.parent).file.name for layer in [body["base"], *body.get("deltas", [])])
