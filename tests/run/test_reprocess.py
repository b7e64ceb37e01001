"""Reprocessing stored cards under another cutoff version: new calls beside the old ones,
the clinical record untouched, idempotent, and the comparison view."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import UserError, app
from nbs.config import ScreeningConfig
from nbs.run.reprocess import reprocess
from nbs.run.steps import run_local
from tests.helpers import db_state


@pytest.fixture
def db(screened_db: Path) -> Path:
    return screened_db


@pytest.mark.slow
def test_reprocessing_under_the_older_set_keeps_the_record_and_shows_differences(
    db: Path, config: ScreeningConfig
) -> None:
    before = db_state(db)
    clinical = store.query(db, "SELECT * FROM screening_calls ORDER BY ALL")
    summary = reprocess(db, config, "LNS-2024.1", ["S-SCID1", "S-PKU1", "S-N01"])
    assert summary.cards == 3 and summary.calls_added > 0
    # the clinical record is unchanged: current calls, recalls, retests, statistics
    assert store.query(db, "SELECT * FROM screening_calls ORDER BY ALL").equals(clinical)
    after = db_state(db)
    for table in ("recalls", "retests", "screened", "specimens", "recall_events"):
        assert after[table] == before[table], table
    compare = store.query(
        db,
        "SELECT specimen_id, condition, screening_call, reprocessed_call, "
        "reprocessed_rule_version, changed FROM reprocess_comparison WHERE run_id = ?",
        [summary.run_id],
    )
    assert set(compare["reprocessed_rule_version"]) == {"LNS-2024.1"}
    # SCID is not in the 2024 set: the SCID referral is not reproduced under it
    assert "SCID" not in set(compare["condition"])
    pku = compare.filter(specimen_id="S-PKU1", condition="PKU").row(0, named=True)
    assert pku["reprocessed_call"] == pku["screening_call"] == "referral"
    assert summary.changed == compare["changed"].sum()
    # the same reprocessing again adds nothing
    again = reprocess(db, config, "LNS-2024.1", ["S-SCID1", "S-PKU1", "S-N01"])
    assert again.calls_added == 0


@pytest.mark.slow
def test_reprocessing_by_dates_and_its_errors(db: Path, config: ScreeningConfig) -> None:
    day = dt.date(2026, 3, 3)
    summary = reprocess(db, config, "LNS-2026.1", None, day, day)
    on_day = store.query(
        db, "SELECT count(*) FROM specimens WHERE collected_at::DATE = ?", [day]
    ).item()
    assert summary.cards == on_day > 0
    assert summary.calls_added == 0  # same version and evidence: already decided
    with pytest.raises(ValueError, match="no cutoff set"):
        reprocess(db, config, "LNS-1999.9", ["S-N01"])
    with pytest.raises(ValueError, match="name the cards"):
        reprocess(db, config, "LNS-2026.1")
    with pytest.raises(ValueError, match="no stored card S-NOPE"):
        reprocess(db, config, "LNS-2026.1", ["S-NOPE"])
    bad = CliRunner().invoke(app, ["reprocess", "--db", str(db), "--cutoff-version", "LNS-2026.1"])
    assert isinstance(bad.exception, UserError)
    ok = CliRunner().invoke(
        app,
        ["reprocess", "--db", str(db), "--cutoff-version", "LNS-2024.1", "--specimen", "S-CH1"],
    )
    assert ok.exit_code == 0 and "1 card(s) under LNS-2024.1" in ok.output


def _window_config(tmp_path: Path) -> ScreeningConfig:
    """The installed sets with the German CF protocol (a 90-day window of IRT
    percentiles, from 50 values; fixed fallback limits far above any IRT, so that a call
    depends on drawing the window from storage), and the same limits again as
    ``LNS-2026.9`` (in force only later: reprocessing under it writes new calls beside the
    run's, to compare)."""
    import shutil

    import yaml

    from cutoffs import DEFAULT_CUTOFF_DIR
    from nbs.config import load_config

    folder = tmp_path / "cutoffs"
    folder.mkdir()
    for path in DEFAULT_CUTOFF_DIR.glob("lns-*.yaml"):
        shutil.copy2(path, folder)
    data = yaml.safe_load((folder / "lns-2026.1.yaml").read_text())
    german = yaml.safe_load((DEFAULT_CUTOFF_DIR / "protocols" / "cf-germany.yaml").read_text())
    german["CF"]["criteria"][0].update(min_values=50)
    german["CF"]["criteria"][0]["fallback"] = {
        "retest": 900,
        "repeat_specimen": 950,
        "referral": 990,
    }
    data["conditions"]["CF"] = german["CF"]
    (folder / "lns-2026.1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    data.update(version="LNS-2026.9", effective_from=dt.date(2027, 1, 1))
    (folder / "lns-2026.9.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(folder)


def _cf_flagged(db: Path) -> pl.DataFrame:
    """The run's CF calls other than negative, cards flagged on IRT first."""
    screened = store.query(
        db,
        "SELECT specimen_id, call FROM screening_calls WHERE condition = 'CF' "
        "AND call <> 'not_evaluated' ORDER BY reason LIKE '%IRT %' DESC, specimen_id",
    )
    return screened.filter(pl.col("call") != "negative")


@pytest.mark.slow
def test_reprocessing_decides_as_the_run_did_with_window_percentiles(tmp_path: Path) -> None:
    """A percentile limit of a rolling window is drawn as the run drew it: reprocessing a
    flagged card alone, or one early day's cards, under the same version reproduces every
    call of the run, whose window ended at the run's latest card (a window ending at the
    reprocessed cards' own latest, or of those cards alone, called some otherwise)."""
    from data_samples.generator import generate_cohort, write_inbox

    config = _window_config(tmp_path)
    inbox, db = tmp_path / "inbox", tmp_path / "x.duckdb"
    write_inbox(generate_cohort(300, seed=4, start=dt.date(2026, 2, 2)), inbox, name="day")
    run_local(inbox, db, config)
    flagged = _cf_flagged(db)
    assert not flagged.is_empty(), "the 99th percentile of 300 cards flags a few"
    alone = reprocess(db, config, "LNS-2026.9", [flagged["specimen_id"][0]])
    early = reprocess(db, config, "LNS-2026.9", None, dt.date(2026, 2, 8), dt.date(2026, 2, 8))
    for summary in (alone, early):
        compare = store.query(
            db,
            "SELECT specimen_id, screening_call, reprocessed_call FROM reprocess_comparison "
            "WHERE run_id = ? AND condition = 'CF'",
            [summary.run_id],
        )
        assert compare.height > 0
        differ = compare.filter(pl.col("reprocessed_call") != pl.col("screening_call"))
        assert differ.is_empty(), differ


@pytest.mark.slow
def test_a_window_percentile_never_uses_cards_collected_later(tmp_path: Path) -> None:
    """Reprocessing February's cards after September's are stored draws February's window
    from cards collected up to February's latest card, as the run did: September's cards
    (here with five times the IRT, which would raise the 99th percentile past every
    February value) are left out, and no CF call changes."""
    from data_samples.generator import generate_cohort, write_inbox

    config = _window_config(tmp_path)
    db = tmp_path / "x.duckdb"
    february = generate_cohort(300, seed=4, start=dt.date(2026, 2, 2))
    write_inbox(february, tmp_path / "feb", name="feb")
    run_local(tmp_path / "feb", db, config)
    assert not _cf_flagged(db).is_empty()
    september = generate_cohort(300, seed=5, start=dt.date(2026, 9, 1), first_number=5001)
    raised = september.results.with_columns(
        value=pl.when(pl.col("analyte") == "IRT")
        .then(pl.col("value") * 5)
        .otherwise(pl.col("value"))
    )
    write_inbox(replace(september, results=raised), tmp_path / "sep", name="sep")
    run_local(tmp_path / "sep", db, config)
    summary = reprocess(db, config, "LNS-2026.9", None, dt.date(2026, 2, 1), dt.date(2026, 3, 31))
    compare = store.query(
        db,
        "SELECT specimen_id, screening_call, reprocessed_call FROM reprocess_comparison "
        "WHERE run_id = ? AND condition = 'CF'",
        [summary.run_id],
    )
    assert compare.height == february.specimens.height
    assert compare.filter(pl.col("reprocessed_call") != pl.col("screening_call")).is_empty()
    assert (compare["reprocessed_call"] != "negative").any()


@pytest.mark.slow
def test_reprocessing_makes_no_call_from_a_held_plate(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    """A result on a plate not accepted makes no call in a reprocessing either: the card's
    TSH on the held plate is a retest naming the plate, as in the run, never a negative."""
    from tests.run.test_plates_e2e import inbox_with_a_pku_referral

    db = tmp_path / "lab.duckdb"
    run_local(inbox_with_a_pku_referral(tmp_path), db, config)
    summary = reprocess(db, config, "LNS-2024.1", ["S-H1", "S-A1"])
    calls = store.query(
        db,
        "SELECT specimen_id, call, basis, reason FROM calls "
        "WHERE run_id = ? AND condition = 'CH' ORDER BY specimen_id",
        [summary.run_id],
    )
    held = calls.filter(specimen_id="S-H1").row(0, named=True)
    assert (held["call"], held["basis"]) == ("retest", "plate_held"), held
    assert "plate GSP-7 held" in held["reason"]
    assert calls.filter(specimen_id="S-A1")["call"].to_list() == ["negative"]
    # the accepted MS/MS plate's PKU referral is reproduced
    pku = store.query(
        db,
        "SELECT call FROM calls WHERE run_id = ? AND specimen_id = 'S-H1' AND condition = 'PKU'",
        [summary.run_id],
    )
    assert pku.item() == "referral"
