"""Closing a recall with what the officials need: a ``confirmed`` close carries the
diagnosis (a code, the date of diagnosis, the date treatment started), a
``false_positive`` the date the condition was ruled out, a ``carrier`` close its finding.

The details are checked (:func:`nbs.followup.outcomes.check_outcome`) before the recall
is closed, so a refused date closes nothing. A coordinator who does not have them yet
closes without them and records them later on the closed recall (the recall page says
they are missing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from nbs.followup.lifecycle import FollowUpConfig, RecallError, close_recall, recall_row
from nbs.followup.outcomes import Kind, Outcome, OutcomeError, check_outcome
from nbs.store import outcomes as outcome_store

#: recall outcomes that are case outcomes, and their kind
CASE_KINDS: dict[str, Kind] = {
    "confirmed": "confirmed",
    "false_positive": "ruled_out",
    "carrier": "carrier",
}


@dataclass(frozen=True)
class Details:
    """What a close records beside the recall's outcome (each may be missing)."""

    diagnosis_code: str | None = None
    diagnosed_at: dt.date | None = None
    treatment_started_at: dt.date | None = None
    ruled_out_at: dt.date | None = None

    def given(self) -> bool:
        """Whether anything was given."""
        return any(v not in (None, "") for v in asdict(self).values())


def _case_outcome(
    db: Path, recall: dict[str, object], outcome: str, actor: str, details: Details,
    today: dt.date | None,
) -> Outcome | None:  # fmt: skip
    kind = CASE_KINDS.get(outcome)
    if kind is None or not recall.get("condition") or not details.given():
        return None
    case = Outcome(
        baby_id=str(recall["baby_id"]),
        condition=str(recall["condition"]),
        kind=kind,
        recorded_by=actor,
        specimen_id=str(recall["specimen_id"]),
        recall_id=str(recall["recall_id"]),
        diagnosis_code=(details.diagnosis_code or "").strip() or None,
        diagnosed_at=details.diagnosed_at,
        treatment_started_at=details.treatment_started_at,
        ruled_out_at=details.ruled_out_at,
    )
    try:
        return check_outcome(db, case, today)
    except OutcomeError as exc:
        raise RecallError(str(exc)) from exc


def check_close(
    db: Path, recall_id: str, outcome: str, actor: str, details: Details,
    today: dt.date | None = None,
) -> None:  # fmt: skip
    """Refuse (RecallError) case details that would not be kept, before anything closes."""
    _case_outcome(db, recall_row(db, recall_id), outcome, actor, details, today)


def close_with_outcome(
    db: Path,
    recall_id: str,
    outcome: str,
    actor: str,
    note: str | None,
    config: FollowUpConfig,
    details: Details,
    today: dt.date | None = None,
) -> bool:
    """Close a recall and record its case outcome when details are given; returns
    whether a case outcome was recorded."""
    case = _case_outcome(db, recall_row(db, recall_id), outcome, actor, details, today)
    close_recall(db, recall_id, outcome, actor, note, config)
    if case is None:
        return False
    outcome_store.add_outcome(db, asdict(case))
    return True


def record_details(
    db: Path, recall_id: str, actor: str, details: Details, today: dt.date | None = None
) -> None:
    """Record the case outcome of a recall closed as confirmed, false positive or carrier
    (details that came after the close, or a correction: the latest counts)."""
    recall = recall_row(db, recall_id)
    if recall["stage"] != "closed" or recall["outcome"] not in CASE_KINDS:
        raise RecallError(
            f"{recall_id} is not closed as {', '.join(CASE_KINDS)}: close it with its outcome"
        )
    if not details.given():
        raise RecallError("give the diagnosis, its dates, or the date ruled out")
    case = _case_outcome(db, recall, str(recall["outcome"]), actor, details, today)
    if case is None:
        raise RecallError(f"{recall_id} names no condition: there is no case outcome to record")
    outcome_store.add_outcome(db, asdict(case))


def missing_details(db: Path, recall: dict[str, object]) -> bool:
    """Whether a closed recall's case outcome is still to be recorded."""
    if recall.get("stage") != "closed" or recall.get("outcome") not in CASE_KINDS:
        return False
    if not recall.get("condition"):
        return False
    kept = outcome_store.case_outcomes(db, str(recall["baby_id"]))
    return not any(row["condition"] == recall["condition"] for row in kept.rows(named=True))
