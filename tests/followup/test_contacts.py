"""The contact log on a real screening database: the first contact moves a recall to
contacted (audited), the latest contact's next action is the recall's and a due one comes
first in the list, an urgent recall nobody contacted in time is flagged, what is refused,
and a recall waiting for a held plate refuses contacts too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nbs import store
from nbs.followup.contacts import Contact, parse_due, parse_when, record_contact
from nbs.followup.lifecycle import RecallError, list_recalls, load_followup, set_stage
from nbs.followup.worklist import span_text
from nbs.store import contacts as contact_store

CONFIG = load_followup()


def recall_of(db: Path, specimen: str, condition: str | None) -> str:
    where = "condition IS NULL" if condition is None else "condition = ?"
    params: list[object] = [specimen] if condition is None else [specimen, condition]
    return str(
        store.query(
            db, f"SELECT recall_id FROM recalls WHERE specimen_id = ? AND {where}", params
        ).item()
    )


def execute(db: Path, sql: str, params: list[object] | None = None) -> None:
    """A test's own change to the database (a state the pipeline would reach slowly)."""
    with store.connect(db) as con:
        con.execute(sql, params or [])


def call(recall_id: str, **fields: object) -> Contact:
    values: dict[str, object] = {
        "recall_id": recall_id, "how": "telephone", "whom": "parents",
        "note": "mother reached; appointment agreed", "contacted_by": "coord.lea",
    }  # fmt: skip
    values.update(fields)
    return Contact(**values)  # type: ignore[arg-type]


def test_the_first_contact_moves_an_open_recall_to_contacted_with_its_audit(
    coord_db: Path,
) -> None:
    rid = recall_of(coord_db, "S-PKU1", "PKU")
    assert record_contact(coord_db, call(rid), CONFIG) is True
    assert store.recall(coord_db, rid)["stage"] == "contacted"  # type: ignore[index]
    events = store.recall_events(coord_db, rid).rows(named=True)
    assert [(e["actor"], e["field"], e["old_value"], e["new_value"]) for e in events] == [
        ("coord.lea", "stage", "open", "contacted")
    ]
    # a second contact adds a row, not a stage change
    assert record_contact(coord_db, call(rid, how="email", whom="paediatrician"), CONFIG) is False
    assert len(store.recall_events(coord_db, rid)) == 1
    log = contact_store.recall_contacts(coord_db, rid)
    assert log["how"].to_list() == ["email", "telephone"]  # latest first


def test_a_referred_recall_keeps_its_stage(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    set_stage(coord_db, rid, "referred", "coord.lea")
    assert record_contact(coord_db, call(rid, whom="specialist"), CONFIG) is False
    assert store.recall(coord_db, rid)["stage"] == "referred"  # type: ignore[index]


def test_due_next_actions_come_first_and_a_letter_leaves_the_next_action(coord_db: Path) -> None:
    today = store.utc_now().date()
    late = recall_of(coord_db, "S-PKU2", "PKU")  # routine: normally after the urgent ones
    later = recall_of(coord_db, "S-CH2", "CH")
    record_contact(
        coord_db,
        call(late, next_action="call back about the new card", next_due=today - dt.timedelta(1)),
        CONFIG,
    )
    record_contact(
        coord_db, call(later, next_action="check card arrived", next_due=today + dt.timedelta(3)),
        CONFIG,
    )  # fmt: skip
    frame = list_recalls(coord_db, CONFIG, status="open")
    assert frame["recall_id"][0] == late
    first = frame.row(0, named=True)
    assert (first["action_due"], first["next_action"]) == (True, "call back about the new card")
    row = frame.filter(frame["recall_id"] == later).row(0, named=True)
    assert row["action_due"] is False and row["next_due"] == today + dt.timedelta(3)
    # a letter recorded as sent does not clear the planned call
    record_contact(coord_db, call(late, how="letter", whom="maternity", letter="repeat_card"),
                   CONFIG)  # fmt: skip
    again = list_recalls(coord_db, CONFIG, status="open").row(0, named=True)
    assert (again["recall_id"], again["next_action"]) == (late, "call back about the new card")
    # a later call that plans nothing more does
    record_contact(coord_db, call(late, note="card arrived"), CONFIG)
    done = list_recalls(coord_db, CONFIG, status="open")
    assert done.filter(done["recall_id"] == late)["next_action"].item() is None
    assert done["recall_id"][0] != late


def test_urgent_recalls_not_contacted_in_time_are_flagged(coord_db: Path) -> None:
    urgent = recall_of(coord_db, "S-PKU1", "PKU")
    contacted = recall_of(coord_db, "S-CH1", "CH")
    routine = recall_of(coord_db, "S-PKU2", "PKU")
    hours = CONFIG.contacts.urgent_first_contact_hours
    opened = store.utc_now() - dt.timedelta(hours=hours + 1)
    execute(
        coord_db,
        "UPDATE recalls SET created_at = ? WHERE recall_id IN (?, ?, ?)",
        [opened, urgent, contacted, routine],
    )
    record_contact(coord_db, call(contacted, whom="specialist"), CONFIG)
    frame = list_recalls(coord_db, CONFIG, status="open")
    flags = dict(zip(frame["recall_id"], frame["not_contacted"], strict=True))
    assert flags[urgent] is True
    assert flags[contacted] is False and flags[routine] is False
    # every other urgent recall opened just now: not yet late
    assert sum(flags.values()) == 1
    assert frame["recall_id"][0] == urgent  # flagged work comes first


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"how": "fax"}, "how must be one of"),
        ({"whom": "grandmother"}, "whom must be one of"),
        ({"note": "  "}, "note is empty"),
        ({"next_action": "call back"}, "needs its due date"),
        ({"next_due": dt.date(2026, 12, 24)}, "needs its due date"),
        ({"contacted_at": dt.datetime(2099, 1, 1)}, "is ahead"),
        ({"note": "x" * 2_001}, "too long"),
    ],
)
def test_a_contact_that_says_too_little_or_too_much_is_refused(
    coord_db: Path, fields: dict[str, object], message: str
) -> None:
    rid = recall_of(coord_db, "S-PKU1", "PKU")
    with pytest.raises(RecallError, match=message):
        record_contact(coord_db, call(rid, **fields), CONFIG)
    assert contact_store.recall_contacts(coord_db, rid).is_empty()
    assert store.recall(coord_db, rid)["stage"] == "open"  # type: ignore[index]


