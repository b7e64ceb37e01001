"""The births register: ``nbs births import`` (bad rows quarantined with their row, the
same file again changes nothing, a later file corrects a baby), the coordinator's mark,
and ``unscreened_babies`` against the cards a run stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_samples import SAMPLE_INBOX
from nbs import store
from nbs.cli import UserError, app
from nbs.config import ScreeningConfig
from nbs.stats.births import BirthsError, import_register, parse_register
from nbs.store.births import births, births_quarantine, unscreened_babies

SAMPLE_BIRTHS = SAMPLE_INBOX.parent / "births_sample.csv"

BAD = """baby_id,birth_at,submitter,status
B1,2026-03-01T08:30:00,CHL,
,2026-03-01T08:30:00,CHL,
B3,yesterday,CHL,
B4,2999-01-01T00:00:00,CHL,
B5,2026-03-01T08:30:00,CHL,adopted
B1,2026-03-02T08:30:00,CHL,
B7,2026-03-01 09:00+02:00,CHL,DECLINED
B8,,CHL,
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_rows_are_quarantined_with_their_row_and_reason(tmp_path: Path) -> None:
    kept, rejected = parse_register(_write(tmp_path / "births.csv", BAD))
    assert kept["baby_id"].to_list() == ["B1", "B7"]
    # an offset is converted to laboratory time; a status is read in any case
    b7 = kept.row(1, named=True)
    assert str(b7["birth_at"]) == "2026-03-01 08:00:00" and b7["status"] == "declined"
    reasons = dict(zip(rejected["row_number"], rejected["reason"], strict=True))
    assert reasons == {
        2: "row 2: no baby_id",
        3: "row 3: birth_at is not an ISO-8601 date and time: yesterday",
        4: "row 4: birth_at is in the future: 2999-01-01T00:00:00",
        5: "row 5: status must be empty or one of declined, deceased, not adopted",
        6: "row 6: baby_id repeated: first at row 1",
        8: "row 8: no birth_at",
    }
    assert rejected.filter(row_number=3)["raw"].item() == "B3,yesterday,CHL,"


def test_a_file_without_a_required_column_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(BirthsError, match=r"missing column.*submitter"):
        parse_register(_write(tmp_path / "b.csv", "baby_id,birth_at\nB1,2026-03-01T08:00\n"))
    result = CliRunner().invoke(
        app, ["births", "import", str(tmp_path / "b.csv"), "--db", str(tmp_path / "x.duckdb")]
    )
    assert isinstance(result.exception, UserError)


def test_reimport_is_idempotent_and_a_later_file_corrects_a_baby(tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    path = _write(tmp_path / "births.csv", BAD)
    first = import_register(db, path)
    assert (first.added, first.changed, first.unchanged, first.quarantined) == (2, 0, 0, 6)
    again = import_register(db, path)
    assert (again.added, again.changed, again.unchanged, again.quarantined) == (0, 0, 2, 0)
    assert births(db).height == 2 and births_quarantine(db).height == 6
    fixed = _write(
        tmp_path / "births-2.csv", "baby_id,birth_at,submitter\nB7,2026-03-01T09:00,MAT\n"
    )
    later = import_register(db, fixed)
    assert (later.added, later.changed) == (0, 1)
    b7 = births(db).filter(baby_id="B7").row(0, named=True)
    assert b7["submitter"] == "MAT" and b7["status"] is None and b7["file_name"] == "births-2.csv"


@pytest.mark.slow
def test_unscreened_declined_and_deceased_babies_against_a_run(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbs.run.steps import run_local

    runner = CliRunner()
    imported = runner.invoke(app, ["births", "import", str(SAMPLE_BIRTHS), "--db", str(db_path)])
    assert imported.exit_code == 0, imported.output
    assert "9 new" in imported.output
    # before any card: every baby of the register is unscreened, or as the register says
    before = unscreened_babies(db_path)
    assert before.height == 9
    run_local(sample_inbox, db_path, config)
    listed = {r["baby_id"]: r["status"] for r in unscreened_babies(db_path).iter_rows(named=True)}
    assert listed == {
        "BUNSAT": "unscreened",  # an unsatisfactory card is no screen (QI 3c)
        "BREG-0001": "unscreened",
        "BREG-0002": "unscreened",
        "BREG-0003": "declined",
        "BREG-0004": "deceased",
    }
    marked = runner.invoke(
        app, ["births", "mark", "BREG-0001", "--status", "deceased", "--db", str(db_path)]
    )
    assert marked.exit_code == 0, marked.output
    unknown = runner.invoke(
        app, ["births", "mark", "BNOPE", "--status", "declined", "--db", str(db_path)]
    )
    assert isinstance(unknown.exception, UserError)
    assert unscreened_babies(db_path, "deceased")["baby_id"].to_list() == [
        "BREG-0001",
        "BREG-0004",
    ]
    again = runner.invoke(app, ["births", "import", str(SAMPLE_BIRTHS), "--db", str(db_path)])
    assert "0 new, 0 changed, 9 unchanged" in again.output.replace("\n", " ")
    # the coordinator's mark outlives a re-import of the register
    assert unscreened_babies(db_path, "deceased").height == 2
    shown = runner.invoke(app, ["births", "unscreened", "--db", str(db_path), "--format", "csv"])
    assert shown.output.splitlines()[0].startswith("baby_id,birth_at,submitter,status")
    # by day 1 of life no card of the sample was collected: each baby is listed, those
    # with a satisfactory card as screened late
    monkeypatch.setenv("NBS_BIRTHS_SCREENED_BY_DAY", "1")
    import_register(db_path, SAMPLE_BIRTHS)
    late = unscreened_babies(db_path)
    assert late.height == 9
    assert set(late.filter("screened_late")["baby_id"]) == {"BN01", "BN02", "BN03", "BPKU1"}
    assert late.filter(baby_id="BN01")["status"].item() == "unscreened"


def test_the_configured_day_is_kept_with_the_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "nbs.duckdb"
    path = _write(tmp_path / "b.csv", "baby_id,birth_at,submitter\nB1,2026-03-01T08:00,CHL\n")
    monkeypatch.setenv("NBS_BIRTHS_SCREENED_BY_DAY", "3")
    import_register(db, path)
    due = store.query(db, "SELECT screen_due_at FROM birth_register").item()
    assert str(due) == "2026-03-04 08:00:00"
    # no card at all: unscreened, not screened late
    row = unscreened_babies(db).row(0, named=True)
    assert row["status"] == "unscreened" and row["screened_late"] is False
