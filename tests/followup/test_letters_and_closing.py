"""Letters, the directory and closing with what officials need, on a real screening
database: the referral letter carries the values, limits, condition and next steps and
goes to the condition's specialist; the repeat-card request to the card's maternity; a
PDF and HTML are written and the sending is logged; a laboratory's own template is used;
a close as confirmed records the diagnosis and its dates, a refused date closes nothing,
and details that come later are recorded on the closed recall."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from data_samples.generator import SUBMITTERS
from nbs import store
from nbs.followup.closing import Details, close_with_outcome, missing_details, record_details
from nbs.followup.directory import load_directory, recall_addressees
from nbs.followup.letters import DEFAULT_LETTERS, default_letter, render_letter, send_letter
from nbs.followup.lifecycle import RecallError, close_recall, load_followup
from nbs.store import contacts as contact_store
from nbs.store.outcomes import case_outcomes
from tests.followup.test_contacts import execute, recall_of

CONFIG = load_followup()


def test_the_directory_knows_every_submitter_the_sample_data_uses() -> None:
    directory = load_directory()
    for code, _ in SUBMITTERS:
        entry = directory.submitter(code)
        assert entry is not None and entry.telephone and entry.email, code
    assert directory.submitter("CHL").name.startswith("Maternité CHL")  # type: ignore[union-attr]
    assert directory.specialist("CH") != directory.specialist("PKU")
    assert directory.specialist("PKU") == directory.specialists["default"]


def test_the_referral_letter_has_the_values_limits_condition_and_next_steps(
    coord_db: Path,
) -> None:
    rid = recall_of(coord_db, "S-PKU1", "PKU")
    recall = store.recall(coord_db, rid)
    assert recall is not None and default_letter(recall) == "referral"
    html = render_letter(coord_db, rid, "referral", "coord.lea")
    assert "Phenylketonuria" in html and rid in html and "S-PKU1" in html
    criteria = store.screening_call(coord_db, "S-PKU1", "PKU")["explanation"][0]
    assert criteria and "Phe" in html
    # the limits as the call gave them, and the specialist as addressee
    assert "What to do next" in html and "coord.lea" in html
    assert load_directory().specialist("PKU").name in html  # type: ignore[union-attr]


def test_the_repeat_card_request_goes_to_the_cards_maternity(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-PKU2", "PKU")
    recall = store.recall(coord_db, rid)
    assert recall is not None and default_letter(recall) == "repeat_card"
    html = render_letter(coord_db, rid, "repeat_card", "coord.lea")
    assert "Maternité CHL" in html and "repeat card" in html and rid in html


def test_no_further_action_once_closed_without_a_finding(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-PKU2", "PKU")
    close_recall(coord_db, rid, "repeat_normal", "coord.lea", None, CONFIG)
    recall = store.recall(coord_db, rid)
    assert recall is not None and default_letter(recall) == "no_further_action"
    assert "no further action" in render_letter(coord_db, rid, "no_further_action", "x").lower()


def test_send_letter_writes_pdf_and_html_and_logs_the_sending(
    coord_db: Path, tmp_path: Path
) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    pdf, html = send_letter(coord_db, rid, "referral", "coord.lea", CONFIG, tmp_path / "out")
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 1_000
    text = html.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "Congenital hypothyroidism" in text
    log = contact_store.recall_contacts(coord_db, rid).row(0, named=True)
    assert (log["how"], log["whom"], log["letter"], log["contacted_by"]) == (
        "letter", "specialist", "referral", "coord.lea",
    )  # fmt: skip
    assert store.recall(coord_db, rid)["stage"] == "contacted"  # type: ignore[index]


def test_a_laboratorys_own_template_is_used_and_unknown_ones_refused(
    coord_db: Path, tmp_path: Path
) -> None:
    own = tmp_path / "letters"
    shutil.copytree(DEFAULT_LETTERS, own)
    (own / "referral.html").write_text(
        "<h1>Überweisung {{ recall.recall_id }}</h1><p>{{ condition_name }} – bitte rasch.</p>",
        encoding="utf-8",
    )
    rid = recall_of(coord_db, "S-CH1", "CH")
    pdf, html = send_letter(
        coord_db, rid, "referral", "coord.lea", CONFIG, tmp_path / "out", templates=own
    )
    assert f"Überweisung {rid}" in html.read_text(encoding="utf-8")
    assert pdf.read_bytes().startswith(b"%PDF-")  # text outside Latin-1 does not stop it
    with pytest.raises(RecallError, match="letter must be one of"):
        render_letter(coord_db, rid, "invoice", "x")
    (own / "repeat_card.html").unlink()
    with pytest.raises(RecallError, match=r"no letter template repeat_card\.html"):
        render_letter(coord_db, rid, "repeat_card", "x", templates=own)


def test_a_held_recall_writes_no_letter(coord_db: Path, tmp_path: Path) -> None:
    now = store.utc_now()
    execute(
        coord_db,
        "INSERT INTO plates (plate_id, instrument, run_at, status, reason, qc_version, "
        "judged_at, run_id) VALUES ('P-H', 'GSP-01', ?, 'held', 'r', '2026.1', ?, 'run-t')",
        [now, now],
    )
    execute(coord_db, "UPDATE raw_result_rows SET plate_id = 'P-H' WHERE specimen_id = 'S-CH1'")
    rid = recall_of(coord_db, "S-CH1", "CH")
    with pytest.raises(RecallError, match="waits for plate P-H"):
        send_letter(coord_db, rid, "referral", "coord.lea", CONFIG, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_hl7_orders_provider_is_among_whom_to_reach(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    recall = store.recall(coord_db, rid)
    assert recall is not None
    roles = [r for r, _ in recall_addressees(coord_db, load_directory(), recall, "CHL")]
    assert roles == ["maternity", "specialist"]
    now = store.utc_now()
    execute(
        coord_db,
        "INSERT INTO order_messages (specimen_id, message_control_id, baby_id, birth_at, "
        "collected_at, sex, submitter, provider_name, provider_phone, message_type, "
        "file_sha256, file_name, message_index, run_id, stored_at) VALUES ('S-CH1', 'M1', "
        "'BCH1', ?, ?, 'F', 'CHL', 'Dr Synthetic Neo', '+352 00 99 99', 'OML^O21', 'sha', "
        "'o.hl7', 0, 'run-o', ?)",
        [now, now, now],
    )
    found = dict(recall_addressees(coord_db, load_directory(), recall, "CHL"))
    provider = found["ordering provider (HL7 order)"]
    assert (provider.name, provider.telephone) == ("Dr Synthetic Neo", "+352 00 99 99")


def _born(db: Path, specimen: str) -> dt.date:
    birth = store.query(db, "SELECT birth_at FROM specimens WHERE specimen_id = ?", [specimen])
    return birth.item().date()  # type: ignore[no-any-return]


def test_closing_as_confirmed_records_the_diagnosis_and_its_dates(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    born = _born(coord_db, "S-CH1")
    details = Details("ORPHA:442", born + dt.timedelta(9), born + dt.timedelta(10))
    assert close_with_outcome(coord_db, rid, "confirmed", "coord.lea", None, CONFIG, details)
    row = case_outcomes(coord_db, "BCH1").row(0, named=True)
    assert (row["kind"], row["diagnosis_code"], row["recall_id"], row["specimen_id"]) == (
        "confirmed", "ORPHA:442", rid, "S-CH1",
    )  # fmt: skip
    assert row["treatment_started_at"] == born + dt.timedelta(10)
    recall = store.recall(coord_db, rid)
    assert recall is not None and recall["outcome"] == "confirmed"
    assert not missing_details(coord_db, recall)


def test_a_refused_date_closes_nothing(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    born = _born(coord_db, "S-CH1")
    bad = Details("ORPHA:442", born - dt.timedelta(1))
    with pytest.raises(RecallError, match="before the baby's birth"):
        close_with_outcome(coord_db, rid, "confirmed", "coord.lea", None, CONFIG, bad)
    assert store.recall(coord_db, rid)["status"] == "open"  # type: ignore[index]
    assert case_outcomes(coord_db).is_empty()


def test_details_that_come_later_are_recorded_on_the_closed_recall(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-PKU1", "PKU")
    close_with_outcome(coord_db, rid, "false_positive", "coord.lea", None, CONFIG, Details())
    recall = store.recall(coord_db, rid)
    assert recall is not None and missing_details(coord_db, recall)
    with pytest.raises(RecallError, match="ruled-out case needs the date"):
        record_details(coord_db, rid, "coord.lea", Details(diagnosis_code="x"))
    ruled_out = _born(coord_db, "S-PKU1") + dt.timedelta(12)
    record_details(coord_db, rid, "coord.ben", Details(ruled_out_at=ruled_out))
    row = case_outcomes(coord_db, str(recall["baby_id"])).row(0, named=True)
    assert (row["kind"], row["ruled_out_at"], row["recorded_by"]) == (
        "ruled_out", ruled_out, "coord.ben",
    )  # fmt: skip
    assert not missing_details(coord_db, recall)
    open_one = recall_of(coord_db, "S-CH1", "CH")
    with pytest.raises(RecallError, match="is not closed as"):
        record_details(coord_db, open_one, "coord.lea", Details(ruled_out_at=ruled_out))
