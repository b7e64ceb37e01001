"""The coordinators' recall lifecycle: stages, outcomes, reopen, audit, overdue, CLI."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import UserError, app
from nbs.config import ScreeningConfig
from nbs.followup.lifecycle import (
    RecallError,
    add_note,
    close_recall,
    list_recalls,
    load_followup,
    reopen_recall,
    set_stage,
)
from nbs.run.steps import run_local

FOLLOWUP = load_followup()


@pytest.fixture
def db(screened_db: Path) -> Path:
    return screened_db


def _id(db: Path, specimen: str, condition: str | None) -> str:
    where = "condition IS NULL" if condition is None else f"condition = '{condition}'"
    return str(
        store.query(
            db, f"SELECT recall_id FROM recall_list WHERE specimen_id = '{specimen}' AND {where}"
        ).item()
    )


def test_close_records_outcome_who_and_when_with_audit(db: Path) -> None:
    rid = _id(db, "S-PKU1", "PKU")
    set_stage(db, rid, "contacted", "anne", "called the maternity")
    set_stage(db, rid, "referred", "anne", None)
    close_recall(db, rid, "confirmed", "bob", "confirmed at CHL", FOLLOWUP)
    row = store.recall(db, rid)
    assert row is not None
    assert (row["status"], row["stage"], row["outcome"], row["closed_by"]) == (
        "closed",
        "closed",
        "confirmed",
        "bob",
    )
    assert row["closed_at"] is not None
    events = store.recall_events(db, rid)
    assert events.select("actor", "field", "old_value", "new_value").rows() == [
        ("anne", "stage", "open", "contacted"),
        ("anne", "stage", "contacted", "referred"),
        ("bob", "stage", "referred", "closed"),
        ("bob", "outcome", None, "confirmed"),
    ]
    assert events["note"][0] == "called the maternity"


@pytest.mark.slow
def test_stages_only_move_forward_and_outcomes_are_configured(db: Path) -> None:
    rid = _id(db, "S-CH2", "CH")
    set_stage(db, rid, "sample_requested", "anne")
    with pytest.raises(RecallError, match="only move forward"):
        set_stage(db, rid, "contacted", "anne")
    set_stage(db, rid, "referred", "anne")  # sample requested, then referred after all
    with pytest.raises(RecallError, match="outcome must be one of"):
        close_recall(db, rid, "cured", "anne", None, FOLLOWUP)
    with pytest.raises(RecallError, match="close with an outcome"):
        set_stage(db, rid, "closed", "anne")


@pytest.mark.slow
def test_reopen_needs_a_reason_and_keeps_the_history(db: Path) -> None:
    rid = _id(db, "S-UNSAT", None)
    close_recall(db, rid, "repeat_normal", "anne", None, FOLLOWUP)
    with pytest.raises(RecallError, match="reason is required"):
        reopen_recall(db, rid, "  ", "bob")
    before = store.recall_events(db, rid)
    reopen_recall(db, rid, "repeat card was for another baby", "bob")
    row = store.recall(db, rid)
    assert row is not None and (row["status"], row["outcome"]) == ("open", None)
    after = store.recall_events(db, rid)
    # append-only: earlier events are unchanged, new ones are added after them
    assert after.head(before.height).equals(before)
    assert after.tail(2)["note"].to_list() == ["repeat card was for another baby"] * 2


def test_a_stale_change_is_refused_and_writes_nothing(db: Path) -> None:
    rid = _id(db, "S-CF1", "CF")
    set_stage(db, rid, "contacted", "anne")
    from nbs.followup.lifecycle import Change

    with pytest.raises(store.RecallChanged, match="changed meanwhile"):
        store.change_recall(db, rid, "open", [Change("stage", "open", "referred")], "bob", None)
    assert store.recall(db, rid)["stage"] == "contacted"  # type: ignore[index]
    assert store.recall_events(db, rid).height == 1


@pytest.mark.slow
def test_notes_are_kept(db: Path) -> None:
    rid = _id(db, "S-SMA1", "SMA")
    add_note(db, rid, "parents reached", "anne")
    add_note(db, rid, "appointment Tuesday", "anne")
    assert store.recall(db, rid)["note"] == "appointment Tuesday"  # type: ignore[index]
    assert store.recall_events(db, rid)["new_value"].to_list() == [
        "parents reached",
        "appointment Tuesday",
    ]


@pytest.mark.slow
def test_overdue_recalls_are_flagged_by_urgency(db: Path) -> None:
    urgent, routine = _id(db, "S-CH1", "CH"), _id(db, "S-CH2", "CH")
    now = store.utc_now()
    with store.connect(db) as con:
        con.execute(
            "UPDATE recalls SET created_at = ? WHERE recall_id = ?",
            [now - dt.timedelta(days=3), urgent],
        )
        con.execute(
            "UPDATE recalls SET created_at = ? WHERE recall_id = ?",
            [now - dt.timedelta(days=3), routine],
        )
    overdue = list_recalls(db, FOLLOWUP, overdue=True)
    assert overdue["recall_id"].to_list() == [urgent]  # urgent after 2 days, routine after 14
    everything = list_recalls(db, FOLLOWUP)
    assert everything["recall_id"][0] == urgent  # urgent and overdue first


@pytest.mark.slow
def test_cli_close_update_show_and_urgent_export(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    rid = _id(db, "S-SCID1", "SCID")
    assert (
        runner.invoke(
            app,
            ["recalls", "update", rid, "--status", "contacted", "--db", str(db), "--by", "carla"],
        ).exit_code
        == 0
    )
    closed = runner.invoke(
        app,
        [
            "recalls",
            "close",
            rid,
            "--outcome",
            "false_positive",
            "--db",
            str(db),
            "--note",
            "normal flow cytometry",
            "--by",
            "carla",
        ],
    )
    assert closed.exit_code == 0, closed.output
    shown = runner.invoke(app, ["recalls", "show", rid, "--db", str(db)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "false_positive" in shown.output and "carla" in shown.output
    assert "TREC" in shown.output  # values against limits
    bad = runner.invoke(app, ["recalls", "close", rid, "--outcome", "confirmed", "--db", str(db)])
    # CliRunner calls the app without main(), which turns UserError into exit 2 (see test_cli)
    assert isinstance(bad.exception, UserError) and "already closed" in str(bad.exception)
    out = tmp_path / "urgent.csv"
    assert (
        runner.invoke(app, ["recalls", "urgent", "--db", str(db), "--out", str(out)]).exit_code == 0
    )
    urgent = pl.read_csv(out)
    assert rid not in urgent["recall_id"].to_list()  # closed: not on the phone round
    assert set(urgent["submitter"]) == {"CHL"}
    open_urgent = list_recalls(db, FOLLOWUP, status="open", urgency="urgent")
    assert sorted(urgent["recall_id"]) == sorted(open_urgent["recall_id"])
    filtered = runner.invoke(
        app, ["recalls", "list", "--db", str(db), "--condition", "PKU", "--format", "csv"]
    )
    assert set(pl.read_csv(filtered.stdout.encode())["condition"]) == {"PKU"}


def test_recalls_show_names_the_cards_warnings(tmp_path: Path, config: ScreeningConfig) -> None:
    """A coordinator sees what the card could not screen: a card too old for IRT (CF not
    evaluated) on the card's repeat request, in the CLI and in the data behind the review
    page."""
    import datetime as dt

    from tests.helpers import BIRTH, write_card

    db = tmp_path / "x.duckdb"
    collected = BIRTH + dt.timedelta(days=70)
    write_card(tmp_path / "in", "S-OLD", "B-OLD", collected, specimen_quality="insufficient")
    run_local(tmp_path / "in", db, config)
    rid = store.query(db, "SELECT recall_id FROM recall_list WHERE specimen_id = 'S-OLD'").item()
    shown = CliRunner().invoke(
        app, ["recalls", "show", rid, "--db", str(db)], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    assert "Warning: CF not evaluated: IRT is not valid" in shown.output
    assert store.card_warnings(db, "S-OLD") == [
        store.query(db, "SELECT reason FROM screening_calls WHERE condition = 'CF'").item()
    ]


def test_recalls_show_is_readable_at_100_columns(db: Path) -> None:
    """The card as two columns, values rounded, tiers by name, and the history opening with
    the recall's creation, all within a 100-column terminal."""
    rid = _id(db, "S-PKU1", "PKU")
    shown = CliRunner().invoke(
        app, ["recalls", "show", rid, "--db", str(db)], env={"COLUMNS": "100"}
    )
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 100
    assert re.search(r"│ birth at +│ \d{4}-\d\d-\d\d \d\d:\d\d +│", out)  # field | value
    assert re.search(r"│ PHE/TYR +│ \d+\.\d\d? +│ retest ≥1\.5.*│ referral +│", out)
    assert re.search(r"│ PHE +│ 1 +│ 720 µmol/L +│", out)
    assert not re.search(r"\d\.\d{5,}", out)  # no float printed in full
    history = out[out.index("History") :]
    assert re.search(r"│ pipeline +│ created +│ +│ referral +│ run ", history)