def test_a_recall_waiting_for_a_held_plate_refuses_contacts(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-PKU1", "PKU")
    now = store.utc_now()
    execute(
        coord_db,
        "INSERT INTO plates (plate_id, instrument, run_at, status, reason, qc_version, "
        "judged_at, run_id) VALUES ('P-HELD', 'MSMS-01', ?, 'held', '1-3s on Phe level 2', "
        "'2026.1', ?, 'run-test')",
        [now, now],
    )
    execute(coord_db, "UPDATE raw_result_rows SET plate_id = 'P-HELD' WHERE specimen_id = 'S-PKU1'")
    with pytest.raises(RecallError, match="waits for plate P-HELD"):
        record_contact(coord_db, call(rid), CONFIG)
    assert contact_store.recall_contacts(coord_db, rid).is_empty()


def test_spans_read_as_hours_in_the_first_week_then_days() -> None:
    assert span_text(5.9, 7 * 24) == "5 h"
    assert span_text(7 * 24 - 1, 7 * 24) == "167 h"
    assert span_text(7 * 24, 7 * 24) == "7 d"
    assert span_text(None, 48) == ""


def test_filters_sorts_and_ages_on_the_list(coord_db: Path) -> None:
    rid = recall_of(coord_db, "S-CH1", "CH")
    set_stage(coord_db, rid, "referred", "coord.lea")
    referred = list_recalls(coord_db, CONFIG, stage="referred")
    assert referred["recall_id"].to_list() == [rid]
    everything = list_recalls(coord_db, CONFIG)
    assert list_recalls(coord_db, CONFIG, submitter="CHL").height == everything.height
    assert list_recalls(coord_db, CONFIG, submitter="HRS").is_empty()
    youngest = list_recalls(coord_db, CONFIG, sort="youngest")["birth_at"].to_list()
    assert youngest == sorted(youngest, reverse=True)
    oldest = list_recalls(coord_db, CONFIG, sort="oldest")["created_at"].to_list()
    assert oldest == sorted(oldest)
    # the sample babies are months old: days, not hours
    ages = everything["age"].to_list()
    assert all(a.endswith(" d") for a in ages) and all(int(a.split()[0]) > 7 for a in ages)


def test_typed_dates_and_times_are_read_or_refused() -> None:
    assert parse_due("") is None and parse_due("2026-03-04") == dt.date(2026, 3, 4)
    assert parse_when("2026-03-04 10:30") == dt.datetime(2026, 3, 4, 10, 30)
    assert parse_when("2026-03-04T10:30") == dt.datetime(2026, 3, 4, 10, 30)
    with pytest.raises(RecallError, match="YYYY-MM-DD"):
        parse_due("04/03/2026")
