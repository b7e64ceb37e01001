"""The maternities' report cards: each unit's figures of the month against the generated
cards (worked out here with polars, not read back from the view), the programme's beside
them, one HTML and one PDF file per unit; the month's default; the monthly Prefect
deployment."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from nbs import store
from nbs.cli import UserError, app
from nbs.stats.report_cards import ReportCardError, parse_month, write_report_cards
from nbs.store import stats as stats_store
from tests.stats.conftest import RunCohort

ROOT = Path(__file__).resolve().parents[2]
JANUARY = dt.date(2026, 1, 1)


def _expected(cohort: RunCohort, requested: set[str]) -> pl.DataFrame:
    """Per submitter (and ``None``: the programme) the January figures of the cards."""
    minute = "1m"  # the view counts whole minutes between the clock times, as DuckDB does
    cards = cohort.specimens.with_columns(
        first=pl.col("collected_at") == pl.col("collected_at").min().over("baby_id"),
        age_h=(pl.col("collected_at").dt.truncate(minute) - pl.col("birth_at").dt.truncate(minute))
        .dt.total_minutes() / 60,
        transit_h=(pl.col("received_at") - pl.col("collected_at")).dt.total_minutes() / 60,
        requested=pl.col("specimen_id").is_in(sorted(requested)),
        received=pl.col("specimen_id").is_in(list(cohort.repeated)),
    ).filter(pl.col("collected_at").dt.month() == 1)  # fmt: skip
    figures = [
        pl.len().alias("cards"),
        (pl.col("specimen_quality") != "ok").sum().alias("unsatisfactory"),
        pl.col("first").sum().alias("first_cards"),
        pl.col("age_h").filter("first").median().round(1).alias("age_at_collection_median_h"),
        pl.col("transit_h").median().round(1).alias("transit_median_h"),
        pl.col("requested").sum().alias("repeat_requested"),
        pl.col("received").sum().alias("repeat_received"),
    ]
    units = cards.group_by("submitter").agg(figures)
    whole = cards.select(figures).with_columns(submitter=pl.lit(None, pl.String))
    return pl.concat([whole.select(units.columns), units], how="vertical_relaxed")


@pytest.mark.slow
def test_report_cards_hold_each_units_figures_beside_the_programmes(
    run_cohort: RunCohort, tmp_path: Path
) -> None:
    db = run_cohort.db
    requested = set(
        store.query(db, "SELECT specimen_id FROM recalls WHERE action = 'repeat_specimen'")[
            "specimen_id"
        ]
    )
    truth = {r["submitter"]: r for r in _expected(run_cohort, requested).iter_rows(named=True)}
    got = {
        r["submitter"]: r for r in stats_store.submitter_month(db, JANUARY).iter_rows(named=True)
    }
    assert set(got) == set(truth)
    for unit, expected in truth.items():
        for column, value in expected.items():
            assert got[unit][column] == value, (unit, column)
    # the cohort's three repeat cards answer requests of January and February cards
    february = stats_store.submitter_month(db, dt.date(2026, 2, 1)).filter(
        pl.col("submitter").is_null()
    )
    assert got[None]["repeat_received"] >= 1
    assert got[None]["repeat_received"] + february["repeat_received"].item() == 3

    written = write_report_cards(db, JANUARY, tmp_path / "cards")
    assert sorted(c.submitter for c in written) == sorted(u for u in truth if u is not None)
    files = sorted(p.name for p in (tmp_path / "cards").iterdir())
    assert len(files) == 2 * len(written)
    chl = next(c for c in written if c.submitter == "CHL")
    assert chl.html.name == "report-card-CHL-2026-01.html"
    page = chl.html.read_text()
    own, whole = truth["CHL"], truth[None]
    assert f"<td>Cards received</td><td>{own['cards']}</td><td>{whole['cards']}</td>" in page
    assert (
        f"<td>Age at collection, median</td><td>{own['age_at_collection_median_h']:g} h</td>"
        f"<td>{whole['age_at_collection_median_h']:g} h</td>"
    ) in page
    assert (
        f"<td>Repeat cards requested</td><td>{own['repeat_requested']}</td>"
        f"<td>{whole['repeat_requested']}</td>"
    ) in page
    for other in truth:  # a unit's card names no other unit
        if other not in (None, "CHL"):
            assert f">{other}<" not in page
    pdf = chl.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and b"report card CHL 2026-01" in pdf

    runner = CliRunner()
    shown = runner.invoke(
        app,
        ["report-cards", "--db", str(db), "--out", str(tmp_path / "cli"), "--month", "2026-01"],
    )
    assert shown.exit_code == 0, shown.output
    assert f"{len(written)} submitter(s)" in shown.output
    none = runner.invoke(
        app,
        ["report-cards", "--db", str(db), "--out", str(tmp_path / "n"), "--month", "2030-01"],
    )
    assert none.exit_code == 0 and "0 submitter(s)" in none.output


def test_the_month_defaults_to_the_previous_one_and_is_checked() -> None:
    assert parse_month(None, dt.date(2026, 1, 15)) == dt.date(2025, 12, 1)
    assert parse_month(None, dt.date(2026, 3, 1)) == dt.date(2026, 2, 1)
    assert parse_month("2026-07") == dt.date(2026, 7, 1)
    for bad in ("2026-13", "2026/07", "July"):
        with pytest.raises(ReportCardError):
            parse_month(bad)
    result = CliRunner().invoke(
        app, ["report-cards", "--db", "x.duckdb", "--out", "o", "--month", "2026-13"]
    )
    assert isinstance(result.exception, UserError)


@pytest.mark.slow  # imports Prefect: the full tier
def test_a_monthly_deployment_writes_the_report_cards(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployment = {d["name"]: d for d in spec["deployments"]}["monthly-report-cards"]
    assert deployment["entrypoint"] == "flows/report_cards.py:report_cards"
    assert deployment["work_pool"]["name"] == "nbs-lab"
    schedule = deployment["schedules"][0]
    _minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("3", "*", "*") and int(hour) < 9  # monthly, mornings
    from prefect.client.schemas.schedules import CronSchedule

    assert CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"]).timezone == (
        "Europe/Luxembourg"
    )
    from flows.report_cards import cards_task, report_cards

    assert set(deployment["parameters"]) == set(inspect.signature(report_cards.fn).parameters)
    assert deployment["parameters"]["month"] is None  # the previous month when scheduled
    # the task alone, on a database without cards: no file, and the summary says so
    db = tmp_path / "nbs.duckdb"
    store.ensure_schema(db)
    markdown = cards_task.fn(db, "2026-01", tmp_path / "out")
    assert "# Report cards 2026-01" in markdown and "no card collected" in markdown
