"""``python -m benchmarks --size 1M|10M|all [--only bulk|appends|projections|serve]``: run the suite (or one group
of it), write BENCHMARKS.md and benchmarks/results.json. ``--only fsds --size 3M|30M|all``: the SEC data sets
scenarios (benchmarks/fsds.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.fsds import SCENARIOS as FSDS_SCENARIOS, run_fsds
from benchmarks.report import write_markdown
from benchmarks.harness import ROOT, log
from benchmarks.run import ONLY as GROUPS, SMALL_COMMITS, add_ratios, run_size

SIZES = {"1M": 1_000_000, "10M": 10_000_000}
FSDS_SIZES = {"3M": 3_000_000, "30M": 30_000_000}
ONLY = {**GROUPS, "fsds": FSDS_SCENARIOS}


def parse_size(text: str, only: str | None = None) -> list[int]:
    if text == "all":
        return list((FSDS_SIZES if only == "fsds" else SIZES).values())
    return [SIZES.get(text.upper(), None) or int(float(text.rstrip("Mm")) * (1e6 if text[-1] in "Mm" else 1))]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--size", default="all", help="1M, 10M, all, or a number of events (with --only fsds: 3M, 30M, all)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-peers", action="store_true", help="only this store and the limit")
    ap.add_argument("--only", choices=sorted(ONLY), default=None,
                    help="only the bulk ingests (Arrow and CSV), the single appends, the projection scenarios "
                         "with the queries they serve, or the SEC data sets scenarios: their records are "
                         "replaced, the others kept")
    ap.add_argument("--small-commits", type=int, default=SMALL_COMMITS,
                    help=f"single-event commits before series_after_small_commits, and at most this many in "
                         f"small_append_projected (default {SMALL_COMMITS:,})")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="metricstore-bench-"))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else []
    sizes = parse_size(args.size, args.only)
    results = [r for r in results if r["size"] not in sizes
               or (args.only is not None and r["scenario"] not in ONLY[args.only])]
    t0 = time.perf_counter()

    def save(records: list[dict[str, object]]) -> None:
        add_ratios(records)
        out.write_text(json.dumps(records, indent=1) + "\n")
        write_markdown(records, Path(args.markdown))

    try:
        for size in sizes:
            fresh: list[dict[str, object]] = []
            if args.only == "fsds":     # records saved as each step ends (a 30 M run takes an hour)
                run_fsds(size, work / str(size), fresh, save=lambda: save(results + fresh))
            else:
                run_size(size, work / str(size), fresh, peers=not args.no_peers, only=args.only,
                         commits=args.small_commits)
            results.extend(fresh)
            save(results)
            shutil.rmtree(work / str(size), ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.perf_counter() - t0:.0f}s: {out}, {args.markdown}")


if __name__ == "__main__":
    main()
