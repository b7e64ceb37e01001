"""Reprocessing stored cards under another cutoff version: new calls beside the old ones,
the clinical record untouched, idempotent, and the comparison view."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbs import storage
from nbs.cli import UserError, app
from nbs.config import ScreeningConfig
from nbs.pipeline import run_local
from nbs.reprocess import reprocess
from tests.helpers import db_state


@pytest.fixture
def db(sample_inbox: Path, db_path: Path, config: ScreeningConfig) -> Path:
    run_local(sample_inbox, db_path, config)
    return db_path


def test_reprocessing_under_the_older_set_keeps_the_record_and_shows_differences(
    db: Path, config: ScreeningConfig
) -> None:
    before = db_state(db)
    clinical = storage.query(db, "SELECT * FROM screening_calls ORDER BY ALL")
    summary = reprocess(db, config, "LNS-2024.1", ["S-SCID1", "S-PKU1", "S-N01"])
    assert summary.cards == 3 and summary.calls_added > 0
    # the clinical record is unchanged: current calls, recalls, retests, statistics
    assert storage.query(db, "SELECT * FROM screening_calls ORDER BY ALL").equals(clinical)
    after = db_state(db)
    for table in ("recalls", "retests", "screened", "specimens", "recall_events"):
        assert after[table] == before[table], table
    compare = storage.query(
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


def test_reprocessing_by_dates_and_its_errors(db: Path, config: ScreeningConfig) -> None:
    day = dt.date(2026, 3, 3)
    summary = reprocess(db, config, "LNS-2026.1", None, day, day)
    on_day = storage.query(
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
