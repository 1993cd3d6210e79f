"""Deterministic SEC Financial Statement Data Sets: a zip of ``sub.txt``, ``num.txt``, ``tag.txt``
and ``pre.txt`` in the SEC's own columns, of any size: ``python -m benchmarks.fsds_data 3M out.zip``.

Borrowed from a real quarter (:mod:`benchmarks.fsds_shape`): every standard tag's name, label,
datatype and unit, and its frequency (a filer reports a tag with the probability the real filings
did); whether it is an instant, a quarter's flow or a year-to-date one; the segments it was
reported under and how often; custom tag names; co-registrants; fiscal year ends.

Made up, from a seed: the filers (CIK, name, fiscal year end, some on a 52/53-week calendar, a
few reporting in CAD, EUR or GBP, a few with co-registrants), each filing one report a quarter
(a 10-K for the quarter its fiscal year ends in, else a 10-Q) and a few amending the one before
(10-Q/A, 10-K/A, some values restated). A filing reports its period and the year before (three
years in a 10-K), quarters and year to date, as the SEC's ``qtrs`` 0 to 4. Values follow each
filer's size, growth and seasons, and the same fact is the same value in every filing that
repeats it (the quarters of a year add up to its year-to-date figures), so growth and derived
quarters are meaningful. Up to ``QUARTERS_MAX`` quarters of filings share one zip: 3 M numbers
are one quarter of about 6,000 filers, as a recent real quarter; 30 M are ten.

Memory is bounded: filings are made and written a few hundred at a time.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.fsds_shape import load

#: Numbers a quarter holds (a recent real quarter: about 3 M); more make more quarters, up to this.
PER_QUARTER = 3_000_000
QUARTERS_MAX = 12
#: The last quarter generated (filed in); earlier ones go back from it.
LAST_QUARTER = (2024, 2)
#: Mean tags a filer reports (standard and custom), and its spread (lognormal).
TAGS_MEAN, TAGS_SIGMA = 190, 0.35
AMENDED = 0.04                  # filers per quarter that also amend their previous report
RESTATED = 0.2                  # an amendment's values that change
WEEK_CALENDAR = 0.05            # filers whose periods end on the last Saturday of the month
FOREIGN = {"CAD": 0.015, "EUR": 0.01, "GBP": 0.005}
COREG = 0.02                    # filers with co-registrants
NIL = 0.0004                    # rows without a value (XBRL nil)
FOOTNOTE = 0.002
FILINGS_PER_CHUNK = 250
REFERENCE = 2020 * 12             # the month a filer's size is its scale
NUM_HEADER = ("adsh", "tag", "version", "ddate", "qtrs", "uom", "segments", "coreg", "value", "footnote")
SUB_HEADER = ("adsh", "cik", "name", "sic", "countryba", "stprba", "cityba", "zipba", "bas1", "bas2", "baph",
              "countryma", "stprma", "cityma", "zipma", "mas1", "mas2", "countryinc", "stprinc", "ein", "former",
              "changed", "afs", "wksi", "fye", "form", "period", "fy", "fp", "filed", "accepted", "prevrpt",
              "detail", "instance", "nciks", "aciks")
TAG_HEADER = ("tag", "version", "custom", "abstract", "datatype", "iord", "crdr", "tlabel", "doc")
PRE_HEADER = ("adsh", "report", "line", "stmt", "inpth", "rfile", "tag", "version", "plabel", "negating")
SICS = (1311, 2834, 2836, 3674, 3841, 4911, 5812, 6021, 6022, 6798, 7372, 7389)


@dataclass(frozen=True)
class Plan:
    """How a size is laid out: quarters of filings and filers."""

    size: int
    quarters: int
    filers: int

    @classmethod
    def of(cls, size: int, rows_per_filing: float) -> Plan:
        quarters = max(1, min(QUARTERS_MAX, round(size / PER_QUARTER)))
        return cls(size, quarters, max(1, round(size / (quarters * rows_per_filing))))

    def quarter_list(self) -> list[tuple[int, int]]:
        y, q = LAST_QUARTER
        out = []
        for _ in range(self.quarters):
            out.append((y, q))
            y, q = (y - 1, 4) if q == 1 else (y, q - 1)
        return out[::-1]


def _mix(*keys: np.ndarray | int) -> np.ndarray:
    """A uniform [0, 1) per row from integer keys (splitmix64): the same keys, the same number."""
    with np.errstate(over="ignore"):
        x = np.zeros(np.broadcast(*[np.asarray(k) for k in keys]).shape, dtype=np.uint64)
        for i, k in enumerate(keys):
            x = (x ^ np.asarray(k, dtype=np.int64).astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15 + 2 * i)
            x ^= x >> np.uint64(31)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _month_end(m: int) -> dt.date:
    """Month index (year * 12 + month - 1) -> its last day."""
    return dt.date(m // 12 + (m % 12 == 11), (m + 1) % 12 + 1, 1) - dt.timedelta(days=1)


def _last_saturday(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=(d.weekday() - 5) % 7)


class Universe:
    """The filers and the tags they report, made once from the seed."""

    def __init__(self, filers: int, seed: int) -> None:
        shape = load()
        self.tags = shape["tags"]
        rng = np.random.default_rng(seed)
        t = len(self.tags)
        self.std_names = [x["tag"] for x in self.tags]
        self.custom_names = shape["custom"]
        # the name table: standard tags, then custom ones; segments: "" first
        self.names = pl.Series(self.std_names + self.custom_names, dtype=pl.String)
        seg_pool = sorted({s for x in self.tags for s in x["segments"]} | {f"LegalEntity={c};" for c in shape["coreg"]})
        self.seg_index = {s: i + 1 for i, s in enumerate(seg_pool)}
        self.segments = pl.Series([None, *seg_pool], dtype=pl.String)
        self.coregs = pl.Series([None, *shape["coreg"]], dtype=pl.String)
        self.kind = np.array([_kind(x) for x in self.tags] + [0] * len(self.custom_names), dtype=np.int8)
        self.instant = np.array([x["iord"] == "I" for x in self.tags], dtype=bool)
        self.quarterly = np.array([x["quarterly"] for x in self.tags], dtype=bool)
        # a tag's share of its filer's size: the top line whole, the others from a thousandth up
        top = np.array([x["tag"].startswith(("Revenue", "SalesRevenue")) for x in self.tags] + [False] * len(self.custom_names))
        self.weight = np.where(top, 1.0, np.exp(-7 * _mix(np.arange(len(top)), 13)))
        prob = np.array([x["filings"] for x in self.tags], dtype=np.float64) / shape["filings"]
        custom_share = shape["custom_rows"] / shape["numbers"]
        fye_months = np.array([int(k[:2]) for k in shape["fye"]])
        fye_p = np.array(list(shape["fye"].values()), dtype=np.float64)
        self.cik = rng.choice(np.arange(1_000_000, 2_000_000), size=filers, replace=False)
        self.fye = rng.choice(fye_months, size=filers, p=fye_p / fye_p.sum())
        self.week = rng.random(filers) < WEEK_CALENDAR
        u = rng.random(filers)
        edges = np.cumsum(list(FOREIGN.values()))
        self.currency = np.array(["USD" if x >= edges[-1] else list(FOREIGN)[int(np.searchsorted(edges, x, "right"))]
                                  for x in u])
        self.scale = np.exp(rng.normal(np.log(3e8), 1.8, filers))
        self.growth = rng.normal(0.05, 0.12, filers)
        self.sic = rng.choice(SICS, size=filers)
        self.prefix = [_prefix(i) for i in range(filers)]
        # each filer's tags, segments and co-registrants, stable from quarter to quarter
        self.std: list[np.ndarray] = []
        self.cus: list[np.ndarray] = []
        self.seg: list[tuple[np.ndarray, np.ndarray]] = []      # (tag position, segment index)
        self.co: list[list[int]] = []
        scale_p = TAGS_MEAN * (1 - custom_share) / prob.sum()
        for i in range(filers):
            k = np.exp(rng.normal(0, TAGS_SIGMA))
            chosen = np.flatnonzero(rng.random(t) < np.minimum(1.0, prob * scale_p * k))
            self.std.append(chosen)
            n_custom = rng.poisson(TAGS_MEAN * custom_share * k)
            self.cus.append(t + rng.choice(len(self.custom_names), size=min(n_custom, len(self.custom_names)),
                                           replace=False))
            pos, segs = [], []
            for j, tag in enumerate(chosen):
                x = self.tags[tag]
                if x["segments"] and (n := min(len(x["segments"]), rng.poisson(x["segment_rows"]))):
                    for s in rng.choice(x["segments"], size=n, replace=False):
                        pos.append(j)
                        segs.append(self.seg_index[s])
            self.seg.append((np.array(pos, dtype=np.int64), np.array(segs, dtype=np.int64)))
            self.co.append([1 + int(c) for c in rng.choice(len(shape["coreg"]), size=rng.integers(1, 3), replace=False)]
                           if rng.random() < COREG else [])

    def tag_rows(self) -> pl.DataFrame:
        """The standard tags' rows of tag.txt (once per taxonomy version)."""
        return pl.DataFrame({
            "tag": self.std_names, "custom": "0", "abstract": "0",
            "datatype": [x["datatype"] for x in self.tags], "iord": [x["iord"] for x in self.tags],
            "crdr": [x["crdr"] or None for x in self.tags], "tlabel": [x["label"] for x in self.tags], "doc": None})


