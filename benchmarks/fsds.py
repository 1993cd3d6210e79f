"""The SEC data sets scenarios (``python -m benchmarks --only fsds --size 3M|30M``): a generated
quarter's zip (:mod:`benchmarks.fsds_data`) ingested, then screened and one company's series read.

- ``fsds_ingest``: ``metricstore ingest`` of the zip (the data sets reader, streamed, one commit)
  against the limit, pyarrow reading ``num.txt`` from the zip and writing one Parquet file. The
  projection step the command ends with runs once after, unmeasured against the limit: its time
  and memory are kept in the record (``project_s``, ``project_rss_mb``).
- ``fsds_screen``: revenue growth of every filer in one fiscal period, current and as of a date,
  through the query helper (``MetricStore.growth``, reading the projection as the command leaves
  it), against a hand-written DuckDB query.
- ``fsds_series``: one company's revenue series (``MetricStore.series``), against a hand-written one.

The limit's queries read one file sorted for them: the limit's ``num.parquet`` with the filing's
CIK, fiscal year end and filed date from ``sub.txt`` joined in, sorted by tag, CIK and date (made
after the ingest, unmeasured). They take the latest filed value per context and the highest of the
revenue concepts, and place quarters on each filer's fiscal calendar, with no dedup, no
supersession, no derived quarters and no 52/53-week dates.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.fsds_data import write_zip
from benchmarks.fsds_targets import SCENARIOS
from benchmarks.harness import log, record, worker

__all__ = ["SCENARIOS", "run_fsds", "work"]
#: Calls of a one-series query before the measured ones (as benchmarks.worker does for its own).
SERIES_WARMUP = 10
#: The fiscal period screened, and the date the as-of answers are asked at (mid-way through the
#: last quarter's filings).
PERIOD = "2024Q1"
AS_OF = dt.date(2024, 5, 10)
#: The revenue concepts of the catalog's ``revenue``, highest priority first (data/catalog/sec_concepts.toml).
REVENUE_TAGS = ("Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax",
                "RevenueFromContractWithCustomerIncludingAssessedTax", "SalesRevenueNet", "RevenuesNetOfInterestExpense")
#: Rounds: ingests (processes, the systems taking turns; one at 30 M, whose ingest takes minutes),
#: query processes per scenario and system, and calls measured in each.
INGEST_ROUNDS = 3
QUERY_ROUNDS = 3
SCREEN_REPEATS = 5
SERIES_REPEATS = 20
#: From this size on, one round of each (a 30 M ingest takes many minutes), one screen measured a
#: process (after one unmeasured: it proves the files' checksums) and five series calls (after two).
BIG = 10_000_000
BIG_REPEATS = {"fsds_screen": (1, 1), "fsds_series": (5, 2)}


# -- the work (run in a worker process) ----------------------------------------------------------
NUM_TYPES = {"adsh": pa.string(), "tag": pa.string(), "version": pa.string(), "ddate": pa.int32(),
             "qtrs": pa.int16(), "uom": pa.string(), "segments": pa.string(), "coreg": pa.string(),
             "value": pa.float64(), "footnote": pa.string()}


def ingest_limit(src: Path, dest: Path) -> None:
    """pyarrow reads ``num.txt`` from the zip a block at a time and writes one Parquet file (and
    ``sub.txt``, a few thousand rows, to a second: the limit's queries need the filings' dates)."""
    opts = (pacsv.ReadOptions(block_size=8 << 20), pacsv.ParseOptions(delimiter="\t", quote_char=False),
            pacsv.ConvertOptions(column_types=NUM_TYPES, strings_can_be_null=True))
    with zipfile.ZipFile(src) as zf:
        with zf.open("num.txt") as fh:
            reader = pacsv.open_csv(fh, *opts)
            with pq.ParquetWriter(dest / "num.parquet", reader.schema, compression="zstd") as w:
                for b in reader:
                    w.write_batch(b, row_group_size=32 * 1024)
            reader.close()          # its read-ahead stopped before the member closes
        with zf.open("sub.txt") as fh:
            sub = pacsv.read_csv(fh, parse_options=opts[1], convert_options=pacsv.ConvertOptions(
                include_columns=["adsh", "cik", "fye", "form", "filed"],
                column_types={"adsh": pa.string(), "cik": pa.int64(), "fye": pa.string(), "form": pa.string(),
                              "filed": pa.string()}))
    pq.write_table(sub, dest / "sub.parquet", compression="zstd")


def ingest_metricstore(src: Path, dest: Path) -> None:
    """The commit of ``metricstore ingest FILE --store DEST``, in this process, without the projection
    step the command ends with (:func:`run_fsds` runs it once, after the rounds)."""
    from ingest import Catalog, ingest_recorded
    from ingest.config import Settings
    from store import Store
    report = ingest_recorded(Store.open(dest, create=True), [src], catalog=Catalog.load(Settings().catalog))
    assert report.ok, report.summary()


def limit_file(dest: Path) -> Path:
    """The limit's query file: its num.parquet with the filings' CIK, fiscal year end and filed date."""
    out = dest / "sorted.parquet"
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    con.execute(f"SET temp_directory = '{dest / 'duck_tmp'}'")
    con.execute(f"""COPY (
        SELECT n.*, s.cik, CAST(left(s.fye, 2) AS INTEGER) AS fye, strptime(s.filed, '%Y%m%d')::DATE AS filed,
               strptime(CAST(n.ddate AS VARCHAR), '%Y%m%d')::DATE AS day
        FROM read_parquet('{dest / 'num.parquet'}') n JOIN read_parquet('{dest / 'sub.parquet'}') s USING (adsh)
        ORDER BY n.tag, s.cik, n.ddate) TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 32768)""")
    con.close()
    return out


#: The revenue of each filer, context and unit: the latest filed, of the highest concept (as of a date).
LIMIT_REVENUE = """
WITH r AS (
    SELECT cik, fye, day, qtrs, uom, value, filed,
           year(day) + CASE WHEN month(day) > fye THEN 1 ELSE 0 END AS fy,
           (month(day) - fye - 1 + 24) % 12 // 3 + 1 AS fq
    FROM read_parquet($file)
    WHERE tag IN ({tags}) AND segments IS NULL AND coreg IS NULL AND value IS NOT NULL
      AND ($as_of IS NULL OR filed <= $as_of) {where}
    QUALIFY row_number() OVER (PARTITION BY cik, day, qtrs, uom
                               ORDER BY list_position([{tags}], tag), filed DESC) = 1
)
"""

LIMIT_SCREEN = LIMIT_REVENUE + """
SELECT c.cik, c.uom, c.value, p.value AS prior_value,
       CASE WHEN p.value > 0 THEN c.value / p.value - 1 END AS yoy_pct
