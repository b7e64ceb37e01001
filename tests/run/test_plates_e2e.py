"""Plates through real runs: an immunoassay export whose controls fail holds its results
(no call from them, the card on the retest worklist naming the plate); a supervisor's
acceptance makes the calls then; a confirmed rejection keeps them out for good."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from data_samples.instrument_exports import trfia_long
from nbs import store
from nbs.config import ScreeningConfig
from nbs.run.release import decide
from nbs.run.steps import run_local
from nbs.store import plates

MEASURED = dt.datetime(2026, 3, 5, 9, 12)
HEADER = (
    "specimen_id,baby_id,birth_at,collected_at,received_at,sex,birth_weight_g,"
    "gestational_age_weeks,transfusion,parenteral_nutrition,consent_cf,specimen_quality,submitter"
)
CARDS = f"""{HEADER}
S-H1,BH1,2026-03-01T08:30:00,2026-03-03T12:30:00,2026-03-04T08:30:00,M,3350,39,false,false,true,ok,CHL
S-H2,BH2,2026-03-01T09:30:00,2026-03-03T13:30:00,2026-03-04T08:30:00,F,3200,40,false,false,true,ok,CHL
S-A1,BA1,2026-03-01T10:30:00,2026-03-03T14:30:00,2026-03-04T08:30:00,F,3300,39,false,false,true,ok,CHL
"""


def _plate(plate: str, level1: float, level2: float, specimens: dict[str, float]) -> str:
    rows = [
        ("A1", "CAL-A", "Calibrator", "hTSH", 0.1, "mU/L", 0.0),
        ("A2", "CAL-C", "Calibrator", "hTSH", 24.6, "mU/L", 25.0),
        ("B1", "CTRL-1", "Control", "hTSH", level1, "mU/L", None),
        ("B2", "CTRL-2", "Control", "hTSH", level2, "mU/L", None),
    ]
    rows += [
        (f"C{i + 1}", sid, "Sample", "hTSH", value, "mU/L", None)
        for i, (sid, value) in enumerate(specimens.items())
    ]
    return trfia_long(rows, plate, MEASURED)


def _ch(db: Path, specimen: str) -> dict[str, object]:
    calls = store.query(
        db,
        "SELECT call, basis, reason FROM screening_calls "
        "WHERE specimen_id = ? AND condition = 'CH'",
        [specimen],
    )
    return calls.row(0, named=True)


def _inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "20260305.specimens.csv").write_text(CARDS)
    # level 1 at +2.3 SD and level 2 at +2.3 SD in the same run: 2-2s rejects the plate
    (inbox / "gsp-plate-7.txt").write_text(_plate("GSP-7", 7.4, 54.2, {"S-H1": 3.1, "S-H2": 95.0}))
    (inbox / "gsp-plate-8.txt").write_text(_plate("GSP-8", 6.1, 44.0, {"S-A1": 2.9}))
    return inbox


def inbox_with_a_pku_referral(tmp_path: Path) -> Path:
    """The inbox of :func:`_inbox` plus three PHE punches of S-H1 at referral on an accepted
    MS/MS plate: S-H1 gets a PKU recall while its TSH plate GSP-7 is held."""
    inbox = _inbox(tmp_path)
    (inbox / "20260305.results.csv").write_text(
        "specimen_id,analyte,value,unit,measured_at,instrument,plate_id,well,replicate,flag\n"
        + "".join(
            f"S-H1,{analyte},{value},umol/L,2026-03-05T09:00:00,MSMS-01,MS-4,A{punch},{punch},\n"
            for punch in (1, 2, 3)
            for analyte, value in (("PHE", 1250 + punch), ("TYR", 45))
        )
    )
    return inbox


@pytest.mark.slow
def test_a_held_plate_makes_no_call_until_a_supervisor_accepts_it(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    db = tmp_path / "lab.duckdb"
    summary = run_local(_inbox(tmp_path), db, config)
    held = plates.plate(db, "GSP-7")
    assert held is not None and held["status"] == "held"
    assert "2-2s on TSH NBS-CTRL level" in str(held["reason"]) and "lot 4411" in str(held["reason"])
    assert plates.plate(db, "GSP-8")["status"] == "accepted"  # type: ignore[index]
    assert summary.plates_held == [held["reason"]]
    # no call from the held plate: both of its cards wait on the worklist, naming the plate
    for specimen in ("S-H1", "S-H2"):
        call = _ch(db, specimen)
        assert (call["call"], call["basis"]) == ("retest", "plate_held")
        assert "plate GSP-7 held: 2-2s" in str(call["reason"])
    worklist = store.query(
        db, "SELECT specimen_id, reason FROM retest_worklist WHERE status = 'open'"
    )
    assert {"S-H1", "S-H2"} <= set(worklist["specimen_id"])
    assert store.query(db, "SELECT count(*) FROM recalls WHERE specimen_id = 'S-H2'").item() == 0
    assert _ch(db, "S-A1")["call"] == "negative"  # the accepted plate's card is called
    qc = plates.plate_qc_results(db, "GSP-7")
    assert set(qc.filter(pl.col("sample_type") == "control")["rules"]) == {"2-2s"}

    decision = decide(db, "GSP-7", "accepted", "sup.ana", "level 2 vial thawed twice", config)
    assert decision.cards_evaluated == 2
    assert _ch(db, "S-H1")["call"] == "negative"
    # TSH 95 on a first punch: now it counts (duplicates asked for by the TSH rules)
    after = _ch(db, "S-H2")
    assert after["basis"] != "plate_held" and "TSH 95" in str(after["reason"]), after
    events = plates.plate_events(db, "GSP-7")
    assert events["actor"].to_list() == ["pipeline", "sup.ana"]
    # the next run evaluates nothing again for the plate
    again = run_local(tmp_path / "inbox", db, config)
    assert again.cards_evaluated == 0


@pytest.mark.slow
def test_a_confirmed_rejection_keeps_the_results_out(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    db = tmp_path / "lab.duckdb"
    run_local(_inbox(tmp_path), db, config)
    decide(db, "GSP-7", "rejected", "sup.ana", "controls out: plate repeated", config)
    assert plates.plate(db, "GSP-7")["status"] == "rejected"  # type: ignore[index]
    assert (_ch(db, "S-H2")["call"], _ch(db, "S-H2")["basis"]) == ("retest", "plate_held")
    # retest punches on a good plate answer the card
    inbox = tmp_path / "inbox"
    retests = _plate("GSP-9", 6.0, 45.1, {"S-H1": 3.0}).replace(
        "\tSample\thTSH\t3,00", "\tSample\thTSH\t3,00"
    )
    (inbox / "gsp-plate-9.txt").write_text(retests)
    run_local(inbox, db, config)
    assert _ch(db, "S-H1")["basis"] != "plate_held"


def test_a_canonical_results_file_with_control_rows_is_judged_the_same(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "20260305.specimens.csv").write_text(CARDS)
    head = (
        "specimen_id,analyte,value,unit,measured_at,instrument,plate_id,well,replicate,flag,"
        "sample_type,material\n"
    )
    rows = [
        "S-H1,TSH,3.2,mU/L,2026-03-05T09:00:00,GSP-01,P-31,C1,1,,,",
        ",TSH,8.1,mU/L,2026-03-05T09:00:00,GSP-01,P-31,B1,,,control,NBS-CTRL level 1 lot 4411",
        ",TSH,44.0,mU/L,2026-03-05T09:00:00,GSP-01,P-31,B2,,,control,NBS-CTRL level 2 lot 4411",
        ",TSH,3.0,mU/L,2026-03-05T09:00:00,GSP-01,P-31,B3,,,vial,NBS-CTRL level 2 lot 4411",
    ]
    (inbox / "20260305.results.csv").write_text(head + "\n".join(rows) + "\n")
    db = tmp_path / "lab.duckdb"
    summary = run_local(inbox, db, config)
    plate = plates.plate(db, "P-31")
    assert plate is not None and plate["status"] == "held"
    assert "1-3s on TSH NBS-CTRL level 1, lot 4411 (value 8.1, +3.5 SD)" in str(plate["reason"])
    assert _ch(db, "S-H1")["basis"] == "plate_held"
    # an unknown well role is held in quarantine by name, not guessed
    held = store.query(db, "SELECT column_name, value FROM quarantine")
    assert held.rows() == [("sample_type", "vial")]
    assert summary.quarantined_rows == 1


@pytest.mark.slow
def test_a_recall_waits_while_another_plate_of_its_card_is_held(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    """PKU is called from an accepted MS/MS plate (a referral), but the card's TSH sits on
    a held plate: the recall exists (the plate page says it waits) and no coordinator
    action goes out until the supervisor decides."""
    from nbs.followup.lifecycle import RecallError, set_stage

    inbox = inbox_with_a_pku_referral(tmp_path)
    db = tmp_path / "lab.duckdb"
    run_local(inbox, db, config)
    recalls = store.recall_list(db, "open").filter(pl.col("specimen_id") == "S-H1")
    assert recalls["condition"].to_list() == ["PKU"]
    assert recalls["held_by"].to_list() == ["GSP-7"]
    waiting = plates.waiting_recalls(db, "GSP-7")
    assert waiting["recall_id"].to_list() == recalls["recall_id"].to_list()
    recall_id = str(recalls["recall_id"][0])
    with pytest.raises(RecallError, match="waits for plate GSP-7"):
        set_stage(db, recall_id, "contacted", "coord.lea")

    decide(db, "GSP-7", "rejected", "sup.ana", "controls out: plate repeated", config)
    assert store.recall(db, recall_id)["held_by"] is None  # type: ignore[index]
    set_stage(db, recall_id, "contacted", "coord.lea")
    assert store.recall(db, recall_id)["stage"] == "contacted"  # type: ignore[index]
