"""Case outcomes (``case_outcome_events``, view ``case_outcomes``): what became of a
screened baby per condition, as coordinators record it. What an outcome may say is
:mod:`nbs.followup.outcomes`'s; here is only how it is kept and read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.store.connection import connect, query, transaction, utc_now

#: the columns a recording gives (``case_outcome_events`` but the time it was recorded)
OUTCOME_COLUMNS = (
    "baby_id", "condition", "kind", "specimen_id", "recall_id", "diagnosis_code",
    "diagnosed_at", "treatment_started_at", "ruled_out_at", "recorded_by", "note",
)  # fmt: skip


def add_outcome(db_path: Path, fields: dict[str, object]) -> dt.datetime:
    """Append one recording (``fields``: :data:`OUTCOME_COLUMNS`); returns its time."""
    now = utc_now()
    columns = ", ".join(OUTCOME_COLUMNS)
    marks = ", ".join("?" for _ in OUTCOME_COLUMNS)
    with connect(db_path) as con, transaction(con):
        con.execute(
            f"INSERT INTO case_outcome_events ({columns}, recorded_at) VALUES ({marks}, ?)",
            [*(fields.get(c) for c in OUTCOME_COLUMNS), now],
        )
    return now


def case_outcomes(db_path: Path, baby_id: str | None = None) -> pl.DataFrame:
    """The latest outcome per baby and condition (of one baby when given)."""
    where = "WHERE baby_id = ? " if baby_id is not None else ""
    return query(
        db_path,
        f"SELECT * FROM case_outcomes {where}ORDER BY baby_id, condition",
        [baby_id] if baby_id is not None else [],
    )


def screening_facts(db_path: Path, baby_id: str, condition: str) -> dict[str, object]:
    """What an outcome is checked against: the baby's birth, and its cards' current calls
    of ``condition`` (any negative, any referral or repeat request)."""
    frame = query(
        db_path,
        "SELECT min(s.birth_at) AS birth_at, "
        "bool_or(c.call = 'negative') AS any_negative, "
        "bool_or(c.call IN ('referral', 'repeat_specimen')) AS any_positive, "
        "arg_max(c.specimen_id, s.collected_at) FILTER (WHERE c.call = 'negative') "
        "AS last_negative FROM specimens s "
        "LEFT JOIN screening_calls c ON c.specimen_id = s.specimen_id AND c.condition = ? "
        "WHERE s.baby_id = ?",
        [condition, baby_id],
    )
    return frame.row(0, named=True)
