"""The charts as drawn: the points, marks, legend, earlier versions and peers read back from the
matplotlib figure, and the files (PNG, SVG text, a self-contained HTML page) read back as written."""

from __future__ import annotations

import datetime as dt
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from metricstore.charts import compare_chart, load_peers, load_series, output_format, series_chart
from metricstore.charts.style import MARKS
from queries import BadArgument, MetricStore

SVG = "{http://www.w3.org/2000/svg}"


def lines(ax: Axes) -> list[Line2D]:
    """The lines joining points (not the marks drawn alone, not the legend's)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("None", "none", "") and len(ln.get_xdata()) > 1]


def ys(line: Line2D) -> list[float]:
    return [round(float(v), 6) for v in line.get_ydata() if v == v]


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_series_points_carry_their_marks_and_guidance_its_implied_growth(cms: MetricStore) -> None:
    data = load_series(cms, "acme", "revenue")          # fiscal years chosen: there are four
    assert data.freq == "FY" and data.unit == "USD"
    got = {r["period"]: (r["value"], r["mark"]) for r in data.points.iter_rows(named=True)}
    assert got == {"FY2021": (90e6, "approx"), "FY2022": (100e6, "exact"), "FY2023": (126e6, "exact"),
                   "FY2024": (150e6, "exact"), "FY2025": (180e6, "guidance")}
    yoy = dict(zip(data.points["period"], data.points["yoy_pct"], strict=True))
    assert yoy["FY2023"] == pytest.approx(0.26) and yoy["FY2025"] == pytest.approx(0.2)    # 180 over 150


def test_series_chart_draws_the_values_yoy_title_and_a_legend_of_the_marks_used(cms: MetricStore) -> None:
    chart = series_chart(load_series(cms, "acme", "revenue", freq="FY"))
    top, bottom = chart.figure.axes[:2]
    assert chart.title == "acme: revenue, fiscal years"
    assert top.get_ylabel() == "USD m"
    current = lines(top)[0]
    assert ys(current) == [90, 100, 126, 150]
    assert list(current.get_xdata()) == [dt.date(y, 12, 31) for y in (2021, 2022, 2023, 2024)]
    guidance = [ln for ln in lines(top) if ln.get_linestyle() == "--"]
    assert [ys(g) for g in guidance] == [[150, 180]]
    heights = [round(p.get_height(), 4) for p in bottom.patches]
    assert heights == [11.1111, 26.0, 19.0476, 20.0]
    assert [p.get_linestyle() for p in bottom.patches][-1] == "--"      # the guidance's bar: an outline
    assert chart.legend == ["revenue: latest published figures", MARKS["exact"].label, MARKS["approx"].label,
                            MARKS["guidance"].label]
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["FY2021", "FY2022", "FY2023", "FY2024", "FY2025"]
    labels = {t.get_text() for t in top.texts}
    assert {"~90.0", "126.0", "180.0"} <= labels          # the approximate figure is written as one


def test_quarters_mark_the_derived_fourth_quarter(cms: MetricStore) -> None:
    data = load_series(cms, "acme", "revenue", freq="Q")
    q4 = data.points.filter(data.points["period"] == "2024Q4").row(0, named=True)
    assert (q4["value"], q4["mark"]) == (45e6, "derived")                  # FY 150 - Q1..Q3 105
    chart = series_chart(data)
    assert MARKS["derived"].label in chart.legend and MARKS["approx"].label not in chart.legend
    bars = chart.figure.axes[1].patches
    assert bars[-1].get_hatch() == MARKS["derived"].hatch and bars[0].get_hatch() is None


def test_vintages_draw_the_version_before_the_restatement(cms: MetricStore) -> None:
    data = load_series(cms, "acme", "revenue", freq="FY", vintages=True)
    assert [v.as_of for v in data.vintages] == [dt.date(2024, 2, 1)]
    r = data.restatements.row(0, named=True)
    assert (r["period"], r["before"], r["after"], r["restated_at"]) == ("FY2023", 120e6, 126e6, dt.date(2024, 6, 1))
    chart = series_chart(data)
    top = chart.figure.axes[0]
    faint = [ln for ln in lines(top) if ln.get_alpha() is not None and ln.get_alpha() < 1]
    assert [ys(ln) for ln in faint] == [[90, 100, 120]]                   # behind the current 126
    assert "earlier published versions (1), before a restatement" in chart.legend
    assert any("restated 2024-06-01" in t.get_text() and "FY2023 +5.0 %" in t.get_text() for t in top.texts)
    assert chart.tables["Restatements"].row(0) == ("FY2023", "120.0 m USD", "126.0 m USD", "+5.0 %", "2024-06-01")


def test_as_of_draws_what_was_published_then(cms: MetricStore) -> None:
    data = load_series(cms, "acme", "revenue", freq="FY", as_of="2024-03-01", vintages=True)
    assert data.points["period"].to_list() == ["FY2021", "FY2022", "FY2023"]
    assert data.points["value"].to_list()[-1] == 120e6 and not data.vintages
    assert "as of 2024-03-01" in series_chart(data).figure.axes[0].get_title()


def test_peers_in_one_unit_share_an_axis_and_in_two_are_indexed(cms: MetricStore) -> None:
    same = compare_chart(load_peers(cms, ["acme", "beta"], "revenue"))
    top = same.figure.axes[0]
    assert top.get_ylabel() == "USD m"
    assert [ys(ln) for ln in lines(top) if ln.get_linestyle() == "-"] == [[90, 100, 126, 150], [50, 55, 66]]
    assert same.legend[:2] == ["acme", "beta"] and same.title == "revenue: acme, beta, fiscal years"
    mixed = compare_chart(load_peers(cms, ["acme", "gamma"], "revenue"))
    top = mixed.figure.axes[0]
    assert top.get_ylabel() == "index: the figure nearest 2022-12-31 = 100"
    solid = [ys(ln) for ln in lines(top) if ln.get_linestyle() == "-"]
    assert solid[0][1] == 100 and solid[1] == [100, 95, 105]
    assert mixed.legend[:2] == ["acme (USD)", "gamma (EUR)"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda ms: load_series(ms, "acmee", "revenue"), "entity='acmee': is not in the store (did you mean acme?)"),
    (lambda ms: load_series(ms, "acme", "revenu"), "metric='revenu': has no acme figures (did you mean revenue?)"),
    (lambda ms: load_series(ms, "acme", "revenue", segment="cars"), "segment='cars': has no acme revenue figures"),
    (lambda ms: load_series(ms, "acme", "revenue", freq="M"), "freq='M': acme has no M figures"),
    (lambda ms: load_series(ms, "acme", "revenue", freq="W"), "freq='W': is not one of FY, Q, H, M, I"),
    (lambda ms: load_series(ms, "acme", "revenue", as_of="2020-01-01"), "entity='acme': has no figures published as of"),
    (lambda ms: load_peers(ms, ["acme"], "revenue"), "compare='acme': names fewer than two entities"),
])
def test_a_name_the_store_lacks_is_one_clear_error(cms: MetricStore, call: object, message: str) -> None:
    with pytest.raises(BadArgument) as exc:
        call(cms)  # type: ignore[operator]
    assert str(exc.value).startswith(message), str(exc.value)


def test_svg_keeps_title_legend_and_periods_as_text(cms: MetricStore, tmp_path: Path) -> None:
    chart = series_chart(load_series(cms, "acme", "revenue", freq="FY", vintages=True))
    path = chart.write(tmp_path / "acme.svg")
    texts = svg_texts(path)
    for expected in ("acme: revenue, fiscal years", MARKS["approx"].label, MARKS["guidance"].label,
                     "earlier published versions (1), before a restatement", "FY2023", "FY2025", "+26.0 %", "~90.0"):
        assert expected in texts, expected
    again = series_chart(load_series(cms, "acme", "revenue", freq="FY", vintages=True)).write(tmp_path / "again.svg")
    assert again.read_bytes() == path.read_bytes()       # the same chart drawn again: the same bytes


def test_html_is_one_self_contained_page_with_the_figures(cms: MetricStore, tmp_path: Path) -> None:
    chart = series_chart(load_series(cms, "acme", "revenue", freq="FY", vintages=True))
    page = chart.write(tmp_path / "acme.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>acme: revenue, fiscal years</title>" in page
    assert page.count("<svg") == 1 and "<?xml" not in page
    # nothing fetched: no script, stylesheet, image or font from elsewhere
    assert not re.search(r"""(src|href)=["'](?!#)""", page.replace('xmlns:xlink="http://www.w3.org/1999/xlink"', ""))
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert ["FY2023", "2023-12-31", "126.0 m USD", "+26.0 % vs FY2022", "reported", "exact", "acme-2023-amended"] in cells
    assert ["FY2025", "2025-12-31", "180.0 m USD", "+20.0 % vs FY2024", "guidance", "exact", "acme-2024"] in cells
    assert ["FY2023", "120.0 m USD", "126.0 m USD", "+5.0 %", "2024-06-01"] in cells