def _kind(tag: dict[str, Any]) -> int:
    """0 money, 1 shares, 2 per share, 3 a ratio."""
    if tag["datatype"] == "perShare":
        return 2
    if tag["uom"] == "shares" or tag["datatype"] == "shares":
        return 1
    if tag["uom"] == "pure" or tag["datatype"] in ("pure", "percent", "decimal"):
        return 3
    return 0


def _prefix(i: int) -> str:
    """A ticker-like instance prefix per filer: ``gaa``, ``gab``, ..."""
    s = ""
    i += 26 * 26
    while i:
        i, r = divmod(i, 26)
        s = chr(97 + r) + s
    return "g" + s


@dataclass(frozen=True)
class Filing:
    filer: int
    adsh: str
    end: int            # month index of the period's end
    fq: int             # fiscal quarter 1..3, 4 for a year
    form: str
    filed: dt.date
    year: int           # the taxonomy's year
    amended: bool


def _filings(u: Universe, plan: Plan, seed: int) -> list[Filing]:
    """Every filing of every quarter, in filing order within a quarter."""
    rng = np.random.default_rng(seed + 1)
    out: list[Filing] = []
    seq = 0
    for y, q in plan.quarter_list():
        first = y * 12 + 3 * (q - 1)                       # the quarter's first month
        q_start, q_end = _month_end(first - 1) + dt.timedelta(days=1), _month_end(first + 2)
        batch = []
        for f in range(plan.filers):
            fye = int(u.fye[f])
            end = next(m for m in range(first - 2, first + 1) if (m % 12 + 1 - fye) % 3 == 0)
            fq = (end % 12 - fye) % 12 // 3 + 1
            lag = int(rng.integers(55, 80) if fq == 4 else rng.integers(28, 46))
            filed = min(max(_month_end(end) + dt.timedelta(days=lag), q_start), q_end - dt.timedelta(days=2))
            batch.append((filed, f, end, fq, False))
            if rng.random() < AMENDED:
                prev = end - 3
                pfq = fq - 1 if fq > 1 else 4
                filed_a = filed + dt.timedelta(days=int(rng.integers(5, 30)))
                batch.append((min(filed_a, q_end), f, prev, pfq, True))
        batch.sort(key=lambda b: (b[0], b[1]))
        for filed, f, end, fq, amended in batch:
            seq += 1
            form = ("10-K" if fq == 4 else "10-Q") + ("/A" if amended else "")
            adsh = f"{1_900_000 + seq % 97:010d}-{filed.year % 100:02d}-{seq:06d}"
            out.append(Filing(f, adsh, end, fq, form, filed, filed.year, amended))
    return out


