"""The annual report: tables and CSV from the known cohort, small-number suppression, and
the page itself in headless chromium with every network request refused (it must load
offline, charts included)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from data_samples.stats_cohort import write_cohort
from nbs.cli import app
from tests.helpers import STATS_COHORT

pytestmark = pytest.mark.xdist_group("web")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    db = root / "nbs.duckdb"
    write_cohort(db, STATS_COHORT)
    runner = CliRunner()
    out = {}
    for name, extra in (("plain", []), ("published", ["--suppress-below", "3"])):
        folder = root / name
        result = runner.invoke(
            app, ["report", "--db", str(db), "--year", "2025", "--out", str(folder), *extra]
        )
        assert result.exit_code == 0, result.output
        out[name] = folder
    return out


@pytest.mark.slow
def test_report_tables_and_csv_carry_the_known_figures(reports: dict[str, Path]) -> None:
    folder = reports["plain"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "marker_percentiles_2025.csv",
        "missed_cases_2025.csv",
        "nbs-annual-report-2025.html",
        "plates_by_status_2025.csv",
        "quality_indicators_2025.csv",
        "unsatisfactory_by_reason_2025.csv",
        "yield_2025.csv",
        "yield_trend_2023_2025.csv",
    ]
    table = pl.read_csv(folder / "yield_2025.csv")
    for row in table.iter_rows(named=True):
        truth = STATS_COHORT.truth_yield(2025, row["condition"])
        assert {k: row[k] for k in ("screened", "referrals", "confirmed")} == {
            k: truth[k] for k in ("screened", "referrals", "confirmed")
        }
    trend = pl.read_csv(folder / "yield_trend_2023_2025.csv")
    assert sorted(set(trend["year"])) == [2023, 2024, 2025]  # the empty year is in the trend
    html = (folder / "nbs-annual-report-2025.html").read_text()
    assert "B2025-" not in html and "S2025-" not in html  # no identifiers
    assert "suppression" not in html


@pytest.mark.slow
def test_published_report_suppresses_small_counts(reports: dict[str, Path]) -> None:
    table = pl.read_csv(reports["published"] / "yield_2025.csv", infer_schema=False)
    ch = table.filter(pl.col("condition") == "CH").row(0, named=True)
    assert ch["confirmed"] == "<3" and ch["ppv_pct"] == "s"  # 2 confirmed: suppressed
    assert ch["false_positives"] == "5"
    cf = table.filter(pl.col("condition") == "CF").row(0, named=True)
    assert cf["confirmed"] == "0" and cf["referrals"] == "<3"
    html = (reports["published"] / "nbs-annual-report-2025.html").read_text()
    assert 'id="suppression"' in html and "&lt;3" in html


def test_report_opens_offline_in_chromium_with_its_charts(browser, reports) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    outside: list[str] = []

    def refuse(route) -> None:  # type: ignore[no-untyped-def]
        outside.append(route.request.url)
        route.abort()

    page.route("http*://**", refuse)
    page.goto((reports["plain"] / "nbs-annual-report-2025.html").as_uri())
    for chart in ("recall-rate", "ppv", "collection", "transit", "markers"):
        svg = page.locator(f"#chart-{chart} svg")
        assert svg.count() == 1 and svg.is_visible(), chart
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, chart
    assert page.locator("#yield tbody tr").count() == len(STATS_COHORT.conditions)
    assert "Positive predictive value" in page.inner_text("#yield")
    assert outside == []  # nothing was fetched from anywhere
    page.close()


@pytest.mark.slow
def test_a_single_year_is_charted_as_that_year(tmp_path: Path) -> None:
    """With one year of data the trend charts show that year, not a century around it."""
    import re

    from data_samples.stats_cohort import Cohort, RecallPlan

    db = tmp_path / "nbs.duckdb"
    write_cohort(db, Cohort(years={2026: 300}, plans={(2026, "CH"): RecallPlan(false_positive=1)}))
    result = CliRunner().invoke(
        app, ["report", "--db", str(db), "--year", "2026", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "nbs-annual-report-2026.html").read_text()
    years = {int(y) for y in re.findall(r">\s*((?:19|20|21)\d\d)\s*<", page)}
    assert 2026 in years
    assert not years - {2026}, f"other years drawn on the axes: {sorted(years - {2026})}"


@pytest.mark.slow
def test_the_quality_control_section_counts_the_years_plates_and_charts_each_series(
    tmp_path: Path,
) -> None:
    """Plates of the year by status (zeros too), and a Levey-Jennings chart per control
    series with results in the year; a series without a target gets a line, no chart."""
    from tests.cli.test_qc_cli import qc_database

    db = tmp_path / "nbs.duckdb"
    qc_database(db)  # 2026: five accepted plates and P17 held (2-2s on TSH level 2)
    for year in (2025, 2026):
        result = CliRunner().invoke(
            app, ["report", "--db", str(db), "--year", str(year), "--out", str(tmp_path / "out")]
        )
        assert result.exit_code == 0, result.output
    counts = pl.read_csv(tmp_path / "out" / "plates_by_status_2026.csv")
    assert counts.rows() == [("accepted", 5), ("held", 1), ("rejected", 0)]
    page = (tmp_path / "out" / "nbs-annual-report-2026.html").read_text()
    section = page[page.index('<section id="quality-control">') :]
    section = section[: section.index("</section>")]
    assert "Westgard" in section and "CLSI C24" in section
    assert section.count("<svg") == 2
    assert "<title>TSH NBS-CTRL level 2, lot 4411</title>" in section
    assert "target 45 ± 4 (n = 6)" in section and "P17: 54.5 (2-2s)" in section
    assert "TSH OTHER-QC level 1, lot 9999 (1 result): no target yet" in section
    empty = (tmp_path / "out" / "nbs-annual-report-2025.html").read_text()
    assert "No control result this year." in empty and "<td>held</td><td>0</td>" in empty
    assert pl.read_csv(tmp_path / "out" / "plates_by_status_2025.csv")["plates"].sum() == 0
