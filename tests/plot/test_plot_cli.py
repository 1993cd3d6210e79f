"""``metricstore plot`` as a user runs it: the files it writes, read back; bad input is one line and
exit code 2, with no file written; Apple's restated years from its real SEC filings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from metricstore.charts import load_series, series_chart
from queries import MetricStore
from store import Store
from tests.conftest import CATALOG, needs_shared, run_cli


def texts(path: Path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")]


def test_plot_writes_the_series_and_its_restatement_as_svg(chart_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "acme.svg"
    r = run_cli("plot", "acme", "revenue", "--freq", "FY", "--vintages", "-o", str(out), store=chart_store)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}: acme: revenue, fiscal years"
    words = texts(out)
    assert "acme: revenue, fiscal years" in words and "+26.0 %" in words and "FY2025" in words
    assert any("restated 2024-06-01" in w for w in words)


def test_plot_compare_draws_peers_as_html(chart_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "peers.html"
    r = run_cli("plot", "--compare", "acme,beta", "revenue", "-o", str(out), store=chart_store)
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert "<title>revenue: acme, beta, fiscal years</title>" in page
    assert "<td>beta</td><td>FY2024</td><td>2024-12-31</td><td class=num>66.0 m USD</td>" in page


@pytest.mark.parametrize(("args", "line"), [
    (("nobody", "revenue"), "error: entity='nobody': is not in the store"),
    (("acme", "revnue"), "error: metric='revnue': has no acme figures (did you mean revenue?)"),
    (("acme", "revenue", "-o", "{tmp}/chart.jpg"), "error: output='{tmp}/chart.jpg': must end in .png, .svg or .html"),
    (("acme", "revenue", "-o", "{tmp}/file/chart.png"), "error: output='{tmp}/file/chart.png': cannot be written ("),
    (("acme", "revenue", "--freq", "W", "-o", "{tmp}/c.png"), "error: freq='W': is not one of FY, Q, H, M, I"),
    (("--compare", "acme,beta", "acme", "revenue", "-o", "{tmp}/c.png"), "error: METRIC='acme revenue': with --compare"),
    (("--compare", "acme,beta", "revenue", "--vintages", "-o", "{tmp}/c.png"), "error: vintages=True: draws one series"),
    (("acme", "-o", "{tmp}/c.png"), "error: names='acme': give ENTITY METRIC"),
])
def test_bad_input_is_one_line_and_exit_2(chart_store: Path, tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    r = run_cli("plot", *(a.replace("{tmp}", str(tmp_path)) for a in args), store=chart_store)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(line.replace("{tmp}", str(tmp_path))), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]            # nothing written


@pytest.fixture(scope="module")
def apple(tmp_path_factory: pytest.TempPathFactory) -> Path:
    filing = needs_shared("sec", "CIK0000320193_apple_asof2024-11.json")
    root = tmp_path_factory.mktemp("apple") / "store"
    ingest_paths(Store.create(root), [filing], catalog=Catalog.load(CATALOG))
    return root


def test_apple_restated_years_are_drawn_behind_the_current_ones(apple: Path, tmp_path: Path) -> None:
    with MetricStore(apple) as ms:
        data = load_series(ms, "aapl", "revenue", freq="FY", vintages=True)
    restated = {r["period"]: (r["before"], r["after"], str(r["restated_at"])) for r in data.restatements.iter_rows(named=True)}
    assert restated["FY2008"] == (32_479e6, 37_491e6, "2010-01-25")              # the 10-K/A of 2010-01-25
    vintage = dict(zip(data.vintages[0].points["period"], data.vintages[0].points["value"], strict=True))
    assert vintage["FY2008"] == 32_479e6 and data.vintages[0].as_of < data.restatements["restated_at"][0]
    chart = series_chart(data)
    assert chart.title == "Apple Inc. (aapl): revenue, fiscal years"
    top = chart.figure.axes[0]
    assert any(t.get_text().startswith("restated 2010-01-25:") and "FY2008 +15.4 %" in t.get_text() for t in top.texts)
    out = chart.write(tmp_path / "aapl.svg")
    assert {"FY2024", "USD bn", "earlier published versions (1), before a restatement"} <= set(texts(out))


def test_apple_quarters_mark_the_derived_fourth_quarters(apple: Path) -> None:
    with MetricStore(apple) as ms:
        data = load_series(ms, "aapl", "revenue", freq="Q")
    q4 = data.points.filter(data.points["period"] == "2024Q4").row(0, named=True)
    assert q4["mark"] == "derived" and q4["value"] == pytest.approx(94_930e6)     # FY2024 - 9M2024
    assert "derived from other periods (e.g. Q4 = FY - 9M)" in series_chart(data).legend


def test_plot_in_another_currency_draws_the_converted_figures(chart_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "gamma.svg"
    r = run_cli("plot", "gamma", "revenue", "--freq", "FY", "--currency", "USD", "-o", str(out), store=chart_store)
    assert r.returncode == 0, r.stderr
    with MetricStore(chart_store) as ms:
        usd = ms.series("gamma", "revenue", freq="FY", currency="USD")
    assert usd["unit"].unique().to_list() == ["USD"] and usd["value"].to_list() != [400e6, 380e6, 420e6]
    words = texts(out)
    assert any("USD" in w for w in words) and not any("EUR" in w for w in words)
    last = usd["value"][-1] / 1e6
    assert f"{last:.1f}" in words or f"{last:.0f}" in words   # the last point's label, converted
    refused = run_cli("plot", "gamma", "revenue", "--currency", "USD", "--vintages", "-o", str(out), store=chart_store)
    assert refused.returncode == 2 and refused.stderr.startswith("error: vintages=True: draws the versions")


def test_plot_compare_in_one_currency_draws_every_peer_converted(chart_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "peers.html"
    r = run_cli("plot", "--compare", "beta,gamma", "revenue", "--currency", "USD", "-o", str(out), store=chart_store)
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    with MetricStore(chart_store) as ms:
        gamma = ms.series("gamma", "revenue", freq="FY", currency="USD")
    assert f"<td>gamma</td><td>FY2024</td><td>2024-12-31</td><td class=num>{gamma['value'][-1] / 1e6:.1f} m USD</td>" in page
    assert "EUR" not in page


def test_plot_compare_in_one_currency_puts_the_peers_on_one_axis(chart_store: Path, tmp_path: Path) -> None:
    """``--compare`` with ``--currency`` (the docs' example): the EUR and USD peers in USD, so their
    levels share the axis instead of being an index."""
    out = tmp_path / "peers.svg"
    r = run_cli("plot", "--compare", "acme,gamma", "revenue", "--currency", "USD", "-o", str(out), store=chart_store)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}: revenue: acme, gamma, fiscal years"
    words = texts(out)
    assert "USD m" in words and not any("EUR" in w or "index" in w for w in words)
