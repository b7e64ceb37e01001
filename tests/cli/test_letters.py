"""The coordinators' commands, in-process through the console entry point on a real
screening database: ``nbs letter`` (PDF and HTML, logged as sent), ``nbs recalls
contact`` and ``contacts``, the list's new filters, and ``nbs outcomes``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbs import store
from nbs.store import contacts as contact_store
from tests.cli.test_qc_cli import nbs


@pytest.fixture
def db(screened_db: Path) -> Path:
    return screened_db


def _recall(db: Path, specimen: str, condition: str) -> str:
    return str(
        store.query(
            db,
            "SELECT recall_id FROM recalls WHERE specimen_id = ? AND condition = ?",
            [specimen, condition],
        ).item()
    )


def test_letter_writes_the_recalls_letter_and_logs_it(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = _recall(db, "S-PKU1", "PKU")
    out = tmp_path / "letters"
    code, printed, err = nbs(
        monkeypatch, capsys, "letter", rid, "--db", str(db), "--out", str(out), "--by", "lea"
    )
    assert code == 0, err
    said = " ".join(printed.split())  # the console wraps long lines
    assert "referral letter written" in said and "recorded as sent" in said
    assert (out / f"{rid}-referral.pdf").read_bytes().startswith(b"%PDF-")
    assert "Phenylketonuria" in (out / f"{rid}-referral.html").read_text(encoding="utf-8")
    log = contact_store.recall_contacts(db, rid)
    assert log.select("how", "letter", "contacted_by").rows() == [("letter", "referral", "lea")]
    code, _, _ = nbs(monkeypatch, capsys, "letter", rid, "--db", str(db), "--out", str(out),
                     "--template", "repeat_card")  # fmt: skip
    assert code == 0 and (out / f"{rid}-repeat_card.pdf").is_file()
    code, _, err = nbs(monkeypatch, capsys, "letter", rid, "--db", str(db), "--out", str(out),
                       "--template", "invoice")  # fmt: skip
    assert code == 2 and "letter must be one of" in err
    code, _, err = nbs(monkeypatch, capsys, "letter", "R-NONE", "--db", str(db), "--out", str(out))
    assert code == 2 and "no recall R-NONE" in err


def test_recalls_contact_logs_a_call_and_the_list_puts_due_work_first(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = _recall(db, "S-PKU2", "PKU")
    code, printed, err = nbs(
        monkeypatch, capsys, "recalls", "contact", rid, "--db", str(db), "--how", "telephone",
        "--whom", "maternity", "--note", "asked for a new card", "--next-action",
        "check the card arrived", "--due", "2026-01-02", "--by", "lea",
    )  # fmt: skip
    assert code == 0, err
    assert "now contacted" in printed
    code, printed, _ = nbs(monkeypatch, capsys, "recalls", "list", "--db", str(db),
                           "--format", "json")  # fmt: skip
    listed = json.loads(printed)
    assert listed[0]["recall_id"] == rid and listed[0]["action_due"] is True
    assert listed[0]["stage"] == "contacted" and listed[0]["submitter"] == "CHL"
    code, printed, _ = nbs(monkeypatch, capsys, "recalls", "contacts", rid, "--db", str(db),
                           "--format", "csv")  # fmt: skip
    assert "asked for a new card" in printed and "check the card arrived" in printed
    code, _, err = nbs(monkeypatch, capsys, "recalls", "contact", rid, "--db", str(db),
                       "--how", "pigeon", "--whom", "parents", "--note", "x")  # fmt: skip
    assert code == 2 and "how must be one of" in err
    code, _, err = nbs(monkeypatch, capsys, "recalls", "list", "--db", str(db),
                       "--sort", "alphabet")  # fmt: skip
    assert code == 2 and "--sort must be one of" in err
    code, printed, _ = nbs(monkeypatch, capsys, "recalls", "list", "--db", str(db),
                           "--submitter", "HRS", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(printed) == []


def test_outcomes_record_a_missed_case_and_list_it(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, printed, err = nbs(
        monkeypatch, capsys, "outcomes", "record", "BN01", "--db", str(db), "--condition", "CH",
        "--kind", "missed", "--diagnosed", "2026-05-04", "--code", "ORPHA:442", "--by", "lea",
    )  # fmt: skip
    assert code == 0, err
    assert "missed recorded (card S-N01)" in printed
    code, printed, _ = nbs(monkeypatch, capsys, "outcomes", "list", "--db", str(db),
                           "--format", "json")  # fmt: skip
    (row,) = json.loads(printed)
    assert (row["baby_id"], row["kind"], row["specimen_id"]) == ("BN01", "missed", "S-N01")
    code, _, err = nbs(monkeypatch, capsys, "outcomes", "record", "BN01", "--db", str(db),
                       "--condition", "CH", "--kind", "missed")  # fmt: skip
    assert code == 2 and "needs the date of diagnosis" in err
