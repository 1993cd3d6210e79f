"""Which row groups of a Parquet file can hold one series, from the footer's statistics alone:
a layer file of the projections is sorted by two keys (entity and metric, in either order), so a
series is one run of rows, in one or two row groups, found without reading any other."""

from __future__ import annotations

import pyarrow.parquet as pq

#: A row group's (lowest, highest) of two sort keys.
KeyBounds = tuple[tuple[str, str], tuple[str, str]]


def key_bounds(metadata: pq.FileMetaData, keys: tuple[str, str]) -> list[KeyBounds] | None:
    """Each row group's (lowest, highest) of each of two ``keys`` columns, in file order, or None
    unless every row group has them all."""
    names = metadata.schema.names
    if any(key not in names for key in keys):
        return None
    out = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        pairs: list[tuple[str, str]] = []
        for column in (names.index(key) for key in keys):
            stats = group.column(column).statistics
            if (stats is None or not stats.has_min_max or not isinstance(stats.min, str)
                    or not isinstance(stats.max, str)):
                return None
            pairs.append((stats.min, stats.max))
        out.append((pairs[0], pairs[1]))
    return out


def groups_holding(bounds: list[KeyBounds], major: str, minor: str) -> list[int]:
    """The row groups of a file sorted by two keys that can hold rows with both values, by each
    group's statistics (lowest and highest of each key). Where a group's major key changes, its
    minor statistics span both major values; the neighbouring group wholly of ``major`` then bounds
    them: one series is read from one row group, not also from the group where its key begins."""
    out = []
    for i, ((lo, hi), (minor_lo, minor_hi)) in enumerate(bounds):
        if not (lo <= major <= hi and minor_lo <= minor <= minor_hi):
            continue
        before = bounds[i - 1] if i > 0 else None
        after = bounds[i + 1] if i + 1 < len(bounds) else None
        if lo == major < hi and before and before[0] == (major, major) and minor < before[1][1]:
            continue        # major's rows here follow those of the group before, which end above minor
        if lo < major == hi and after and after[0] == (major, major) and minor > after[1][0]:
            continue        # major's rows here precede those of the group after, which begin below minor
        out.append(i)
    return out
