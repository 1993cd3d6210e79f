"""``python -m benchmarks --size 1M|10M|all [--only bulk|appends|serve]``: run the suite (or one group of it),
write BENCHMARKS.md and benchmarks/results.json."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_markdown
from benchmarks.run import ONLY, ROOT, add_ratios, log, run_size

SIZES = {"1M": 1_000_000, "10M": 10_000_000}


def parse_size(text: str) -> list[int]:
    if text == "all":
        return list(SIZES.values())
    return [SIZES.get(text.upper(), None) or int(float(text.rstrip("Mm")) * (1e6 if text[-1] in "Mm" else 1))]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--size", default="all", help="1M, 10M, all, or a number of events")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-peers", action="store_true", help="only this store and the limit")
    ap.add_argument("--only", choices=sorted(ONLY), default=None,
                    help="only the bulk ingests (Arrow and CSV) or the single appends: their records are "
                         "replaced, the others kept")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="metricstore-bench-"))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else []
    sizes = parse_size(args.size)
    results = [r for r in results if r["size"] not in sizes
               or (args.only is not None and r["scenario"] not in ONLY[args.only])]
    t0 = time.perf_counter()
    try:
        for size in sizes:
            fresh: list[dict[str, object]] = []
            run_size(size, work / str(size), fresh, peers=not args.no_peers, only=args.only)
            results.extend(fresh)
            add_ratios(results)
            out.write_text(json.dumps(results, indent=1) + "\n")
            write_markdown(results, Path(args.markdown))
            shutil.rmtree(work / str(size), ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.perf_counter() - t0:.0f}s: {out}, {args.markdown}")


if __name__ == "__main__":
    main()
