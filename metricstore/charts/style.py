"""How a figure is marked by its origin, the same on every chart (the demo's and ``metricstore plot``'s).

Two things a reader must tell apart at a glance, each drawn one way:

- where a figure comes from: reported (a circle), derived from other periods (a diamond, e.g.
  Q4 = FY - 9M), or forward-looking, i.e. guidance, a target or an estimate (a square, joined by a dashed line);
- whether it is exact: a filled mark is exact, a hollow one approximate or bounded (``approx``,
  ``at_least``, ``at_most``, ``range``).

Bars follow the same rule: solid for exact, hatched ``///`` for approximate, dotted ``..`` for
derived, an empty dashed outline for guidance. The legend names only the marks a chart uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.lines import Line2D
from matplotlib.patches import Patch


@dataclass(frozen=True)
class Mark:
    """How one origin of a figure is drawn: as a point and as a bar."""

    label: str          # the legend's words
    marker: str
    filled: bool
    hatch: str | None
    bar_filled: bool = True


#: Every mark, in legend order. ``mark_of`` picks one for a figure.
MARKS: dict[str, Mark] = {
    "exact": Mark("reported, exact", "o", True, None),
    "approx": Mark("reported, approximate or bounded (~, \u2265, \u2264, range)", "o", False, "///"),
    "derived": Mark("derived from other periods (e.g. Q4 = FY - 9M)", "D", True, ".."),
    "derived_approx": Mark("derived, approximate (per-share figures)", "D", False, "..."),
    "guidance": Mark("guidance, target or estimate (not a reported actual)", "s", False, None, bar_filled=False),
}


def mark_of(kind: str | None, qualifier: str | None, derived: bool | None) -> str:
    """The mark of a figure from its ``kind``, ``qualifier`` and ``derived`` flag.

    Example:
        >>> mark_of("actual", "exact", True), mark_of("guidance", "exact", False), mark_of("actual", "at_least", False)
        ('derived', 'guidance', 'approx')
    """
    if kind is not None and kind != "actual":
        return "guidance"
    exact = qualifier in (None, "exact")
    if derived:
        return "derived" if exact else "derived_approx"
    return "exact" if exact else "approx"


def points(ax: Axes, xs: Sequence[Any], ys: Sequence[float], marks: Sequence[str], color: str, *,
           size: float = 7, zorder: float = 3) -> None:
    """Draw each point with its mark (the line joining them is the caller's)."""
    for name in dict.fromkeys(marks):
        m = MARKS[name]
        sel = [i for i, k in enumerate(marks) if k == name]
        ax.plot([xs[i] for i in sel], [ys[i] for i in sel], linestyle="none", marker=m.marker, markersize=size,
                markerfacecolor=color if m.filled else "white", markeredgecolor=color, markeredgewidth=1.6,
                zorder=zorder)


def bars(ax: Axes, xs: Sequence[Any], heights: Sequence[float], marks: Sequence[str], colors: Sequence[str], *,
         width: Any = 0.8, horizontal: bool = False, label: str | None = None) -> BarContainer:
    """Bars, each drawn with its mark's fill and hatch (``colors``: one per bar)."""
    if horizontal:
        container = ax.barh(xs, heights, height=width, color=list(colors), label=label)
    else:
        container = ax.bar(xs, heights, width=width, color=list(colors), label=label)
    for patch, name, color in zip(container.patches, marks, colors, strict=True):
        m = MARKS[name]
        patch.set_edgecolor(color)
        patch.set_linewidth(1.2)
        if m.hatch:
            patch.set_hatch(m.hatch)
            patch.set_facecolor(_lighter(color))
        if not m.bar_filled:
            patch.set_facecolor("none")
            patch.set_linestyle("--")
    return container


def handles(marks: Iterable[str], color: str = "#444444") -> list[Line2D | Patch]:
    """Legend entries for the marks used (in the order of :data:`MARKS`)."""
    used = set(marks)
    out: list[Line2D | Patch] = []
    for name, m in MARKS.items():
        if name in used:
            out.append(Line2D([], [], linestyle="--" if name == "guidance" else "none", color=color, marker=m.marker,
                              markersize=7, markerfacecolor=color if m.filled else "white", markeredgecolor=color,
                              markeredgewidth=1.6, label=m.label))
    return out


def bar_handles(marks: Iterable[str], color: str = "#444444") -> list[Line2D | Patch]:
    """Legend entries for bars drawn by :func:`bars` with these marks."""
    used = set(marks)
    return [Patch(facecolor=("none" if not m.bar_filled else _lighter(color) if m.hatch else color),
                  edgecolor=color, hatch=m.hatch, linestyle="--" if not m.bar_filled else "-", label=m.label)
            for name, m in MARKS.items() if name in used]


def _lighter(color: str) -> tuple[float, float, float, float]:
    """The colour at 35 % strength, so that a hatch drawn over it stays legible."""
    r, g, b, _ = to_rgba(color)
    return (1 - 0.35 * (1 - r), 1 - 0.35 * (1 - g), 1 - 0.35 * (1 - b), 1.0)
