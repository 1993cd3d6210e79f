"""What the generated data sets borrow from a real quarter: ``benchmarks/fsds_shape.json``.

``python -m benchmarks.fsds_shape ../shared/data/sec-fsds/2009q3.zip`` writes it again. From the
real ``num.txt``, ``tag.txt`` and ``sub.txt`` it keeps, for every standard tag, how many filings
used it and in how many rows (its real frequency), whether it is an instant, a quarter's flow or a
year-to-date one, its unit, its datatype and label, the segments it was reported under and how
often; and the pools of custom tag names, co-registrants and fiscal year ends. The generator
(:mod:`benchmarks.fsds_data`) reads the file only, so a run needs no real data.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

SHAPE = Path(__file__).with_name("fsds_shape.json")
#: Segments kept per tag (its most frequent) and custom tag names kept in the pool.
SEGMENTS_PER_TAG = 8
CUSTOM_NAMES = 2000


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    text = io.TextIOWrapper(zf.open(name), encoding="utf-8", newline="")
    return list(csv.DictReader(text, delimiter="\t", quoting=csv.QUOTE_NONE))


def derive(real_zip: Path) -> dict[str, Any]:
    """The shape of one real quarter (see the module's docstring)."""
    with zipfile.ZipFile(real_zip) as zf:
        num, tags, sub = _rows(zf, "num.txt"), _rows(zf, "tag.txt"), _rows(zf, "sub.txt")
    fp = {r["adsh"]: r["fp"] for r in sub}
    meta = {(r["tag"], r["version"]): r for r in tags}
    rows: collections.Counter[str] = collections.Counter()
    filings: dict[str, set[str]] = collections.defaultdict(set)
    with_seg: collections.Counter[str] = collections.Counter()
    segs: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    uoms: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    quarter_in_q2: dict[str, set[str]] = collections.defaultdict(set)   # filings (Q2) with a qtrs=1 row
    info: dict[str, dict[str, str]] = {}
    custom: collections.Counter[str] = collections.Counter()
    for r in num:
        tag = r["tag"]
        if "/" not in r["version"]:
            custom[tag] += 1
            continue
        info.setdefault(tag, meta.get((tag, r["version"]), {}))
        rows[tag] += 1
        filings[tag].add(r["adsh"])
        uoms[tag][r["uom"]] += 1
        if r["segments"] and not r["coreg"]:
            with_seg[tag] += 1
            segs[tag][r["segments"]] += 1
        if r["qtrs"] == "1" and fp.get(r["adsh"]) == "Q2":
            quarter_in_q2[tag].add(r["adsh"])
    q2 = {a for a, p in fp.items() if p == "Q2"}
    out_tags = []
    for tag, n in rows.most_common():
        m = info[tag]
        used_q2 = len(filings[tag] & q2)
        out_tags.append({
            "tag": tag, "rows": n, "filings": len(filings[tag]),
            "iord": m.get("iord") or "D", "datatype": m.get("datatype") or "monetary", "crdr": m.get("crdr", ""),
            "uom": uoms[tag].most_common(1)[0][0],
            # a flow reported for the quarter alone as well as year to date (income statement),
            # not only year to date (cash flows)
            "quarterly": bool(used_q2) and len(quarter_in_q2[tag]) * 2 >= used_q2,
            "segment_rows": with_seg[tag] / max(1, n - with_seg[tag]),
            "segments": [s for s, _ in segs[tag].most_common(SEGMENTS_PER_TAG)],
            "label": m.get("tlabel") or tag,
        })
    coreg = collections.Counter(r["coreg"] for r in num if r["coreg"])
    fye = collections.Counter(r["fye"] for r in sub if len(r["fye"]) == 4)
    return {"source": real_zip.name, "numbers": len(num), "filings": len(sub), "tags": out_tags,
            "custom_rows": sum(custom.values()), "custom": [t for t, _ in custom.most_common(CUSTOM_NAMES)],
            "coreg": [c for c, _ in coreg.most_common()], "fye": dict(fye.most_common())}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHAPE.read_text())
    return data


def dumps(shape: dict[str, Any]) -> str:
    """JSON with one tag a line (a diff then names the tags that changed)."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(shape.items()) if k != "tags"]
    tags = ",\n".join(json.dumps(t, sort_keys=True) for t in shape["tags"])
    return "{\n" + ",\n".join(lines) + ',\n"tags": [\n' + tags + "\n]}\n"


def main() -> None:
    shape = derive(Path(sys.argv[1]))
    SHAPE.write_text(dumps(shape))
    print(f"{SHAPE}: {len(shape['tags'])} tags, {len(shape['custom'])} custom names")


if __name__ == "__main__":
    main()