FROM r c LEFT JOIN r p ON p.cik = c.cik AND p.uom = c.uom AND p.qtrs = 1 AND p.fy = c.fy - 1 AND p.fq = c.fq
WHERE c.qtrs = 1 AND c.fy = $fy AND c.fq = $fq
"""

LIMIT_SERIES = LIMIT_REVENUE + """
SELECT *,
       value - lag(value) OVER y AS yoy_change,
       CASE WHEN lag(value) OVER y > 0 THEN value / lag(value) OVER y - 1 END AS yoy_pct,
       CASE WHEN qtrs = 1 THEN value - lag(value) OVER (PARTITION BY uom, qtrs ORDER BY day) END AS qoq_change,
       CASE WHEN qtrs = 1 THEN sum(value) OVER (PARTITION BY uom, qtrs ORDER BY day
                                                ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) END AS ttm_value
FROM r
WINDOW y AS (PARTITION BY uom, qtrs, fq ORDER BY fy)
ORDER BY day, qtrs
"""


class Limit:
    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect()
        self.file = str(path)
        self.tags = ", ".join(f"'{t}'" for t in REVENUE_TAGS)

    def screen(self, as_of: dt.date | None) -> int:
        q = LIMIT_SCREEN.format(tags=self.tags, where="")
        fy, fq = int(PERIOD[:4]), int(PERIOD[-1])
        return int(self.con.sql(q, params={"file": self.file, "as_of": as_of, "fy": fy, "fq": fq}).to_arrow_table().num_rows)

    def series(self, cik: int, as_of: dt.date | None) -> int:
        q = LIMIT_SERIES.format(tags=self.tags, where="AND cik = $cik")
        return int(self.con.sql(q, params={"file": self.file, "as_of": as_of, "cik": cik}).to_arrow_table().num_rows)


class Ours:
    def __init__(self, path: Path) -> None:
        from queries import MetricStore
        self.ms = MetricStore(path)

    def screen(self, as_of: dt.date | None) -> int:
        return int(self.ms.growth(metric="revenue", period=PERIOD, segment="total", dims="", as_of=as_of).height)

    def series(self, cik: int, as_of: dt.date | None) -> int:
        return int(self.ms.series(f"cik{cik}", "revenue", as_of=as_of).height)


def work(spec: dict[str, Any]) -> tuple[Callable[[], Any], int, int]:
    """A worker's task (``benchmarks.worker`` times it): the call, how many times, after how many
    unmeasured ones. Imports are made here, not in the measured call."""
    system = spec["system"]
    if spec["task"] == "fsds_ingest":
        src, dest = Path(spec["src"]), Path(spec["dest"])
        dest.mkdir(parents=True, exist_ok=True)
        if system == "metricstore":
            import ingest  # noqa: F401
            import queries  # noqa: F401
        return (lambda: (ingest_metricstore if system == "metricstore" else ingest_limit)(src, dest)), 1, 0
    as_of = dt.date.fromisoformat(spec["as_of"]) if spec.get("as_of") else None
    q = (Ours if system == "metricstore" else Limit)(Path(spec["path"]))
    if spec["task"] == "fsds_screen":
        return (lambda: q.screen(as_of)), spec["repeats"], spec.get("warmup", 1)
    return (lambda: q.series(spec["cik"], as_of)), spec["repeats"], spec.get("warmup", SERIES_WARMUP)


# -- the run --------------------------------------------------------------------------------------
def _probe(sorted_file: Path) -> int:
    """The company whose series is read: of those reporting revenue in the most contexts, the middle CIK."""
    con = duckdb.connect()
    tags = ", ".join(f"'{t}'" for t in REVENUE_TAGS)
    rows = con.sql(f"""SELECT cik FROM read_parquet('{sorted_file}')
                       WHERE tag IN ({tags}) AND segments IS NULL AND coreg IS NULL
                       GROUP BY cik HAVING count(DISTINCT (day, qtrs)) = (
                           SELECT max(n) FROM (SELECT count(DISTINCT (day, qtrs)) AS n FROM read_parquet('{sorted_file}')
                                               WHERE tag IN ({tags}) AND segments IS NULL AND coreg IS NULL GROUP BY cik))
                       ORDER BY cik""").fetchall()
    return int(rows[len(rows) // 2][0])


def _pool(outs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"times": [t for o in outs for t in o["times"]], "peak_rss_mb": max(o["peak_rss_mb"] for o in outs)}


def run_fsds(size: int, work: Path, results: list[dict[str, Any]], save: Callable[[], None] = lambda: None) -> None:
    """Run the scenarios at one size into ``results``; ``save()`` after each step records what is measured."""
    work.mkdir(parents=True, exist_ok=True)
    src, made = work / "fsds.zip", work / "fsds.json"
    if made.exists() and src.exists():     # a --work folder keeps its zip (30 M take minutes to write)
        counts = json.loads(made.read_text())
    else:
        log(f"size {size:,}: generating a data sets zip into {work}")
        counts = write_zip(src, size)
        made.write_text(json.dumps(counts))
    log(f"{counts['numbers']:,} numbers, {counts['filings']:,} filings of {counts['filers']:,} filers in "
        f"{counts['quarters']} quarter(s), {src.stat().st_size / 1e6:.0f} MB")
    info = {"numbers": counts["numbers"], "filers": counts["filers"], "quarters": counts["quarters"]}

    big = size >= BIG
    rounds = 1 if big else INGEST_ROUNDS
    ingests: dict[str, list[dict[str, Any]]] = {"limit": [], "metricstore": []}
    dest = {s: work / f"ingest-{s}" for s in ingests}
    for r in range(rounds):
        for system in ingests:
            shutil.rmtree(dest[system], ignore_errors=True)
            ingests[system].append(worker({"task": "fsds_ingest", "system": system, "src": str(src),
                                           "dest": str(dest[system])}))
            log(f"fsds_ingest {system} round {r + 1}: {ingests[system][-1]['times'][0]:.1f}s "
                f"rss {ingests[system][-1]['peak_rss_mb']:.0f} MB")
    on_disk = {s: sum(p.stat().st_size for p in dest[s].rglob("*") if p.is_file()) for s in dest}
    # the projection step `metricstore ingest` ends with; the queries then read what it leaves
    projected = worker({"task": "project", "system": "metricstore", "path": str(dest["metricstore"])})
    log(f"projection: {projected['times'][0]:.1f}s rss {projected['peak_rss_mb']:.0f} MB")
    for system, outs in ingests.items():
        extra = ({"project_s": round(projected["times"][0], 1), "project_rss_mb": round(projected["peak_rss_mb"])}
                 if system == "metricstore" else {})
        record(results, "fsds_ingest", size, system, _pool(outs), **info, disk_mb=round(on_disk[system] / 1e6, 1),
               zip_mb=round(src.stat().st_size / 1e6, 1), **extra)
    save()

    sorted_file = limit_file(dest["limit"])
    cik = _probe(sorted_file)
    paths = {"limit": sorted_file, "metricstore": dest["metricstore"]}
    pooled: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(1 if big else QUERY_ROUNDS):
        for task_, repeats, warmup in (("fsds_screen", SCREEN_REPEATS, 1), ("fsds_series", SERIES_REPEATS, SERIES_WARMUP)):
            repeats, warmup = BIG_REPEATS[task_] if big else (repeats, warmup)
            for as_of in (None, AS_OF):
                scenario = task_ + ("_as_of" if as_of else "")
                for system in paths:
                    out = worker({"task": task_, "system": system, "path": str(paths[system]), "cik": cik,
                                  "as_of": as_of.isoformat() if as_of else None, "repeats": repeats,
                                  "warmup": warmup})
                    pooled.setdefault((scenario, system), []).append(out)
    for (scenario, system), outs in pooled.items():
        rec = record(results, scenario, size, system, _pool(outs), rows=outs[0]["rows"], **info,
                     **({"entity": f"cik{cik}"} if "series" in scenario else {"period": PERIOD}),
                     **({"as_of": AS_OF.isoformat()} if scenario.endswith("as_of") else {}))
        log(f"  {scenario} {system}: {rec['rows']} rows")
    save()
