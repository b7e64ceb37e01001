"""The recall list: its reads, a person's changes with their audit events, and the
repeat-card answers a run's commit applies (the rule itself is follow-up's:
:mod:`nbs.followup.answers`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from nbs.store.connection import Connection, connect, fetch, fetch_with, query, transaction, utc_now

#: who the audit trail names for changes the screening run makes itself
PIPELINE_ACTOR = "pipeline"


def recall_list(db_path: Path, status: str | None = None) -> pl.DataFrame:
    """The recall list, urgent first, then newest; ``held_by`` names the card's plates that
    still await a supervisor's decision."""
    where = "WHERE status = ?" if status else ""
    return query(
        db_path,
        f"SELECT recall_id, baby_id, specimen_id, condition, action, urgency, status, stage, "
        f"outcome, created_at, closed_at, closed_by, rule_version, reason, "
        f"answered_by_specimen_id, note, held_by FROM recall_list {where} "
        f"ORDER BY urgency = 'urgent' DESC, created_at DESC, recall_id",
        [status] if status else [],
    )


def recall(db_path: Path, recall_id: str) -> dict[str, object] | None:
    """One recall as a mapping, or None."""
    frame = query(db_path, "SELECT * FROM recall_list WHERE recall_id = ?", [recall_id])
    return frame.row(0, named=True) if frame.height else None


def recall_events(db_path: Path, recall_id: str) -> pl.DataFrame:
    """A recall's audit trail, oldest first."""
    return query(
        db_path,
        "SELECT event_at, actor, field, old_value, new_value, note FROM recall_events "
        "WHERE recall_id = ? ORDER BY event_seq",
        [recall_id],
    )


def urgent_recalls(db_path: Path) -> pl.DataFrame:
    """The open urgent recalls, oldest first, with the card's submitting unit and birth
    (the phone round's list)."""
    return query(
        db_path,
        "SELECT r.recall_id, r.specimen_id, r.baby_id, r.condition, r.action, r.stage, "
        "s.submitter, s.birth_at, r.created_at, r.reason, r.held_by FROM recall_list r "
        "LEFT JOIN specimens s USING (specimen_id) WHERE r.status = 'open' AND "
        "r.urgency = 'urgent' ORDER BY r.created_at, r.recall_id",
    )


#: the columns of the recall list as a coordinator works it (view ``recall_worklist``)
WORKLIST_COLUMNS = (
    "recall_id, baby_id, specimen_id, condition, action, urgency, status, stage, outcome, "
    "created_at, closed_at, closed_by, rule_version, reason, answered_by_specimen_id, note, "
    "held_by, birth_at, submitter, contacts, first_contact_at, last_contact_at, next_action, "
    "next_due"
)
#: the columns a coordinator filters the list on (equal to a value)
WORKLIST_FILTERS = ("status", "condition", "urgency", "stage", "submitter")
#: the columns the list can be ordered by: the worklist's own, and its flags
WORKLIST_ORDER = (
    *WORKLIST_FILTERS,
    "recall_id",
    "created_at",
    "birth_at",
    "next_due",
    "is_urgent",
    "overdue",
    "action_due",
    "not_contacted",
)


@dataclass(frozen=True)
class WorklistView:
    """Which recalls of the worklist, in which order, as of ``now``: ``equal`` (column:
    value, of :data:`WORKLIST_FILTERS`); an open recall is ``overdue`` once open more
    whole minutes than ``overdue_after`` gives its urgency (none: never), and
    ``not_contacted`` once urgent, nobody contacted and open more than
    ``uncontacted_after`` minutes; its next action is due (``action_due``) on its day.
    ``order``: (column of :data:`WORKLIST_ORDER`, descending), nulls last."""

    now: dt.datetime
    equal: dict[str, str]
    overdue_after: dict[str, int]
    uncontacted_after: int
    overdue_only: bool = False
    order: tuple[tuple[str, bool], ...] = (("recall_id", False),)


def _worklist_sql(view: WorklistView) -> tuple[str, list[object]]:
    """The view's recalls with their flags and ``minutes_open`` (a relation), and its
    parameters in the order of their places in the text."""
    unknown = set(view.equal) - set(WORKLIST_FILTERS)
    if unknown:
        raise ValueError(f"the recall list is not filtered on {', '.join(sorted(unknown))}")
    where = " AND ".join(f"{column} = ?" for column in view.equal) or "TRUE"
    whens = "".join(" WHEN ? THEN minutes_open > ?" for _ in view.overdue_after)
    overdue = f"CASE urgency{whens} END" if whens else "NULL"
    sql = f"""(
        SELECT *, is_open AND coalesce(next_due <= ?, false) AS action_due,
               is_open AND is_urgent AND contacts IS NULL AND minutes_open > ?
                   AS not_contacted,
               is_open AND coalesce({overdue}, false) AS overdue
        FROM (
            -- whole minutes open, cut toward zero (as polars' total_minutes cuts them)
            SELECT *, (epoch_us(?::TIMESTAMP) - epoch_us(created_at)) // 60000000
                          AS minutes_open,
                   status = 'open' AS is_open, urgency = 'urgent' AS is_urgent
            FROM recall_worklist WHERE {where}
        )
    )"""
    params: list[object] = [view.now.date(), view.uncontacted_after]
    params += [value for pair in view.overdue_after.items() for value in pair]
    return sql, [*params, view.now, *view.equal.values()]


