"""Releasing a card: the rules (called or explained, plates accepted, no open exception),
the signature with the password, the audit trail, amendments after a change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import app
from nbs.config import ScreeningConfig, load_config
from nbs.release import service
from nbs.release.export import oru_text, releases
from nbs.run.release import reevaluate
from nbs.run.reprocess import reprocess
from nbs.run.steps import run_local
from nbs.store import releases as release_store
from tests.release.conftest import COORDINATOR, LAB, PASSWORD


def test_a_pending_condition_blocks_the_release_and_the_refusal_is_audited(db: Path) -> None:
    with pytest.raises(service.ReleaseRefused, match="PKU pending: retest punches awaited"):
        service.release_card(db, "S-PKU3", LAB)
    with pytest.raises(service.ReleaseRefused, match="CH pending: CH not evaluated: awaiting"):
        service.release_card(db, "S-BADVAL", LAB, acknowledge=True)
    assert store.query(db, "SELECT count(*) FROM releases").item() == 0
    trail = release_store.release_attempts(db, "S-PKU3").row(0, named=True)
    assert trail["outcome"] == "refused" and trail["actor"] == LAB
    assert "PKU pending" in trail["detail"]


def test_an_open_exception_is_released_over_only_when_acknowledged(db: Path) -> None:
    # S-N01 has a quarantined result row (an unknown analyte on its MS/MS plate)
    with pytest.raises(service.ReleaseRefused, match=r"quarantined: .*unknown analyte"):
        service.release_card(db, "S-N01", LAB)
    done = service.release_card(db, "S-N01", LAB, acknowledge=True)
    assert (done.seq, done.kind) == (1, "initial")
    row = release_store.card_releases(db, "S-N01").row(0, named=True)
    assert row["released_by"] == LAB and "unknown analyte" in row["acknowledged"]
    trail = release_store.release_attempts(db, "S-N01")
    assert trail["outcome"].to_list() == ["refused", "released"]
    assert trail["detail"][1] == "initial release 1" and set(trail["actor"]) == {LAB}
    # nothing changed: not released twice
    with pytest.raises(service.ReleaseRefused, match="unchanged since release 1"):
        service.release_card(db, "S-N01", LAB, reason="again", acknowledge=True)
    statuses = service.card_statuses(db)
    by_card = dict(zip(statuses["specimen_id"], statuses["status"], strict=True))
    assert by_card["S-N01"] == "released"
    assert by_card["S-PKU3"] == "blocked" and by_card["S-PKU1"] == "ready"
    ready = service.card_statuses(db, "ready")
    assert "S-PKU1" in set(ready["specimen_id"]) and "S-N01" not in set(ready["specimen_id"])
    assert set(ready["status"]) == {"ready"}


def test_a_release_needs_the_password_of_an_active_lab_account(db: Path) -> None:
    with pytest.raises(service.ReleaseRefused, match="wrong user name or password"):
        service.verify_signer(db, LAB, "not the password", "S-PKU1")
    with pytest.raises(service.ReleaseRefused, match="only a lab account signs"):
        service.verify_signer(db, COORDINATOR, PASSWORD, "S-PKU1")
    with pytest.raises(service.ReleaseRefused, match="not an active lab account"):
        service.release_card(db, "S-PKU1", COORDINATOR)
    attempts = store.query(
        db, "SELECT username, outcome, detail FROM login_attempts ORDER BY attempt_at"
    )
    assert ("lab.anna", "wrong_password") in set(
        zip(attempts["username"], attempts["outcome"], strict=True)
    )
    assert set(attempts["detail"]) == {"password re-entered to release card S-PKU1"}
    assert store.query(db, "SELECT count(*) FROM releases").item() == 0
    refused = store.query(db, "SELECT actor FROM release_attempts WHERE outcome = 'refused'")
    assert set(refused["actor"]) == {LAB, COORDINATOR}


def test_the_command_line_asks_for_the_password(db: Path) -> None:
    runner = CliRunner()
    wrong = runner.invoke(
        app, ["release", "S-PKU1", "--db", str(db), "--user", LAB], input="nope\n"
    )
    assert wrong.exit_code != 0 and "nothing was released" in str(wrong.exception)
    ok = runner.invoke(
        app, ["release", "S-PKU1", "--db", str(db), "--user", LAB], input=f"{PASSWORD}\n"
    )
    assert ok.exit_code == 0, ok.output
    assert "initial release 1 by lab.anna" in ok.output and PASSWORD not in ok.output
    listed = runner.invoke(app, ["release", "list", "--db", str(db), "--format", "json"])
    rows = {r["specimen_id"]: r for r in json.loads(listed.output)}
    assert rows["S-PKU1"]["status"] == "released"
    no_user = runner.invoke(app, ["release", "S-PKU2", "--db", str(db)], input="x\n")
    assert no_user.exit_code != 0 and "--user" in str(no_user.exception)


HEADER = (
    "specimen_id,baby_id,birth_at,collected_at,received_at,sex,birth_weight_g,"
    "gestational_age_weeks,transfusion,parenteral_nutrition,consent_cf,specimen_quality,submitter"
)


@pytest.mark.slow
def test_a_held_plate_blocks_the_release(tmp_path: Path, config: ScreeningConfig) -> None:
    from tests.run.test_plates_e2e import _inbox

    db = tmp_path / "lab.duckdb"
    run_local(_inbox(tmp_path), db, config)
    inputs = release_store.release_inputs(db, ["S-H1"])
    from nbs.release import rules

    found = [str(b) for b in rules.blockers(inputs, "S-H1")]
    assert "plate GSP-7 is held" in found
    from nbs.web import users

    users.add_user(db, LAB, "lab", PASSWORD, "test")
    with pytest.raises(service.ReleaseRefused, match="plate GSP-7 is held"):
        service.release_card(db, "S-H1", LAB, acknowledge=True)


def _corrected_cutoffs(tmp_path: Path) -> Path:
    """A corrected cutoff folder: LNS-2026.1 replaced by
    LNS-2026.1b (same dates) with the CH limits at 48-72 h raised far up."""
    folder = tmp_path / "cutoffs"
    root = Path(__file__).resolve().parents[2] / "cutoffs"
    shutil.copytree(root, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (folder / "lns-2026.1.yaml").read_text("utf-8")
    text = text.replace("version: LNS-2026.1", "version: LNS-2026.1b")
    old = "{from_hours: 48, to_hours: 72, limits: {retest: 8, repeat_specimen: 15, referral: 20}}"
    assert old in text
    new = (
        "{from_hours: 48, to_hours: 72, limits: {retest: 500, repeat_specimen: 600, referral: 700}}"
    )
    (folder / "lns-2026.1.yaml").unlink()
    (folder / "lns-2026.1b.yaml").write_text(text.replace(old, new), "utf-8")
    return folder


@pytest.mark.slow
def test_a_reevaluation_that_changes_a_call_gives_an_amendment_flagged_corrected(
    db: Path, tmp_path: Path
) -> None:
    first = service.release_card(db, "S-CH1", LAB)
    before = oru_text(releases(db)[0])
    assert "LA18593-6^Out of range" in before
    corrected = _corrected_cutoffs(tmp_path)
    # a reprocessing compares only: the clinical record, hence the release, is unchanged
    summary = reprocess(db, load_config(corrected), "LNS-2026.1b", ["S-CH1"])
    assert summary.changed == 1
    assert service.card_statuses(db, "changed").height == 0
    reevaluate(db, ["S-CH1"], "CH limits corrected", "sup.ana", load_config(corrected))
    changed = service.card_statuses(db, "changed").row(0, named=True)
    assert changed["specimen_id"] == "S-CH1" and "condition.CH" in changed["detail"]
    # the release list, read a page at a time, sees the re-evaluation's change too
    assert service.cards_of_status(db, "changed").page(100, 0).row(0, named=True) == changed
    assert service.cards_of_status(db, "released").total == 0
    with pytest.raises(service.ReleaseRefused, match="give the reason for the amendment"):
        service.release_card(db, "S-CH1", LAB)
    amended = service.release_card(db, "S-CH1", LAB, reason="CH limits corrected (2026.1b)")
    assert (amended.seq, amended.kind) == (first.seq + 1, "amendment")
    assert "condition.CH" in amended.changed
    second = releases(db)[1]
    assert second["snapshot"]["conditions"]["CH"]["call"] == "negative"
    segments = oru_text(second).split("\r")
    obrs = [s for s in segments if s.startswith("OBR|")]
    assert obrs and all(s.split("|")[25] == "C" for s in obrs)
    statuses = {
        s.split("|")[3].split("^")[0]: s.split("|")[11] for s in segments if s[:4] == "OBX|"
    }
    assert statuses["46762-1"] == "C"  # CH interpretation: corrected
    assert statuses["46733-2"] == "F"  # PKU interpretation: unchanged
    assert store.query(db, "SELECT count(*) FROM releases WHERE kind = 'amendment'").item() == 1
