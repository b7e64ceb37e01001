"""``nbs demo`` dates its cards as a laboratory's last days before the run, so that its
quality indicators (which measure to the time a card is reported: the run) read as a
real laboratory's, while the sample's cards keep their ages and their expected calls."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from data_samples import EXPECTED_CALLS, SAMPLE_INBOX
from nbs import store
from nbs.cli import app


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBS_INBOX_SETTLE_S", "0")
        done = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--cards", "150"])
    assert done.exit_code == 0, done.output
    return folder / "nbs.duckdb"


def _indicator(db: Path, name: str) -> tuple[int, int]:
    """(numerator, denominator) of a percentage indicator over every year of the demo."""
    row = store.query(
        db,
        "SELECT sum(numerator), sum(denominator) FROM card_quality_indicators WHERE indicator = ?",
        [name],
    ).row(0)
    return int(row[0] or 0), int(row[1] or 0)


@pytest.mark.slow
def test_the_demo_quality_indicators_read_as_a_laboratorys(demo_db: Path) -> None:
    day7, first_cards = _indicator(demo_db, "all_results_by_day7_pct")
    assert first_cards > 150 and day7 / first_cards > 0.5
    referred_by_day5, referrals = _indicator(demo_db, "time_critical_referred_by_day5_pct")
    assert referrals > 0 and referred_by_day5 > 0
    median = store.query(
        demo_db,
        "SELECT value FROM card_quality_indicators WHERE indicator = 'birth_to_report_median_h' "
        "ORDER BY denominator DESC LIMIT 1",
    ).item()
    assert 48 < median < 168
    # nothing happened after the run: every card born, collected, received and measured
    ran = store.query(demo_db, "SELECT max(started_at) FROM runs").item()
    times = store.query(
        demo_db,
        "SELECT max(birth_at), max(collected_at), max(received_at), "
        "(SELECT max(measured_at) FROM results) FROM specimens",
    ).row(0)
    assert all(t < ran for t in times), (times, ran)


@pytest.mark.slow
def test_the_demo_keeps_the_samples_ages_and_calls(demo_db: Path) -> None:
    sample = pl.read_csv(SAMPLE_INBOX / "20260302.specimens.csv", try_parse_dates=True)
    stored = store.query(
        demo_db, "SELECT specimen_id, birth_at, collected_at FROM specimens"
    ).filter(pl.col("specimen_id").is_in(sample["specimen_id"].to_list()))
    age = (pl.col("collected_at") - pl.col("birth_at")).alias("age")
    ages = sample.filter(pl.col("birth_at").is_not_null()).select("specimen_id", age)
    assert stored.height > 30
    assert (
        stored.select("specimen_id", age)
        .join(ages, on="specimen_id")
        .filter(pl.col("age") != pl.col("age_right"))
        .is_empty()
    )
    calls = store.query(
        demo_db,
        "SELECT specimen_id, condition, call FROM screening_calls WHERE specimen_id LIKE 'S-%'",
    )
    expected = pl.read_csv(EXPECTED_CALLS).select("specimen_id", "condition", "call")
    assert sorted(calls.rows()) == sorted(expected.rows())