def recall_worklist_count(db_path: Path, view: WorklistView) -> int:
    """How many recalls the view holds."""
    relation, params = _worklist_sql(view)
    only = "WHERE overdue" if view.overdue_only else ""
    return int(query(db_path, f"SELECT count(*) FROM {relation} {only}", params).item())


def recall_worklist_page(db_path: Path, view: WorklistView, size: int, offset: int) -> pl.DataFrame:
    """A page of the view's recalls, in its order (columns :data:`WORKLIST_COLUMNS`)."""
    unknown = {column for column, _ in view.order} - set(WORKLIST_ORDER)
    if unknown:
        raise ValueError(f"the recall list is not ordered by {', '.join(sorted(unknown))}")
    relation, params = _worklist_sql(view)
    only = "WHERE overdue" if view.overdue_only else ""
    order = ", ".join(
        f"{column} {'DESC' if descending else 'ASC'} NULLS LAST"
        for column, descending in view.order
    )
    return query(
        db_path,
        f"SELECT {WORKLIST_COLUMNS} FROM {relation} {only} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, size, offset],
    )


def recall_conditions(db_path: Path) -> list[str]:
    """The conditions the recall list names, in order (a filter's choices)."""
    return query(
        db_path,
        "SELECT DISTINCT condition FROM recall_list WHERE condition IS NOT NULL ORDER BY 1",
    )["condition"].to_list()


class RecallChanged(RuntimeError):
    """The recall changed since it was read (someone else saved first): nothing written."""


#: recall columns a person may change, and what else a stage change implies
_CHANGEABLE = {"stage", "outcome", "note", "urgency"}


def change_recall(
    db_path: Path,
    recall_id: str,
    expected_stage: str,
    changes: list[Any],
    actor: str,
    note: str | None,
) -> None:
    """Apply field changes to a recall and append one audit event per change, in one
    transaction. Refused (RecallChanged) if the recall's stage is no longer
    ``expected_stage``: the caller decided on a stale view."""
    now = utc_now()
    with connect(db_path) as con, transaction(con):
        row = con.execute("SELECT stage FROM recalls WHERE recall_id = ?", [recall_id]).fetchone()
        if row is None or row[0] != expected_stage:
            raise RecallChanged(
                f"{recall_id} changed meanwhile (now {row[0] if row else 'gone'}); "
                "reload it and try again"
            )
        sets: list[str] = []
        params: list[object] = []
        for change in changes:
            if change.field not in _CHANGEABLE:
                raise ValueError(f"recall field {change.field!r} cannot be changed")
            sets.append(f"{change.field} = ?")
            params.append(change.new)
            if change.field == "stage":
                closed = change.new == "closed"
                sets += ["status = ?", "closed_at = ?", "closed_by = ?"]
                params += [
                    "closed" if closed else "open",
                    now if closed else None,
                    actor if closed else None,
                ]
        con.execute(
            f"UPDATE recalls SET {', '.join(sets)} WHERE recall_id = ?", [*params, recall_id]
        )
        for change in changes:
            con.execute(
                "INSERT INTO recall_events VALUES (?, ?, ?, ?, ?, ?, ?, "
                "nextval('recall_event_seq'))",
                [recall_id, now, actor, change.field, change.old, change.new, note],
            )


# -- repeat cards answering open recalls, in a run's commit ---------------------------

#: (open repeat-card recalls of the run's babies, the run's calls of those babies) ->
#: verdicts (see :func:`nbs.followup.answers.verdicts` for the frames' columns)
AnswerRule = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]

#: the run's calls of babies with an open repeat-card recall (a few in a million), each
#: with its card's collection time and the card's answer blocker
_ANSWER_CALLS_SQL = """
SELECT c.specimen_id, c.baby_id, c.condition, c.call, c.basis, c.collected_at,
       f.answer_blocker
FROM {calls} c LEFT JOIN {findings} f USING (specimen_id)
WHERE c.baby_id IN (SELECT baby_id FROM recalls
                    WHERE status = 'open' AND action = 'repeat_specimen')
"""

#: those babies' open repeat-card recalls (this run's included), with the collection
#: time of the card each was made for
_ANSWER_RECALLS_SQL = """
SELECT r.recall_id, r.baby_id, r.condition, r.stage, r.urgency,
       r.answered_by_specimen_id, rs.collected_at AS card_collected_at
FROM recalls r JOIN specimens rs ON rs.specimen_id = r.specimen_id
WHERE r.status = 'open' AND r.action = 'repeat_specimen'
  AND r.baby_id IN (SELECT baby_id FROM _answer_babies)
"""