def test_png_is_an_image_of_the_figure_size(cms: MetricStore, tmp_path: Path) -> None:
    chart = series_chart(load_series(cms, "acme", "revenue", freq="Q"))
    data = chart.write(tmp_path / "acme.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 726)                    # 10 x 6.6 inches at 110 dpi
    assert b"acme: revenue, quarters" in data                 # the title, in the PNG's text chunk


@pytest.mark.parametrize("name", ["chart.jpg", "chart", "chart.pdf"])
def test_an_extension_other_than_png_svg_html_is_refused(name: str) -> None:
    with pytest.raises(BadArgument, match="must end in .png, .svg or .html"):
        output_format(Path(name))


def test_an_unwritable_path_is_one_clear_error(cms: MetricStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    chart = series_chart(load_series(cms, "acme", "revenue", freq="FY"))
    with pytest.raises(BadArgument, match=r"^output='.*file/x.png': cannot be written \(") as exc:
        chart.write(tmp_path / "file" / "x.png")
    assert "\n" not in str(exc.value)


def test_the_demo_chart_marks_its_figures_as_plot_does(tmp_path: Path) -> None:
    from tests.conftest import ROOT, run_cli

    chart = tmp_path / "demo.svg"
    r = run_cli("demo", "--chart", str(chart), "--seed", str(ROOT / "data" / "seed"), store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    words = svg_texts(chart)
    for expected in ("Xiaomi 2024 results, from metricstore", "computed by the store", "stated in the article",
                     MARKS["exact"].label, MARKS["approx"].label, "~10,000", "66,000", "+48.8 %"):
        assert expected in words, expected