#: Contexts (months back from the period's end, qtrs) per tag type and fiscal quarter.
def _contexts(instant: bool, quarterly: bool, fq: int) -> list[tuple[int, int]]:
    if fq == 4:
        return [(0, 0), (12, 0)] if instant else [(0, 4), (12, 4), (24, 4)]
    if instant:
        return [(0, 0), (3 * fq, 0)]                       # the period's end and the fiscal year's start
    out = [(0, fq), (12, fq)]
    if quarterly and fq > 1:
        out = [(0, 1), (12, 1), *out]
    return out


def _filing_rows(u: Universe, f: Filing) -> dict[str, np.ndarray]:
    """The number rows of one filing, as codes: tag, segment, coreg, month, qtrs."""
    std, cus = u.std[f.filer], u.cus[f.filer]
    tags = np.concatenate([std, cus])
    n_std = len(std)
    salt = int(u.cik[f.filer])
    inst = np.concatenate([u.instant[std], _mix(salt, cus) < 0.4])
    quar = np.concatenate([u.quarterly[std], _mix(salt + 1, cus) < 0.5])
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []    # (tag pos, back, qtrs, coreg)
    for i_ in (True, False):
        for q_ in (True, False):
            pos = np.flatnonzero((inst == i_) & (quar == q_))
            if not len(pos):
                continue
            ctx = np.array(_contexts(i_, q_, f.fq))
            parts.append((np.repeat(pos, len(ctx)), np.tile(ctx[:, 0], len(pos)), np.tile(ctx[:, 1], len(pos)), 0))
    pos = np.concatenate([p[0] for p in parts])
    back = np.concatenate([p[1] for p in parts])
    qtrs = np.concatenate([p[2] for p in parts])
    seg = np.zeros(len(pos), dtype=np.int64)
    co = np.zeros(len(pos), dtype=np.int64)
    # segment rows: the tag's contexts again under each of its members
    spos, sseg = u.seg[f.filer]
    if len(spos):
        order = np.argsort(pos, kind="stable")
        sp = pos[order]
        lo, hi = np.searchsorted(sp, spos, "left"), np.searchsorted(sp, spos, "right")
        idx = np.concatenate([order[a:b] for a, b in zip(lo, hi, strict=True)])
        reps = hi - lo
        pos, back, qtrs = (np.concatenate([pos, pos[idx]]), np.concatenate([back, back[idx]]),
                           np.concatenate([qtrs, qtrs[idx]]))
        seg = np.concatenate([seg, np.repeat(sseg, reps)])
        co = np.concatenate([co, np.zeros(int(reps.sum()), dtype=np.int64)])
    # co-registrant rows: a third of the standard tags, under each co-registrant
    for c in u.co[f.filer]:
        keep = np.flatnonzero((pos < n_std) & (seg == 0) & (co == 0) & (_mix(salt, tags[pos], 7) < 0.33))
        name = u.coregs[c]
        pos, back, qtrs = (np.concatenate([pos, pos[keep]]), np.concatenate([back, back[keep]]),
                           np.concatenate([qtrs, qtrs[keep]]))
        seg = np.concatenate([seg, np.full(len(keep), u.seg_index[f"LegalEntity={name};"])])
        co = np.concatenate([co, np.full(len(keep), c)])
    return {"tag": tags[pos], "seg": seg, "co": co, "month": f.end - back, "qtrs": qtrs}