#: the verdicts still applicable: the recall is open and unchanged since it was read
_GUARDED_ANSWERS_SQL = """
CREATE OR REPLACE TEMP TABLE _answers AS
SELECT v.recall_id, v.stage, v.urgency, v.answered_before, v.answer, v.verdict, v.detail
FROM _verdicts v JOIN recalls r USING (recall_id)
WHERE r.status = 'open' AND r.stage IS NOT DISTINCT FROM v.stage
  AND r.urgency IS NOT DISTINCT FROM v.urgency
  AND r.answered_by_specimen_id IS NOT DISTINCT FROM v.answered_before
-- in id order: the events' sequence numbers are drawn as this table is read
ORDER BY v.recall_id
"""

#: the audit events of an answered recall, one statement per field so that their
#: sequence numbers keep this order (link, stage, outcome / urgency)
_ANSWER_EVENTS: tuple[tuple[str, str, str, str], ...] = (
    ("answered_by_specimen_id", "answered_before", "answer", "TRUE"),
    ("stage", "stage", "'closed'", "verdict = 'close'"),
    ("outcome", "NULL", "'repeat_normal'", "verdict = 'close'"),
    ("urgency", "urgency", "'urgent'", "verdict = 'escalate' AND urgency <> 'urgent'"),
)
_ANSWER_NOTE_SQL = (
    "CASE WHEN ? <> 'answered_by_specimen_id' THEN NULL "
    "WHEN verdict = 'close' "
    "THEN 'repeat card ' || answer || ' screened negative (run ' || ? || ')' "
    "ELSE 'repeat card ' || answer || ' still abnormal: ' || detail || ' (run ' || ? || ')' END"
)


def answer_repeat_cards(
    con: Connection,
    calls: str,
    findings: str,
    rule: AnswerRule,
    run_id: str,
    now: dt.datetime,
) -> tuple[int, int]:
    """Let later cards of the same baby answer open repeat-card recalls, inside the run's
    transaction (``calls``, ``findings``: SQL reading the run's parts): ``rule`` gives the
    verdicts, applied here with their audit events by :data:`PIPELINE_ACTOR`. Returns the
    recalls (closed, escalated)."""
    new_calls = fetch(con, _ANSWER_CALLS_SQL.format(calls=calls, findings=findings))
    if new_calls.is_empty():
        return 0, 0
    recalls = fetch_with(
        con, _ANSWER_RECALLS_SQL, {"_answer_babies": new_calls.select("baby_id").unique()}
    )
    verdicts = rule(recalls, new_calls)
    if verdicts.is_empty():
        return 0, 0
    return apply_answers(con, verdicts, run_id, now)


def apply_answers(
    con: Connection, verdicts: pl.DataFrame, run_id: str, now: dt.datetime
) -> tuple[int, int]:
    """Apply repeat-card verdicts (``recall_id, stage, urgency, answered_before, answer,
    verdict, detail``) and their audit events, only to recalls still open and unchanged
    since the verdicts' inputs were read (a coordinator's change is never overwritten).
    A ``close`` closes the recall (``repeat_normal``, linked to the card); an ``escalate``
    makes it urgent and links it. Returns the recalls (closed, escalated)."""
    con.register("_verdicts", verdicts.to_arrow())
    try:
        con.execute(_GUARDED_ANSWERS_SQL)
    finally:
        con.unregister("_verdicts")
    for field, old, new, where in _ANSWER_EVENTS:
        con.execute(
            f"INSERT INTO recall_events SELECT recall_id, ?, ?, ?, {old}, {new}, "
            f"{_ANSWER_NOTE_SQL}, nextval('recall_event_seq') FROM _answers WHERE {where} "
            f"ORDER BY recall_id",
            [now, PIPELINE_ACTOR, field, field, run_id, run_id],
        )
    con.execute(
        "UPDATE recalls SET stage = 'closed', status = 'closed', outcome = 'repeat_normal', "
        "closed_at = ?, closed_by = ?, answered_by_specimen_id = a.answer "
        "FROM _answers a WHERE recalls.recall_id = a.recall_id AND a.verdict = 'close'",
        [now, PIPELINE_ACTOR],
    )
    con.execute(
        "UPDATE recalls SET urgency = 'urgent', answered_by_specimen_id = a.answer "
        "FROM _answers a WHERE recalls.recall_id = a.recall_id AND a.verdict = 'escalate'"
    )
    row = con.execute(
        "SELECT count(*) FILTER (WHERE verdict = 'close'), "
        "count(*) FILTER (WHERE verdict = 'escalate') FROM _answers"
    ).fetchone()
    con.execute("DROP TABLE _answers")
    return (int(row[0]), int(row[1])) if row else (0, 0)
