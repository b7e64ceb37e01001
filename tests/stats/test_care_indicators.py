"""Known truth of the officials' new figures on a generated cohort run through the
pipeline: completeness against a births register (QI 3), the care of planted cases (QI
5e-g: birth to treatment, diagnosis, false positive ruled out), confirmed and missed cases
(QI 7, 8) and sensitivity; every expected figure below is worked out by hand from the
planted dates, not read back from the views."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import app
from nbs.followup.outcomes import Outcome, record_outcome
from nbs.stats import statistics
from nbs.stats.report import write_report
from tests.stats.conftest import RunCohort

pytestmark = pytest.mark.slow  # the cohort is run through the pipeline

YEAR = 2026
DAY = dt.timedelta(days=1)

#: (condition, kind, diagnosis day, treatment day, ruled-out day): days of life from the
#: date of birth
PLANTED = (
    ("PKU", "confirmed", 5, 6, None),
    ("PKU", "confirmed", 7, 8, None),
    ("PKU", "confirmed", 20, 25, None),
    ("PKU", "missed", 40, 42, None),
    ("CH", "confirmed", 10, 11, None),
    ("CH", "confirmed", 12, None, None),
    ("PKU", "ruled_out", None, None, 9),
    ("PKU", "ruled_out", None, None, 15),
)


def _negative_babies(db: Path, condition: str) -> list[str]:
    return store.query(
        db,
        "SELECT DISTINCT baby_id FROM screening_calls WHERE condition = ? AND call = 'negative' "
        "ORDER BY baby_id",
        [condition],
    )["baby_id"].to_list()


def _births(cohort: RunCohort) -> dict[str, dt.datetime]:
    firsts = cohort.specimens.group_by("baby_id").agg(pl.col("birth_at").min())
    return dict(firsts.filter(pl.col("birth_at").dt.year() == YEAR).rows())


def _plant(db: Path, cohort: RunCohort) -> None:
    births = _births(cohort)
    candidates = [b for b in _negative_babies(db, "PKU") if b in births]
    used: list[str] = []
    for condition, kind, dx, tx, ruled in PLANTED:
        baby = next(b for b in candidates if b not in used)
        used.append(baby)
        day0 = births[baby].date()
        if kind == "confirmed" and dx == 20:
            # a first recording corrected later: only the latest counts
            wrong = Outcome(baby, condition, kind, "test", diagnosed_at=day0 + 60 * DAY)
            record_outcome(db, wrong)
        record_outcome(
            db,
            Outcome(
                baby,
                condition,
                kind,  # type: ignore[arg-type]
                "test",
                diagnosis_code="ORPHA:716" if condition == "PKU" else None,
                diagnosed_at=None if dx is None else day0 + dx * DAY,
                treatment_started_at=None if tx is None else day0 + tx * DAY,
                ruled_out_at=None if ruled is None else day0 + ruled * DAY,
            ),
        )


def _register(cohort: RunCohort, path: Path) -> int:
    """The cohort's babies plus seven born without a card; returns the cohort babies
    without a satisfactory card by day 7 of life (worked out from the generated cards)."""
    cards = cohort.specimens.with_columns(
        in_time=(pl.col("specimen_quality") == "ok")
        & (pl.col("collected_at") <= pl.col("birth_at") + pl.duration(days=7))
    )
    babies = cards.group_by("baby_id").agg(
        pl.col("birth_at").min(), pl.col("submitter").first(), pl.col("in_time").any()
    )
    screened_one = babies.filter("in_time").sort("baby_id")["baby_id"][0]
    lines = ["baby_id,birth_at,submitter,status"]
    for r in babies.sort("baby_id").iter_rows(named=True):
        status = "declined" if r["baby_id"] == screened_one else ""  # screened all the same
        lines.append(f"{r['baby_id']},{r['birth_at']:%Y-%m-%dT%H:%M:%S},{r['submitter']},{status}")
    for baby, status in (
        ("BX-U1", ""), ("BX-U2", ""), ("BX-U3", ""), ("BX-U4", ""),
        ("BX-D1", "declined"), ("BX-D2", "declined"), ("BX-X1", "deceased"),
    ):  # fmt: skip
        lines.append(f"{baby},2026-02-01T10:00:00,CHL,{status}")
    path.write_text("\n".join(lines) + "\n")
    in_year = babies.filter(pl.col("birth_at").dt.year() == YEAR)
    assert in_year.height == babies.height  # the whole cohort is born in the year
    return int((~in_year["in_time"]).sum())


@pytest.fixture
def planted(run_cohort: RunCohort, run_db: Path, tmp_path: Path) -> tuple[Path, int, int]:
    """(database, cohort babies, cohort babies unscreened by day 7)."""
    register = tmp_path / "births.csv"
    late = _register(run_cohort, register)
    runner = CliRunner()
    done = runner.invoke(app, ["births", "import", str(register), "--db", str(run_db)])
    assert done.exit_code == 0, done.output
    marked = runner.invoke(
        app, ["births", "mark", "BX-U4", "--status", "deceased", "--db", str(run_db)]
    )
    assert marked.exit_code == 0, marked.output
    _plant(run_db, run_cohort)
    return run_db, len(_births(run_cohort)), late


def _indicators(db: Path) -> dict[tuple[str, str | None], tuple[object, ...]]:
    table = statistics.quality_table(db, YEAR, YEAR)
    return {
        (r["indicator"], r["condition"]): (r["value"], r["numerator"], r["denominator"], r["qi"])
        for r in table.iter_rows(named=True)
    }


def test_completeness_qi3_from_the_births_register(planted: tuple[Path, int, int]) -> None:
    db, cohort_babies, late = planted
    got = _indicators(db)
    births = cohort_babies + 7
    eligible = births - 2  # BX-X1 (register) and BX-U4 (marked) died before a card
    unscreened = late + 3 + 2  # the cohort's late ones, BX-U1..3, and the two who declined
    assert got[("births_registered", None)] == (births, births, None, "3")
    assert got[("unscreened_newborns_pct", None)] == (
        round(100 * unscreened / eligible, 2), unscreened, eligible, "3a",
    )  # fmt: skip
    assert got[("declined_screening_pct", None)] == (
        round(100 * 2 / eligible, 2), 2, eligible, "3b",
    )  # fmt: skip
    assert got[("deceased_before_screening", None)] == (2, 2, births, "3")
    listed = store.query(db, "SELECT status, count(*) FROM unscreened_babies GROUP BY ALL")
    assert dict(listed.rows()) == {"unscreened": late + 3, "declined": 2, "deceased": 2}


def test_care_of_planted_cases_qi5_7_8(planted: tuple[Path, int, int]) -> None:
    db, _, _ = planted
    got = _indicators(db)
    # PKU: diagnosis days 5, 7, 20, 40 -> median 13.5; p90 at (4-1)*0.9 = 2.7: 20 + 0.7*20
    assert got[("birth_to_diagnosis_median_d", "PKU")][:3] == (13.5, None, 4)
    assert got[("birth_to_diagnosis_p90_d", "PKU")][:3] == (34.0, None, 4)
    assert got[("diagnosed_by_day14_pct", "PKU")] == (50.0, 2, 4, "5f")
    # treatment days 6, 8, 25, 42 -> median 16.5; p90: 25 + 0.7*17 = 36.9; 2 of 4 by day 14
    assert got[("birth_to_treatment_median_d", "PKU")] == (16.5, None, 4, "5e")
    assert got[("birth_to_treatment_p90_d", "PKU")][0] == 36.9
    assert got[("treated_by_day14_pct", "PKU")][:3] == (50.0, 2, 4)
    # ruled out on days 9 and 15 -> median 12; p90: 9 + 0.9*6 = 14.4
    assert got[("birth_to_false_positive_ruled_out_median_d", "PKU")] == (12.0, None, 2, "5g")
    assert got[("birth_to_false_positive_ruled_out_p90_d", "PKU")][0] == 14.4
    # CH: diagnosis days 10, 12; one treated, on day 11 (the other not yet)
    assert got[("birth_to_diagnosis_median_d", "CH")][0] == 11.0
    assert got[("birth_to_treatment_median_d", "CH")][:3] == (11.0, None, 1)
    assert got[("treated_by_day14_pct", "CH")][:3] == (50.0, 1, 2)
    # every condition: diagnosis 5, 7, 10, 12, 20, 40 -> median 11; p90 at 4.5: 20 + 0.5*20
    assert got[("birth_to_diagnosis_median_d", None)][:3] == (11.0, None, 6)
    assert got[("birth_to_diagnosis_p90_d", None)][0] == 30.0
    assert got[("diagnosed_by_day14_pct", None)][:3] == (66.67, 4, 6)
    # treatment 6, 8, 11, 25, 42 -> median 11; p90 at 3.6: 25 + 0.6*17 = 35.2; 3 of 6 by 14
    assert got[("birth_to_treatment_p90_d", None)][0] == 35.2
    assert got[("treated_by_day14_pct", None)][:3] == (50.0, 3, 6)
    # QI 7 and 8: PKU 3 found, 1 missed; CH 2 found
    assert got[("confirmed_cases", "PKU")] == (3, 3, None, "7")
    assert got[("missed_cases", "PKU")] == (1, 1, 4, "8")
    assert got[("sensitivity_pct", "PKU")] == (75.0, 3, 4, "8")
    assert got[("sensitivity_pct", "CH")][0] == 100.0
    assert got[("sensitivity_pct", None)][:3] == (83.33, 5, 6)
    # the card indicators are still there, programme-wide
    assert got[("cards_received", None)][3] is None
    assert got[("unsatisfactory_specimens_pct", None)][3] == "1"
    missed = statistics.read(statistics.registry.MISSED, db, YEAR, YEAR)
    assert missed.select("condition", "screen_detected", "missed", "sensitivity_pct").rows() == [
        ("CH", 2, 0, 100.0),
        ("PKU", 3, 1, 75.0),
    ]


def test_report_file_and_page_carry_the_new_figures(
    planted: tuple[Path, int, int], tmp_path: Path
) -> None:
    db, _, _ = planted
    plain = write_report(db, YEAR, tmp_path / "plain", ["PKU", "CH"])
    page = plain.html.read_text()
    for section in ('id="completeness-table"', 'id="care-table"', 'id="missed-table"'):
        assert section in page
    assert "<td>PKU</td><td>3</td><td>1</td><td>75.0</td>" in page
    published = write_report(db, YEAR, tmp_path / "pub", ["PKU", "CH"], suppress_below=5)
    missed = pl.read_csv(tmp_path / "pub" / f"missed_cases_{YEAR}.csv", infer_schema=False)
    assert missed.filter(condition="PKU").row(0, named=True) == {
        "year": str(YEAR), "condition": "PKU", "screen_detected": "<5", "missed": "<5",
        "sensitivity_pct": "s",
    }  # fmt: skip
    quality = pl.read_csv(tmp_path / "pub" / f"quality_indicators_{YEAR}.csv", infer_schema=False)
    pku_median = quality.filter(indicator="birth_to_diagnosis_median_d", condition="PKU")
    assert pku_median["value"].item() == "s"
    # programme-wide rows are not a condition's: not suppressed
    births = quality.filter(indicator="births_registered")["value"].item()
    assert float(births) > 100
    assert "<td>PKU</td><td>&lt;5</td>" in published.html.read_text()
    # the officials' file holds them, and the statistics page shows the cases
    out = statistics.export_stats(db, tmp_path / "o.stats.duckdb", min_cell=5).path
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.sql("SELECT sum(missed) FROM missed_cases").fetchall() == [(1,)]
        assert con.sql(
            "SELECT value FROM quality_indicators WHERE indicator = 'sensitivity_pct' "
            "AND condition IS NULL"
        ).fetchall() == [(83.33,)]
    shown = dict((s.name, rows) for s, rows in statistics.page_tables(db))
    assert {r["condition"] for r in shown["missed_cases"]} == {"PKU", "CH"}


def test_the_statistics_page_shows_the_cases_and_care(planted: tuple[Path, int, int]) -> None:
    import re

    import httpx

    from nbs.web import users
    from nbs.web.process import running_server

    db, _, _ = planted
    users.add_user(db, "otto", "official", "official-pw-1", "test")
    with (
        running_server(db, "test-secret-" + "x" * 32) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        signed = client.post(
            "/login",
            data={"username": "otto", "password": "official-pw-1", "csrf_token": token[1]},
        )
        assert signed.status_code == 303
        page = client.get("/stats").text
    cases = page[page.index('id="missed"') :]
    cases = cases[: cases.index("</table>")]
    assert "<td>PKU</td><td>3</td><td>1</td><td>75.0</td>" in cases
    assert "<td>sensitivity pct</td><td>PKU</td><td>75.0</td>" in page
    assert "<td>births registered</td><td>all</td>" in page