def _values(u: Universe, f: Filing, r: dict[str, np.ndarray]) -> np.ndarray:
    """Each row's value x 10,000 (four decimals, as the SEC writes them)."""
    cik = int(u.cik[f.filer])
    tag, seg, co, month, qtrs = r["tag"], r["seg"], r["co"], r["month"], r["qtrs"]
    weight = u.weight[tag] * (0.7 + 0.6 * _mix(cik, tag, 1)) * np.where(seg > 0, 0.05 + 0.5 * _mix(cik, tag, seg, 2), 1.0)
    weight *= np.where(co > 0, 0.2 + 0.6 * _mix(cik, co, 3), 1.0)
    base = u.scale[f.filer] * weight
    g = max(0.6, 1 + u.growth[f.filer])

    def quarter(m: np.ndarray) -> np.ndarray:
        season = 1 + 0.08 * np.sin(2 * np.pi * ((m % 12) / 12 + _mix(cik, 4)))
        out: np.ndarray = base / 4 * g ** ((m - REFERENCE) / 12) * season * (1 + 0.04 * (2 * _mix(cik, tag, seg, co, m) - 1))
        return out

    v = np.where(qtrs == 0, base * g ** ((month - REFERENCE) / 12) * (1 + 0.05 * (2 * _mix(cik, tag, seg, month, 5) - 1)),
                 0.0)
    for j in range(4):
        v = v + np.where(qtrs > j, quarter(month - 3 * j), 0.0)
    if f.amended:
        v *= np.where(_mix(cik, tag, seg, month, f.end) < RESTATED, 1 + 0.03 * (2 * _mix(cik, tag, month, 6) - 1), 1.0)
    kind = u.kind[tag]
    v = np.select([kind == 1, kind == 2, kind == 3],
                  [v / 40, 0.2 + 5 * _mix(cik, tag, month, qtrs, 8), 0.05 + 0.5 * _mix(cik, tag, 9)], v)
    whole = (kind <= 1)
    return np.where(whole, np.round(v / 1000) * 1000 * 10_000, np.round(v * 10_000)).astype(np.int64)


