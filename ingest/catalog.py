"""The catalog: metric definitions, known entities and source authority, read from data files.

``data/catalog/metrics.toml``, ``entities.toml`` and ``sources.toml`` are data, not code: add a
metric or an alias there. ``sec_concepts.toml`` (used by the SEC companyfacts reader) lives there too.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.errors import CatalogError

AGGREGATIONS = ("flow", "per_share", "stock", "ratio")


@dataclass(frozen=True)
class MetricDef:
    name: str
    aggregation: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    formula: str | None = None      # a formula metric's expression (queries/formulas.py parses it)
    unit: str | None = None         # the unit a formula metric's values must come out in


@dataclass(frozen=True)
class EntityDef:
    entity: str
    name: str | None = None
    ticker: str | None = None
    cik: str | None = None
    fiscal_year_end_month: int = 12
    fiscal_year_end: str | None = None  # as the filings give it, e.g. '--09-28 (52/53 weeks, ...)'


@dataclass
class Catalog:
    """What ingest knows about metrics, entities and sources."""

    root: Path | None = None
    metrics: dict[str, MetricDef] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    entities: dict[str, EntityDef] = field(default_factory=dict)
    source_rules: list[tuple[str, str]] = field(default_factory=list)
    default_authority: str = "primary"
    strict: bool = False

    @classmethod
    def load(cls, root: str | Path | None, *, strict: bool = False) -> Catalog:
        """Read the catalog folder (a missing folder gives an empty catalog)."""
        cat = cls(root=Path(root) if root else None, strict=strict)
        if root is None or not Path(root).is_dir():
            return cat
        base = Path(root)
        for name, spec in _toml(base / "metrics.toml").items():
            formula = spec.get("formula")
            if formula is not None and (not isinstance(formula, str) or not formula.strip()):
                raise CatalogError(f"{base / 'metrics.toml'}: [{name}] formula {formula!r} is not an expression")
            # a formula's default: a quotient is a ratio, anything else a flow (as `metricstore metric`)
            agg = spec.get("aggregation", None if formula is None else "ratio" if "/" in formula else "flow")
            if agg not in AGGREGATIONS:
                raise CatalogError(f"{base / 'metrics.toml'}: [{name}] aggregation {agg!r} is not one of {AGGREGATIONS}")
            m = MetricDef(name, agg, spec.get("description", ""), tuple(spec.get("aliases", ())), formula, spec.get("unit"))
            cat.metrics[name] = m
            for alias in m.aliases:
                cat.aliases[alias] = name
        for name, spec in _toml(base / "entities.toml").items():
            cik = spec.get("cik")
            cat.entities[name] = EntityDef(name, spec.get("name"), spec.get("ticker"),
                                           str(cik) if cik is not None else None,
                                           int(spec.get("fiscal_year_end_month", 12)))
        sources = _toml(base / "sources.toml")
        cat.default_authority = sources.get("default", "primary")
        cat.source_rules = [(r["pattern"], r["authority"]) for r in sources.get("rule", [])]
        return cat

    def authority_of(self, source: str) -> str:
        for pattern, authority in self.source_rules:
            if fnmatch.fnmatchcase(source, pattern):
                return authority
        return self.default_authority

    def entity_by_cik(self, cik: str) -> EntityDef | None:
        key = str(int(cik)) if str(cik).isdigit() else str(cik)
        return next((e for e in self.entities.values() if e.cik == key), None)


def _toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from None


def infer_aggregation(unit: str, instant: bool) -> str:
    """A guess for a metric the catalog does not know: stocks by instant, then by unit: a figure
    per share over a period (``USD/share``: EPS, dividends) is per_share, any other quotient and
    a proportion a ratio, the rest a flow.

    Example:
        >>> infer_aggregation("USD/share", False), infer_aggregation("USD/share", True)
        ('per_share', 'stock')
    """
    if unit == "ratio":
        return "ratio"
    if unit.endswith("/share"):
        return "stock" if instant else "per_share"
    if "/" in unit:
        return "ratio"
    return "stock" if instant else "flow"