def _chunk(u: Universe, filings: list[Filing]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """num.txt, pre.txt and the custom tags' tag.txt rows of some filings."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "tag", "seg", "co", "month", "qtrs", "value")}
    pre = []
    for i, f in enumerate(filings):
        r = _filing_rows(u, f)
        val = _values(u, f, r)
        for k in ("tag", "seg", "co", "month", "qtrs"):
            cols[k].append(r[k])
        cols["value"].append(val)
        cols["f"].append(np.full(len(val), i))
        tags = np.concatenate([u.std[f.filer], u.cus[f.filer]])
        pre.append(pl.DataFrame({"f": np.full(len(tags), i), "tag": tags, "line": np.arange(2, len(tags) + 2)}))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    meta = pl.DataFrame({"f": np.arange(len(filings)), "adsh": [f.adsh for f in filings],
                         "version": [f"us-gaap/{f.year}" for f in filings],
                         "cur": [str(u.currency[f.filer]) for f in filings],
                         "cik": [int(u.cik[f.filer]) for f in filings]})
    n_std = len(u.std_names)
    salt = np.array([int(u.cik[f.filer]) for f in filings])[c["f"]]
    nil = _mix(salt, c["tag"], c["month"], c["qtrs"], c["seg"], 11) < NIL
    note = _mix(salt, c["tag"], c["month"], c["qtrs"], c["seg"], 12) < FOOTNOTE
    kind = u.kind[c["tag"]]
    uom = np.select([kind == 1, kind == 3], [1, 2], 0)
    df = pl.DataFrame({"f": c["f"], "tag_i": c["tag"], "seg": c["seg"], "co": c["co"], "month": c["month"],
                       "qtrs": c["qtrs"], "v": c["value"], "nil": nil, "note": note, "uom_k": uom})
    months = np.unique(c["month"])
    ddate = pl.DataFrame({"month": months, "ddate": [f"{_month_end(int(m)):%Y%m%d}" for m in months]})
    v = pl.col("v")
    df = df.with_columns(tag=u.names.gather(df["tag_i"]), segments=u.segments.gather(df["seg"]),
                         coreg=u.coregs.gather(df["co"]))
    num = (df.join(meta, on="f", maintain_order="left").join(ddate, on="month", maintain_order="left")
           .select(
               "adsh", "tag",
               pl.when(pl.col("tag_i") >= n_std).then(pl.col("adsh")).otherwise(pl.col("version")).alias("version"),
               "ddate", pl.col("qtrs").cast(pl.String),
               pl.when(pl.col("uom_k") == 1).then(pl.lit("shares")).when(pl.col("uom_k") == 2).then(pl.lit("pure"))
               .otherwise(pl.col("cur")).alias("uom"),
               "segments", "coreg",
               pl.when(pl.col("nil")).then(None).otherwise(
                   (v // 10_000).cast(pl.String) + "." + (v % 10_000).cast(pl.String).str.zfill(4)).alias("value"),
               pl.when(pl.col("note")).then(pl.lit("See the notes to the financial statements.")).alias("footnote")))
    pre_df = pl.concat(pre).join(meta, on="f", maintain_order="left")
    is_custom = pl.col("tag") >= n_std
    inst = np.concatenate([u.instant, np.zeros(len(u.custom_names), dtype=bool)])
    pre_txt = pre_df.select(
        "adsh", pl.lit("2").alias("report"), pl.col("line").cast(pl.String),
        pl.Series("stmt", np.where(inst[pre_df["tag"].to_numpy()], "BS", "IS")),
        pl.lit("0").alias("inpth"), pl.lit("H").alias("rfile"),
        u.names.gather(pre_df["tag"]).alias("tag"),
        pl.when(is_custom).then(pl.col("adsh")).otherwise(pl.col("version")).alias("version"),
        u.names.gather(pre_df["tag"]).alias("plabel"), pl.lit("0").alias("negating"))
    custom = pre_df.filter(is_custom).select(
        u.names.gather(pre_df.filter(is_custom)["tag"]).alias("tag"), pl.col("adsh").alias("version"),
        pl.lit("1").alias("custom"), pl.lit("0").alias("abstract"), pl.lit("monetary").alias("datatype"),
        pl.lit("D").alias("iord"), pl.lit("C").alias("crdr"),
        u.names.gather(pre_df.filter(is_custom)["tag"]).alias("tlabel"), pl.lit(None, pl.String).alias("doc"))
    return num, pre_txt, custom


def _tsv(df: pl.DataFrame, header: bool) -> bytes:
    buf = io.BytesIO()
    df.write_csv(buf, separator="\t", include_header=header, quote_style="never", null_value="")
    return buf.getvalue()


def _sub(u: Universe, filings: list[Filing]) -> pl.DataFrame:
    rows = []
    for f in filings:
        i = f.filer
        period = _month_end(f.end)
        exact = _last_saturday(period) if u.week[i] else period
        fye = int(u.fye[i])
        fy = period.year + (period.month > fye)
        rows.append({
            "adsh": f.adsh, "cik": str(int(u.cik[i])), "name": f"GENERATED FILER {i:05d} INC", "sic": str(u.sic[i]),
            "countryba": "US", "stprba": "DE", "cityba": "WILMINGTON", "zipba": "19801", "bas1": f"{i} MAIN ST",
            "bas2": None, "baph": "3025550100", "countryma": "US", "stprma": "DE", "cityma": "WILMINGTON",
            "zipma": "19801", "mas1": f"{i} MAIN ST", "mas2": None, "countryinc": "US", "stprinc": "DE",
            "ein": f"{(int(u.cik[i]) * 7) % 1_000_000_000:09d}", "former": None, "changed": None, "afs": "1-LAF",
            "wksi": "0", "fye": f"{_month_end(2001 * 12 + fye - 1):%m%d}", "form": f.form,
            "period": f"{period:%Y%m%d}", "fy": str(fy), "fp": "FY" if f.fq == 4 else f"Q{f.fq}",
            "filed": f"{f.filed:%Y%m%d}", "accepted": f"{f.filed:%Y-%m-%d} 16:05:00.0", "prevrpt": "0",
            "detail": "1", "instance": f"{u.prefix[i]}-{exact:%Y%m%d}{'_htm' if f.filed.year >= 2019 else ''}.xml",
            "nciks": str(1 + len(u.co[i])), "aciks": None})
    return pl.DataFrame(rows, schema={c: pl.String for c in SUB_HEADER})


def calibrate(seed: int = 7, filers: int = 200) -> float:
    """Mean number rows of a filing (from a small universe of the same seed's law)."""
    u = Universe(filers, seed)
    plan = Plan(0, 1, filers)
    total = sum(len(_filing_rows(u, f)["tag"]) for f in _filings(u, plan, seed))
    return total / filers


def write_zip(path: Path, size: int, seed: int = 7) -> dict[str, int]:
    """Write a data sets zip of about ``size`` numbers; returns its counts (numbers, filings, filers)."""
    plan = Plan.of(size, calibrate(seed))
    u = Universe(plan.filers, seed)
    filings = _filings(u, plan, seed)
    tmp = Path(tempfile.mkdtemp(prefix="fsds-", dir=path.parent))
    numbers = 0
    try:
        with open(tmp / "pre.txt", "wb") as pre, open(tmp / "tag.txt", "wb") as tag, \
                zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            std = u.tag_rows()
            versions = sorted({f.year for f in filings})
            tag.write(_tsv(pl.concat([std.with_columns(pl.lit(f"us-gaap/{y}").alias("version")).select(TAG_HEADER)
                                      for y in versions]), True))
            with zf.open("num.txt", "w", force_zip64=True) as num:
                for k in range(0, len(filings), FILINGS_PER_CHUNK):
                    n, p, c = _chunk(u, filings[k:k + FILINGS_PER_CHUNK])
                    numbers += n.height
                    num.write(_tsv(n, k == 0))
                    pre.write(_tsv(p, k == 0))
                    tag.write(_tsv(c, False))
        with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("sub.txt", _tsv(_sub(u, filings), True))
            zf.write(tmp / "tag.txt", "tag.txt")
            zf.write(tmp / "pre.txt", "pre.txt")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"numbers": numbers, "filings": len(filings), "filers": plan.filers, "quarters": plan.quarters}


def main() -> None:
    size_text, out = sys.argv[1], Path(sys.argv[2])
    size = int(float(size_text.rstrip("Mm")) * (1e6 if size_text[-1] in "Mm" else 1))
    print(write_zip(out, size, seed=int(sys.argv[3]) if len(sys.argv) > 3 else 7))


if __name__ == "__main__":
    main()
